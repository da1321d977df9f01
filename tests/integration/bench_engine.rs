//! The load-testing engine (`perf_runtime::bench`) against loopback servers
//! with known behaviour: a fixed delay, an injected one-second stall, an
//! injected error rate; and `run_fn` on an in-process function. Assertions
//! are on counts and on where the injected delays put the percentiles,
//! never on how fast this machine is.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use perf_runtime::bench::{
    BenchError, BenchmarkConfig, BenchmarkReport, LoadModel, SCHEMA_VERSION, TargetKind,
    run_benchmark, run_fn,
};
use support::bench_servers::{closed_run, every_nth_fails};
use support::http_server::{TestServer, text};
use tokio::time::Instant;

/// Above the injected delay, what a loaded 2-core machine may add to a
/// median (client and server share the cores with the other tests).
const MARGIN: Duration = Duration::from_millis(100);

fn show(label: &str, report: &BenchmarkReport) {
    let l = &report.latency;
    println!(
        "{label}: requests {} (warm-up {}), dropped {}, late {}, {:.0} req/s, errors {:?}, \
         p50 {:?} p90 {:?} p95 {:?} p99 {:?} p99.9 {:?} max {:?}, windows {:?}",
        report.requests,
        report.warmup_requests,
        report.dropped,
        report.late,
        report.requests_per_second,
        report.errors,
        l.p50(),
        l.p90(),
        l.p95(),
        l.p99(),
        l.p999(),
        l.max(),
        report
            .windows
            .iter()
            .map(|w| w.requests)
            .collect::<Vec<_>>(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_delay_counts_exactly_and_puts_the_median_at_the_delay() {
    let delay = Duration::from_millis(20);
    let server = TestServer::start(move |_request, _hit| async move {
        tokio::time::sleep(delay).await;
        text(200, "ok")
    })
    .await;
    let config = BenchmarkConfig::builder("fixed-delay", server.url("/api/chat?key=secret"))
        .concurrent_users(8)
        .ramp_up(Duration::from_millis(500))
        .duration(Duration::from_secs(2))
        .build()
        .expect("valid config");

    let report = run_benchmark(config).await.expect("run");
    show("fixed 20 ms delay, closed, 8 users", &report);

    // Every request the server saw is counted once: measured or warm-up.
    assert_eq!(
        (report.requests + report.warmup_requests) as usize,
        server.hits()
    );
    assert!(report.warmup_requests > 0, "the ramp-up sent requests");
    assert_eq!(report.successes, report.requests);
    assert_eq!(report.status_codes.get(&200), Some(&report.requests));
    assert_eq!(report.errors.total(), 0);
    assert_eq!(report.latency.count, report.requests);
    // One keep-alive connection per user, plus the engine's first probe.
    assert_eq!(server.connections(), 8 + 1);
    let p50 = report.latency.p50();
    assert!(
        p50 >= delay && p50 <= delay + MARGIN,
        "p50 {p50:?} outside [{delay:?}, {:?}]",
        delay + MARGIN
    );
    assert!(report.latency.min() >= delay);
    // Two one-second windows that add up to the run.
    assert_eq!(report.windows.len(), 2);
    assert_eq!(
        report.windows.iter().map(|w| w.requests).sum::<u64>(),
        report.requests
    );
    assert_eq!(report.model, LoadModel::Closed);
    assert_eq!(report.kind, TargetKind::Http);

    // The JSON schema: versioned, units in the names, status codes as keys,
    // and no query string (it may hold a key).
    let json = report.to_json();
    let value: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(value["schema_version"], SCHEMA_VERSION);
    assert_eq!(value["model"], "closed");
    assert_eq!(value["latency"]["p99_us"], report.latency.p99_us);
    assert_eq!(value["status_codes"]["200"], report.requests);
    assert_eq!(value["settings"]["users"], 8);
    assert_eq!(value["windows"][0]["start_ms"], 0);
    assert!(!json.contains("secret"), "{json}");
    assert_eq!(
        BenchmarkReport::from_json(&json).expect("reads back"),
        report
    );
}

/// A server answering after `delay` that, at hit number `at_hit`, stalls
/// for one second: everything in flight or arriving then waits it out.
async fn stalling_server(delay: Duration, at_hit: usize) -> TestServer {
    let stalled_until: Arc<Mutex<Option<Instant>>> = Arc::default();
    let wait_out = |stalled_until: &Mutex<Option<Instant>>| {
        let until = *stalled_until.lock().expect("lock");
        async move {
            if let Some(until) = until {
                tokio::time::sleep_until(until).await;
            }
        }
    };
    TestServer::start(move |_request, hit| {
        let stalled_until = Arc::clone(&stalled_until);
        async move {
            if hit == at_hit {
                *stalled_until.lock().expect("lock") =
                    Some(Instant::now() + Duration::from_secs(1));
            }
            wait_out(&stalled_until).await;
            tokio::time::sleep(delay).await;
            wait_out(&stalled_until).await;
            text(200, "ok")
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_second_stall_shows_in_the_open_models_p99_and_far_less_in_the_closed_model() {
    let delay = Duration::from_millis(50);
    let second = Duration::from_secs(1);

    // Open: 100 requests/s for 4 s from 10 connections; the stall starts at
    // the 100th request (about 1 s in).
    let server = stalling_server(delay, 100).await;
    let open = run_benchmark(
        BenchmarkConfig::builder("stall-open", server.url("/"))
            .concurrent_users(10)
            .rate(100.0)
            .duration(Duration::from_secs(4))
            .build()
            .expect("valid config"),
    )
    .await
    .expect("open run");
    show("open, 100/s, 1 s stall", &open);
    assert_eq!(open.model, LoadModel::Open);
    // 400 requests were due: each was sent (and seen) or reported dropped.
    assert_eq!(open.requests + open.dropped, 400);
    assert_eq!(open.requests as usize, server.hits());
    assert_eq!(open.errors.total(), 0);
    // Requests due during the stall found every user busy: reported.
    assert!(
        open.late + open.dropped > 0,
        "late {} dropped {}",
        open.late,
        open.dropped
    );
    // Counted from when they were due, the stalled requests put the stall
    // in the tail (wrk2's correction of coordinated omission).
    assert!(
        open.latency.p99() >= second,
        "open p99 {:?}",
        open.latency.p99()
    );
    assert!(open.latency.max() >= second);

    // Closed: the same server and users, no schedule. The users just wait
    // the stall out, sending nothing meanwhile: one slow request each.
    let server = stalling_server(delay, 200).await;
    let closed = run_benchmark(
        BenchmarkConfig::builder("stall-closed", server.url("/"))
            .concurrent_users(10)
            .duration(Duration::from_secs(4))
            .build()
            .expect("valid config"),
    )
    .await
    .expect("closed run");
    show("closed, 10 users, 1 s stall", &closed);
    assert_eq!(closed.requests as usize, server.hits());
    assert_eq!((closed.dropped, closed.late), (0, 0));
    assert!(closed.latency.max() >= second, "the stall is in the max");
    // The stall covers a quarter of the open run's requests, a handful of
    // the closed run's.
    assert!(
        open.latency.p90() > closed.latency.p90() * 4,
        "open p90 {:?} closed p90 {:?}",
        open.latency.p90(),
        closed.latency.p90()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_run_with_too_few_users_reports_the_requests_it_could_not_send() {
    // One user, 50 ms answers: at most ~20 requests/s for a rate of 100/s.
    let server = TestServer::start(|_request, _hit| async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        text(200, "ok")
    })
    .await;
    let report = run_benchmark(
        BenchmarkConfig::builder("overloaded-open", server.url("/"))
            .concurrent_users(1)
            .rate(100.0)
            .duration(Duration::from_secs(1))
            .build()
            .expect("valid config"),
    )
    .await
    .expect("run");
    show("open, 100/s, 1 user, 50 ms", &report);
    assert_eq!(report.requests as usize, server.hits());
    assert_eq!(report.requests + report.dropped, 100);
    assert!(report.dropped > 0);
    assert!(report.late > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_error_rate_is_counted_exactly() {
    let (server, sent_500) = every_nth_fails(10).await;
    let report = closed_run("errors", server.url("/"), 8, Duration::from_secs(2)).await;
    show("every 10th answers 500", &report);

    let hits = server.hits();
    let sent_500 = sent_500.load(Ordering::SeqCst) as u64;
    assert_eq!(report.requests as usize, hits);
    assert_eq!(sent_500, hits as u64 / 10);
    assert_eq!(report.errors.http_status, sent_500);
    assert_eq!(report.errors.total(), sent_500);
    assert_eq!(report.status_codes.get(&500), Some(&sent_500));
    assert_eq!(
        report.status_codes.get(&200),
        Some(&(report.requests - sent_500))
    );
    assert_eq!(report.successes, report.requests - sent_500);
    assert_eq!(
        report.windows.iter().map(|w| w.errors).sum::<u64>(),
        sent_500
    );
    println!("error rate {:.4}", report.error_rate());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_fn_counts_exactly_the_calls_it_made() {
    let calls = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let report = run_fn(4, Duration::from_secs(1), {
        let calls = Arc::clone(&calls);
        let failures = Arc::clone(&failures);
        move || {
            let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
            let failures = Arc::clone(&failures);
            async move {
                tokio::time::sleep(Duration::from_millis(2)).await;
                if call.is_multiple_of(7) {
                    failures.fetch_add(1, Ordering::SeqCst);
                    Err("every 7th call fails")
                } else {
                    Ok(())
                }
            }
        }
    })
    .await
    .expect("run");
    show("run_fn, 4 callers, 2 ms", &report);

    let calls = calls.load(Ordering::SeqCst);
    let failures = failures.load(Ordering::SeqCst);
    assert_eq!(report.kind, TargetKind::Function);
    assert_eq!(report.requests, calls);
    assert_eq!(report.errors.other, failures);
    assert_eq!(report.errors.total(), failures);
    assert_eq!(report.successes, calls - failures);
    assert_eq!(report.latency.count, calls);
    assert!(report.latency.p50() >= Duration::from_millis(2));

    // A function returning `()` works too.
    let unit_calls = Arc::new(AtomicU64::new(0));
    let unit = run_fn(1, Duration::from_millis(100), {
        let unit_calls = Arc::clone(&unit_calls);
        move || {
            unit_calls.fetch_add(1, Ordering::SeqCst);
            async { tokio::task::yield_now().await }
        }
    })
    .await
    .expect("run");
    assert_eq!(unit.requests, unit_calls.load(Ordering::SeqCst));
    assert_eq!(unit.successes, unit.requests);

    let zero = run_fn(0, Duration::from_secs(1), || async {}).await;
    assert!(
        matches!(
            zero,
            Err(BenchError::InvalidConfig {
                field: "concurrency",
                ..
            })
        ),
        "{zero:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_fails_the_run_before_any_load() {
    let port = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        listener.local_addr().expect("address").port()
    };
    let config = BenchmarkConfig::builder("refused", format!("http://127.0.0.1:{port}/"))
        .duration(Duration::from_secs(1))
        .build()
        .expect("valid config");
    let error = run_benchmark(config).await.expect_err("nothing listens");
    println!("{error}");
    assert!(matches!(error, BenchError::Connect { .. }), "{error:?}");
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
}
