//! Adaptive concurrency limits, after Netflix's concurrency-limits.
//!
//! A [`ConcurrencyLimit`] lets at most `limit` calls run at once and moves
//! `limit` with what it observes: while latency holds, it grows (additively),
//! and once latency rises above its baseline, or calls are dropped (timeouts,
//! 503, 429), it shrinks (multiplicatively), always between a minimum and a
//! maximum. The right concurrency for an upstream is thus found, and found
//! again when the upstream slows down, instead of being guessed once.
//!
//! - [`ConcurrencyLimit::acquire`] gives a [`Permit`]; dropping it frees the
//!   place and records the [`Outcome`] and the latency.
//! - [`Algorithm`]: [`Aimd`] (fixed latency threshold) or [`Gradient`]
//!   (learned baseline, the default).
//! - [`ConcurrencyLimitLayer`] (features `axum` or `http`): the limit as
//!   server middleware, holding each permit until the response body ends.
//! - The outbound client of `perf_runtime::http` (feature `http`) takes a limit too.
//!
//! Metrics, by `limiter`: `perf_concurrency_limit`,
//! `perf_concurrency_in_flight` (gauges) and `perf_concurrency_rejected_total`.

mod algorithm;
#[cfg(feature = "_tower")]
mod body;
mod error;
#[cfg(feature = "_tower")]
mod layer;
mod limiter;
mod permit;

pub use algorithm::{Aimd, Algorithm, Gradient};
#[cfg(feature = "_tower")]
pub use body::LimitedBody;
pub use error::LimitError;
#[cfg(feature = "_tower")]
pub use layer::{ConcurrencyLimitLayer, ConcurrencyLimitService};
pub use limiter::{ConcurrencyLimit, ConcurrencyLimitBuilder, Overload};
pub use permit::{Outcome, Permit};
