//! [`run_fn`]: the closed-model measurement of [`run_benchmark`](super::run_benchmark)
//! for an in-process async function, so that an annotated function can be
//! measured without a server in front of it.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::BenchError;
use super::config::check_duration;
use super::progress::Progress;
use super::recorder::{Outcome, Period, Recorder};
use super::report::{Assembly, BenchmarkReport, LoadModel, RunSettings, TargetKind, now_rfc3339};
use super::run::join_users;
use super::window::{WINDOW, WindowTable, millis};

/// What a benchmarked function returns: `()` (always a success) or a
/// `Result` (`Err` counts as an `other` error; its latency is still
/// recorded, as an HTTP 500's is).
pub trait CallOutcome {
    /// Whether the call succeeded.
    fn succeeded(&self) -> bool;
}

impl CallOutcome for () {
    fn succeeded(&self) -> bool {
        true
    }
}

impl<T, E> CallOutcome for Result<T, E> {
    fn succeeded(&self) -> bool {
        self.is_ok()
    }
}

/// Calls `function` from `concurrency` tasks in a loop for `duration` and
/// reports calls, errors and latency as [`run_benchmark`](super::run_benchmark)
/// does for requests (closed model, no ramp-up).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), perf_runtime::bench::BenchError> {
/// use std::time::Duration;
///
/// let report = perf_runtime::bench::run_fn(4, Duration::from_millis(200), || async {
///     tokio::time::sleep(Duration::from_millis(5)).await;
///     Ok::<_, std::io::Error>(())
/// })
/// .await?;
/// assert!(report.requests > 0);
/// assert_eq!(report.errors.total(), 0);
/// # Ok(())
/// # }
/// ```
///
/// # Errors
///
/// [`BenchError::InvalidConfig`] for a concurrency of 0 or a zero duration;
/// [`BenchError::UserPanicked`] if `function` panicked.
pub async fn run_fn<F, Fut>(
    concurrency: usize,
    duration: Duration,
    function: F,
) -> Result<BenchmarkReport, BenchError>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future + Send + 'static,
    Fut::Output: CallOutcome,
{
    if concurrency == 0 {
        return Err(BenchError::invalid(
            "concurrency",
            "at least 1 concurrent caller",
            0,
        ));
    }
    check_duration(duration)?;
    let period = Period {
        warmup: Duration::ZERO,
        measured: duration,
    };
    let windows = Arc::new(WindowTable::new(duration, WINDOW));
    let function = Arc::new(function);
    let started_at = now_rfc3339();
    let start = Instant::now();
    let progress = Progress::new();
    progress.begin(start, period, concurrency, Arc::clone(&windows));
    let end = start + duration;
    let users = (0..concurrency)
        .map(|_| {
            let function = Arc::clone(&function);
            let mut recorder = Recorder::new(period, Arc::clone(&windows), progress.clone());
            tokio::spawn(async move {
                loop {
                    let sent = Instant::now();
                    if sent >= end {
                        break;
                    }
                    let ok = function().await.succeeded();
                    recorder.record(sent - start, sent.elapsed(), Outcome::Returned(ok), false);
                }
                recorder.finish()
            })
        })
        .collect();
    let totals = join_users(users).await?;
    let assembly = Assembly {
        name: "run_fn".to_owned(),
        kind: TargetKind::Function,
        target: std::any::type_name::<F>().to_owned(),
        model: LoadModel::Closed,
        started_at,
        settings: RunSettings {
            users: concurrency,
            duration_ms: millis(duration),
            ramp_up_ms: 0,
            think_time_ms: 0,
            request_timeout_ms: None,
            rate_per_second: None,
            method: None,
            window_ms: millis(WINDOW),
        },
        measured: duration,
        wall_time: start.elapsed(),
        scheduled: None,
    };
    Ok(assembly.report(totals, &windows))
}
