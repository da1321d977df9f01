//! The shared outbound HTTP client (feature `http`): one pooled client for
//! model providers and other services, on hyper 1 and rustls (ring, webpki
//! roots).
//!
//! - Keep-alive pool per host (idle timeout, idle connections kept), a cap
//!   on requests in flight per host (`HTTP_MAX_CONNECTIONS`), connect and
//!   request timeouts, HTTP/2 where the server offers it (ALPN), or h2c by
//!   prior knowledge.
//! - Retries of transient failures (connect errors, 429, 502, 503, 504)
//!   with exponential backoff and full jitter, `Retry-After` honoured
//!   (seconds or HTTP-date), idempotent methods only unless the request
//!   carries [`RetryNonIdempotent`], never once the response has been handed
//!   over; a retry budget per host (retries stay under a share of requests)
//!   and a total deadline across attempts.
//! - Per host: a token-bucket rate limit and a circuit breaker (opens on a
//!   failure ratio over a window, probes after a cool-down, closes on success).
//! - Responses: a size limit (an error, never a silent cut), JSON helpers,
//!   and the body as a stream of chunks for SSE.
//! - An optional [`ConcurrencyLimit`](crate::limit::ConcurrencyLimit) over
//!   the client, its permit held until a streamed body ends.
//! - Metrics by bounded `host` label (configured hosts, then the first few
//!   seen, then `other`): requests and duration by status class, retries,
//!   refusals, breaker state.
//!
//! See `docs/http.md` for how the client and the limiter behave under load.

mod breaker;
mod bucket;
mod builder;
mod client;
mod error;
mod host;
mod json;
mod metrics;
mod response;
mod retry;
mod watchdog;

pub use breaker::{BreakerPolicy, BreakerState};
pub use bucket::RateLimit;
pub use builder::HttpClientBuilder;
pub use client::HttpClient;
pub use error::{BoxError, HttpError};
pub use response::HttpResponse;
pub use retry::{RetryNonIdempotent, RetryPolicy};
