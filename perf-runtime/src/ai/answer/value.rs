//! [`AiAnswer`]: what an `#[ai_optimized]` function returns, as the cache
//! stores it; and how the limits' errors become the function's own.

use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ai::{AiError, ChatResponse, Usage};

/// An answer the AI cache can keep: cloned to callers, encoded for Redis,
/// replayed as a stream, weighed in tokens for the savings metrics.
#[diagnostic::on_unimplemented(
    message = "`#[ai_optimized]` cannot cache `{Self}`: it is not an answer type",
    label = "the cached answer type",
    note = "the function should return `String`, `ChatResponse` or `Result` of one of them; for a type of your own, implement `perf_runtime::ai::AiAnswer` (its text, its usage, whether it calls tools)"
)]
pub trait AiAnswer: Clone + Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The answer's text: replayed as a stream, and its length estimates
    /// the tokens a hit saved when [`usage`](Self::usage) is unknown.
    fn text(&self) -> Cow<'_, str>;

    /// Tokens the provider counted for it, when known.
    fn usage(&self) -> Option<Usage> {
        None
    }

    /// Whether the answer calls tools: such an answer depends on more than
    /// the prompt, and is never admitted to the cache.
    fn has_tool_calls(&self) -> bool {
        false
    }

    /// The model that answered, when known. A hit's savings are priced as
    /// a call to that model: the attribute's `model` may be a label of the
    /// application's own (`model = "assistant"`) while the model asked is
    /// configured at run time.
    fn model(&self) -> Option<&str> {
        None
    }
}

impl AiAnswer for String {
    fn text(&self) -> Cow<'_, str> {
        Cow::Borrowed(self)
    }
}

impl AiAnswer for ChatResponse {
    fn text(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.content)
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }

    fn has_tool_calls(&self) -> bool {
        ChatResponse::has_tool_calls(self)
    }

    fn model(&self) -> Option<&str> {
        (!self.model.is_empty()).then_some(self.model.as_str())
    }
}

/// An error type that can report a refusal of the attribute's `timeout`,
/// `rpm` or `tpm`: any `E: From<AiError>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot carry the errors of `timeout`, `rpm` or `tpm`",
    label = "the function's error type",
    note = "implement `From<perf_runtime::ai::AiError>` for it (a variant holding the error is enough)"
)]
pub trait FromAiError {
    /// Wraps `error`.
    fn from_ai_error(error: AiError) -> Self;
}

impl<E: From<AiError>> FromAiError for E {
    fn from_ai_error(error: AiError) -> Self {
        E::from(error)
    }
}

/// `error` as the function's error type (what the expansion calls when a
/// limit refuses a call).
pub fn limit_error<E: FromAiError>(error: AiError) -> E {
    E::from_ai_error(error)
}
