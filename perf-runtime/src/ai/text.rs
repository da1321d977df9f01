//! Text normalisation shared by the local embedder and the false-hit guard,
//! so both see the same words.
//!
//! A word is a run of alphanumeric characters, lowercased; every other
//! character separates words, except an apostrophe inside a word, which
//! marks a contraction: `what's` → `what is`, `don't` → `do not`, `can't` →
//! `can not`, `I'm` → `i am` (also when typed without the apostrophe:
//! `dont`, `whats`). So "What's" and "What is" are the same words, and a
//! negation is always the word `not`. Changing any rule here changes the
//! vectors of [`LocalEmbedder`](super::LocalEmbedder), and so must bump its
//! model name.

use std::borrow::Cow;

/// Calls `word` with each normalised word of `text`.
///
/// `word` gets the lowercased word and whether it starts a sentence (first
/// word, or the first after `.`, `!`, `?`, `:`, `;` or a line break).
pub(crate) fn for_each_word(text: &str, mut word: impl FnMut(&str, bool)) {
    let mut buf = String::with_capacity(32);
    let mut sentence_start = true;
    let mut at_sentence_start = true;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() {
            if buf.is_empty() {
                at_sentence_start = sentence_start;
                sentence_start = false;
            }
            push_lower(&mut buf, c);
        } else if is_apostrophe(c)
            && !buf.is_empty()
            && chars.peek().is_some_and(|n| n.is_alphanumeric())
        {
            buf.push('\'');
        } else {
            if !buf.is_empty() {
                expand(&buf, at_sentence_start, &mut word);
                buf.clear();
            }
            // `node.js`, `3.11`: a point inside a word ends no sentence.
            if matches!(c, '.' | '!' | '?' | ':' | ';' | '\n')
                && !chars.peek().is_some_and(|n| n.is_alphanumeric())
            {
                sentence_start = true;
            }
        }
    }
    if !buf.is_empty() {
        expand(&buf, at_sentence_start, &mut word);
    }
}

/// Emits a raw lowercased word (apostrophes kept as `'`) as one or more
/// normalised words.
fn expand(raw: &str, sentence_start: bool, word: &mut impl FnMut(&str, bool)) {
    if let Some((stem, suffix)) = raw.split_once('\'') {
        let second = match suffix {
            "t" if stem.ends_with('n') => {
                let base = &stem[..stem.len() - 1];
                let base = match base {
                    "ca" => "can",
                    "wo" => "will",
                    "sha" => "shall",
                    "ai" => "is",
                    other => other,
                };
                word(base, sentence_start);
                word("not", false);
                return;
            }
            "s" => "is",
            "re" => "are",
            "ve" => "have",
            "ll" => "will",
            "d" => "would",
            "m" => "am",
            _ => {
                // `o'clock`, `l'homme`: one word without the apostrophe.
                let joined: String = raw.chars().filter(|&c| c != '\'').collect();
                word(&joined, sentence_start);
                return;
            }
        };
        word(stem, sentence_start);
        word(second, false);
        return;
    }
    // Contractions typed without their apostrophe.
    let (first, second) = match raw {
        "dont" => ("do", "not"),
        "doesnt" => ("does", "not"),
        "didnt" => ("did", "not"),
        "isnt" => ("is", "not"),
        "arent" => ("are", "not"),
        "wasnt" => ("was", "not"),
        "werent" => ("were", "not"),
        "cant" | "cannot" => ("can", "not"),
        "couldnt" => ("could", "not"),
        "wouldnt" => ("would", "not"),
        "shouldnt" => ("should", "not"),
        "wont" => ("will", "not"),
        "hasnt" => ("has", "not"),
        "havent" => ("have", "not"),
        "hadnt" => ("had", "not"),
        "whats" => ("what", "is"),
        "thats" => ("that", "is"),
        "hows" => ("how", "is"),
        "whos" => ("who", "is"),
        "wheres" => ("where", "is"),
        "theres" => ("there", "is"),
        "im" => ("i", "am"),
        "ive" => ("i", "have"),
        "youre" => ("you", "are"),
        _ => {
            word(raw, sentence_start);
            return;
        }
    };
    word(first, sentence_start);
    word(second, false);
}

/// The normalised words of `text`, in order.
pub(crate) fn words(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for_each_word(text, |w, _| out.push(w.to_owned()));
    out
}

pub(crate) fn is_apostrophe(c: char) -> bool {
    matches!(c, '\'' | '\u{2019}' | '\u{2018}' | '`')
}

#[inline]
fn push_lower(buf: &mut String, c: char) {
    if c.is_ascii() {
        buf.push(c.to_ascii_lowercase());
    } else {
        buf.extend(c.to_lowercase());
    }
}

/// The plural-stripping "S-stemmer" (Harman, 1991): `holes` → `hole`,
/// `dictionaries` → `dictionary`, `boxes` → `boxe`; leaves `bus`, `glass`,
/// `is` alone. Conservative on purpose: it must never merge two different
/// words.
pub(crate) fn stem(word: &str) -> Cow<'_, str> {
    let n = word.len();
    if n > 4 && word.ends_with("ies") && !word.ends_with("eies") && !word.ends_with("aies") {
        return Cow::Owned(format!("{}y", &word[..n - 3]));
    }
    if n > 3
        && word.ends_with("es")
        && !(word.ends_with("aes") || word.ends_with("ees") || word.ends_with("oes"))
    {
        return Cow::Borrowed(&word[..n - 1]);
    }
    if n > 3
        && word.ends_with('s')
        && !(word.ends_with("us") || word.ends_with("ss") || word.ends_with("is"))
    {
        return Cow::Borrowed(&word[..n - 1]);
    }
    Cow::Borrowed(word)
}

/// How much a word says about what is asked: function words little
/// ([`is_stop_word`]), request verbs and fillers some ([`is_filler`]),
/// everything else in full.
pub(crate) fn weight(word: &str) -> f32 {
    if is_stop_word(word) {
        0.25
    } else if is_filler(word) {
        0.5
    } else {
        1.0
    }
}

/// Whether a word carries the topic of a prompt (what the guard compares).
pub(crate) fn is_content(word: &str) -> bool {
    !is_stop_word(word) && !is_filler(word)
}

/// Words that frame a request rather than say what it is about: "explain",
/// "tell me", "give me", "can you show". Interchangeable in chat prompts
/// ("Explain X" / "What is X"), so they count for less.
pub(crate) fn is_filler(word: &str) -> bool {
    matches!(
        word,
        "explain"
            | "describe"
            | "tell"
            | "give"
            | "show"
            | "list"
            | "suggest"
            | "recommend"
            | "need"
            | "want"
            | "help"
            | "provide"
            | "use"
            | "using"
            | "briefly"
            | "simply"
            | "quickly"
    )
}

/// Function words: they carry little of a prompt's topic, so the embedder
/// gives them a small weight and the guard ignores them when it compares
/// content words. Negations, numbers and question words are deliberately not
/// here: they change what is asked.
pub(crate) fn is_stop_word(word: &str) -> bool {
    matches!(
        word,
        "a" | "an"
            | "the"
            | "is"
            | "are"
            | "was"
            | "were"
            | "be"
            | "been"
            | "being"
            | "am"
            | "im"
            | "of"
            | "to"
            | "in"
            | "on"
            | "at"
            | "for"
            | "with"
            | "by"
            | "from"
            | "as"
            | "into"
            | "about"
            | "and"
            | "or"
            | "but"
            | "so"
            | "if"
            | "it"
            | "its"
            | "this"
            | "that"
            | "these"
            | "those"
            | "there"
            | "i"
            | "me"
            | "my"
            | "mine"
            | "you"
            | "your"
            | "we"
            | "us"
            | "our"
            | "they"
            | "them"
            | "their"
            | "he"
            | "him"
            | "his"
            | "she"
            | "her"
            | "do"
            | "does"
            | "did"
            | "can"
            | "could"
            | "would"
            | "should"
            | "will"
            | "shall"
            | "may"
            | "might"
            | "must"
            | "have"
            | "has"
            | "had"
            | "please"
            | "what"
            | "which"
            | "some"
            | "any"
            | "just"
            | "really"
            | "actually"
            | "exactly"
            | "also"
            | "hey"
            | "hi"
            | "hello"
            | "thanks"
            | "thank"
            | "whats"
            | "hows"
            | "whos"
            | "ive"
            | "youre"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contractions_expand_with_or_without_apostrophe() {
        assert_eq!(
            words("whats up, dont go"),
            ["what", "is", "up", "do", "not", "go"]
        );
        assert_eq!(
            words("I'm sure it won't, we'll see, o'clock"),
            [
                "i", "am", "sure", "it", "will", "not", "we", "will", "see", "oclock"
            ]
        );
    }

    #[test]
    fn plurals_are_stemmed_conservatively() {
        for (w, s) in [
            ("holes", "hole"),
            ("dictionaries", "dictionary"),
            ("bus", "bus"),
            ("glass", "glass"),
            ("is", "is"),
            ("analysis", "analysis"),
            ("shoes", "shoe"),
            ("cats", "cat"),
        ] {
            assert_eq!(stem(w), s, "{w}");
        }
    }

    #[test]
    fn words_are_lowercased_and_split_on_punctuation() {
        assert_eq!(
            words("What's the  capital of FRANCE?? Don't say node.js"),
            [
                "what", "is", "the", "capital", "of", "france", "do", "not", "say", "node", "js"
            ]
        );
    }

    #[test]
    fn sentence_starts_are_reported() {
        let mut starts = Vec::new();
        for_each_word("Hello there. Paris is nice: Yes", |w, s| {
            if s {
                starts.push(w.to_owned());
            }
        });
        assert_eq!(starts, ["hello", "paris", "yes"]);
    }

    #[test]
    fn quotes_around_words_are_not_kept() {
        assert_eq!(words("say 'hi' to `bob`"), ["say", "hi", "to", "bob"]);
    }
}
