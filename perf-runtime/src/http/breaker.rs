//! A circuit breaker per host: after too many failures in a window it
//! opens and calls fail fast; after a cool-down one probe goes through
//! (half-open); the probe's success closes it, its failure opens it again.
//!
//! Failures are connect errors, timeouts and 5xx; a 429 is neither failure
//! nor success (the host is up and says "slower", which the retry and rate
//! limits handle); other statuses are successes.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Circuit breaker settings for each host.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct BreakerPolicy {
    /// Opens when failures / calls in the window reach this (default 0.5).
    pub failure_ratio: f64,
    /// ...and the window holds at least this many calls (default 20).
    pub min_calls: u32,
    /// The sliding window the ratio is taken over (default 10 s).
    pub window: Duration,
    /// How long it stays open before a probe (default 5 s).
    pub cool_down: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failure_ratio: 0.5,
            min_calls: 20,
            window: Duration::from_secs(10),
            cool_down: Duration::from_secs(5),
        }
    }
}

/// The breaker's state, as published (`0` closed, `1` half-open, `2` open).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// One probe call is allowed through.
    HalfOpen,
    /// Calls fail fast.
    Open,
}

impl BreakerState {
    pub(super) fn gauge_value(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }
}

/// What a finished call tells the breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    Success,
    Failure,
    Neutral,
}

/// Ten slices make the window slide in tenths rather than jump.
const SLICES: usize = 10;

#[derive(Debug)]
pub(super) struct Breaker {
    policy: BreakerPolicy,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// (calls, failures) per slice.
    slices: [(u32, u32); SLICES],
    /// Index of the slice `slice_start` begins.
    current: usize,
    slice_start: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Closed,
    Open { until: Instant },
    HalfOpen { probing: bool },
}

/// Permission for one call; tell the breaker how it went with
/// [`Breaker::record`]. A probe dropped unrecorded (a cancelled call) lets
/// the next call probe instead.
#[derive(Debug)]
pub(super) struct Admission<'a> {
    breaker: &'a Breaker,
    probe: bool,
    recorded: bool,
}

impl Breaker {
    pub(super) fn new(policy: BreakerPolicy) -> Self {
        Breaker {
            policy,
            state: Mutex::new(State {
                phase: Phase::Closed,
                slices: [(0, 0); SLICES],
                current: 0,
                slice_start: Instant::now(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn state(&self) -> BreakerState {
        match self.lock().phase {
            Phase::Closed => BreakerState::Closed,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
            Phase::Open { until } if Instant::now() >= until => BreakerState::HalfOpen,
            Phase::Open { .. } => BreakerState::Open,
        }
    }

    /// Lets a call through, or says how long until the next probe.
    pub(super) fn admit(&self) -> Result<Admission<'_>, Duration> {
        let mut state = self.lock();
        let probe = match state.phase {
            Phase::Closed => false,
            Phase::Open { until } => {
                let now = Instant::now();
                if now < until {
                    return Err(until - now);
                }
                true
            }
            Phase::HalfOpen { probing: false } => true,
            // One probe at a time; the others fail fast until it answers.
            Phase::HalfOpen { probing: true } => return Err(Duration::ZERO),
        };
        if probe {
            state.phase = Phase::HalfOpen { probing: true };
        }
        Ok(Admission {
            breaker: self,
            probe,
            recorded: false,
        })
    }

    /// Records a call's verdict; returns the new state when it changed.
    pub(super) fn record(
        &self,
        mut admission: Admission<'_>,
        verdict: Verdict,
    ) -> Option<BreakerState> {
        admission.recorded = true;
        let mut state = self.lock();
        if admission.probe {
            state.phase = match verdict {
                Verdict::Success => {
                    state.slices = [(0, 0); SLICES];
                    Phase::Closed
                }
                Verdict::Failure => Phase::Open {
                    until: Instant::now() + self.policy.cool_down,
                },
                Verdict::Neutral => Phase::HalfOpen { probing: false },
            };
            return Some(match state.phase {
                Phase::Closed => BreakerState::Closed,
                Phase::Open { .. } => BreakerState::Open,
                Phase::HalfOpen { .. } => BreakerState::HalfOpen,
            });
        }
        if verdict == Verdict::Neutral || state.phase != Phase::Closed {
            return None;
        }
        self.slide(&mut state);
        let current = state.current;
        state.slices[current].0 += 1;
        if verdict == Verdict::Failure {
            state.slices[current].1 += 1;
        }
        let (calls, failures) = state
            .slices
            .iter()
            .fold((0, 0), |(c, f), (calls, failures)| {
                (c + calls, f + failures)
            });
        let tripped = calls >= self.policy.min_calls
            && f64::from(failures) >= self.policy.failure_ratio * f64::from(calls);
        if tripped {
            state.phase = Phase::Open {
                until: Instant::now() + self.policy.cool_down,
            };
            state.slices = [(0, 0); SLICES];
            return Some(BreakerState::Open);
        }
        None
    }

    /// Moves to the slice holding now, clearing the ones passed over.
    fn slide(&self, state: &mut State) {
        let slice = (self.policy.window / SLICES as u32).max(Duration::from_millis(1));
        let now = Instant::now();
        let passed = (now.duration_since(state.slice_start).as_nanos() / slice.as_nanos()) as usize;
        if passed == 0 {
            return;
        }
        if passed >= SLICES {
            state.slices = [(0, 0); SLICES];
            state.slice_start = now;
            return;
        }
        for step in 1..=passed {
            let index = (state.current + step) % SLICES;
            state.slices[index] = (0, 0);
        }
        state.current = (state.current + passed) % SLICES;
        state.slice_start += slice * passed as u32;
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        if self.probe && !self.recorded {
            let mut state = self.breaker.lock();
            if state.phase == (Phase::HalfOpen { probing: true }) {
                state.phase = Phase::HalfOpen { probing: false };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerPolicy {
            failure_ratio: 0.5,
            min_calls: 4,
            window: Duration::from_secs(10),
            cool_down: Duration::from_secs(5),
        })
    }

    fn call(breaker: &Breaker, verdict: Verdict) -> Option<BreakerState> {
        let admission = breaker.admit().expect("admitted");
        breaker.record(admission, verdict)
    }

    #[tokio::test(start_paused = true)]
    async fn opens_on_the_failure_ratio_probes_after_cool_down_and_closes() {
        let breaker = breaker();
        call(&breaker, Verdict::Success);
        call(&breaker, Verdict::Failure);
        assert_eq!(
            call(&breaker, Verdict::Success),
            None,
            "3 calls: below min_calls"
        );
        assert_eq!(
            call(&breaker, Verdict::Failure),
            Some(BreakerState::Open),
            "2 of 4 failed"
        );
        let retry_in = breaker.admit().expect_err("fails fast");
        assert_eq!(retry_in, Duration::from_secs(5));

        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        let probe = breaker.admit().expect("the probe");
        assert!(breaker.admit().is_err(), "one probe at a time");
        assert_eq!(
            breaker.record(probe, Verdict::Failure),
            Some(BreakerState::Open)
        );

        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(call(&breaker, Verdict::Success), Some(BreakerState::Closed));
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn old_failures_slide_out_of_the_window() {
        let breaker = breaker();
        for _ in 0..3 {
            call(&breaker, Verdict::Failure);
        }
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(
            call(&breaker, Verdict::Failure),
            None,
            "the old three are gone"
        );
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_probe_lets_the_next_call_probe() {
        let breaker = breaker();
        for _ in 0..4 {
            call(&breaker, Verdict::Failure);
        }
        tokio::time::advance(Duration::from_secs(5)).await;
        drop(breaker.admit().expect("probe"));
        assert!(breaker.admit().is_ok(), "the probe's place is free again");
    }

    #[tokio::test(start_paused = true)]
    async fn too_many_requests_neither_opens_nor_closes() {
        let breaker = breaker();
        for _ in 0..10 {
            call(&breaker, Verdict::Neutral);
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
    }
}
