//! The false-hit guard: a cheap check, after the vector match, that refuses
//! to serve a cached answer to a prompt that asks something else.
//!
//! Embeddings put "Is coffee good for you?" and "Is coffee not good for
//! you?" close together, and "Convert 5 miles to km" next to "Convert 50
//! miles to km": the prompts share almost every feature. These are the false
//! hits users of semantic caches complain about most (GPTCache#694), and a
//! threshold alone cannot separate them from paraphrases. So a match is
//! served only if the two prompts also agree on:
//!
//! | check | refuses when | example |
//! |---|---|---|
//! | [`Mismatch::Number`] | the numbers differ (digits, number words, ordinals: `5` = `five`, `3rd` = `third`) | 5 miles / 50 miles |
//! | [`Mismatch::Negation`] | one has more negations (not, no, never, `n't`, without, excluding, …) | with eggs / without eggs |
//! | [`Mismatch::Opposite`] | a word in one has its opposite in the other (increase/decrease, before/after, enable/disable, …) | pros / cons |
//! | [`Mismatch::Entity`] | a name in one is missing from the other: capitalised words not starting a sentence, all-caps and mixed-case words (`NASA`, `iPhone`), quoted text | France / Germany |
//! | [`Mismatch::Order`] | a pair around a directional word is reversed (`X to Y` / `Y to X`, from, into, than, vs, in), or two words swap sides around a third | celsius to fahrenheit / fahrenheit to celsius; Brutus killed Caesar / Caesar killed Brutus |
//! | [`Mismatch::Content`] | a content word of one has no counterpart (same word, plural or inflection) in the other | for loop / while loop; in python / in r |
//!
//! The last check makes the vector match a retrieval step and the guard the
//! decision: two prompts are served the same answer only if they ask about
//! the same things, differing in function words ("what is" / "what's",
//! "how do I" / "how can I"), request verbs ("explain" / "tell me"),
//! inflections, word order and punctuation. Synonyms ("laptop" /
//! "notebook") are refused: the local embedder could not match them anyway.
//!
//! All of it is heuristics on spelling, in English. It errs towards refusing:
//! a refused paraphrase costs one model call, a false hit serves a wrong
//! answer.

use std::collections::HashMap;

use super::text::{for_each_word, is_apostrophe, is_content, is_stop_word, stem};

/// Why the guard refused a vector match (a bounded set: usable as a metric
/// label through [`as_str`](Self::as_str)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mismatch {
    /// The prompts carry different numbers.
    Number,
    /// One prompt is negated where the other is not.
    Negation,
    /// A word in one prompt has its opposite in the other.
    Opposite,
    /// A named entity or quoted text in one prompt is missing from the other.
    Entity,
    /// The same two words around a directional word, in reverse order.
    Order,
    /// A content word of one prompt (not a function word, request verb,
    /// number or negation) has no counterpart in the other, not even an
    /// inflected one: another topic ("for loop" / "while loop"), an added
    /// detail, a lowercase name ("in python" / "in r").
    Content,
}

impl Mismatch {
    /// The metric label: `number`, `negation`, `opposite`, `entity`,
    /// `order`, `content`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mismatch::Number => "number",
            Mismatch::Negation => "negation",
            Mismatch::Opposite => "opposite",
            Mismatch::Entity => "entity",
            Mismatch::Order => "order",
            Mismatch::Content => "content",
        }
    }
}

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a cached answer to `cached_prompt` may serve `new_prompt`, given
/// that their vectors already matched. See [`check`].
pub fn compatible(cached_prompt: &str, new_prompt: &str) -> bool {
    check(cached_prompt, new_prompt).is_ok()
}

/// Like [`compatible`], with the reason for a refusal. The checks run in the
/// order of [`Mismatch`]'s variants; the first that fails is returned.
///
/// ```
/// use perf_runtime::ai::guard::{check, Mismatch};
///
/// assert_eq!(check("How do I sort a list?", "how can i sort a list"), Ok(()));
/// assert_eq!(check("Convert 5 miles to km", "Convert 50 miles to km"), Err(Mismatch::Number));
/// assert_eq!(check("Is coffee good for you?", "Is coffee not good for you?"), Err(Mismatch::Negation));
/// assert_eq!(check("Capital of France?", "Capital of Germany?"), Err(Mismatch::Entity));
/// ```
pub fn check(cached_prompt: &str, new_prompt: &str) -> Result<(), Mismatch> {
    let a = Facts::of(cached_prompt);
    let b = Facts::of(new_prompt);
    if a.numbers != b.numbers {
        return Err(Mismatch::Number);
    }
    if a.negations != b.negations {
        return Err(Mismatch::Negation);
    }
    if opposite(&a, &b) {
        return Err(Mismatch::Opposite);
    }
    if !entities_present(&a, &b) || !entities_present(&b, &a) {
        return Err(Mismatch::Entity);
    }
    if reversed_pair(&a, &b) {
        return Err(Mismatch::Order);
    }
    if !content_covered(&a, &b) || !content_covered(&b, &a) {
        return Err(Mismatch::Content);
    }
    Ok(())
}

/// What the checks need from one prompt, computed in one pass.
struct Facts {
    /// Normalised words, in order.
    words: Vec<String>,
    /// Every number, as canonical text, sorted.
    numbers: Vec<String>,
    /// How many negations.
    negations: usize,
    /// Names and quoted text, each as its normalised words.
    entities: Vec<Vec<String>>,
}

impl Facts {
    fn of(text: &str) -> Facts {
        let mut words = Vec::new();
        for_each_word(text, |w, _| words.push(w.to_owned()));
        let mut numbers = numbers(text, &words);
        numbers.sort_unstable();
        let negations = words.iter().filter(|w| is_negation(w)).count();
        let entities = entities(text);
        Facts {
            words,
            numbers,
            negations,
            entities,
        }
    }
}

fn is_negation(word: &str) -> bool {
    matches!(
        word,
        "not"
            | "no"
            | "never"
            | "none"
            | "nothing"
            | "nobody"
            | "nowhere"
            | "neither"
            | "nor"
            | "without"
            | "cannot"
            | "except"
            | "excluding"
            | "lacking"
    ) || (word.len() > 3 && word.ends_with("nt") && is_contracted_negation(word))
}

/// `don't`, `isn't`, `can't` after apostrophes are dropped (and as typed
/// without one).
fn is_contracted_negation(word: &str) -> bool {
    matches!(
        word,
        "dont"
            | "doesnt"
            | "didnt"
            | "isnt"
            | "arent"
            | "wasnt"
            | "werent"
            | "cant"
            | "couldnt"
            | "wont"
            | "wouldnt"
            | "shouldnt"
            | "hasnt"
            | "havent"
            | "hadnt"
            | "mustnt"
            | "neednt"
            | "aint"
            | "mightnt"
            | "shant"
    )
}

/// Numbers written with digits (`1,000`, `3.11`, `3rd`, `15%`) and in words
/// (`five`, `twenty five`, `two hundred`, `third`), as canonical decimal
/// text so that `5` and `five` agree.
fn numbers(text: &str, words: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    // Digits from the raw text: the word splitter would cut `3.11` in two.
    let bytes: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let mut s = String::new();
            while i < bytes.len() {
                let c = bytes[i];
                let joins = matches!(c, '.' | ',')
                    && bytes.get(i + 1).is_some_and(|n| n.is_ascii_digit())
                    && !s.is_empty();
                if c.is_ascii_digit() {
                    s.push(c);
                } else if joins {
                    // `1,000` is one thousand; `3.11` keeps its point.
                    if c == '.' {
                        s.push('.');
                    }
                } else {
                    break;
                }
                i += 1;
            }
            out.push(canonical_number(&s));
        } else {
            i += 1;
        }
    }
    // Number words, with runs combined: "twenty five" = 25, "two hundred" = 200.
    let mut run: Option<(u64, u64)> = None; // (total so far, current group)
    for w in words {
        match number_word(w) {
            Some(NumberWord::Unit(v)) => {
                let (total, group) = run.unwrap_or((0, 0));
                run = Some((total, group + v));
            }
            Some(NumberWord::Scale(s)) => {
                let (total, group) = run.unwrap_or((0, 0));
                let group = group.max(1) * s;
                run = if s >= 1000 {
                    Some((total + group, 0))
                } else {
                    Some((total, group))
                };
            }
            None => {
                if let Some((total, group)) = run.take() {
                    out.push((total + group).to_string());
                }
            }
        }
    }
    if let Some((total, group)) = run {
        out.push((total + group).to_string());
    }
    out
}

fn canonical_number(digits: &str) -> String {
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, f.trim_end_matches('0')),
        None => (digits, ""),
    };
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    if frac.is_empty() {
        int.to_owned()
    } else {
        format!("{int}.{frac}")
    }
}

enum NumberWord {
    Unit(u64),
    Scale(u64),
}

fn number_word(w: &str) -> Option<NumberWord> {
    use NumberWord::{Scale, Unit};
    Some(match w {
        "zero" => Unit(0),
        "one" | "first" | "once" | "single" => Unit(1),
        "two" | "second" | "twice" | "double" | "pair" => Unit(2),
        "three" | "third" | "thrice" | "triple" => Unit(3),
        "four" | "fourth" => Unit(4),
        "five" | "fifth" => Unit(5),
        "six" | "sixth" => Unit(6),
        "seven" | "seventh" => Unit(7),
        "eight" | "eighth" => Unit(8),
        "nine" | "ninth" => Unit(9),
        "ten" | "tenth" => Unit(10),
        "eleven" | "eleventh" => Unit(11),
        "twelve" | "twelfth" | "dozen" => Unit(12),
        "thirteen" | "thirteenth" => Unit(13),
        "fourteen" | "fourteenth" => Unit(14),
        "fifteen" | "fifteenth" => Unit(15),
        "sixteen" | "sixteenth" => Unit(16),
        "seventeen" | "seventeenth" => Unit(17),
        "eighteen" | "eighteenth" => Unit(18),
        "nineteen" | "nineteenth" => Unit(19),
        "twenty" | "twentieth" => Unit(20),
        "thirty" | "thirtieth" => Unit(30),
        "forty" | "fortieth" => Unit(40),
        "fifty" | "fiftieth" => Unit(50),
        "sixty" | "sixtieth" => Unit(60),
        "seventy" | "seventieth" => Unit(70),
        "eighty" | "eightieth" => Unit(80),
        "ninety" | "ninetieth" => Unit(90),
        "hundred" | "hundredth" => Scale(100),
        "thousand" | "thousandth" => Scale(1_000),
        "million" | "millionth" => Scale(1_000_000),
        "billion" | "billionth" => Scale(1_000_000_000),
        _ => return None,
    })
}

/// Pairs of opposites. A prefix rule covers most others (see [`opposite`]).
const OPPOSITES: &[(&str, &str)] = &[
    ("increase", "decrease"),
    ("increase", "reduce"),
    ("raise", "lower"),
    ("higher", "lower"),
    ("highest", "lowest"),
    ("high", "low"),
    ("best", "worst"),
    ("better", "worse"),
    ("good", "bad"),
    ("more", "less"),
    ("more", "fewer"),
    ("most", "least"),
    ("max", "min"),
    ("maximum", "minimum"),
    ("maximize", "minimize"),
    ("largest", "smallest"),
    ("biggest", "smallest"),
    ("bigger", "smaller"),
    ("larger", "smaller"),
    ("big", "small"),
    ("large", "small"),
    ("long", "short"),
    ("longest", "shortest"),
    ("longer", "shorter"),
    ("fast", "slow"),
    ("faster", "slower"),
    ("fastest", "slowest"),
    ("before", "after"),
    ("early", "late"),
    ("earlier", "later"),
    ("first", "last"),
    ("oldest", "newest"),
    ("old", "new"),
    ("old", "young"),
    ("past", "future"),
    ("pros", "cons"),
    ("advantages", "drawbacks"),
    ("benefits", "drawbacks"),
    ("start", "stop"),
    ("start", "end"),
    ("begin", "end"),
    ("open", "close"),
    ("buy", "sell"),
    ("add", "remove"),
    ("add", "delete"),
    ("create", "delete"),
    ("insert", "delete"),
    ("push", "pull"),
    ("send", "receive"),
    ("give", "take"),
    ("win", "lose"),
    ("gain", "lose"),
    ("gain", "loss"),
    ("profit", "loss"),
    ("love", "hate"),
    ("like", "hate"),
    ("accept", "reject"),
    ("allow", "deny"),
    ("allow", "block"),
    ("pass", "fail"),
    ("succeed", "fail"),
    ("success", "failure"),
    ("true", "false"),
    ("positive", "negative"),
    ("hot", "cold"),
    ("warm", "cold"),
    ("wet", "dry"),
    ("full", "empty"),
    ("light", "dark"),
    ("light", "heavy"),
    ("easy", "hard"),
    ("easy", "difficult"),
    ("cheap", "expensive"),
    ("cheapest", "expensive"),
    ("rich", "poor"),
    ("strong", "weak"),
    ("happy", "sad"),
    ("safe", "dangerous"),
    ("healthy", "unhealthy"),
    ("always", "never"),
    ("all", "none"),
    ("above", "below"),
    ("over", "under"),
    ("inside", "outside"),
    ("top", "bottom"),
    ("front", "back"),
    ("forward", "backward"),
    ("forwards", "backwards"),
    ("left", "right"),
    ("north", "south"),
    ("east", "west"),
    ("input", "output"),
    ("ascending", "descending"),
    ("asc", "desc"),
    ("horizontal", "vertical"),
    ("horizontally", "vertically"),
    ("summer", "winter"),
    ("day", "night"),
    ("morning", "evening"),
    ("sunrise", "sunset"),
    ("male", "female"),
    ("men", "women"),
    ("man", "woman"),
    ("boy", "girl"),
    ("import", "export"),
    ("include", "exclude"),
    ("inbound", "outbound"),
    ("upload", "download"),
    ("upstream", "downstream"),
    ("upgrade", "downgrade"),
    ("uphill", "downhill"),
    ("up", "down"),
    ("in", "out"),
    ("on", "off"),
    ("min", "max"),
];

/// Prefixes that turn a word into its opposite: `enable`/`disable`,
/// `install`/`uninstall`, `encrypt`/`decrypt`, `increase`/`decrease`.
const NEGATING_PREFIXES: &[&str] = &[
    "un", "dis", "de", "in", "im", "il", "ir", "non", "anti", "en", "mis", "dys",
];

/// A word only in `a` whose opposite is only in `b`.
fn opposite(a: &Facts, b: &Facts) -> bool {
    let only_a = only_in(&a.words, &b.words);
    let only_b = only_in(&b.words, &a.words);
    if only_a.is_empty() || only_b.is_empty() {
        return false;
    }
    only_a.iter().any(|x| {
        only_b.iter().any(|y| {
            OPPOSITES
                .iter()
                .any(|&(p, q)| (*x == p && *y == q) || (*x == q && *y == p))
                || prefix_opposites(x, y)
        })
    })
}

/// `disable`/`enable`, `uninstall`/`install`, `decrypt`/`encrypt`: the same
/// stem (of 4+ letters) behind different or missing negating prefixes.
fn prefix_opposites(x: &str, y: &str) -> bool {
    let stems = |w: &str| -> Vec<String> {
        let mut s = vec![w.to_owned()];
        for p in NEGATING_PREFIXES {
            if let Some(rest) = w.strip_prefix(p) {
                s.push(rest.to_owned());
            }
        }
        s
    };
    let (sx, sy) = (stems(x), stems(y));
    sx.iter()
        .any(|a| a.chars().count() >= 4 && sy.iter().any(|b| a == b))
}

/// The words of `a` not in `b`, counting repeats.
fn only_in<'a>(a: &'a [String], b: &[String]) -> Vec<&'a str> {
    let mut left: HashMap<&str, usize> = HashMap::new();
    for w in b {
        *left.entry(w.as_str()).or_default() += 1;
    }
    let mut out = Vec::new();
    for w in a {
        match left.get_mut(w.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => out.push(w.as_str()),
        }
    }
    out
}

/// Names and quoted text in `text`, each as its normalised words.
///
/// A name is a word with an upper-case letter that is not the first word of
/// a sentence (nor "I"), or, anywhere, a word of two or more letters that is
/// all capitals (`NASA`) or has a capital after a lower-case letter
/// (`iPhone`, `macOS`). Quoted text is what stands between double quotes,
/// typographic quotes or backticks, or single quotes that open after a space.
fn entities(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    // Words, with their original case, and whether they start a sentence.
    let mut sentence_start = true;
    let mut current = String::new();
    let mut current_start = true;
    let chars: Vec<char> = text.chars().collect();
    let flush = |word: &mut String, starts: bool, out: &mut Vec<Vec<String>>| {
        if word.is_empty() {
            return;
        }
        if looks_like_name(word, starts) {
            out.push(vec![lower(word)]);
        }
        word.clear();
    };
    for (i, &c) in chars.iter().enumerate() {
        if c.is_alphanumeric() {
            if current.is_empty() {
                current_start = sentence_start;
                sentence_start = false;
            }
            current.push(c);
        } else if is_apostrophe(c)
            && !current.is_empty()
            && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric())
        {
        } else {
            flush(&mut current, current_start, &mut out);
            if matches!(c, '.' | '!' | '?' | ':' | ';' | '\n') {
                // `node.js`, `3.11`: a point inside a word ends no sentence.
                let inside = chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
                if !inside {
                    sentence_start = true;
                }
            }
        }
    }
    flush(&mut current, current_start, &mut out);
    for quoted in quoted_spans(&chars) {
        let words: Vec<String> = super::text::words(&quoted);
        if !words.is_empty() {
            out.push(words);
        }
    }
    out
}

fn looks_like_name(word: &str, sentence_start: bool) -> bool {
    let letters = word.chars().filter(|c| c.is_alphabetic()).count();
    let upper = word.chars().filter(|c| c.is_uppercase()).count();
    // "I", and "I'm", "I've", "I'll", "I'd" with their apostrophe dropped.
    if upper == 0 || matches!(word, "I" | "Im" | "Ive" | "Ill" | "Id" | "IM") {
        return false;
    }
    let all_caps = letters >= 2 && upper == letters;
    let mut seen_lower = false;
    let mut camel = false;
    for c in word.chars() {
        if c.is_lowercase() {
            seen_lower = true;
        } else if c.is_uppercase() && seen_lower {
            camel = true;
        }
    }
    all_caps || camel || !sentence_start
}

fn lower(word: &str) -> String {
    let mut out = String::new();
    for_each_word(word, |w, _| out.push_str(w));
    out
}

/// Text between matching quotes.
fn quoted_spans(chars: &[char]) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let close = match c {
            '"' => Some('"'),
            '\u{201c}' => Some('\u{201d}'),
            '`' => Some('`'),
            '\u{ab}' => Some('\u{bb}'),
            // A single quote opens only after a space or at the start, so
            // apostrophes in `don't` or `James'` open nothing.
            '\'' | '\u{2018}' if i == 0 || !chars[i - 1].is_alphanumeric() => {
                Some(if c == '\'' { '\'' } else { '\u{2019}' })
            }
            _ => None,
        };
        if let Some(close) = close {
            let rest = &chars[i + 1..];
            let end = rest.iter().enumerate().position(|(j, &d)| {
                // A closing single quote must not be an apostrophe inside a word.
                d == close
                    && !(matches!(close, '\'' | '\u{2019}')
                        && rest.get(j + 1).is_some_and(|n| n.is_alphanumeric()))
            });
            if let Some(end) = end {
                out.push(rest[..end].iter().collect());
                i += end + 2;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Every entity of `a` appears, as consecutive words in any case, in `b`.
fn entities_present(a: &Facts, b: &Facts) -> bool {
    a.entities.iter().all(|entity| {
        b.words
            .windows(entity.len())
            .any(|window| window.iter().zip(entity).all(|(x, y)| x == y))
    })
}

/// Every content word of `a` has a counterpart in `b`: the same word, the
/// same after plural stripping, or an inflection of it (see [`related`]).
fn content_covered(a: &Facts, b: &Facts) -> bool {
    let content = |f: &Facts| -> Vec<String> {
        f.words
            .iter()
            .filter(|w| is_content(w) && !is_negation(w) && number_word(w).is_none())
            // `3rd`, `15`, `2x`: numbers have their own check.
            .filter(|w| !w.starts_with(|c: char| c.is_ascii_digit()))
            .map(|w| stem(w).into_owned())
            .collect()
    };
    let (ca, cb) = (content(a), content(b));
    ca.iter().all(|x| cb.iter().any(|y| related(x, y)))
}

/// `leaking`/`leaky`, `meditation`/`meditating`, `plane`/`airplane`: a long
/// shared beginning (three quarters of the shorter word, at least 4
/// letters, at most 4 letters left of the longer) or one word of 5+ letters
/// inside the other. `java`/`javascript`
/// and `austria`/`australia` are not related.
fn related(x: &str, y: &str) -> bool {
    if x == y {
        return true;
    }
    let (lx, ly) = (x.chars().count(), y.chars().count());
    let shorter = lx.min(ly);
    let shared = x.chars().zip(y.chars()).take_while(|(p, q)| p == q).count();
    let longer = lx.max(ly);
    (shared >= 4 && shared * 4 >= shorter * 3 && longer - shared <= 4)
        || (shorter >= 5 && (x.contains(y) || y.contains(x)))
}

/// Words whose neighbours' order carries the meaning: `X to Y`, `from X`,
/// `X into Y`, `X than Y`, `X vs Y`, `X in Y` (units, languages, formats).
fn is_directional(word: &str) -> bool {
    matches!(
        word,
        "to" | "into" | "from" | "than" | "vs" | "versus" | "in"
    )
}

/// Articles and possessives skipped when looking for a directional word's
/// neighbours: `from the bank to my car`.
fn is_article(word: &str) -> bool {
    matches!(
        word,
        "a" | "an" | "the" | "my" | "your" | "our" | "their" | "this" | "that"
    )
}

/// (left, directional, right) content-word triples of a prompt.
fn directional_pairs(words: &[String]) -> Vec<(&str, &str, &str)> {
    let mut out = Vec::new();
    for (i, w) in words.iter().enumerate() {
        if !is_directional(w) || i == 0 {
            continue;
        }
        let left = words[i - 1].as_str();
        let right = words[i + 1..]
            .iter()
            .map(String::as_str)
            .find(|r| !is_article(r));
        if let Some(right) = right
            && !is_stop_word(left)
            && !is_stop_word(right)
            && !is_directional(right)
        {
            out.push((left, w.as_str(), right));
        }
    }
    out
}

/// `a` says `X dir Y` and `b` says `Y dir X`, or `a` goes `from X to Y` and
/// `b` `from Y to X`.
fn reversed_pair(a: &Facts, b: &Facts) -> bool {
    let pa = directional_pairs(&a.words);
    let pb = directional_pairs(&b.words);
    let flipped = pa
        .iter()
        .any(|&(x, d, y)| pb.iter().any(|&(p, e, q)| d == e && x == q && y == p));
    flipped
        || pivot_swap(&a.words, &b.words)
        || from_to(&a.words)
            .zip(from_to(&b.words))
            .is_some_and(|((x, y), (p, q))| x == q && y == p && x != y)
}

/// Roles swapped around a word that stays between them: "Brutus killed
/// Caesar" / "Caesar killed Brutus", "Python faster than Java" / "Java
/// faster than Python". Content words `x`, `z`, `y` in that order in `a`
/// and `y`, `z`, `x` in `b`. A swap with nothing in between is allowed:
/// "TCP and UDP" / "UDP and TCP", "list in Python" / "Python list".
fn pivot_swap(a: &[String], b: &[String]) -> bool {
    // The check is cubic in the content words: bounded to the first ones,
    // where a short question states its roles.
    const MAX_WORDS: usize = 32;
    let content = |words: &[String]| -> Vec<String> {
        let mut seen = Vec::new();
        for w in words.iter().filter(|w| is_content(w)) {
            let w = stem(w).into_owned();
            if !seen.contains(&w) {
                seen.push(w);
            }
            if seen.len() == MAX_WORDS {
                break;
            }
        }
        seen
    };
    let (ca, cb) = (content(a), content(b));
    let pos_b = |w: &String| cb.iter().position(|x| x == w);
    for (i, x) in ca.iter().enumerate() {
        let Some(bx) = pos_b(x) else { continue };
        for (k, y) in ca.iter().enumerate().skip(i + 2) {
            let Some(by) = pos_b(y) else { continue };
            if by >= bx {
                continue;
            }
            let pivot = ca[i + 1..k]
                .iter()
                .any(|z| pos_b(z).is_some_and(|bz| by < bz && bz < bx));
            if pivot {
                return true;
            }
        }
    }
    false
}

/// `from X … to Y` → (X, Y).
fn from_to(words: &[String]) -> Option<(&str, &str)> {
    let from = words.iter().position(|w| w == "from")?;
    let x = words[from + 1..].iter().find(|w| !is_article(w))?;
    let to = from + 1 + words[from + 1..].iter().position(|w| w == "to")?;
    let y = words[to + 1..].iter().find(|w| !is_article(w))?;
    Some((x.as_str(), y.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paraphrases_pass() {
        for (a, b) in [
            (
                "How do I reverse a list in Python?",
                "how can i reverse a list in python",
            ),
            ("Convert five miles to km", "convert 5 miles to km"),
            (
                "What's the capital of France?",
                "what is the capital of france",
            ),
            ("Explain \"borrowing\" in Rust", "explain borrowing in rust"),
            ("I don't like it, do you?", "I do not like it - do you?"),
            ("Write a 1,000 word essay", "write a 1000 word essay"),
            ("What's new in Python 3.12?", "what is new in python 3.12"),
            ("Paris. What to see there?", "What to see in Paris?"),
            (
                "Write a short story about a dragon and a knight",
                "Write a short story about a knight and a dragon",
            ),
            (
                "How do I sort a dictionary by value in Python?",
                "How can I sort a Python dictionary by value?",
            ),
            (
                "How do I fix a leaking faucet?",
                "how can i fix a leaky faucet",
            ),
            ("What are black holes?", "Explain what a black hole is"),
        ] {
            assert_eq!(check(a, b), Ok(()), "{a:?} / {b:?}");
        }
    }

    #[test]
    fn every_content_word_needs_a_counterpart() {
        for (a, b) in [
            (
                "How do I write a for loop in Go?",
                "How do I write a while loop in Go?",
            ),
            (
                "how do i read a csv file in python",
                "how do i read a csv file in r",
            ),
            (
                "what is the capital of austria",
                "what is the capital of australia",
            ),
            (
                "What is the capital of France?",
                "What is the capital of France and its population?",
            ),
            ("java tutorial", "javascript tutorial"),
        ] {
            assert_eq!(check(a, b), Err(Mismatch::Content), "{a:?} / {b:?}");
        }
    }

    #[test]
    fn numbers_must_agree() {
        for (a, b) in [
            ("Convert 5 miles to km", "Convert 50 miles to km"),
            ("Top 10 movies of 2019", "Top 10 movies of 2020"),
            (
                "Explain it in three sentences",
                "Explain it in five sentences",
            ),
            ("What is the 3rd planet?", "What is the 4th planet?"),
            ("Python 3.8 to 3.11", "Python 3.9 to 3.11"),
            ("a twenty five minute workout", "a twenty minute workout"),
            ("two hundred dollars", "two dollars"),
            ("Give me an idea", "Give me two ideas"),
        ] {
            assert_eq!(check(a, b), Err(Mismatch::Number), "{a:?} / {b:?}");
        }
        assert_eq!(check("the 3rd planet", "the third planet"), Ok(()));
        assert_eq!(check("twenty five", "25"), Ok(()));
        assert_eq!(check("3.50 dollars", "3.5 dollars"), Ok(()));
    }

    #[test]
    fn negation_must_agree() {
        for (a, b) in [
            ("Is coffee good for you?", "Is coffee not good for you?"),
            ("A cake with eggs", "A cake without eggs"),
            ("Why do cats purr?", "Why don't cats purr?"),
            ("Why do cats purr?", "Why dont cats purr?"),
            ("Foods with gluten", "Foods with no gluten"),
            ("Is it safe?", "Is it never safe?"),
        ] {
            assert_eq!(check(a, b), Err(Mismatch::Negation), "{a:?} / {b:?}");
        }
    }

    #[test]
    fn opposites_are_refused() {
        for (a, b) in [
            (
                "How do I increase the font size?",
                "How do I decrease the font size?",
            ),
            ("How do I enable dark mode?", "How do I disable dark mode?"),
            (
                "List the pros of nuclear energy",
                "List the cons of nuclear energy",
            ),
            ("What to eat before a run", "What to eat after a run"),
            ("How do I install it?", "How do I uninstall it?"),
            ("How do I encrypt a file?", "How do I decrypt a file?"),
            ("upload a file", "download a file"),
        ] {
            assert_eq!(check(a, b), Err(Mismatch::Opposite), "{a:?} / {b:?}");
        }
    }

    #[test]
    fn entities_must_agree() {
        for (a, b) in [
            (
                "What is the capital of France?",
                "What is the capital of Germany?",
            ),
            ("Summarize the book 'Dune'", "Summarize the book 'Emma'"),
            (
                "Compare the iPhone 15 with the Pixel",
                "Compare the iPhone 15 with the Galaxy",
            ),
            ("How do I deploy to AWS?", "How do I deploy to GCP?"),
            ("Write to Sarah", "Write to John"),
        ] {
            assert_eq!(check(a, b), Err(Mismatch::Entity), "{a:?} / {b:?}");
        }
        // The same name in another case is the same name.
        assert_eq!(check("Capital of France?", "capital of france"), Ok(()));
        // A sentence's first word is not taken for a name.
        assert_eq!(check("Explain recursion", "Describe recursion"), Ok(()));
    }

    #[test]
    fn reversed_direction_is_refused() {
        for (a, b) in [
            (
                "Convert Celsius to Fahrenheit",
                "Convert Fahrenheit to Celsius",
            ),
            (
                "Translate from English to French",
                "Translate from French to English",
            ),
            ("100 euros in dollars", "100 dollars in euros"),
            ("Did Brutus kill Caesar?", "did caesar kill brutus"),
            ("Is Python faster than Java?", "Is Java faster than Python?"),
        ] {
            assert_eq!(check(a, b), Err(Mismatch::Order), "{a:?} / {b:?}");
        }
    }

    #[test]
    fn labels_are_bounded() {
        let all = [
            Mismatch::Number,
            Mismatch::Negation,
            Mismatch::Opposite,
            Mismatch::Entity,
            Mismatch::Order,
        ];
        let labels: Vec<&str> = all.iter().map(|m| m.as_str()).collect();
        assert_eq!(
            labels,
            ["number", "negation", "opposite", "entity", "order"]
        );
    }
}
