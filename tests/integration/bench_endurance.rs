//! Endurance runs (`perf_runtime::bench::run_endurance`) against loopback
//! servers with injected behaviour over time: latency that grows with every
//! second of the run, a steady one, a `/metrics` whose resident memory grows
//! with every scrape, and a metrics URL nothing listens on. Runs are a few
//! seconds in half-second windows (10 windows: the first and last two are
//! compared). Assertions are on counts and on drift far from the tolerance,
//! never on this machine's speed.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use perf_runtime::bench::{
    BenchError, BenchmarkConfig, ENDURANCE_SCHEMA_VERSION, EndurancePlan, EnduranceReport,
    Progress, run_endurance,
};
use support::http_server::{TestServer, text};
use tokio::time::Instant;

const WINDOW: Duration = Duration::from_millis(500);
const RUN: Duration = Duration::from_secs(5);

fn show(label: &str, report: &EnduranceReport) {
    println!(
        "{label}: {} requests in {} windows, memory samples {}, gaps {} ({:?}), no verdict {:?}",
        report.run.requests,
        report.run.windows.len(),
        report.memory.len(),
        report.memory_gaps,
        report.last_scrape_error,
        report.no_verdict,
    );
    println!(
        "  window p95s {:?}",
        report
            .run
            .windows
            .iter()
            .map(|w| w.latency.p95())
            .collect::<Vec<_>>()
    );
    for drift in &report.drift {
        println!(
            "  {}: {:.0} -> {:.0} ({:+.0} %){}{}",
            drift.metric,
            drift.first,
            drift.last,
            drift.change * 100.0,
            drift
                .slope_per_hour
                .map(|slope| format!(", {slope:.0}/h"))
                .unwrap_or_default(),
            if drift.flagged { "  FLAGGED" } else { "" }
        );
    }
}

fn config(url: String, users: usize) -> BenchmarkConfig {
    BenchmarkConfig::builder("endurance", url)
        .concurrent_users(users)
        .duration(RUN)
        .build()
        .expect("valid config")
}

fn flagged(report: &EnduranceReport) -> Vec<&str> {
    report
        .flagged()
        .into_iter()
        .map(|drift| drift.metric.as_str())
        .collect()
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_that_grows_over_the_run_is_flagged() {
    // 10 ms, plus 20 ms for every second since the server started: about
    // 10-30 ms in the first fifth, 90-110 ms in the last.
    let started = Instant::now();
    let server = TestServer::start(move |_request, _hit| async move {
        let delay = Duration::from_millis(10) + started.elapsed() * 20 / 1000;
        tokio::time::sleep(delay).await;
        text(200, "ok")
    })
    .await;
    let plan = EndurancePlan::new().with_window(WINDOW);
    let report = run_endurance(config(server.url("/"), 4), plan, &Progress::new())
        .await
        .expect("run");
    show("latency +20 ms per second", &report);

    assert_eq!(report.schema_version, ENDURANCE_SCHEMA_VERSION);
    assert_eq!(report.run.settings.window_ms, 500);
    assert_eq!(report.run.windows.len(), 10);
    assert_eq!(report.compared_windows, 2);
    assert_eq!(report.no_verdict, None);
    let p95 = report.drift_of("p95_us").expect("compared");
    // About +300 %; the tolerance is 25 %.
    assert!(p95.flagged && p95.change > 1.0, "{p95:?}");
    assert!(flagged(&report).contains(&"p50_us"));
    // The closed model slows down with the server: throughput fell too.
    assert!(flagged(&report).contains(&"requests_per_second"));
    assert!(!flagged(&report).contains(&"error_rate"));
    // Nothing sampled without a metrics URL.
    assert!(report.memory.is_empty() && report.memory_gaps == 0);
    assert_eq!(report.metrics_url, None);
    assert!(report.drift_of("resident_memory_bytes").is_none());

    let json = report.to_json();
    // Compared without the floats: serde_json may read one back a unit in
    // the last place off.
    let read = EnduranceReport::from_json(&json).expect("parses");
    let outline = |report: &EnduranceReport| {
        let drift: Vec<_> = report
            .drift
            .iter()
            .map(|d| (d.metric.clone(), d.flagged))
            .collect();
        (
            drift,
            report.run.requests,
            report.run.windows.len(),
            report.memory.clone(),
            report.compared_windows,
        )
    };
    assert_eq!(outline(&read), outline(&report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_steady_server_flags_nothing() {
    let server = TestServer::start(|_request, _hit| async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        text(200, "ok")
    })
    .await;
    // A wide tolerance: the windows hold 20 answers each, so a scheduling
    // hiccup of this shared machine may move one p99; drift of a steady
    // server stays far under +50 %.
    let plan = EndurancePlan::new()
        .with_window(WINDOW)
        .with_drift_tolerance(0.5);
    let report = run_endurance(config(server.url("/"), 4), plan, &Progress::new())
        .await
        .expect("run");
    show("steady 100 ms", &report);

    assert_eq!(report.no_verdict, None);
    let compared: Vec<&str> = report.drift.iter().map(|d| d.metric.as_str()).collect();
    assert_eq!(
        compared,
        [
            "p50_us",
            "p95_us",
            "p99_us",
            "requests_per_second",
            "error_rate"
        ]
    );
    assert!(flagged(&report).is_empty(), "{:?}", report.drift);
    assert_eq!(report.run.errors.total(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growing_resident_memory_is_sampled_every_window_and_flagged() {
    // /metrics: 100 MB plus 20 MB per scrape; anything else: 10 ms.
    let scrapes = Arc::new(AtomicU64::new(0));
    let server = TestServer::start({
        let scrapes = Arc::clone(&scrapes);
        move |request, _hit| {
            let scrapes = Arc::clone(&scrapes);
            async move {
                if request.uri().path() == "/metrics" {
                    let scrape = scrapes.fetch_add(1, Ordering::SeqCst);
                    let bytes = 100_000_000 + 20_000_000 * scrape;
                    return text(
                        200,
                        format!(
                            "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
                             # TYPE process_resident_memory_bytes gauge\n\
                             process_resident_memory_bytes {bytes}\n"
                        ),
                    );
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
                text(200, "ok")
            }
        }
    })
    .await;
    let run = Duration::from_secs(3);
    let plan = EndurancePlan::new()
        .with_window(WINDOW)
        .with_metrics_url(server.url("/metrics"));
    let config = BenchmarkConfig::builder("endurance", server.url("/api"))
        .concurrent_users(2)
        .duration(run)
        .build()
        .expect("valid config");
    let report = run_endurance(config, plan, &Progress::new())
        .await
        .expect("run");
    show("memory +20 MB per scrape", &report);

    // One scrape at the start and one every window: 3 s / 500 ms + 1.
    let attempts = report.memory.len() as u64 + report.memory_gaps;
    assert_eq!(attempts, 7, "{:?}", report.last_scrape_error);
    assert!(report.memory.len() >= 2, "{:?}", report.last_scrape_error);
    // In time order, each sample 20 MB (or a multiple) above the last.
    for pair in report.memory.windows(2) {
        assert!(pair[0].at_ms < pair[1].at_ms, "{pair:?}");
        assert!(pair[1].resident_bytes >= pair[0].resident_bytes + 20_000_000);
    }
    let memory = report
        .drift_of("resident_memory_bytes")
        .expect("memory compared");
    assert!(memory.flagged, "{memory:?}");
    assert!(memory.slope_per_hour.expect("a slope") > 0.0);
    assert_eq!(
        report.metrics_url.as_deref(),
        Some(server.url("/metrics").as_str())
    );
    // The load path stayed steady: only memory drifted.
    assert!(report.run.requests > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusing_metrics_url_leaves_gaps_and_the_run_still_reports() {
    let server = TestServer::start(|_request, _hit| async { text(200, "ok") }).await;
    let metrics_url = format!("http://127.0.0.1:{}/metrics", closed_port());
    let plan = EndurancePlan::new()
        .with_window(WINDOW)
        .with_metrics_url(metrics_url.clone());
    let config = BenchmarkConfig::builder("endurance", server.url("/"))
        .concurrent_users(2)
        .duration(Duration::from_secs(2))
        .build()
        .expect("valid config");
    let report = run_endurance(config, plan, &Progress::new())
        .await
        .expect("a refused scrape never fails the run");
    show("metrics refused", &report);

    assert!(report.memory.is_empty());
    // 2 s / 500 ms + 1 scrapes, every one a gap.
    assert_eq!(report.memory_gaps, 5);
    let reason = report.last_scrape_error.as_deref().expect("a reason");
    assert!(
        reason.contains(&metrics_url) && reason.contains("cannot connect"),
        "{reason}"
    );
    assert!(report.run.requests > 0);
    assert_eq!(report.run.errors.total(), 0);
    // Four windows: too few for a verdict, and the report says so.
    assert_eq!(report.run.windows.len(), 4);
    assert!(report.drift.is_empty());
    let why = report.no_verdict.as_deref().expect("no verdict");
    assert!(why.contains("at least 5"), "{why}");
}

#[tokio::test]
async fn bad_plans_are_refused_before_anything_is_sent() {
    // Nothing listens on port 9 here: each error comes before a connection.
    let config = || config("http://127.0.0.1:9/".to_owned(), 1);
    let cases = [
        (
            EndurancePlan::new().with_window(Duration::from_millis(10)),
            "window",
        ),
        (
            EndurancePlan::new().with_drift_tolerance(-1.0),
            "drift_tolerance",
        ),
        (
            EndurancePlan::new().with_metrics_url("https://127.0.0.1:9/metrics"),
            "metrics_url",
        ),
    ];
    for (plan, expected) in cases {
        let error = run_endurance(config(), plan, &Progress::new())
            .await
            .expect_err("a bad plan");
        match &error {
            BenchError::InvalidConfig { field, .. } => assert_eq!(*field, expected, "{error}"),
            other => panic!("expected `{expected}` to be refused, got {other:?}"),
        }
    }
}
