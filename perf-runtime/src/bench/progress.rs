//! [`Progress`]: what a run has done so far, read while it runs (the `perf`
//! command's progress bar, a stress test's current step).
//!
//! Users add to two shared counters per request (relaxed atomics: a few
//! nanoseconds against a request's tens of microseconds); the percentile
//! comes from the last window the users have handed over, so reading a
//! snapshot never touches the users' own histograms.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::recorder::Period;
use super::window::WindowTable;

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// No run has started with this handle yet.
    Waiting,
    /// Users are joining; nothing is measured.
    RampUp,
    /// The measured period.
    Measuring,
    /// The period is over; answers still in flight are awaited.
    Draining,
    /// The run has ended.
    Done,
}

/// A snapshot of a run's progress; from [`Progress::snapshot`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ProgressSnapshot {
    /// Where the run is.
    pub phase: Phase,
    /// Time into the measured period (zero during the ramp-up).
    pub elapsed: Duration,
    /// The length of the measured period.
    pub measured: Duration,
    /// Requests sent in the measured period so far, failed ones included.
    pub requests: u64,
    /// Of those, the failed ones.
    pub errors: u64,
    /// `requests` over `elapsed`.
    pub requests_per_second: f64,
    /// The 95th percentile latency of the last window the users have
    /// handed over (the current one until the first is complete).
    pub p95: Option<Duration>,
    /// Virtual users of the run.
    pub users: usize,
    /// A label set by whoever drives several runs (a stress test's step).
    pub stage: Option<String>,
}

/// A handle on a run's progress, shared between the run and its readers.
///
/// Give it to [`run_benchmark_with_progress`](super::run_benchmark_with_progress)
/// (or a stress or endurance run) and call [`snapshot`](Self::snapshot)
/// from another task. One handle follows one run at a time; a new run
/// started with it starts from zero.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    requests: AtomicU64,
    errors: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    run: Option<RunState>,
    done: bool,
    stage: Option<String>,
}

struct RunState {
    start: Instant,
    period: Period,
    users: usize,
    windows: Arc<WindowTable>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("running", &self.run.is_some())
            .field("done", &self.done)
            .field("stage", &self.stage)
            .finish()
    }
}

impl Progress {
    /// A handle for a run not started yet.
    pub fn new() -> Progress {
        Progress::default()
    }

    /// Labels what the next runs are part of (a stress test's step); shown
    /// in every snapshot until changed.
    pub fn set_stage(&self, label: impl Into<String>) {
        self.state().stage = Some(label.into());
    }

    /// What the run has done so far.
    pub fn snapshot(&self) -> ProgressSnapshot {
        let requests = self.shared.requests.load(Ordering::Relaxed);
        let errors = self.shared.errors.load(Ordering::Relaxed);
        let state = self.state();
        let stage = state.stage.clone();
        let Some(run) = &state.run else {
            return ProgressSnapshot {
                phase: Phase::Waiting,
                elapsed: Duration::ZERO,
                measured: Duration::ZERO,
                requests,
                errors,
                requests_per_second: 0.0,
                p95: None,
                users: 0,
                stage,
            };
        };
        let since_start = run.start.elapsed();
        let elapsed = since_start
            .saturating_sub(run.period.warmup)
            .min(run.period.measured);
        let phase = if state.done {
            Phase::Done
        } else if since_start < run.period.warmup {
            Phase::RampUp
        } else if since_start < run.period.end() {
            Phase::Measuring
        } else {
            Phase::Draining
        };
        let current = run.windows.index_of(elapsed);
        let last_handed_over = match current {
            0 => run.windows.report(0),
            _ => run.windows.report(current - 1),
        };
        let seconds = elapsed.as_secs_f64();
        ProgressSnapshot {
            phase,
            elapsed,
            measured: run.period.measured,
            requests,
            errors,
            requests_per_second: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            p95: (last_handed_over.latency.count > 0).then(|| last_handed_over.latency.p95()),
            users: run.users,
            stage,
        }
    }

    /// A run starts: counters back to zero.
    pub(crate) fn begin(
        &self,
        start: Instant,
        period: Period,
        users: usize,
        windows: Arc<WindowTable>,
    ) {
        let mut state = self.state();
        self.shared.requests.store(0, Ordering::Relaxed);
        self.shared.errors.store(0, Ordering::Relaxed);
        state.run = Some(RunState {
            start,
            period,
            users,
            windows,
        });
        state.done = false;
    }

    /// A measured request ended.
    pub(crate) fn count(&self, failed: bool) {
        self.shared.requests.fetch_add(1, Ordering::Relaxed);
        if failed {
            self.shared.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The run has ended.
    pub(crate) fn finish(&self) {
        self.state().done = true;
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
