//! Thresholds, baseline comparison, the target's metrics and the analysis
//! (`perf_runtime::bench`) on real runs against loopback servers with
//! known behaviour: an injected error rate, an error burst confined to one
//! second, a fixed delay, a delay switched between two runs, and a service
//! built on the runtime whose `/metrics` holds its cache counters.
//! Assertions are on counts, on where the injected behaviour puts the
//! figures (with wide margins), never on how fast this machine is.

mod support;

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use perf_runtime::bench::{
    AnalysisInput, BenchmarkConfig, BenchmarkReport, Finding, Severity, Threshold, ThresholdResult,
    analyze, compare_with_baseline, default_thresholds, evaluate_thresholds, metrics_url_for,
    run_benchmark, scrape_target_metrics,
};
use perf_runtime::prelude::*;
use support::bench_servers::{closed_run, every_nth_fails};
use support::http_server::{TestServer, text};
use tokio::time::Instant;

fn thresholds(texts: &[&str]) -> Vec<Threshold> {
    texts
        .iter()
        .map(|text| text.parse().expect("a valid threshold"))
        .collect()
}

fn show(label: &str, report: &BenchmarkReport, results: &[ThresholdResult], findings: &[Finding]) {
    println!(
        "{label}: requests {}, errors {}, {:.0} req/s, p50 {:?}, p95 {:?}, windows (requests, errors) {:?}",
        report.requests,
        report.errors.total(),
        report.requests_per_second,
        report.latency.p50(),
        report.latency.p95(),
        report
            .windows
            .iter()
            .map(|w| (w.requests, w.errors))
            .collect::<Vec<_>>(),
    );
    for result in results {
        let verdict = if result.passed { "pass" } else { "FAIL" };
        println!("  {verdict} {}: {}", result.threshold, result.measured);
    }
    for finding in findings {
        println!(
            "  [{:?}] {} ({}): {}",
            finding.severity, finding.title, finding.code, finding.figure
        );
    }
}

fn analysis(report: &BenchmarkReport, results: &[ThresholdResult]) -> Vec<Finding> {
    analyze(&AnalysisInput {
        report,
        thresholds: results,
        target_metrics: None,
    })
}

fn with_code<'a>(findings: &'a [Finding], code: &str) -> Vec<&'a Finding> {
    findings.iter().filter(|f| f.code == code).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_error_rate_breaks_the_error_threshold_with_the_exact_rate() {
    let (server, sent_500) = every_nth_fails(10).await;
    let report = closed_run("errors", server.url("/"), 8, Duration::from_secs(2)).await;
    let results = evaluate_thresholds(&thresholds(&["errors<5%", "p95<10s"]), &report);
    let findings = analysis(&report, &results);
    show("every 10th answers 500", &report, &results, &findings);

    let sent_500 = sent_500.load(Ordering::SeqCst) as u64;
    assert_eq!(report.requests as usize, server.hits());
    assert_eq!(report.errors.total(), sent_500);
    // About 10 %: every 10th of the requests the server saw.
    assert_eq!(sent_500, report.requests / 10);
    let errors = &results[0];
    assert!(!errors.passed, "{errors:?}");
    let exact = sent_500 as f64 / report.requests as f64 * 100.0;
    assert_eq!(errors.measured_value, exact);
    assert!(
        errors.measured.ends_with(&format!(
            "({sent_500} of {} requests failed)",
            report.requests
        )),
        "{}",
        errors.measured
    );
    assert!(results[1].passed, "{:?}", results[1]);

    // The analysis: the broken threshold first, the seed's error and
    // success targets missed; the errors are spread evenly, so no burst.
    assert_eq!(findings[0].severity, Severity::Critical);
    assert_eq!(findings[0].code, "threshold_broken");
    assert_eq!(findings[0].title, "Threshold errors<5% broken");
    assert_eq!(
        findings[0].figure,
        format!("errors was {}", errors.measured)
    );
    assert_eq!(with_code(&findings, "threshold_broken").len(), 1);
    for code in ["target_error_rate", "target_success_rate"] {
        let target = with_code(&findings, code);
        assert_eq!(target.len(), 1, "{code}");
        assert_eq!(target[0].severity, Severity::Warning, "{code}");
    }
    assert!(with_code(&findings, "error_burst").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_burst_confined_to_one_second_is_named_with_that_second() {
    // Requests arriving 2.2 s to 2.8 s after the first one fail: inside the
    // window 2 s–3 s of the measured period, with 0.2 s to spare each side
    // (the first request reaches the server a moment after the period
    // starts).
    let first: Arc<OnceLock<Instant>> = Arc::default();
    let failed = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start({
        let first = Arc::clone(&first);
        let failed = Arc::clone(&failed);
        move |_request, _hit| {
            let since_first = first.get_or_init(Instant::now).elapsed();
            let failed = Arc::clone(&failed);
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let burst = Duration::from_millis(2200)..Duration::from_millis(2800);
                if burst.contains(&since_first) {
                    failed.fetch_add(1, Ordering::SeqCst);
                    text(503, "burst")
                } else {
                    text(200, "ok")
                }
            }
        }
    })
    .await;
    let report = run_benchmark(
        BenchmarkConfig::builder("burst", server.url("/"))
            .concurrent_users(4)
            .duration(Duration::from_secs(4))
            .build()
            .expect("valid config"),
    )
    .await
    .expect("run");
    let findings = analysis(&report, &[]);
    show("503 from 2.2 s to 2.8 s", &report, &[], &findings);

    let failed = failed.load(Ordering::SeqCst) as u64;
    assert!(failed > 0, "the burst happened");
    assert_eq!(report.errors.total(), failed);
    // Every failure is in the window 2 s–3 s.
    assert_eq!(report.windows.len(), 4);
    assert_eq!(report.windows[2].errors, failed);
    let bursts = with_code(&findings, "error_burst");
    assert_eq!(bursts.len(), 1, "{findings:#?}");
    assert_eq!(bursts[0].title, "Error burst 2s–3s into the run");
    assert!(
        bursts[0].figure.starts_with(&format!(
            "2s–3s into the run: {failed} of {} requests failed",
            report.windows[2].requests
        )),
        "{}",
        bursts[0].figure
    );
    assert!(
        bursts[0]
            .figure
            .ends_with("against 0% in the rest of the run")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_delay_passes_p95_under_500ms_and_fails_p95_under_5ms() {
    let delay = Duration::from_millis(20);
    let server = TestServer::start(move |_request, _hit| async move {
        tokio::time::sleep(delay).await;
        text(200, "ok")
    })
    .await;
    let report = run_benchmark(
        BenchmarkConfig::builder("fixed-delay", server.url("/api/chat"))
            .concurrent_users(8)
            .duration(Duration::from_secs(2))
            .build()
            .expect("valid config"),
    )
    .await
    .expect("run");
    let mut checks = thresholds(&["p95<500ms", "p95<5ms", "p50 >= 20ms", "errors<1%"]);
    // The runtime configuration's defaults: p95 < 500 ms, errors < 1 %.
    let config = PerfConfig::default();
    checks.extend(default_thresholds(
        config.response_time_threshold,
        config.error_rate_threshold,
    ));
    let results = evaluate_thresholds(&checks, &report);
    let findings = analysis(&report, &results);
    show("fixed 20 ms delay", &report, &results, &findings);

    let verdicts: Vec<(&str, bool)> = results
        .iter()
        .map(|r| (r.threshold.as_str(), r.passed))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("p95<500ms", true),
            ("p95<5ms", false),
            ("p50>=20ms", true),
            ("errors<1%", true),
            ("p95<500ms", true),
            ("errors<1%", true),
        ]
    );
    // The measured p95 is the report's, at or above the injected delay.
    assert_eq!(
        results[1].measured_value,
        report.latency.p95_us as f64 / 1e3
    );
    assert!(results[1].measured_value >= 20.0, "{:?}", results[1]);

    let broken = with_code(&findings, "threshold_broken");
    assert_eq!(broken.len(), 1);
    assert_eq!(broken[0].title, "Threshold p95<5ms broken");
    // 20 ms answers meet the seed's latency targets by far.
    for code in ["target_p50", "target_p95", "target_p99"] {
        assert_eq!(
            with_code(&findings, code)[0].severity,
            Severity::Info,
            "{code}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slower_run_regresses_against_a_faster_baseline() {
    // One server, so both runs have the same target; the delay is switched
    // between them.
    let delay_ms = Arc::new(AtomicU64::new(5));
    let server = TestServer::start({
        let delay_ms = Arc::clone(&delay_ms);
        move |_request, _hit| {
            let delay = Duration::from_millis(delay_ms.load(Ordering::SeqCst));
            async move {
                tokio::time::sleep(delay).await;
                text(200, "ok")
            }
        }
    })
    .await;
    let config = BenchmarkConfig::builder("baseline", server.url("/api/chat"))
        .concurrent_users(4)
        .duration(Duration::from_secs(1))
        .build()
        .expect("valid config");
    let fast = run_benchmark(config.clone()).await.expect("fast run");
    delay_ms.store(100, Ordering::SeqCst);
    let slow = run_benchmark(config).await.expect("slow run");

    // As CI would: the baseline saved as JSON and read back.
    let baseline = BenchmarkReport::from_json(&fast.to_json()).expect("reads back");
    let comparison = compare_with_baseline(&baseline, &slow, 0.2);
    for change in &comparison.changes {
        println!(
            "  {}{}",
            change.describe(),
            if change.regressed { "  REGRESSED" } else { "" }
        );
    }
    let regressed: Vec<&str> = comparison.regressed().map(|c| c.metric.as_str()).collect();
    // 5 ms -> 100 ms answers: the latencies and the throughput of 4 users.
    for metric in ["p50", "p95", "p99", "requests_per_second"] {
        assert!(regressed.contains(&metric), "{metric} in {regressed:?}");
    }
    assert!(!regressed.contains(&"error_rate"));
    let p95 = comparison
        .changes
        .iter()
        .find(|c| c.metric == "p95")
        .expect("p95");
    assert!(p95.current >= 100.0 && p95.change > 1.0, "{p95:?}");
    assert!(comparison.warnings.is_empty(), "{:?}", comparison.warnings);

    // The other way round nothing got slower.
    let reverse = compare_with_baseline(&slow, &fast, 0.2);
    assert_eq!(reverse.regressions, 0, "{:?}", reverse.changes);
}

static LOOKUP_BODY_RUNS: AtomicU64 = AtomicU64::new(0);

/// The cached function of the service: its body runs once per key.
#[fast_endpoint(cache_ttl = 60, tier = "l1")]
async fn lookup_item(key: u64) -> u64 {
    LOOKUP_BODY_RUNS.fetch_add(1, Ordering::SeqCst);
    key * 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_hit_rate_of_a_runtime_service_is_read_from_its_metrics() {
    let perf = perf_runtime::init(
        PerfConfig::builder()
            .enable_monitoring(false)
            .build()
            .expect("valid config"),
    )
    .await
    .expect("init");
    // A service built on the runtime: `/metrics` renders its recorder,
    // `/api/item` serves a cached lookup. Hits 2k and 2k+1 ask for the same
    // key, so about every second call is served from the cache.
    let api_calls = Arc::new(AtomicU64::new(0));
    let server = TestServer::start({
        let perf = perf.clone();
        let api_calls = Arc::clone(&api_calls);
        move |request, hit| {
            let perf = perf.clone();
            let api_calls = Arc::clone(&api_calls);
            async move {
                if request.uri().path() == "/metrics" {
                    text(200, perf.render_prometheus().expect("prometheus is on"))
                } else {
                    api_calls.fetch_add(1, Ordering::SeqCst);
                    text(200, lookup_item(hit as u64 / 2).await.to_string())
                }
            }
        }
    })
    .await;
    let target = server.url("/api/item");
    let metrics_url = metrics_url_for(&target).expect("an http URL");
    assert_eq!(metrics_url, server.url("/metrics"));

    let before = scrape_target_metrics(&metrics_url, Duration::from_secs(5))
        .await
        .expect("scrape before");
    let runs_before = LOOKUP_BODY_RUNS.load(Ordering::SeqCst);
    let report = run_benchmark(
        BenchmarkConfig::builder("cached", target)
            .concurrent_users(4)
            .duration(Duration::from_secs(1))
            .build()
            .expect("valid config"),
    )
    .await
    .expect("run");
    let after = scrape_target_metrics(&metrics_url, Duration::from_secs(5))
        .await
        .expect("scrape after");
    let during = after.since(&before);
    let calls = api_calls.load(Ordering::SeqCst);
    let body_runs = LOOKUP_BODY_RUNS.load(Ordering::SeqCst) - runs_before;
    println!(
        "cached lookups: {calls} calls, {body_runs} ran the body; scraped: {} calls, {} hits, \
         {} origin, rate {:?}, resident memory {:?} bytes",
        during.cache_lookups,
        during.cache_hits,
        during.cache_origin_calls,
        during.cache_hit_rate(),
        during.resident_memory_bytes
    );

    // Exactly what the service did, read back from its /metrics.
    assert_eq!(report.requests, calls);
    assert_eq!(during.cache_lookups, calls as f64);
    assert_eq!(during.cache_origin_calls, body_runs as f64);
    assert_eq!(during.cache_hits, (calls - body_runs) as f64);
    let rate = during.cache_hit_rate().expect("calls were made");
    assert_eq!(rate, (calls - body_runs) as f64 / calls as f64);
    // Each key twice: about half (a key's two calls may even share one
    // computation, still one body run).
    assert!((0.3..=0.7).contains(&rate), "{rate}");
    assert!(
        during
            .resident_memory_bytes
            .is_some_and(|bytes| bytes > 0.0)
    );

    let findings = analyze(&AnalysisInput {
        report: &report,
        thresholds: &[],
        target_metrics: Some(&during),
    });
    for finding in &findings {
        println!(
            "  [{:?}] {} ({}): {}",
            finding.severity, finding.title, finding.code, finding.figure
        );
    }
    let low = with_code(&findings, "low_cache_hit_rate");
    assert_eq!(low.len(), 1, "{findings:#?}");
    assert_eq!(low[0].severity, Severity::Warning);
    assert!(
        low[0].figure.contains(&format!(
            "of {calls} cached calls served from the cache ({body_runs} ran the function body)"
        )),
        "{}",
        low[0].figure
    );
    // Memory is not judged from one run.
    assert!(findings.iter().all(|f| !f.code.contains("memory")));

    // A URL that does not serve metrics is an error naming it.
    let wrong = server.url("/api/item");
    let error = scrape_target_metrics(&wrong, Duration::from_secs(5))
        .await
        .expect_err("not Prometheus text");
    println!("{error}");
    assert!(error.to_string().contains(&wrong), "{error}");
    perf_runtime::shutdown().await;
}
