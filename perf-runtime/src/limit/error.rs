//! What can go wrong when building or acquiring from a limiter.

use std::time::Duration;

/// A limiter refused a call or a builder setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// Every permit is taken and the limiter is set to reject.
    #[error(
        "concurrency limit `{limiter}` is full ({in_flight} in flight, limit {limit}); \
         the upstream is saturated, try again later or raise the limit's maximum"
    )]
    Rejected {
        /// The limiter's name.
        limiter: String,
        /// The limit when the call was refused.
        limit: usize,
        /// Calls in flight when the call was refused.
        in_flight: usize,
    },
    /// No permit freed up within the configured wait.
    #[error(
        "concurrency limit `{limiter}` stayed full for {waited:?} (limit {limit}); \
         the upstream is saturated, shed the call or wait longer"
    )]
    WaitTimedOut {
        /// The limiter's name.
        limiter: String,
        /// The limit when the wait ended.
        limit: usize,
        /// How long the call waited.
        waited: Duration,
    },
    /// The builder's bounds do not fit together.
    #[error(
        "concurrency limit `{limiter}`: expected 1 <= min ({min}) <= initial ({initial}) <= max ({max})"
    )]
    InvalidBounds {
        /// The limiter's name.
        limiter: String,
        /// The lower bound given.
        min: usize,
        /// The starting limit given.
        initial: usize,
        /// The upper bound given.
        max: usize,
    },
}
