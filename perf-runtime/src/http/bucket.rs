//! A token bucket per host: `per_second` requests on average, `burst` at once.
//!
//! Written here rather than taken from `governor` because the wait must be
//! measured on tokio's clock (tests run it in paused time) and bounded by the
//! request's deadline; the arithmetic is a few lines.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Rate limit settings for one host.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: f64,
    /// Requests that may go at once after a quiet spell (at least 1).
    pub burst: u32,
}

#[derive(Debug)]
pub(super) struct TokenBucket {
    limit: RateLimit,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Below zero when callers have reserved tokens not yet refilled.
    tokens: f64,
    refilled_at: Instant,
}

impl TokenBucket {
    pub(super) fn new(limit: RateLimit) -> Self {
        TokenBucket {
            limit,
            state: Mutex::new(State {
                tokens: f64::from(limit.burst),
                refilled_at: Instant::now(),
            }),
        }
    }

    pub(super) fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Reserves the next token and returns how long to wait for it, or
    /// `None` (reserving nothing) when that wait would exceed `max_wait`.
    /// Reserving up front keeps waiters in order without a queue.
    pub(super) fn reserve(&self, max_wait: Duration) -> Option<Duration> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let refill = now.duration_since(state.refilled_at).as_secs_f64() * self.limit.per_second;
        state.tokens = (state.tokens + refill).min(f64::from(self.limit.burst));
        state.refilled_at = now;
        let wait = if state.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - state.tokens) / self.limit.per_second)
        };
        if wait > max_wait {
            return None;
        }
        state.tokens -= 1.0;
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_burst_goes_at_once_then_tokens_come_at_the_rate() {
        let bucket = TokenBucket::new(RateLimit {
            per_second: 10.0,
            burst: 3,
        });
        let forever = Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(bucket.reserve(forever), Some(Duration::ZERO));
        }
        let waits: Vec<_> = (0..3)
            .map(|_| bucket.reserve(forever).expect("wait"))
            .collect();
        let millis: Vec<_> = waits.iter().map(|w| w.as_millis()).collect();
        assert_eq!(millis, [100, 200, 300], "queued callers wait their turn");
        assert_eq!(
            bucket.reserve(Duration::from_millis(350)),
            None,
            "the next token is 400 ms away"
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(bucket.reserve(forever), Some(Duration::ZERO), "refilled");
    }
}
