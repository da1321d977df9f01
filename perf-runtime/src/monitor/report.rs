//! The typed reports of the status API: [`StatusReport`] and [`MetricsReport`].

use serde::Serialize;

use super::HealthReport;
#[cfg(feature = "prometheus")]
use super::exposition::{self, Sample};
#[cfg(feature = "prometheus")]
use super::names;

/// `Perf::get_status`: what runs, how it is configured, and whether it is healthy.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct StatusReport {
    /// The `perf-runtime` version.
    pub version: &'static str,
    /// Seconds since this runtime started.
    pub uptime_seconds: f64,
    /// True for the embedded default that serves calls made before `init`.
    pub embedded_default: bool,
    /// What each part of the runtime is doing.
    pub components: Vec<ComponentStatus>,
    /// The configuration in force; URLs show `***` for passwords.
    pub config: crate::config::PerfConfig,
    /// The health checks, run now.
    pub health: HealthReport,
    /// The last self-benchmark of each `BENCHMARK_ENDPOINTS` entry, in the
    /// configured order (`ENABLE_BENCHMARKING`); empty until a round ran.
    pub self_benchmark: Vec<SelfBenchmarkResult>,
}

/// How a self-benchmark run ended; also the `outcome` label of
/// `perf_self_benchmark_runs_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SelfBenchmarkOutcome {
    /// The run went through; its requests may still have failed (see
    /// `error_rate`).
    Ok,
    /// The run could not start or was cut short (`error` says why), e.g.
    /// the connection was refused.
    Failed,
}

impl SelfBenchmarkOutcome {
    /// `ok` or `failed`, as in metrics and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            SelfBenchmarkOutcome::Ok => "ok",
            SelfBenchmarkOutcome::Failed => "failed",
        }
    }
}

/// The last self-benchmark of one endpoint (`ENABLE_BENCHMARKING`): a
/// constant-rate run of `BENCHMARK_RATE` requests per second for
/// `BENCHMARK_DURATION`, latency counted from when each request was due.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SelfBenchmarkResult {
    /// `scheme://host:port/path`: no credentials, no query string (it may
    /// hold an API key); the `endpoint` label of the metrics.
    pub endpoint: String,
    /// When the run started, RFC 3339 in UTC.
    pub started_at: String,
    /// Whether the run went through.
    pub outcome: SelfBenchmarkOutcome,
    /// Requests sent in the measured period, failed ones included.
    pub requests: u64,
    /// Of those, the ones answered with a status below 400.
    pub successes: u64,
    /// Failed requests over requests sent; 1 for a run that could not
    /// start (nothing reached the endpoint).
    pub error_rate: f64,
    /// Median latency in milliseconds; `None` without an answer.
    pub p50_ms: Option<f64>,
    /// 95th percentile latency in milliseconds.
    pub p95_ms: Option<f64>,
    /// 99th percentile latency in milliseconds.
    pub p99_ms: Option<f64>,
    /// Requests sent per second of the measured period.
    pub requests_per_second: f64,
    /// Requests due on the schedule that were never sent, because both
    /// connections were still waiting for answers when the period ended.
    pub dropped: u64,
    /// Why the run failed; `None` when it went through.
    pub error: Option<String>,
}

/// One part of the runtime and its state.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct ComponentStatus {
    /// `prometheus`, `redis`, `postgres`, `monitoring`, ...
    pub name: &'static str,
    /// Whether it is running in this process.
    pub enabled: bool,
    /// Where it points or why it is off.
    pub detail: String,
}

impl ComponentStatus {
    pub(crate) fn new(name: &'static str, enabled: bool, detail: impl Into<String>) -> Self {
        ComponentStatus {
            name,
            enabled,
            detail: detail.into(),
        }
    }
}

/// `Perf::get_metrics`: the figures behind `/metrics`, typed.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct MetricsReport {
    /// Whether the Prometheus recorder is installed; without it there are no figures.
    pub prometheus_enabled: bool,
    /// One entry per profiled function or scope.
    pub functions: Vec<FunctionMetrics>,
    /// Process figures, when the platform provides them.
    pub process: ProcessMetrics,
}

impl MetricsReport {
    /// The entry of `function` (first match across modules).
    pub fn function(&self, function: &str) -> Option<&FunctionMetrics> {
        self.functions.iter().find(|f| f.function == function)
    }
}

/// Calls and latency of one profiled function.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct FunctionMetrics {
    /// The `function` label.
    pub function: String,
    /// The `module` label.
    pub module: String,
    /// Calls that returned normally.
    pub calls_ok: u64,
    /// Calls that returned `Err`.
    pub calls_error: u64,
    /// Calls that panicked.
    pub calls_panic: u64,
    /// Calls whose future was dropped before finishing.
    pub calls_cancelled: u64,
    /// Calls in progress.
    pub in_flight: i64,
    /// Observed durations.
    pub duration: LatencySummary,
}

impl FunctionMetrics {
    /// All finished calls, whatever their outcome.
    pub fn calls(&self) -> u64 {
        self.calls_ok + self.calls_error + self.calls_panic + self.calls_cancelled
    }

    /// Share of finished calls that did not return normally, in percent.
    pub fn error_rate_percent(&self) -> f64 {
        let calls = self.calls();
        if calls == 0 {
            return 0.0;
        }
        (calls - self.calls_ok) as f64 * 100.0 / calls as f64
    }
}

/// Durations from a histogram; quantiles are estimated inside buckets as
/// Prometheus' `histogram_quantile` does, so they agree with dashboards.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct LatencySummary {
    /// Observations.
    pub count: u64,
    /// Their sum, in seconds.
    pub sum_seconds: f64,
    /// Median, in milliseconds.
    pub p50_ms: Option<f64>,
    /// 95th percentile, in milliseconds.
    pub p95_ms: Option<f64>,
    /// 99th percentile, in milliseconds.
    pub p99_ms: Option<f64>,
}

/// Process-wide figures.
#[derive(Clone, Debug, Default, Serialize)]
#[non_exhaustive]
pub struct ProcessMetrics {
    /// Resident memory, in bytes.
    pub resident_memory_bytes: Option<f64>,
    /// CPU time used since start, in seconds.
    pub cpu_seconds_total: Option<f64>,
}

/// Builds the report from rendered Prometheus text.
#[cfg(feature = "prometheus")]
pub(crate) fn metrics_from_exposition(text: &str) -> MetricsReport {
    use std::collections::BTreeMap;

    let samples = exposition::parse(text);
    let mut functions: BTreeMap<(String, String), FunctionMetrics> = BTreeMap::new();
    let mut buckets: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
    let mut process = ProcessMetrics::default();
    let key = |s: &Sample| -> Option<(String, String)> {
        Some((
            s.label("module")?.to_owned(),
            s.label("function")?.to_owned(),
        ))
    };
    for sample in &samples {
        let name = sample.name.as_str();
        match name {
            "process_resident_memory_bytes" => process.resident_memory_bytes = Some(sample.value),
            "process_cpu_seconds_total" => process.cpu_seconds_total = Some(sample.value),
            _ => {}
        }
        let Some(key) = key(sample) else { continue };
        let entry = || FunctionMetrics {
            module: key.0.clone(),
            function: key.1.clone(),
            ..FunctionMetrics::default()
        };
        if name == names::FUNCTION_CALLS {
            let function = functions.entry(key.clone()).or_insert_with(entry);
            let count = sample.value as u64;
            match sample.label("outcome") {
                Some("ok") => function.calls_ok = count,
                Some("error") => function.calls_error = count,
                Some("panic") => function.calls_panic = count,
                Some("cancelled") => function.calls_cancelled = count,
                _ => {}
            }
        } else if name == names::FUNCTION_IN_FLIGHT {
            functions.entry(key.clone()).or_insert_with(entry).in_flight = sample.value as i64;
        } else if let Some(suffix) = name.strip_prefix(names::FUNCTION_DURATION) {
            let function = functions.entry(key.clone()).or_insert_with(entry);
            match suffix {
                "_count" => function.duration.count = sample.value as u64,
                "_sum" => function.duration.sum_seconds = sample.value,
                "_bucket" => {
                    let bound = match sample.label("le") {
                        Some("+Inf") => f64::INFINITY,
                        Some(le) => le.parse().unwrap_or(f64::INFINITY),
                        None => continue,
                    };
                    buckets.entry(key).or_default().push((bound, sample.value));
                }
                _ => {}
            }
        }
    }
    for (key, mut bounds) in buckets {
        bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
        if let Some(function) = functions.get_mut(&key) {
            let ms = |q| exposition::quantile(&bounds, q).map(|s| s * 1000.0);
            function.duration.p50_ms = ms(0.5);
            function.duration.p95_ms = ms(0.95);
            function.duration.p99_ms = ms(0.99);
        }
    }
    MetricsReport {
        prometheus_enabled: true,
        functions: functions.into_values().collect(),
        process,
    }
}
