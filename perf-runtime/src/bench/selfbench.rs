//! The self-benchmark (`ENABLE_BENCHMARKING`): every
//! `AUTO_BENCHMARK_INTERVAL`, each of `BENCHMARK_ENDPOINTS` in turn gets a
//! short constant-rate run, and its last result is kept for
//! `Perf::last_self_benchmarks`, `/status` and the
//! `perf_self_benchmark_*` metrics.
//!
//! It must never hurt the service it measures, hence:
//! - a low constant rate (`BENCHMARK_RATE`, 2 requests/s by default) on the
//!   open model, with [`SELF_BENCHMARK_USERS`] connections, so at most that
//!   many requests are ever in flight, whatever the endpoint does;
//! - one endpoint at a time, and a pause of `AUTO_BENCHMARK_INTERVAL`
//!   between the end of one round and the start of the next, so slow runs
//!   never pile up;
//! - a thread and a single-threaded Tokio runtime of its own: the load
//!   generator takes no worker of the service's runtime, and when the
//!   runtime stops that runtime is shut down, which drops a run's users
//!   mid-run: no request is sent after `Perf::shutdown` returns.
//!
//! The first round starts `AUTO_BENCHMARK_INTERVAL` after start-up, but at
//! most [`SELF_BENCHMARK_FIRST_ROUND_MAX_DELAY`] after it: `init` usually
//! runs before the service listens, and an hourly self-benchmark should not
//! leave the status empty for an hour.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use url::Url;

use super::config::display_target;
use super::report::now_rfc3339;
use super::{BenchmarkConfig, BenchmarkReport, DEFAULT_REQUEST_TIMEOUT, run_benchmark};
use crate::config::{PerfConfig, SecretUrl};
use crate::monitor::{SelfBenchmarkOutcome, SelfBenchmarkResult, names};

/// Connections (virtual users) of a self-benchmark run: at most this many of
/// its requests are in flight at once.
pub const SELF_BENCHMARK_USERS: usize = 2;

/// The longest wait from start-up to the first self-benchmark round (a
/// shorter `AUTO_BENCHMARK_INTERVAL` starts it sooner).
pub const SELF_BENCHMARK_FIRST_ROUND_MAX_DELAY: Duration = Duration::from_secs(30);

/// Sent with every self-benchmark request, so the service's access logs can
/// tell its own measurement from real traffic.
const USER_AGENT: &str = concat!("perf-self-benchmark/", env!("CARGO_PKG_VERSION"));

/// How long stopping waits for the self-benchmark runtime's blocking work
/// (a DNS lookup) before leaving it behind.
const RUNTIME_SHUTDOWN_WAIT: Duration = Duration::from_secs(1);

/// The last result of each configured endpoint, by its position in
/// `BENCHMARK_ENDPOINTS` (two entries may differ only in their query
/// string, which is not shown).
pub(crate) type Results = Arc<RwLock<Vec<Option<SelfBenchmarkResult>>>>;

/// What one round does.
struct Plan {
    endpoints: Vec<SecretUrl>,
    rate: f64,
    duration: Duration,
    interval: Duration,
}

/// Starts the self-benchmark loop on a thread of its own. The returned task
/// ends once that thread has stopped: after `stop` changes (or its sender
/// is dropped) and the thread's runtime, with any run in progress, is shut
/// down.
pub(crate) fn spawn_self_benchmark(
    config: &PerfConfig,
    results: Results,
    mut stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let plan = Plan {
        endpoints: config.benchmark_endpoints.clone(),
        rate: config.benchmark_rate,
        duration: config.benchmark_duration,
        interval: config.auto_benchmark_interval,
    };
    {
        let mut slots = results.write().unwrap_or_else(PoisonError::into_inner);
        slots.clear();
        slots.resize(plan.endpoints.len(), None);
    }
    let (done, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("perf-self-benchmark".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(error) => {
                    tracing::warn!(%error, "self-benchmark not started: no runtime for it");
                    return;
                }
            };
            runtime.block_on(async {
                tokio::select! {
                    () = rounds(&plan, &results) => {}
                    _ = stop.changed() => {}
                }
            });
            // Dropping the runtime drops the users of a run cut short, with
            // their connections: nothing more is sent.
            runtime.shutdown_timeout(RUNTIME_SHUTDOWN_WAIT);
            let _ = done.send(());
        });
    if let Err(error) = thread {
        tracing::warn!(%error, "self-benchmark not started: no thread for it");
    }
    // Also ends when the thread could not start or ended early (the sender
    // is dropped then).
    tokio::spawn(async move {
        let _ = stopped.await;
    })
}

/// Rounds until the task is dropped: every endpoint in turn, then the pause.
async fn rounds(plan: &Plan, results: &Results) {
    tokio::time::sleep(plan.interval.min(SELF_BENCHMARK_FIRST_ROUND_MAX_DELAY)).await;
    loop {
        for (index, endpoint) in plan.endpoints.iter().enumerate() {
            let result = run_once(endpoint, plan.rate, plan.duration).await;
            record_metrics(&result);
            let mut slots = results.write().unwrap_or_else(PoisonError::into_inner);
            if let Some(slot) = slots.get_mut(index) {
                *slot = Some(result);
            }
        }
        tokio::time::sleep(plan.interval).await;
    }
}

/// One constant-rate run against `endpoint`, as a result whatever happens.
async fn run_once(endpoint: &SecretUrl, rate: f64, duration: Duration) -> SelfBenchmarkResult {
    let started_at = now_rfc3339();
    let shown = Url::parse(endpoint.expose())
        .map_or_else(|_| endpoint.redacted(), |url| display_target(&url));
    let config = BenchmarkConfig::builder("self-benchmark", endpoint.expose())
        .concurrent_users(SELF_BENCHMARK_USERS)
        .rate(rate)
        .duration(duration)
        // A request slower than the whole run is a timeout, so a hanging
        // endpoint cannot hold a round for the default 30 s per request.
        .request_timeout(duration.min(DEFAULT_REQUEST_TIMEOUT))
        .header("user-agent", USER_AGENT)
        .build();
    let outcome = match config {
        Ok(config) => run_benchmark(config).await,
        Err(error) => Err(error),
    };
    match outcome {
        Ok(report) => {
            let result = from_report(started_at, &report);
            tracing::info!(
                endpoint = %result.endpoint,
                requests = result.requests,
                error_rate = result.error_rate,
                p95_ms = result.p95_ms,
                dropped = result.dropped,
                "self-benchmark run finished"
            );
            result
        }
        Err(error) => {
            tracing::warn!(endpoint = %shown, %error, "self-benchmark run failed");
            SelfBenchmarkResult {
                endpoint: shown,
                started_at,
                outcome: SelfBenchmarkOutcome::Failed,
                requests: 0,
                successes: 0,
                error_rate: 1.0,
                p50_ms: None,
                p95_ms: None,
                p99_ms: None,
                requests_per_second: 0.0,
                dropped: 0,
                error: Some(error.to_string()),
            }
        }
    }
}

fn from_report(started_at: String, report: &BenchmarkReport) -> SelfBenchmarkResult {
    let latency = &report.latency;
    let ms = |us: u64| (latency.count > 0).then(|| us as f64 / 1000.0);
    SelfBenchmarkResult {
        endpoint: report.target.clone(),
        started_at,
        outcome: SelfBenchmarkOutcome::Ok,
        requests: report.requests,
        successes: report.successes,
        error_rate: report.error_rate(),
        p50_ms: ms(latency.p50_us),
        p95_ms: ms(latency.p95_us),
        p99_ms: ms(latency.p99_us),
        requests_per_second: report.requests_per_second,
        dropped: report.dropped,
        error: None,
    }
}

/// The gauges of the last run and the run counter; latency is NaN when the
/// run got no answer, rather than a figure of an older run.
fn record_metrics(result: &SelfBenchmarkResult) {
    let endpoint = result.endpoint.clone();
    // `percentile`, not `quantile`: Prometheus reserves that label for
    // summaries (promtool refuses it on a gauge).
    for (percentile, ms) in [
        ("p50", result.p50_ms),
        ("p95", result.p95_ms),
        ("p99", result.p99_ms),
    ] {
        metrics::gauge!(
            names::SELF_BENCHMARK_LATENCY,
            "endpoint" => endpoint.clone(),
            "percentile" => percentile
        )
        .set(ms.map_or(f64::NAN, |ms| ms / 1000.0));
    }
    metrics::gauge!(names::SELF_BENCHMARK_ERROR_RATIO, "endpoint" => endpoint.clone())
        .set(result.error_rate);
    metrics::gauge!(names::SELF_BENCHMARK_REQUESTS_PER_SECOND, "endpoint" => endpoint.clone())
        .set(result.requests_per_second);
    metrics::counter!(
        names::SELF_BENCHMARK_RUNS,
        "endpoint" => endpoint,
        "outcome" => result.outcome.as_str()
    )
    .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_refused_endpoint_is_a_failed_result_without_its_secrets() {
        // A port nobody listens on: bound, then closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let endpoint: SecretUrl = format!("http://ops:hunter2@127.0.0.1:{port}/health?key=k")
            .parse()
            .expect("url");
        let result = run_once(&endpoint, 2.0, Duration::from_secs(1)).await;
        assert_eq!(result.endpoint, format!("http://127.0.0.1:{port}/health"));
        assert_eq!(result.outcome, SelfBenchmarkOutcome::Failed);
        assert_eq!((result.requests, result.error_rate), (0, 1.0));
        assert_eq!(result.p50_ms, None);
        let error = result.error.as_deref().expect("an error message");
        assert!(error.contains("cannot connect"), "{error}");
        let json = serde_json::to_string(&result).expect("serialises");
        assert!(
            !json.contains("hunter2") && !json.contains("key=k"),
            "{json}"
        );
    }
}
