//! The simulated answer: text made up from the conversation, the same for
//! the same conversation (so caches and tests can rely on it), different for
//! different prompts (so a cache that served the wrong entry shows), and
//! plainly labelled as simulated. One word of the answer counts as one token.

use super::request::Message;

/// The shortest and longest answers, in words, before `max_tokens`: about
/// the length of a chat reply to a short question.
const MIN_WORDS: usize = 20;
const MAX_WORDS: usize = 80;

/// Sentences the answer is made of; `{}` is one of the prompt's key words.
const SENTENCES: &[&str] = &[
    "The short version is that {} depends on the context you give it.",
    "A common approach to {} is to start small and measure as you go.",
    "Keep in mind that {} has trade-offs worth checking against your own numbers.",
    "Many people find that {} becomes clearer with a concrete example.",
    "One way to think about {} is as a series of small, testable steps.",
    "If {} matters for latency, cache what you can and measure the rest.",
    "In practice, {} works best when the inputs are well defined.",
    "You may also want to compare {} with the alternatives before deciding.",
    "Documentation and a quick experiment usually settle most questions about {}.",
    "Watch for edge cases in {}, since that is where surprises tend to hide.",
    "It helps to write down what success with {} looks like before starting.",
    "For {}, the simplest thing that works is often the right first step.",
];

/// Words too common to name the topic.
const STOP_WORDS: &[&str] = &[
    "about", "also", "been", "could", "does", "explain", "from", "give", "have", "into", "just",
    "like", "make", "many", "more", "most", "much", "only", "over", "please", "should", "some",
    "such", "tell", "than", "that", "them", "then", "there", "they", "this", "very", "were",
    "what", "when", "where", "which", "will", "with", "would", "your",
];

/// An answer and its token counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The answer's words, cut to `max_tokens`.
    pub(crate) words: Vec<String>,
    /// `length` when `max_tokens` cut the answer, else `stop`.
    pub(crate) finish_reason: &'static str,
    /// About four characters a token, plus four tokens of framing a
    /// message (what `ChatRequest::estimated_prompt_tokens` assumes too).
    pub(crate) prompt_tokens: u64,
    /// Seeds the response id.
    pub(crate) seed: u64,
}

impl Answer {
    /// The answer to `messages`, at most `max_tokens` words long.
    pub(crate) fn to(messages: &[Message], max_tokens: Option<u64>) -> Answer {
        let question = messages
            .iter()
            .rev()
            .find(|message| message.role == "user")
            .map(Message::text)
            .unwrap_or_default();
        let turn = messages
            .iter()
            .filter(|message| message.role == "user")
            .count()
            .max(1);
        let seed = fnv1a(question.to_lowercase().as_bytes()) ^ (turn as u64).wrapping_mul(GOLDEN);
        let mut words = compose(&question, turn, seed);
        let mut finish_reason = "stop";
        if let Some(max) = max_tokens.and_then(|max| usize::try_from(max).ok())
            && max < words.len()
        {
            words.truncate(max);
            finish_reason = "length";
        }
        let prompt_tokens = messages
            .iter()
            .map(|message| 4 + (message.text().chars().count() as u64).div_ceil(4))
            .sum();
        Answer {
            words,
            finish_reason,
            prompt_tokens,
            seed,
        }
    }

    /// Tokens of the answer: one a word.
    pub(crate) fn completion_tokens(&self) -> u64 {
        self.words.len() as u64
    }

    /// The whole text: the words joined by single spaces.
    pub(crate) fn text(&self) -> String {
        self.words.join(" ")
    }
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// FNV-1a: stable across Rust versions and platforms, unlike the standard
/// hasher, so the same prompt gets the same answer everywhere.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// splitmix64: the next pseudo-random number from `state`.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(GOLDEN);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The prompt's key words: the first three of four letters or more that are
/// not common words, lowercased, without repeats.
fn key_words(question: &str) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for word in question.split_whitespace() {
        let word = word
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        if word.chars().count() >= 4
            && !STOP_WORDS.contains(&word.as_str())
            && !keys.contains(&word)
        {
            keys.push(word);
            if keys.len() == 3 {
                break;
            }
        }
    }
    keys
}

/// The answer's words, whole sentences, MIN_WORDS to MAX_WORDS of them,
/// chosen by `seed`.
fn compose(question: &str, turn: usize, seed: u64) -> Vec<String> {
    let keys = key_words(question);
    let topic = match keys.as_slice() {
        [] => "your question".to_owned(),
        [one] => one.clone(),
        [first @ .., last] => format!("{} and {last}", first.join(", ")),
    };
    let mut state = seed;
    let target = MIN_WORDS + (next(&mut state) % (MAX_WORDS - MIN_WORDS + 1) as u64) as usize;
    let mut words: Vec<String> = format!("This is a simulated answer (turn {turn}) about {topic}.")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let mut sentence = (next(&mut state) % SENTENCES.len() as u64) as usize;
    let mut key = 0;
    loop {
        // Any sentence but the last one, so none repeats back to back.
        sentence = (sentence + 1 + (next(&mut state) % (SENTENCES.len() as u64 - 1)) as usize)
            % SENTENCES.len();
        let subject = keys
            .get(key % keys.len().max(1))
            .map_or("it", String::as_str);
        key += 1;
        let text = SENTENCES[sentence].replace("{}", subject);
        let more = text.split_whitespace().count();
        // Whole sentences up to the target; past MIN_WORDS at least.
        if words.len() >= MIN_WORDS && words.len() + more > target {
            break;
        }
        words.extend(text.split_whitespace().map(str::to_owned));
    }
    words.truncate(MAX_WORDS);
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation(json: &str) -> Vec<Message> {
        serde_json::from_str(json).expect("messages")
    }

    #[test]
    fn the_same_conversation_gets_the_same_answer_and_others_differ() {
        let a = conversation(r#"[{"role":"user","content":"How do I tune PostgreSQL indexes?"}]"#);
        let b = conversation(r#"[{"role":"user","content":"What is a Rust lifetime?"}]"#);
        let first = Answer::to(&a, None);
        assert_eq!(first, Answer::to(&a, None));
        assert_ne!(first.text(), Answer::to(&b, None).text());
        let text = first.text();
        assert!(
            text.starts_with(
                "This is a simulated answer (turn 1) about tune, postgresql and indexes."
            ),
            "{text}"
        );
        assert!(text.ends_with('.'), "{text}");
        assert_eq!(first.finish_reason, "stop");
    }

    #[test]
    fn lengths_stay_within_bounds_and_vary() {
        let mut lengths = std::collections::BTreeSet::new();
        for i in 0..200 {
            let messages = conversation(&format!(
                r#"[{{"role":"user","content":"question number {i} about caching"}}]"#
            ));
            let answer = Answer::to(&messages, None);
            assert!(
                (MIN_WORDS..=MAX_WORDS).contains(&answer.words.len()),
                "{} words",
                answer.words.len()
            );
            lengths.insert(answer.words.len());
        }
        assert!(lengths.len() > 20, "lengths vary: {lengths:?}");
    }

    #[test]
    fn the_turn_changes_the_answer_and_max_tokens_cuts_it() {
        let one = conversation(
            r#"[{"role":"system","content":"Be brief."},{"role":"user","content":"hello there"}]"#,
        );
        let two = conversation(
            r#"[{"role":"user","content":"hello there"},{"role":"assistant","content":"Hi."},
                {"role":"user","content":"hello there"}]"#,
        );
        assert!(Answer::to(&two, None).text().contains("(turn 2)"));
        assert_ne!(Answer::to(&one, None).text(), Answer::to(&two, None).text());
        let cut = Answer::to(&one, Some(5));
        assert_eq!(cut.words.len(), 5);
        assert_eq!(cut.finish_reason, "length");
        assert_eq!(cut.completion_tokens(), 5);
        // (4 + 9/4 rounded up) + (4 + 11/4 rounded up)
        assert_eq!(cut.prompt_tokens, (4 + 3) + (4 + 3));
        assert_eq!(Answer::to(&one, Some(1_000)).finish_reason, "stop");
    }
}
