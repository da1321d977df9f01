//! [`run_benchmark`]: virtual users against an HTTP endpoint, closed or
//! open model, their figures merged into a [`BenchmarkReport`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::BenchError;
use super::config::{BenchmarkConfig, display_target};
use super::conn::{Connection, Target};
use super::progress::Progress;
use super::recorder::{Period, Recorder, Totals};
use super::report::{Assembly, BenchmarkReport, LoadModel, RunSettings, TargetKind, now_rfc3339};
use super::schedule::Schedule;
use super::window::{WindowTable, millis};

/// An open-model request sent more than this after it was due counts as
/// `late`. Timer and scheduling jitter stay well below it.
pub const LATE_AFTER: Duration = Duration::from_millis(10);

/// Runs the benchmark `config` describes and reports what it measured.
///
/// Needs a Tokio runtime with the time and IO drivers (a multi-thread one
/// to load from more than one core). Each virtual user is a task with its
/// own keep-alive connection. Users start spread over the ramp-up; the
/// measured period follows it. Once the period is over no request is sent,
/// and the run ends when the requests in flight are answered or time out.
///
/// # Errors
///
/// [`BenchError::Connect`] when a first connection to the target cannot be
/// made (nothing is loaded then); [`BenchError::UserPanicked`] if a user's
/// task panicked. Failed requests are not errors: they are counted in the
/// report.
pub async fn run_benchmark(config: BenchmarkConfig) -> Result<BenchmarkReport, BenchError> {
    run_benchmark_with_progress(config, &Progress::new()).await
}

/// [`run_benchmark`], with `progress` following the run: read
/// [`Progress::snapshot`] from another task for live figures.
///
/// # Errors
///
/// As [`run_benchmark`].
pub async fn run_benchmark_with_progress(
    config: BenchmarkConfig,
    progress: &Progress,
) -> Result<BenchmarkReport, BenchError> {
    let target = Arc::new(Target::new(&config));
    match tokio::time::timeout(config.request_timeout, target.connect()).await {
        Ok(Ok(_probe)) => {}
        Ok(Err(source)) => {
            return Err(BenchError::Connect {
                target: target.address.clone(),
                source,
            });
        }
        Err(_elapsed) => {
            return Err(BenchError::Connect {
                target: target.address.clone(),
                source: format!("no connection within {:?}", config.request_timeout).into(),
            });
        }
    }

    let period = Period {
        warmup: config.ramp_up,
        measured: config.duration,
    };
    let windows = Arc::new(WindowTable::new(period.measured, config.window));
    let schedule = config.rate.map(|rate| Schedule::new(rate, config.ramp_up));
    let next_ticket = Arc::new(AtomicU64::new(0));
    let started_at = now_rfc3339();
    let start = Instant::now();
    progress.begin(start, period, config.users, Arc::clone(&windows));

    let mut users = Vec::with_capacity(config.users);
    for user in 0..config.users {
        let join_at = start + spread(config.ramp_up, user, config.users);
        let mut recorder = Recorder::new(period, Arc::clone(&windows), progress.clone());
        let target = Arc::clone(&target);
        let think_time = config.think_time;
        let next_ticket = Arc::clone(&next_ticket);
        users.push(tokio::spawn(async move {
            tokio::time::sleep_until(join_at).await;
            let mut connection = Connection::new();
            connection.open(&target).await;
            match schedule {
                None => {
                    closed_user(
                        start,
                        period,
                        think_time,
                        &target,
                        &mut connection,
                        &mut recorder,
                    )
                    .await
                }
                Some(schedule) => {
                    open_user(
                        start,
                        period,
                        schedule,
                        &next_ticket,
                        &target,
                        &mut connection,
                        &mut recorder,
                    )
                    .await;
                }
            }
            recorder.finish()
        }));
    }
    let totals = join_users(users).await;
    progress.finish();
    let totals = totals?;

    let assembly = Assembly {
        name: config.name.clone(),
        kind: TargetKind::Http,
        target: display_target(&config.target),
        model: if schedule.is_some() {
            LoadModel::Open
        } else {
            LoadModel::Closed
        },
        started_at,
        settings: RunSettings {
            users: config.users,
            duration_ms: millis(config.duration),
            ramp_up_ms: millis(config.ramp_up),
            think_time_ms: millis(config.think_time),
            request_timeout_ms: Some(millis(config.request_timeout)),
            rate_per_second: config.rate,
            method: Some(config.method.to_string()),
            window_ms: millis(config.window),
        },
        measured: period.measured,
        wall_time: start.elapsed(),
        scheduled: schedule.map(|s| s.due_between(period.warmup, period.end())),
    };
    Ok(assembly.report(totals, &windows))
}

/// When user `index` of `count` joins: evenly over the ramp-up, the first
/// at once.
pub(crate) fn spread(ramp_up: Duration, index: usize, count: usize) -> Duration {
    let index = u32::try_from(index).unwrap_or(u32::MAX);
    let count = u32::try_from(count).unwrap_or(u32::MAX).max(1);
    ramp_up * index / count
}

/// Waits for every user; their figures merged.
pub(crate) async fn join_users(
    users: Vec<tokio::task::JoinHandle<Totals>>,
) -> Result<Totals, BenchError> {
    let mut totals = Totals::new();
    let mut failure = None;
    for (index, user) in users.into_iter().enumerate() {
        match user.await {
            Ok(user) => totals.merge(&user),
            Err(error) => {
                failure.get_or_insert(BenchError::from_join(index, error));
            }
        }
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(totals),
    }
}

/// A closed-model user: send, wait for the answer, think, again, until the
/// measured period is over.
async fn closed_user(
    start: Instant,
    period: Period,
    think_time: Duration,
    target: &Target,
    connection: &mut Connection,
    recorder: &mut Recorder,
) {
    let end = start + period.end();
    loop {
        let sent = Instant::now();
        if sent >= end {
            break;
        }
        let outcome = connection.send(target, sent).await;
        recorder.record(sent - start, sent.elapsed(), outcome, false);
        if !think_time.is_zero() {
            tokio::time::sleep_until((Instant::now() + think_time).min(end)).await;
        }
    }
}

/// An open-model user: take the next due request, send it at its due time
/// (at once if that is past), count latency from the due time.
async fn open_user(
    start: Instant,
    period: Period,
    schedule: Schedule,
    next_ticket: &AtomicU64,
    target: &Target,
    connection: &mut Connection,
    recorder: &mut Recorder,
) {
    let end = start + period.end();
    loop {
        let due_offset = schedule.due(next_ticket.fetch_add(1, Ordering::Relaxed));
        if due_offset >= period.end() {
            break;
        }
        // Every user was busy until the period ended: this request, and
        // those after it, are dropped (counted from the schedule).
        if Instant::now() >= end {
            break;
        }
        let due = start + due_offset;
        tokio::time::sleep_until(due).await;
        let late = due.elapsed() > LATE_AFTER;
        let outcome = connection.send(target, due).await;
        recorder.record(due_offset, due.elapsed(), outcome, late);
    }
}
