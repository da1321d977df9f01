//! The self-benchmark (`ENABLE_BENCHMARKING`): a runtime that loads a
//! loopback server with a fixed 20 ms delay and a port where nothing
//! listens, keeps the last result of each, shows them in metrics and
//! status, and stops loading when the runtime shuts down. Assertions are on
//! counts and on where the injected delay puts the median.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use perf_runtime::monitor::{SelfBenchmarkOutcome, SelfBenchmarkResult};
use perf_runtime::{Perf, PerfConfig};
use support::http_server::{TestServer, text};
use tokio::time::Instant;

const RATE: f64 = 20.0;
const DURATION: Duration = Duration::from_secs(2);
/// Also the delay before the first round, and the pause between rounds.
const INTERVAL: Duration = Duration::from_secs(2);
const DELAY: Duration = Duration::from_millis(20);
/// Generous bound on every wait: the machine may be busy with other tests.
const PATIENCE: Duration = Duration::from_secs(60);

async fn wait_for<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "waited {PATIENCE:?} for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn show(result: &SelfBenchmarkResult) {
    println!(
        "{}: {:?}, started {}, requests {} (ok {}), dropped {}, error rate {}, \
         p50 {:?} ms, p95 {:?} ms, p99 {:?} ms, {:.1} req/s, error {:?}",
        result.endpoint,
        result.outcome,
        result.started_at,
        result.requests,
        result.successes,
        result.dropped,
        result.error_rate,
        result.p50_ms,
        result.p95_ms,
        result.p99_ms,
        result.requests_per_second,
        result.error,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_benchmark_measures_each_endpoint_and_stops_with_the_runtime() {
    let without_agent = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start({
        let without_agent = Arc::clone(&without_agent);
        move |request, _hit| {
            let tagged = request
                .headers()
                .get("user-agent")
                .and_then(|agent| agent.to_str().ok())
                .is_some_and(|agent| agent.starts_with("perf-self-benchmark/"));
            if !tagged {
                without_agent.fetch_add(1, Ordering::SeqCst);
            }
            async move {
                tokio::time::sleep(DELAY).await;
                text(200, "ok")
            }
        }
    })
    .await;
    let served = server.url("/api/chat");
    let refused = support::with_dead_port(&server.url("/health"));
    let config = PerfConfig::builder()
        .enable_monitoring(false)
        .enable_benchmarking(true)
        .auto_benchmark_interval(INTERVAL)
        .benchmark_duration(DURATION)
        .benchmark_rate(RATE)
        // The refused one first: when the served one has a result, the
        // round is over, and the next starts INTERVAL later.
        .benchmark_endpoint(refused.clone())
        .benchmark_endpoint(format!(
            "http://probe:hunter2@{}/api/chat?key=secret",
            server.host()
        ))
        .build()
        .expect("valid config");
    let perf = Perf::start(config).await.expect("runtime starts");

    let status = perf.get_status().await;
    let component = status
        .components
        .iter()
        .find(|c| c.name == "benchmarking")
        .expect("benchmarking listed");
    println!("component: {} ({})", component.enabled, component.detail);
    assert!(component.enabled);
    assert_eq!(
        component.detail,
        "2 endpoints at 20 req/s for 2 s each, every 2 s"
    );
    assert!(
        perf.last_self_benchmarks().is_empty(),
        "the first round waits for the interval"
    );

    let results = wait_for("a result for both endpoints", || {
        let results = perf.last_self_benchmarks();
        (results.len() == 2).then_some(results)
    })
    .await;
    // The round is over and the next one is INTERVAL away: the server has
    // seen exactly this round's requests.
    let hits_after_round = server.hits();
    for result in &results {
        show(result);
    }
    let (failed, ok) = (&results[0], &results[1]);

    // The served endpoint: shown without credentials or query string.
    assert_eq!(ok.endpoint, served);
    assert_eq!(ok.outcome, SelfBenchmarkOutcome::Ok);
    assert_eq!(ok.error, None);
    // The open model's schedule holds rate × duration requests; those not
    // sent are counted as dropped, never lost.
    let due = (RATE * DURATION.as_secs_f64()) as u64;
    assert_eq!(ok.requests + ok.dropped, due);
    assert!(ok.requests >= due * 3 / 4, "{} of {due} sent", ok.requests);
    assert_eq!(ok.requests as usize, hits_after_round);
    assert_eq!(ok.successes, ok.requests);
    assert_eq!(ok.error_rate, 0.0);
    let p50 = ok.p50_ms.expect("answers were timed");
    assert!(p50 >= DELAY.as_secs_f64() * 1000.0, "p50 {p50} ms");
    assert!(ok.p95_ms >= ok.p50_ms && ok.p99_ms >= ok.p95_ms);
    assert_eq!(
        ok.requests_per_second,
        ok.requests as f64 / DURATION.as_secs_f64()
    );
    assert_eq!(without_agent.load(Ordering::SeqCst), 0);

    // The refused endpoint: a failed run that says why.
    assert_eq!(failed.endpoint, refused);
    assert_eq!(failed.outcome, SelfBenchmarkOutcome::Failed);
    assert_eq!((failed.requests, failed.error_rate), (0, 1.0));
    assert_eq!(failed.p50_ms, None);
    let error = failed.error.as_deref().expect("an error message");
    assert!(
        error.contains("cannot connect") && error.to_lowercase().contains("refused"),
        "{error}"
    );

    // Metrics: the gauges of the last run and one run of each outcome.
    let metrics = perf.render_prometheus().expect("ENABLE_PROMETHEUS is on");
    let value = |name: &str, labels: &[(&str, &str)]| {
        support::sample(&metrics, name, labels)
            .unwrap_or_else(|| panic!("{name}{labels:?} in\n{metrics}"))
    };
    for (percentile, ms) in [("p50", ok.p50_ms), ("p95", ok.p95_ms), ("p99", ok.p99_ms)] {
        let labels = [("endpoint", served.as_str()), ("percentile", percentile)];
        let seconds = value("perf_self_benchmark_latency_seconds", &labels);
        let ms = ms.expect("a served quantile");
        assert!(
            (seconds * 1000.0 - ms).abs() < 1e-9,
            "{percentile}: {seconds} s, {ms} ms"
        );
        let labels = [("endpoint", refused.as_str()), ("percentile", percentile)];
        assert!(value("perf_self_benchmark_latency_seconds", &labels).is_nan());
    }
    let served_label = [("endpoint", served.as_str())];
    let refused_label = [("endpoint", refused.as_str())];
    assert_eq!(value("perf_self_benchmark_error_ratio", &served_label), 0.0);
    assert_eq!(
        value("perf_self_benchmark_error_ratio", &refused_label),
        1.0
    );
    assert_eq!(
        value("perf_self_benchmark_requests_per_second", &served_label),
        ok.requests_per_second
    );
    assert_eq!(
        value("perf_self_benchmark_requests_per_second", &refused_label),
        0.0
    );
    let runs = |endpoint: &str, outcome: &str| {
        support::sample(
            &metrics,
            "perf_self_benchmark_runs_total",
            &[("endpoint", endpoint), ("outcome", outcome)],
        )
    };
    assert_eq!(runs(&served, "ok"), Some(1.0));
    assert_eq!(runs(&refused, "failed"), Some(1.0));
    assert_eq!(runs(&served, "failed"), None);
    assert!(!metrics.contains("hunter2") && !metrics.contains("key=secret"));
    if let Some(verdict) = support::promtool_check(&metrics) {
        verdict.expect("promtool accepts the exposition");
    }

    // Status: the same results, in the configured order; the password is
    // masked in the configuration it shows.
    let status = serde_json::to_value(perf.get_status().await).expect("status serialises");
    let entries = status["self_benchmark"].as_array().expect("self_benchmark");
    println!("status self_benchmark: {}", status["self_benchmark"]);
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["endpoint"], refused.as_str());
    assert_eq!(entries[0]["outcome"], "failed");
    assert_eq!(entries[1]["endpoint"], served.as_str());
    assert_eq!(entries[1]["outcome"], "ok");
    assert_eq!(entries[1]["requests"], ok.requests);
    assert_eq!(entries[1]["p50_ms"], p50);
    let json = status.to_string();
    assert!(!json.contains("hunter2"), "{json}");
    assert!(
        json.contains("http://probe:***@127.0.0.1"),
        "the configured endpoint, masked: {json}"
    );

    // Shutdown in the middle of the next round stops its load at once.
    wait_for("the second round to start", || {
        (server.hits() > hits_after_round).then_some(())
    })
    .await;
    perf.shutdown().await;
    // A request already written may still reach the server; then nothing.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let settled = server.hits();
    tokio::time::sleep(Duration::from_secs(1)).await;
    println!(
        "hits: {hits_after_round} after the first round, {settled} after shutdown, {} a second later",
        server.hits()
    );
    assert_eq!(server.hits(), settled, "requests after shutdown");
    assert!(
        settled < hits_after_round + due as usize,
        "the second round was cut short"
    );
    // The served run cut short leaves its last complete result in place
    // (the refused endpoint, first in the round, has a new one).
    assert_eq!(perf.last_self_benchmarks()[1], results[1]);
}
