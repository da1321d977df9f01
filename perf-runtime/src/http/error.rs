//! [`HttpError`]: every way an outbound call can fail, naming the host, the
//! limit that stopped it and the attempts made. Never the full URL: paths and
//! query strings may carry credentials (API keys in `?key=`), so only the
//! host is shown.

use std::time::Duration;

use http::StatusCode;

/// A boxed error from below (hyper, rustls, the OS), kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An outbound HTTP call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The URL could not be used.
    #[error("invalid request url `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given, with any password masked.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The builder's settings do not fit together.
    #[error("invalid http client setting `{setting}`: {reason}")]
    InvalidConfig {
        /// The builder method whose value is wrong.
        setting: &'static str,
        /// What was expected.
        reason: String,
    },
    /// No connection could be made (refused, DNS, TLS handshake, connect timeout).
    #[error("cannot connect to {host} (after {attempts} attempt(s)): {source}")]
    Connect {
        /// `host[:port]` of the request.
        host: String,
        /// Attempts made, retries included.
        attempts: u32,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// The connection failed after the request was sent (reset, closed, protocol error).
    #[error("request to {host} failed (after {attempts} attempt(s)): {source}")]
    Transport {
        /// `host[:port]` of the request.
        host: String,
        /// Attempts made, retries included.
        attempts: u32,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// One attempt got no response headers within the request timeout.
    #[error(
        "{host} did not answer within the request timeout of {timeout:?} \
         (after {attempts} attempt(s)); raise `request_timeout` if the upstream is just slow"
    )]
    Timeout {
        /// `host[:port]` of the request.
        host: String,
        /// The per-attempt timeout.
        timeout: Duration,
        /// Attempts made, retries included.
        attempts: u32,
    },
    /// The total deadline across attempts (waits for tokens and permits
    /// included) ran out.
    #[error(
        "request to {host} ran out of its total deadline of {deadline:?} after {attempts} attempt(s)"
    )]
    DeadlineExceeded {
        /// `host[:port]` of the request.
        host: String,
        /// The deadline.
        deadline: Duration,
        /// Attempts made, retries included.
        attempts: u32,
    },
    /// The host's circuit breaker is open: recent calls failed too often.
    #[error(
        "circuit breaker for {host} is open after repeated failures; \
         failing fast, next probe in {retry_in:?}"
    )]
    CircuitOpen {
        /// `host[:port]` of the request.
        host: String,
        /// Time until the breaker lets a probe through.
        retry_in: Duration,
    },
    /// The host's rate limit has no token left within the deadline.
    #[error(
        "rate limit for {host} ({per_second}/s, burst {burst}) has no token before the deadline; \
         send less or raise the limit"
    )]
    RateLimited {
        /// `host[:port]` of the request.
        host: String,
        /// The configured rate.
        per_second: f64,
        /// The configured burst.
        burst: u32,
    },
    /// The client's adaptive concurrency limit refused the call.
    #[error("request to {host} refused: {source}")]
    ConcurrencyLimited {
        /// `host[:port]` of the request.
        host: String,
        /// The limiter's refusal.
        #[source]
        source: crate::limit::LimitError,
    },
    /// The response body is larger than allowed; nothing was truncated.
    #[error(
        "response from {host} is larger than the limit of {limit} bytes; \
         raise `max_response_bytes` or stream the body"
    )]
    ResponseTooLarge {
        /// `host[:port]` of the request.
        host: String,
        /// The configured limit in bytes.
        limit: u64,
    },
    /// The response status is not a success (from the JSON helpers and
    /// [`HttpResponse::error_for_status`](super::HttpResponse::error_for_status)).
    #[error("{host} answered {status} (after {attempts} attempt(s))")]
    Status {
        /// `host[:port]` of the request.
        host: String,
        /// The status received.
        status: StatusCode,
        /// Attempts made, retries included.
        attempts: u32,
    },
    /// A JSON body could not be encoded or decoded.
    #[error("json body for {host} is not what was expected: {source}")]
    Json {
        /// `host[:port]` of the request.
        host: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

impl HttpError {
    /// Whether the error says the upstream is overloaded or unreachable, as
    /// opposed to a mistake in the request.
    pub fn is_upstream_failure(&self) -> bool {
        matches!(
            self,
            HttpError::Connect { .. }
                | HttpError::Transport { .. }
                | HttpError::Timeout { .. }
                | HttpError::DeadlineExceeded { .. }
                | HttpError::CircuitOpen { .. }
        ) || matches!(self, HttpError::Status { status, .. } if status.is_server_error())
    }

    /// Sets the attempt count on the variants that carry one.
    pub(super) fn with_attempts(mut self, made: u32) -> Self {
        match &mut self {
            HttpError::Connect { attempts, .. }
            | HttpError::Transport { attempts, .. }
            | HttpError::Timeout { attempts, .. }
            | HttpError::DeadlineExceeded { attempts, .. }
            | HttpError::Status { attempts, .. } => *attempts = made,
            _ => {}
        }
        self
    }
}
