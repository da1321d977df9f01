//! [`Permit`]: one place under a limit, given back (with what happened) on drop.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::algorithm::Sample;
use super::limiter::Shared;

/// How a call under a limit ended, as the algorithm counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The call completed; its latency is a sample.
    Success,
    /// The call failed in a way that means overload (timeout, 503, 429,
    /// connection refused): the limit shrinks.
    Dropped,
    /// Says nothing about load (cancelled, a client error): only frees the place.
    Ignored,
}

/// A place under a [`ConcurrencyLimit`](super::ConcurrencyLimit), held until
/// dropped.
///
/// On drop the place is freed and the outcome set with
/// [`set_outcome`](Self::set_outcome) is recorded with the latency since
/// acquisition (or up to [`stop_clock`](Self::stop_clock)). The default
/// outcome is [`Outcome::Ignored`]: a permit dropped without a word, say by a
/// cancelled future, must neither grow nor shrink the limit.
pub struct Permit {
    shared: Arc<Shared>,
    started: Instant,
    in_flight: usize,
    outcome: Outcome,
    latency: Option<Duration>,
}

impl Permit {
    pub(super) fn new(shared: Arc<Shared>, in_flight: usize) -> Self {
        Permit {
            shared,
            started: Instant::now(),
            in_flight,
            outcome: Outcome::Ignored,
            latency: None,
        }
    }

    /// Sets what is recorded when the permit is dropped.
    pub fn set_outcome(&mut self, outcome: Outcome) {
        self.outcome = outcome;
    }

    /// Fixes the latency sample at the time elapsed so far, while the permit
    /// stays held. For streamed responses: the time to the first byte
    /// measures the upstream's load, the stream's length measures the answer.
    pub fn stop_clock(&mut self) {
        self.latency.get_or_insert_with(|| self.started.elapsed());
    }

    /// Releases the permit, recording a success.
    pub fn success(mut self) {
        self.outcome = Outcome::Success;
    }

    /// Releases the permit, recording a sign of overload.
    pub fn dropped(mut self) {
        self.outcome = Outcome::Dropped;
    }

    /// Releases the permit without recording a sample.
    pub fn ignore(mut self) {
        self.outcome = Outcome::Ignored;
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let latency = self.latency.unwrap_or_else(|| self.started.elapsed());
        self.shared.release(Sample {
            latency,
            in_flight: self.in_flight,
            outcome: self.outcome,
        });
    }
}

impl fmt::Debug for Permit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("limiter", &self.shared.label())
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}
