//! What a call asks, in the form the cache compares: [`AiPrompt`] turns a
//! prompt argument into a [`Canonical`] prompt, and [`AiRequest`] adds the
//! scope that isolates entries.
//!
//! The exact key covers the whole context that changes the answer (the
//! system prompt, the earlier turns, the model parameters), not the last
//! user message alone: two conversations that end in the same question but
//! differ before it never share an answer. The last user message is the
//! part matched semantically, inside a partition fixed by that context.

use std::fmt::Write as _;

use serde::Serialize;

use crate::ai::{ChatMessage, ChatRequest, Role};
use crate::cache::KeyHasher;

/// A prompt as the cache sees it. Made by [`AiPrompt::canonical`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Canonical {
    /// Everything besides the last user message that changes the answer,
    /// in a stable textual form (empty for a bare prompt).
    pub context: String,
    /// The last user message as written (trimmed): what is embedded and
    /// what the guard compares (it reads capitals as names).
    pub text: String,
    /// [`text`](Self::text) in lowercase with whitespace collapsed: the
    /// exact key ignores case and spacing.
    pub query: String,
    /// Sampled at a temperature above zero: the caller wants varied
    /// answers, so a paraphrase is not served one (an identical request
    /// still is, from the exact tier).
    pub sampled: bool,
    /// Estimated tokens of the whole prompt (context and query).
    pub prompt_tokens: u64,
}

impl Canonical {
    /// A prompt with no context.
    pub fn bare(text: &str) -> Self {
        Canonical {
            context: String::new(),
            text: text.trim().to_owned(),
            query: normalize(text),
            sampled: false,
            prompt_tokens: crate::ai::chat::estimate_tokens(text),
        }
    }
}

/// Lowercase, words separated by one space: the exact key ignores case and
/// spacing.
pub(crate) fn normalize(text: &str) -> String {
    if text.is_ascii() {
        return normalize_ascii(text);
    }
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_lowercase));
    }
    out
}

/// [`normalize`] for ASCII text (most prompts), byte by byte: every hit
/// pays for it.
fn normalize_ascii(text: &str) -> String {
    let mut out = Vec::with_capacity(text.len());
    let mut pending_space = false;
    for &byte in text.as_bytes() {
        // The ASCII characters `char::is_whitespace` accepts (vertical tab too).
        if matches!(byte, b' ' | b'\t'..=b'\r') {
            pending_space = !out.is_empty();
        } else {
            if pending_space {
                out.push(b' ');
                pending_space = false;
            }
            out.push(byte.to_ascii_lowercase());
        }
    }
    // ASCII in, ASCII out.
    String::from_utf8(out).unwrap_or_default()
}

/// A value that can be the prompt of an `#[ai_optimized]` function.
///
/// Implemented for text (`str`, `String`), a conversation (`[ChatMessage]`,
/// `Vec<ChatMessage>`) and a whole [`ChatRequest`] (its messages, and its
/// model parameters as context). Implement it for a request type of your
/// own: put whatever changes the answer besides the last user message in
/// `context`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the prompt of an `#[ai_optimized]` function",
    label = "the prompt argument",
    note = "a prompt is text (`String`, `&str`), a conversation (`Vec<ChatMessage>`) or a `ChatRequest`; for a type of your own, implement `perf_runtime::ai::AiPrompt`, or name another argument with `prompt = ..`"
)]
pub trait AiPrompt {
    /// The canonical form of this prompt.
    fn canonical(&self) -> Canonical;
}

impl AiPrompt for str {
    fn canonical(&self) -> Canonical {
        Canonical::bare(self)
    }
}

impl AiPrompt for String {
    fn canonical(&self) -> Canonical {
        Canonical::bare(self)
    }
}

impl<T: AiPrompt + ?Sized> AiPrompt for &T {
    fn canonical(&self) -> Canonical {
        (**self).canonical()
    }
}

impl AiPrompt for [ChatMessage] {
    fn canonical(&self) -> Canonical {
        conversation(self, String::new())
    }
}

impl AiPrompt for Vec<ChatMessage> {
    fn canonical(&self) -> Canonical {
        conversation(self, String::new())
    }
}

impl AiPrompt for ChatRequest {
    /// The messages, and as context what else changes the answer: the
    /// model asked (a service may choose it at run time, while the
    /// attribute's `model` is fixed at compile time), the temperature,
    /// `max_tokens` and the extra fields (`tools`, `seed`,
    /// `response_format`, ...).
    fn canonical(&self) -> Canonical {
        let mut params = format!("model={};", self.model);
        if let Some(t) = self.temperature {
            let _ = write!(params, "temperature={t};");
        }
        if let Some(m) = self.max_tokens {
            let _ = write!(params, "max_tokens={m};");
        }
        if !self.extra.is_empty() {
            // serde_json's map is ordered by key: the text is stable.
            let _ = write!(
                params,
                "extra={};",
                serde_json::Value::Object(self.extra.clone())
            );
        }
        let mut canonical = conversation(&self.messages, params);
        canonical.sampled = self.temperature.is_some_and(|t| t > 0.0);
        canonical
    }
}

/// The last user message is the query; every other message, in order, and
/// `params` make the context.
fn conversation(messages: &[ChatMessage], params: String) -> Canonical {
    let last_user = messages.iter().rposition(|m| m.role == Role::User);
    let mut context = params;
    let mut tokens = 0;
    for (i, message) in messages.iter().enumerate() {
        tokens += crate::ai::chat::estimate_tokens(&message.content) + 4;
        if Some(i) == last_user {
            context.push_str("\u{1}query\n");
            continue;
        }
        let role = match message.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        };
        // Lengths first: no content can imitate a message boundary.
        let _ = write!(context, "\u{1}{role}:{}:", message.content.len());
        context.push_str(&message.content);
        context.push('\n');
    }
    let text = last_user.map_or("", |i| messages[i].content.trim());
    Canonical {
        context,
        text: text.to_owned(),
        query: normalize(text),
        sampled: false,
        prompt_tokens: tokens,
    }
}

/// One call's prompt and scope, as the expansion of `#[ai_optimized]`
/// builds it (and as code calling [`AiSite`](super::AiSite) by hand does).
#[derive(Clone, Debug)]
pub struct AiRequest {
    pub(crate) canonical: Canonical,
    /// A hash of the scope value: user ids never reach the index, Redis or
    /// logs.
    pub(crate) scope: Option<String>,
}

impl AiRequest {
    /// A request for `prompt`, shared by all callers until [`scope`](Self::scope).
    pub fn new<P: AiPrompt + ?Sized>(prompt: &P) -> Self {
        AiRequest {
            canonical: prompt.canonical(),
            scope: None,
        }
    }

    /// Isolates the entries of this call to `scope` (a user, tenant or
    /// conversation id): no other scope's entry answers it, exactly or
    /// semantically.
    #[must_use]
    pub fn scope<S: Serialize + ?Sized>(mut self, scope: &S) -> Self {
        let mut hasher = KeyHasher::new("perf_runtime::ai::scope", 1);
        // A scope that fails to serialize still isolates: by its error
        // text, which is the same for every value of its type; the cache
        // then keeps that type's calls apart from the unscoped ones only.
        let key = match hasher.part(scope) {
            Ok(h) => h.finish(),
            Err(_) => KeyHasher::new("perf_runtime::ai::scope-unserializable", 1).finish(),
        };
        self.scope = Some(format!("{:032x}", key.as_u128()));
        self
    }

    /// The canonical prompt.
    pub fn canonical(&self) -> &Canonical {
        &self.canonical
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_and_spacing_do_not_change_the_query() {
        let spaced = "  What IS   Rust? ".canonical();
        assert_eq!(spaced.query, "what is rust?".canonical().query);
        assert_eq!(spaced.text, "What IS   Rust?");
    }

    #[test]
    fn the_ascii_path_normalizes_as_the_general_one() {
        for text in [
            "  What IS   Rust?\t\n",
            "a",
            "",
            "   ",
            "Tab\there  and\u{b}there",
        ] {
            let general: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
            assert_eq!(normalize(text), general.join(" "), "{text:?}");
        }
        assert_eq!(normalize("ÉCOLE  Été"), "école été");
    }

    #[test]
    fn the_context_covers_system_prompt_and_history() {
        let a = vec![
            ChatMessage::system("You are terse."),
            ChatMessage::user("What is Rust?"),
        ];
        let b = vec![
            ChatMessage::system("You are verbose."),
            ChatMessage::user("What is Rust?"),
        ];
        let c = vec![
            ChatMessage::system("You are terse."),
            ChatMessage::user("Hi"),
            ChatMessage::assistant("Hello!"),
            ChatMessage::user("What is Rust?"),
        ];
        let (a, b, c) = (a.canonical(), b.canonical(), c.canonical());
        assert_eq!(a.query, "what is rust?");
        assert_eq!(a.query, b.query);
        assert_ne!(a.context, b.context);
        assert_ne!(a.context, c.context);
    }

    #[test]
    fn a_message_cannot_imitate_a_boundary() {
        let a = vec![
            ChatMessage::system("x\n\u{1}user:1:y"),
            ChatMessage::user("q"),
        ];
        let b = vec![
            ChatMessage::system("x"),
            ChatMessage::user("y"),
            ChatMessage::user("q"),
        ];
        assert_ne!(a.canonical().context, b.canonical().context);
    }

    #[test]
    fn request_parameters_are_context_and_temperature_marks_sampling() {
        let messages = vec![ChatMessage::user("Tell me a joke")];
        let plain = ChatRequest::new("m", messages.clone()).canonical();
        let cold = ChatRequest::new("m", messages.clone())
            .temperature(0.0)
            .canonical();
        let warm = ChatRequest::new("m", messages.clone())
            .temperature(0.9)
            .canonical();
        let seeded = ChatRequest::new("m", messages.clone())
            .param("seed", 7)
            .canonical();
        let other_model = ChatRequest::new("n", messages).canonical();
        assert!(!plain.sampled && !cold.sampled && warm.sampled);
        assert_ne!(plain.context, other_model.context);
        assert_ne!(plain.context, cold.context);
        assert_ne!(plain.context, seeded.context);
        assert_eq!(plain.query, warm.query);
    }

    #[test]
    fn scopes_are_hashed_and_distinct() {
        let a = AiRequest::new("hi").scope(&"user-a");
        let b = AiRequest::new("hi").scope(&"user-b");
        assert_ne!(a.scope, b.scope);
        assert!(!a.scope.as_deref().unwrap().contains("user-a"));
        assert_eq!(a.scope, AiRequest::new("other").scope(&"user-a").scope);
    }
}
