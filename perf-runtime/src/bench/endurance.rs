//! Endurance testing: one long run, cut into windows, with the target's
//! resident memory sampled alongside, and a verdict on whether the service
//! got worse over time ([`run_endurance`]).
//!
//! - **Windows.** The run's windows are [`EndurancePlan::window`] long;
//!   by default a twentieth of the run, at least one second (an hour in
//!   three-minute windows), replacing the configuration's own window.
//! - **Memory.** With a [`metrics_url`](EndurancePlan::metrics_url) (a
//!   service on this runtime serves `/metrics`, Prometheus text; see
//!   [`metrics_url_for`](super::metrics_url_for)), a sampler reads
//!   `process_resident_memory_bytes` (the `metrics-process` gauge) at the
//!   start of the measured period and every window after it, up to its end:
//!   `⌊duration / window⌋ + 1` scrapes, each within the window (at most
//!   10 s). A scrape that fails, or an answer without the gauge, is a
//!   *gap*: counted in `memory_gaps`, the last reason kept, the run goes on.
//!
//! **Drift**, the exact rule. Only full windows count (a last, shorter
//! window is left out). With fewer than [`MIN_DRIFT_WINDOWS`] (5) there is
//! no verdict: `drift` is empty and `no_verdict` says why. Otherwise, with
//! `n` full windows and `k = ⌊n / 5⌋`, the first `k` windows are compared
//! with the last `k`:
//!
//! | metric | figure of a group of windows | worse when |
//! |---|---|---|
//! | `p50_us`, `p95_us`, `p99_us` | the median of the windows' percentiles (windows without answers skipped) | `change > tolerance` |
//! | `requests_per_second` | requests over the group's time | `change < −tolerance` |
//! | `error_rate` | failed requests over requests | `change > tolerance` |
//! | `resident_memory_bytes` | the first and the last sample (not the groups) | `change > tolerance` |
//!
//! `change` is `(last − first) / first`, except for the error rate, where
//! the divisor is `max(first, 0.01)` ([`DRIFT_ERROR_RATE_FLOOR`]): from a
//! clean start any relative rise is infinite, so a rise counts from 1 %
//! (with the default tolerance, 0 % → more than 0.25 % is flagged,
//! 0 % → 0.2 % is not). The median makes one bad window in a group count for half at most
//! (for `k ≥ 3`, not at all): the verdict is about a trend, not a spike. A
//! metric whose first figure is 0 (no answers, no memory sample) is left
//! out. Memory also gets `slope_per_hour`: the least-squares slope of every
//! sample, in bytes per hour (shown, not judged). `flagged` is the verdict;
//! the tolerance is [`EndurancePlan::drift_tolerance`] (default 0.25).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::config::{BenchmarkConfig, display_target};
use super::error::BenchError;
use super::progress::Progress;
use super::report::BenchmarkReport;
use super::run::run_benchmark_with_progress;
use super::target_metrics::{RESIDENT_MEMORY, scrape_target_metrics};
use super::window::{WindowReport, millis};

/// The version of the JSON schema of [`EnduranceReport`] (its `run` carries
/// the run report's own [`SCHEMA_VERSION`](super::SCHEMA_VERSION)). Fields
/// may be added within a version; renaming or removing one bumps it.
pub const ENDURANCE_SCHEMA_VERSION: u32 = 1;

/// The default drift tolerance: 25 % worse is flagged.
pub const DEFAULT_DRIFT_TOLERANCE: f64 = 0.25;

/// Fewer full windows than this give no drift verdict: a fifth of the run
/// would be less than one window.
pub const MIN_DRIFT_WINDOWS: usize = 5;

/// The error rate a rise is measured against when the first fifth's is
/// lower (see the module documentation).
pub const DRIFT_ERROR_RATE_FLOOR: f64 = 0.01;

/// The shortest window, as for any run: shorter ones hold too few requests
/// for a percentile.
const MIN_WINDOW: Duration = Duration::from_millis(100);

/// The default window is at least this long.
const MIN_DEFAULT_WINDOW: Duration = Duration::from_secs(1);

/// A scrape may take the window, but never longer than this.
const MAX_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// How an endurance run is cut and watched. Build with
/// [`EndurancePlan::new`] and the `with_*` methods.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct EndurancePlan {
    /// The length of the run's windows (at least 100 ms); `None` for a
    /// twentieth of the run, at least one second ([`Self::window_for`]).
    pub window: Option<Duration>,
    /// The target's `/metrics` (`http://`), to sample its resident memory
    /// every window; `None` samples nothing.
    pub metrics_url: Option<String>,
    /// How much worse the last fifth may be than the first before a metric
    /// is flagged (a fraction: 0.25 is 25 %; at least 0).
    pub drift_tolerance: f64,
}

impl Default for EndurancePlan {
    fn default() -> Self {
        EndurancePlan::new()
    }
}

impl EndurancePlan {
    /// The default plan: windows of a twentieth of the run (at least 1 s),
    /// no memory sampling, drift tolerance 25 %.
    pub fn new() -> EndurancePlan {
        EndurancePlan {
            window: None,
            metrics_url: None,
            drift_tolerance: DEFAULT_DRIFT_TOLERANCE,
        }
    }

    /// Windows of `length` (at least 100 ms).
    pub fn with_window(self, length: Duration) -> EndurancePlan {
        EndurancePlan {
            window: Some(length),
            ..self
        }
    }

    /// Samples the target's resident memory from `url` (its `/metrics`,
    /// `http://`) every window.
    pub fn with_metrics_url(self, url: impl Into<String>) -> EndurancePlan {
        EndurancePlan {
            metrics_url: Some(url.into()),
            ..self
        }
    }

    /// Flags a metric worse by more than `fraction` (0.25 is 25 %).
    pub fn with_drift_tolerance(self, fraction: f64) -> EndurancePlan {
        EndurancePlan {
            drift_tolerance: fraction,
            ..self
        }
    }

    /// The window a run of `duration` gets: the plan's, or a twentieth of
    /// `duration`, at least one second.
    pub fn window_for(&self, duration: Duration) -> Duration {
        self.window
            .unwrap_or_else(|| (duration / 20).max(MIN_DEFAULT_WINDOW))
    }

    fn check(&self) -> Result<Option<url::Url>, BenchError> {
        if let Some(window) = self.window
            && window < MIN_WINDOW
        {
            return Err(BenchError::invalid(
                "window",
                "a window of at least 100ms, e.g. 1s",
                format!("{window:?}"),
            ));
        }
        if !(self.drift_tolerance.is_finite() && self.drift_tolerance >= 0.0) {
            return Err(BenchError::invalid(
                "drift_tolerance",
                "a finite fraction of 0 or more, e.g. 0.25 for 25 %",
                self.drift_tolerance,
            ));
        }
        let Some(text) = &self.metrics_url else {
            return Ok(None);
        };
        const EXPECTED: &str =
            "an http:// URL of the target's /metrics, e.g. http://127.0.0.1:8000/metrics";
        match url::Url::parse(text) {
            Ok(url) if url.scheme() == "http" && url.host_str().is_some_and(|h| !h.is_empty()) => {
                Ok(Some(url))
            }
            Ok(url) => Err(BenchError::invalid(
                "metrics_url",
                EXPECTED,
                display_target(&url),
            )),
            Err(_) => Err(BenchError::invalid(
                "metrics_url",
                EXPECTED,
                if text.contains('@') {
                    "<hidden: the url may hold a password>".to_owned()
                } else {
                    format!("`{text}`")
                },
            )),
        }
    }
}

/// One reading of the target's resident memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MemorySample {
    /// When the scrape started, from the start of the measured period.
    pub at_ms: u64,
    /// `process_resident_memory_bytes` as read.
    pub resident_bytes: u64,
}

/// How one metric moved from the first fifth of the run to the last.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Drift {
    /// `p50_us`, `p95_us`, `p99_us`, `requests_per_second`, `error_rate` or
    /// `resident_memory_bytes` (the unit is in the name where there is one).
    pub metric: String,
    /// The first fifth's figure (memory: the first sample).
    pub first: f64,
    /// The last fifth's figure (memory: the last sample).
    pub last: f64,
    /// The relative change the verdict is made on (see the module
    /// documentation): 0.5 is 50 % higher.
    pub change: f64,
    /// Worse by more than the tolerance.
    pub flagged: bool,
    /// Memory only: the least-squares slope of every sample, bytes per hour.
    pub slope_per_hour: Option<f64>,
}

/// What an endurance run measured, and how it drifted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EnduranceReport {
    /// [`ENDURANCE_SCHEMA_VERSION`] of the writer.
    pub schema_version: u32,
    /// The run, in windows of the plan's length (`run.settings.window_ms`).
    pub run: BenchmarkReport,
    /// The drift tolerance of the verdict.
    pub drift_tolerance: f64,
    /// The metrics URL sampled (without credentials or query); `null` when
    /// none was.
    pub metrics_url: Option<String>,
    /// The resident memory samples, in time order.
    pub memory: Vec<MemorySample>,
    /// Scrapes that gave no sample: failed, timed out, or without the gauge.
    pub memory_gaps: u64,
    /// Why the last gap happened, if any did.
    pub last_scrape_error: Option<String>,
    /// Windows in each compared fifth (`k`); 0 without a verdict.
    pub compared_windows: usize,
    /// The drift of each metric that could be compared.
    pub drift: Vec<Drift>,
    /// Why there is no drift verdict (too few windows); `null` when there is.
    pub no_verdict: Option<String>,
}

impl EnduranceReport {
    /// The metrics that drifted beyond the tolerance.
    pub fn flagged(&self) -> Vec<&Drift> {
        self.drift.iter().filter(|drift| drift.flagged).collect()
    }

    /// The drift of `metric`, if it was compared.
    pub fn drift_of(&self, metric: &str) -> Option<&Drift> {
        self.drift.iter().find(|drift| drift.metric == metric)
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Cannot fail: every field is a plain value with string map keys
        // (a change is never NaN: metrics with a zero divisor are left out).
        serde_json::to_string_pretty(self).expect("an endurance report always serialises")
    }

    /// Reads a report written by [`to_json`](Self::to_json).
    ///
    /// # Errors
    ///
    /// The JSON does not match this schema.
    pub fn from_json(json: &str) -> Result<EnduranceReport, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// Runs `config` once, in windows of the plan's length, sampling the
/// target's memory meanwhile if the plan has a metrics URL, and judges the
/// drift from the first fifth of the run to the last (see the module
/// documentation for the rule). `progress` follows the run; its stage is
/// set to `endurance`.
///
/// # Errors
///
/// [`BenchError::InvalidConfig`] naming the setting of `plan` out of range
/// (`window` under 100 ms, `drift_tolerance` negative or not finite,
/// `metrics_url` not an `http://` URL), before anything is sent; otherwise
/// as [`run_benchmark`](super::run_benchmark). A failed scrape never fails
/// the run: it is a gap.
pub async fn run_endurance(
    config: BenchmarkConfig,
    plan: EndurancePlan,
    progress: &Progress,
) -> Result<EnduranceReport, BenchError> {
    let metrics_url = plan.check()?;
    let window = plan.window_for(config.duration);
    let config = BenchmarkConfig { window, ..config };
    progress.set_stage(format!("endurance: windows of {window:?}"));

    // The run starts its clock after a probe connection (a millisecond on
    // a reachable target), so samples are timed within that of its windows.
    let measured_start = Instant::now() + config.ramp_up;
    let sampler = metrics_url.as_ref().map(|url| {
        tokio::spawn(sample_memory(
            url.to_string(),
            measured_start,
            window,
            config.duration,
        ))
    });
    let run = match run_benchmark_with_progress(config, progress).await {
        Ok(run) => run,
        Err(error) => {
            if let Some(sampler) = sampler {
                sampler.abort();
            }
            return Err(error);
        }
    };
    let sampling = match sampler {
        // Its last scrape was due by the end of the measured period, which
        // the run has passed: this waits for one scrape at most.
        Some(sampler) => sampler.await.unwrap_or_else(|error| Sampling {
            last_error: Some(format!("the memory sampler failed: {error}")),
            ..Sampling::default()
        }),
        None => Sampling::default(),
    };
    let verdict = judge(
        &run.windows,
        run.settings.window_ms,
        &sampling.samples,
        plan.drift_tolerance,
    );
    Ok(EnduranceReport {
        schema_version: ENDURANCE_SCHEMA_VERSION,
        run,
        drift_tolerance: plan.drift_tolerance,
        metrics_url: metrics_url.as_ref().map(display_target),
        memory: sampling.samples,
        memory_gaps: sampling.gaps,
        last_scrape_error: sampling.last_error,
        compared_windows: verdict.compared_windows,
        drift: verdict.drift,
        no_verdict: verdict.no_verdict,
    })
}

/// What the memory sampler gathered.
#[derive(Default)]
struct Sampling {
    samples: Vec<MemorySample>,
    gaps: u64,
    last_error: Option<String>,
}

/// Scrapes `url` at the start of the measured period and every `window`
/// after it, up to its end.
async fn sample_memory(
    url: String,
    measured_start: Instant,
    window: Duration,
    duration: Duration,
) -> Sampling {
    let timeout = window.min(MAX_SCRAPE_TIMEOUT);
    let scrapes = u32::try_from(duration.as_nanos() / window.as_nanos()).unwrap_or(u32::MAX);
    let mut sampling = Sampling::default();
    for index in 0..=scrapes {
        // A scrape slower than the window makes the next one start late,
        // never two at once.
        tokio::time::sleep_until(measured_start + window * index).await;
        let at_ms = millis(Instant::now().saturating_duration_since(measured_start));
        let reason = match scrape_target_metrics(&url, timeout).await {
            Ok(metrics) => match metrics.resident_memory_bytes {
                Some(bytes) if bytes >= 0.0 => {
                    sampling.samples.push(MemorySample {
                        at_ms,
                        resident_bytes: bytes.round() as u64,
                    });
                    continue;
                }
                _ => format!("the answer of {url} has no {RESIDENT_MEMORY} gauge"),
            },
            Err(error) => error.to_string(),
        };
        sampling.gaps += 1;
        sampling.last_error = Some(reason);
    }
    sampling
}

/// A figure read from a window (one of its percentiles).
type Figure = fn(&WindowReport) -> u64;

/// The drift verdict of a run.
struct Verdict {
    drift: Vec<Drift>,
    compared_windows: usize,
    no_verdict: Option<String>,
}

/// Judges the drift from the first fifth of the full windows of
/// `window_ms` to the last, and of memory (see the module documentation).
fn judge(
    windows: &[WindowReport],
    window_ms: u64,
    memory: &[MemorySample],
    tolerance: f64,
) -> Verdict {
    let full: Vec<&WindowReport> = windows
        .iter()
        .filter(|window| window.duration_ms == window_ms)
        .collect();
    if full.len() < MIN_DRIFT_WINDOWS {
        return Verdict {
            drift: Vec::new(),
            compared_windows: 0,
            no_verdict: Some(format!(
                "{} full window(s) of {window_ms} ms: a drift verdict needs at least \
                 {MIN_DRIFT_WINDOWS} (the first and last fifth of the run are compared); \
                 run longer or use shorter windows",
                full.len()
            )),
        };
    }
    let k = full.len() / MIN_DRIFT_WINDOWS;
    let (first, last) = (&full[..k], &full[full.len() - k..]);
    let mut drift = Vec::new();
    let percentiles: [(&str, Figure); 3] = [
        ("p50_us", |w| w.latency.p50_us),
        ("p95_us", |w| w.latency.p95_us),
        ("p99_us", |w| w.latency.p99_us),
    ];
    for (metric, percentile) in percentiles {
        if let (Some(before), Some(after)) =
            (median_of(first, percentile), median_of(last, percentile))
        {
            drift.extend(compare(
                metric,
                before,
                after,
                before,
                tolerance,
                Worse::Higher,
            ));
        }
    }
    let (before, after) = (requests_per_second(first), requests_per_second(last));
    drift.extend(compare(
        "requests_per_second",
        before,
        after,
        before,
        tolerance,
        Worse::Lower,
    ));
    let (before, after) = (error_rate(first), error_rate(last));
    drift.extend(compare(
        "error_rate",
        before,
        after,
        before.max(DRIFT_ERROR_RATE_FLOOR),
        tolerance,
        Worse::Higher,
    ));
    if let (Some(head), Some(tail)) = (memory.first(), memory.last())
        && memory.len() >= 2
    {
        let (before, after) = (head.resident_bytes as f64, tail.resident_bytes as f64);
        if let Some(mut memory_drift) = compare(
            "resident_memory_bytes",
            before,
            after,
            before,
            tolerance,
            Worse::Higher,
        ) {
            memory_drift.slope_per_hour = slope_per_hour(memory);
            drift.push(memory_drift);
        }
    }
    Verdict {
        drift,
        compared_windows: k,
        no_verdict: None,
    }
}

/// Which way a metric gets worse.
#[derive(Clone, Copy)]
enum Worse {
    Higher,
    Lower,
}

/// The drift of `metric` from `first` to `last`, the change relative to
/// `divisor`; `None` when the divisor is not above 0.
fn compare(
    metric: &str,
    first: f64,
    last: f64,
    divisor: f64,
    tolerance: f64,
    worse: Worse,
) -> Option<Drift> {
    if divisor.is_nan() || divisor <= 0.0 {
        return None;
    }
    let change = (last - first) / divisor;
    let flagged = match worse {
        Worse::Higher => change > tolerance,
        Worse::Lower => change < -tolerance,
    };
    Some(Drift {
        metric: metric.to_owned(),
        first,
        last,
        change,
        flagged,
        slope_per_hour: None,
    })
}

/// The median of `figure` over the windows that have answers.
fn median_of(windows: &[&WindowReport], figure: Figure) -> Option<f64> {
    let mut values: Vec<u64> = windows
        .iter()
        .filter(|window| window.latency.count > 0)
        .map(|window| figure(window))
        .collect();
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let middle = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[middle] as f64
    } else {
        (values[middle - 1] as f64 + values[middle] as f64) / 2.0
    })
}

fn requests_per_second(windows: &[&WindowReport]) -> f64 {
    let requests: u64 = windows.iter().map(|window| window.requests).sum();
    let millis: u64 = windows.iter().map(|window| window.duration_ms).sum();
    if millis == 0 {
        0.0
    } else {
        requests as f64 * 1000.0 / millis as f64
    }
}

fn error_rate(windows: &[&WindowReport]) -> f64 {
    let requests: u64 = windows.iter().map(|window| window.requests).sum();
    let errors: u64 = windows.iter().map(|window| window.errors).sum();
    if requests == 0 {
        0.0
    } else {
        errors as f64 / requests as f64
    }
}

/// The least-squares slope of resident memory over time, bytes per hour;
/// `None` when every sample was taken at the same millisecond.
fn slope_per_hour(samples: &[MemorySample]) -> Option<f64> {
    let count = samples.len() as f64;
    let hours = |sample: &MemorySample| sample.at_ms as f64 / 3_600_000.0;
    let mean_x = samples.iter().map(hours).sum::<f64>() / count;
    let mean_y = samples
        .iter()
        .map(|sample| sample.resident_bytes as f64)
        .sum::<f64>()
        / count;
    let (mut covariance, mut variance) = (0.0, 0.0);
    for sample in samples {
        let dx = hours(sample) - mean_x;
        covariance += dx * (sample.resident_bytes as f64 - mean_y);
        variance += dx * dx;
    }
    (variance > 0.0).then(|| covariance / variance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::LatencySummary;

    /// A one-second window with `requests`, `errors` and a p50/p95/p99 of
    /// `p50_ms`, twice and three times that.
    fn window(index: u64, requests: u64, errors: u64, p50_ms: u64) -> WindowReport {
        WindowReport {
            start_ms: index * 1000,
            duration_ms: 1000,
            requests,
            errors,
            requests_per_second: requests as f64,
            latency: LatencySummary {
                count: requests - errors,
                p50_us: p50_ms * 1000,
                p95_us: p50_ms * 2000,
                p99_us: p50_ms * 3000,
                ..LatencySummary::default()
            },
        }
    }

    fn steady(count: u64) -> Vec<WindowReport> {
        (0..count).map(|i| window(i, 100, 0, 10)).collect()
    }

    fn flagged(verdict: &Verdict) -> Vec<&str> {
        verdict
            .drift
            .iter()
            .filter(|drift| drift.flagged)
            .map(|drift| drift.metric.as_str())
            .collect()
    }

    fn sample(at_ms: u64, resident_bytes: u64) -> MemorySample {
        MemorySample {
            at_ms,
            resident_bytes,
        }
    }

    #[test]
    fn the_default_window_is_a_twentieth_of_the_run_at_least_a_second() {
        let plan = EndurancePlan::new();
        assert_eq!(
            plan.window_for(Duration::from_secs(3600)),
            Duration::from_secs(180)
        );
        assert_eq!(
            plan.window_for(Duration::from_secs(60)),
            Duration::from_secs(3)
        );
        assert_eq!(
            plan.window_for(Duration::from_secs(10)),
            Duration::from_secs(1)
        );
        let set = plan.with_window(Duration::from_millis(250));
        assert_eq!(
            set.window_for(Duration::from_secs(3600)),
            Duration::from_millis(250)
        );
    }

    #[test]
    fn bad_plans_name_the_setting() {
        let field = |plan: EndurancePlan| match plan.check() {
            Err(BenchError::InvalidConfig { field, .. }) => field,
            other => panic!("expected an invalid setting, got {other:?}"),
        };
        let plan = EndurancePlan::new;
        assert_eq!(
            field(plan().with_window(Duration::from_millis(99))),
            "window"
        );
        assert_eq!(field(plan().with_drift_tolerance(-0.1)), "drift_tolerance");
        assert_eq!(
            field(plan().with_drift_tolerance(f64::NAN)),
            "drift_tolerance"
        );
        assert_eq!(
            field(plan().with_metrics_url("ftp://h/metrics")),
            "metrics_url"
        );
        assert_eq!(
            field(plan().with_metrics_url("https://h/metrics")),
            "metrics_url"
        );
        assert_eq!(field(plan().with_metrics_url("not a url")), "metrics_url");
        let error = plan()
            .with_metrics_url("https://u:hunter2@h/metrics")
            .check()
            .expect_err("https");
        assert!(!error.to_string().contains("hunter2"), "{error}");
        assert!(
            plan()
                .with_metrics_url("http://127.0.0.1:9/metrics")
                .check()
                .is_ok()
        );
    }

    #[test]
    fn a_steady_run_flags_nothing() {
        let verdict = judge(&steady(10), 1000, &[], DEFAULT_DRIFT_TOLERANCE);
        assert_eq!(verdict.compared_windows, 2);
        assert_eq!(verdict.no_verdict, None);
        assert!(flagged(&verdict).is_empty());
        let metrics: Vec<&str> = verdict.drift.iter().map(|d| d.metric.as_str()).collect();
        assert_eq!(
            metrics,
            [
                "p50_us",
                "p95_us",
                "p99_us",
                "requests_per_second",
                "error_rate"
            ]
        );
    }

    #[test]
    fn slower_answers_fewer_requests_and_more_errors_at_the_end_are_flagged() {
        let mut windows = steady(10);
        // The last fifth (windows 8 and 9): latency up 50 %, throughput
        // down 30 %, 5 % errors.
        windows[8] = window(8, 70, 4, 15);
        windows[9] = window(9, 70, 3, 15);
        let verdict = judge(&windows, 1000, &[], DEFAULT_DRIFT_TOLERANCE);
        assert_eq!(
            flagged(&verdict),
            [
                "p50_us",
                "p95_us",
                "p99_us",
                "requests_per_second",
                "error_rate"
            ]
        );
        let p95 = &verdict.drift[1];
        assert_eq!((p95.first, p95.last), (20_000.0, 30_000.0));
        assert!((p95.change - 0.5).abs() < 1e-9, "{p95:?}");
        // Better at the end is never flagged.
        let mut windows = steady(10);
        windows[8] = window(8, 200, 0, 5);
        windows[9] = window(9, 200, 0, 5);
        assert!(flagged(&judge(&windows, 1000, &[], 0.25)).is_empty());
    }

    #[test]
    fn the_middle_of_the_run_and_one_spike_in_a_fifth_do_not_count() {
        let mut windows = steady(15);
        // A slow middle: not compared.
        windows[7] = window(7, 100, 0, 1000);
        // k = 3: one spike among the last three windows is outvoted.
        windows[13] = window(13, 100, 0, 1000);
        let verdict = judge(&windows, 1000, &[], DEFAULT_DRIFT_TOLERANCE);
        assert_eq!(verdict.compared_windows, 3);
        assert!(flagged(&verdict).is_empty(), "{:?}", verdict.drift);
    }

    #[test]
    fn error_rate_rises_count_from_one_percent() {
        // k = 1: the first window (no errors) against the last.
        let error_rate_drift = |errors_in_last: u64| {
            let mut windows: Vec<WindowReport> = (0..5).map(|i| window(i, 1000, 0, 10)).collect();
            windows[4] = window(4, 1000, errors_in_last, 10);
            let verdict = judge(&windows, 1000, &[], DEFAULT_DRIFT_TOLERANCE);
            verdict
                .drift
                .into_iter()
                .find(|drift| drift.metric == "error_rate")
                .expect("compared")
        };
        assert!(!error_rate_drift(0).flagged);
        // 0.2 % from 0 %: 0.2 of the 1 % floor, under the tolerance.
        let small = error_rate_drift(2);
        assert!((small.change - 0.2).abs() < 1e-9, "{small:?}");
        assert!(!small.flagged);
        // 0.3 %: above it.
        assert!(error_rate_drift(3).flagged);
        // 1 %: change 1.0.
        let one = error_rate_drift(10);
        assert!((one.change - 1.0).abs() < 1e-9 && one.flagged, "{one:?}");
    }

    #[test]
    fn short_runs_and_partial_windows_give_no_verdict() {
        let mut windows = steady(4);
        // A partial last window does not count as a fifth window.
        windows.push(WindowReport {
            duration_ms: 400,
            ..window(4, 40, 0, 10)
        });
        let verdict = judge(
            &windows,
            1000,
            &[sample(0, 100), sample(4000, 1000)],
            DEFAULT_DRIFT_TOLERANCE,
        );
        assert!(verdict.drift.is_empty());
        assert_eq!(verdict.compared_windows, 0);
        let reason = verdict.no_verdict.expect("a reason");
        assert!(reason.contains("4 full window(s)"), "{reason}");
        assert!(reason.contains("at least 5"), "{reason}");
    }

    #[test]
    fn memory_growth_is_flagged_with_its_slope() {
        // +10 MB every 10 minutes from 100 MB, over an hour: +60 %.
        let samples: Vec<MemorySample> = (0..=6)
            .map(|i| sample(i * 600_000, 100_000_000 + i * 10_000_000))
            .collect();
        let verdict = judge(&steady(10), 1000, &samples, DEFAULT_DRIFT_TOLERANCE);
        assert_eq!(flagged(&verdict), ["resident_memory_bytes"]);
        let memory = verdict.drift.last().expect("memory");
        assert!((memory.change - 0.6).abs() < 1e-9, "{memory:?}");
        let slope = memory.slope_per_hour.expect("a slope");
        assert!((slope - 60_000_000.0).abs() < 1.0, "{slope}");
        // Within the tolerance: compared, not flagged; one sample: not compared.
        let flat = [sample(0, 100), sample(1000, 120)];
        let verdict = judge(&steady(10), 1000, &flat, DEFAULT_DRIFT_TOLERANCE);
        assert!(flagged(&verdict).is_empty());
        assert_eq!(verdict.drift.len(), 6);
        let verdict = judge(&steady(10), 1000, &flat[..1], DEFAULT_DRIFT_TOLERANCE);
        assert_eq!(verdict.drift.len(), 5);
        assert_eq!(slope_per_hour(&[sample(5, 1), sample(5, 2)]), None);
    }
}
