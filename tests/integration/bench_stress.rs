//! Stress tests (`perf_runtime::bench::run_stress_plan`) against loopback
//! servers whose breaking point is injected: a server with 4 workers of
//! 200 ms (latency doubles once users exceed 4), one that answers 503 past
//! 3 requests in flight, and one that never breaks. Assertions are on which
//! steps ran, their users, and where the injected behaviour puts p95 and the
//! error rate against limits set far from it; never on this machine's speed.

mod support;

use std::sync::Arc;
use std::time::Duration;

use perf_runtime::PerfConfig;
use perf_runtime::bench::{
    BenchError, BenchmarkConfig, Progress, STRESS_SCHEMA_VERSION, StopReason, StressPlan,
    StressReport, run_stress_plan, run_stress_test,
};
use support::http_server::{TestServer, text};
use tokio::sync::Semaphore;

/// Steps short enough that a test takes seconds.
const STEP: Duration = Duration::from_secs(1);

fn show(label: &str, report: &StressReport) {
    println!(
        "{label}: stop {:?}, last sustainable {:?}, knee {:?}",
        report.stop_reason, report.last_sustainable_users, report.knee_users
    );
    for step in &report.steps {
        println!(
            "  {} users: {} requests, {:.1} ok/s, errors {:.1} %, p50 {:?} p95 {:?}, broken {:?}",
            step.users,
            step.requests,
            step.successes_per_second,
            step.error_rate * 100.0,
            step.latency.p50(),
            step.latency.p95(),
            step.broken,
        );
    }
}

fn base(url: String, users: usize) -> BenchmarkConfig {
    BenchmarkConfig::builder("stress", url)
        .concurrent_users(users)
        .duration(Duration::from_secs(30))
        .build()
        .expect("valid config")
}

/// A server with `workers` permits, each request holding one for `hold`:
/// past `workers` users requests queue, and latency grows in whole `hold`s.
async fn workers_server(workers: usize, hold: Duration) -> TestServer {
    let permits = Arc::new(Semaphore::new(workers));
    TestServer::start(move |_request, _hit| {
        let permits = Arc::clone(&permits);
        async move {
            let _permit = permits.acquire().await.expect("never closed");
            tokio::time::sleep(hold).await;
            text(200, "ok")
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_test_stops_at_the_first_step_whose_p95_breaks_the_limit() {
    // 4 workers of 200 ms. Up to 4 users every answer takes 200 ms; with 6,
    // two requests of every round wait a round: half the answers take
    // 400 ms, so p95 is 400 ms. The limit, 300 ms, sits 100 ms from both.
    let server = workers_server(4, Duration::from_millis(200)).await;
    let plan = StressPlan::new(12, 2, STEP)
        .with_max_p95(Duration::from_millis(300))
        .with_max_error_rate(0.01);
    let progress = Progress::new();
    let report = run_stress_plan(base(server.url("/api"), 2), plan, &progress)
        .await
        .expect("stress test");
    show("4 workers of 200 ms, p95 limit 300 ms", &report);

    // Steps 8, 10 and 12 were never run.
    let users: Vec<usize> = report.steps.iter().map(|step| step.users).collect();
    assert_eq!(users, [2, 4, 6]);
    assert_eq!(report.stop_reason, StopReason::Broken);
    assert_eq!(report.last_sustainable_users, Some(4));
    let broken = report.broken_step().expect("the last step broke");
    assert_eq!(broken.users, 6);
    assert_eq!(broken.broken, ["p95"]);
    assert!(
        broken.latency.p95() >= Duration::from_millis(390),
        "{broken:?}"
    );
    for held in &report.steps[..2] {
        assert!(held.sustainable && held.broken.is_empty(), "{held:?}");
        assert_eq!(held.errors.total(), 0);
        assert!(held.latency.p50() >= Duration::from_millis(200));
    }
    // Throughput doubles from 2 to 4 users and stays at 4 workers' worth
    // after: the knee is at 4.
    assert_eq!(report.knee_users, Some(4));
    // The progress handle saw the last step's label.
    assert_eq!(
        progress.snapshot().stage.as_deref(),
        Some("step 3/6: 6 users")
    );

    assert_eq!(report.schema_version, STRESS_SCHEMA_VERSION);
    assert_eq!(report.plan.base_users, 2);
    assert_eq!(report.plan.max_p95_us, 300_000);
    let json = report.to_json();
    // Compared without the floats: serde_json may read one back a unit in
    // the last place off.
    let read = StressReport::from_json(&json).expect("parses");
    let outline = |report: &StressReport| {
        let steps: Vec<_> = report
            .steps
            .iter()
            .map(|s| (s.users, s.requests, s.latency.p95_us, s.broken.clone()))
            .collect();
        (
            steps,
            report.stop_reason,
            report.last_sustainable_users,
            report.knee_users,
            report.plan.max_p95_us,
        )
    };
    assert_eq!(outline(&read), outline(&report));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_rate_break_is_listed_as_such() {
    // Up to 3 requests in flight are served (20 ms); past that, 503 at once.
    let permits = Arc::new(Semaphore::new(3));
    let server = TestServer::start(move |_request, _hit| {
        let permits = Arc::clone(&permits);
        async move {
            let Ok(_permit) = permits.try_acquire() else {
                return text(503, "busy");
            };
            tokio::time::sleep(Duration::from_millis(20)).await;
            text(200, "ok")
        }
    })
    .await;
    let plan = StressPlan::new(9, 2, STEP)
        .with_max_p95(Duration::from_secs(2))
        .with_max_error_rate(0.05);
    let report = run_stress_plan(base(server.url("/"), 1), plan, &Progress::new())
        .await
        .expect("stress test");
    show("503 past 3 in flight, error limit 5 %", &report);

    let users: Vec<usize> = report.steps.iter().map(|step| step.users).collect();
    assert_eq!(users, [1, 3, 5]);
    assert_eq!(report.stop_reason, StopReason::Broken);
    assert_eq!(report.last_sustainable_users, Some(3));
    // A user never has two requests in flight: 3 users never see a 503.
    for held in &report.steps[..2] {
        assert_eq!(held.errors.total(), 0, "{held:?}");
    }
    let broken = report.broken_step().expect("broken");
    // Fast 503s keep p95 far under 2 s: only the error rate broke.
    assert_eq!(broken.broken, ["error_rate"]);
    assert!(broken.error_rate > 0.05);
    assert_eq!(broken.errors.http_status, broken.errors.total());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_breaks_runs_every_step_up_to_max_users() {
    let server = TestServer::start(|_request, _hit| async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        text(200, "ok")
    })
    .await;
    // From 2 by 3 up to 6: the last step is capped at max_users.
    let plan = StressPlan::new(6, 3, STEP)
        .with_max_p95(Duration::from_secs(2))
        .with_max_error_rate(0.01);
    let report = run_stress_plan(base(server.url("/"), 2), plan, &Progress::new())
        .await
        .expect("stress test");
    show("20 ms, never breaks", &report);

    let users: Vec<usize> = report.steps.iter().map(|step| step.users).collect();
    assert_eq!(users, [2, 5, 6]);
    assert_eq!(report.stop_reason, StopReason::MaxUsers);
    assert_eq!(report.last_sustainable_users, Some(6));
    assert!(report.broken_step().is_none());
    assert!(report.steps.iter().all(|step| step.sustainable));
    // Every request the server saw belongs to a step.
    let counted: u64 = report.steps.iter().map(|step| step.requests).sum();
    assert_eq!(counted as usize, server.hits());
    // Each user adds as much throughput as the first ones did: no knee.
    assert_eq!(report.knee_users, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_style_call_uses_the_runtime_limits() {
    let server = TestServer::start(|_request, _hit| async { text(200, "ok") }).await;
    // One step (max_users = the base's users), as short as allowed.
    let report = run_stress_test(base(server.url("/"), 2), 2, 50, Duration::from_millis(300))
        .await
        .expect("stress test");
    show("seed-style, one step", &report);
    // The limits of RESPONSE_TIME_THRESHOLD / ERROR_RATE_THRESHOLD as this
    // process has them (500 ms and 1 % unless set).
    let config = PerfConfig::from_env().expect("the test environment's configuration");
    assert_eq!(
        report.plan.max_p95_us,
        config.response_time_threshold.as_micros() as u64
    );
    assert_eq!(
        report.plan.max_error_rate,
        config.error_rate_threshold / 100.0
    );
    assert_eq!(report.steps.len(), 1);
    assert_eq!(report.plan.step_duration_ms, 300);
}

#[tokio::test]
async fn bad_plans_are_refused_before_anything_is_sent() {
    // Nothing listens on port 9 here: each error comes before a connection.
    let base = || base("http://127.0.0.1:9/".to_owned(), 5);
    let cases = [
        (StressPlan::new(4, 1, STEP), "max_users"),
        (StressPlan::new(10, 0, STEP), "step_size"),
        (StressPlan::new(10, 1, Duration::ZERO), "step_duration"),
        (
            StressPlan::new(10, 1, STEP).with_max_p95(Duration::ZERO),
            "max_p95",
        ),
        (
            StressPlan::new(10, 1, STEP).with_max_error_rate(2.0),
            "max_error_rate",
        ),
    ];
    for (plan, expected) in cases {
        let error = run_stress_plan(base(), plan, &Progress::new())
            .await
            .expect_err("a bad plan");
        match &error {
            BenchError::InvalidConfig { field, .. } => assert_eq!(*field, expected, "{error}"),
            other => panic!("expected `{expected}` to be refused, got {other:?}"),
        }
        assert!(error.to_string().contains(expected), "{error}");
    }
    // A good plan against nothing: the first step's connection is refused.
    let error = run_stress_plan(base(), StressPlan::new(10, 5, STEP), &Progress::new())
        .await
        .expect_err("nothing listens");
    assert!(matches!(error, BenchError::Connect { .. }), "{error:?}");
}
