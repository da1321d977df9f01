//! [`AiError`]: every way a call to a model or an embedder can fail.
//!
//! No variant carries an API key, a request body or a prompt: errors end up
//! in logs and metric labels, and prompts are user data.

use std::time::Duration;

/// A call to a model provider or an embedder failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AiError {
    /// An embedder could not turn text into vectors.
    #[error("embedding model `{model}` failed: {reason}")]
    Embedding {
        /// The embedding model (as [`Embedder::model`](super::Embedder::model) names it).
        model: String,
        /// What went wrong, without the input text.
        reason: String,
    },
    /// The provider answered with an error or an answer that could not be used.
    #[error("provider `{provider}` failed{}: {reason}", status.map(|s| format!(" with status {s}")).unwrap_or_default())]
    Provider {
        /// The provider's configured name.
        provider: String,
        /// The HTTP status, when the failure came with one.
        status: Option<u16>,
        /// What went wrong.
        reason: String,
    },
    /// The provider or the local budget refused the call for now.
    #[error(
        "provider `{provider}` rate-limited model `{model}`{}; retry later or add a fallback",
        retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default()
    )]
    RateLimited {
        /// The provider's configured name.
        provider: String,
        /// The model that was limited.
        model: String,
        /// How long the provider asked to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// No answer within the configured timeout.
    #[error(
        "provider `{provider}` did not answer within {after:?}; raise the timeout if the model is just slow"
    )]
    Timeout {
        /// The provider's configured name.
        provider: String,
        /// The timeout that ran out.
        after: Duration,
    },
    /// A vector's length does not match the others of its partition (an
    /// embedder changed its output without changing its model name).
    #[error(
        "embedding model `{model}` gave a vector of {found} floats where its partition holds {expected}; \
         give the embedder a new model name when its output changes"
    )]
    Dimensions {
        /// The embedding model of the partition.
        model: String,
        /// The length of the vectors already stored.
        expected: usize,
        /// The length of the vector given.
        found: usize,
    },
    /// A setting has a value that cannot work.
    #[error("invalid ai setting `{field}`: expected {expected}, found `{found}`")]
    InvalidConfig {
        /// The setting (field or environment variable).
        field: &'static str,
        /// What is accepted.
        expected: &'static str,
        /// What was given (never a secret: callers mask keys before building this).
        found: String,
    },
    /// A conversation session would grow past what it may hold encoded.
    #[error(
        "the session would hold {size} bytes encoded, over the {limit}-byte limit; \
         lower max_messages or start a new session"
    )]
    SessionTooLarge {
        /// Its encoded size (an upper bound).
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// An environment variable of the provider configuration is missing or
    /// has a value that cannot work (the names are built from provider
    /// names, hence a `String`).
    #[error("invalid environment variable `{variable}`: expected {expected}, found `{found}`")]
    InvalidEnv {
        /// The variable, e.g. `PERF_AI_OLLAMA_BASE_URL`.
        variable: String,
        /// What is accepted.
        expected: &'static str,
        /// What was given (`<unset>` when missing; never a key).
        found: String,
    },
}
