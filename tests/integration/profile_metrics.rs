//! `#[profile]` end to end: annotated calls of every shape, scraped from
//! `/metrics`, checked by `promtool`, and counted exactly.

mod support;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use perf_runtime::prelude::*;
use perf_runtime::profile as profiling;
use serde_json::json;

#[derive(Debug)]
struct Oops;

impl std::fmt::Display for Oops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("oops")
    }
}

#[profile]
fn sync_add(a: u32, b: u32) -> u32 {
    a + b
}

#[profile(name = "it.parse")]
fn parse_number(text: &str) -> Result<u32, std::num::ParseIntError> {
    // `?` leaves early; the call must still be counted, as an error.
    let n: u32 = text.trim().parse()?;
    Ok(n * 2)
}

#[profile]
async fn async_lookup(id: u32) -> Result<String, Oops> {
    tokio::task::yield_now().await;
    if id == 0 {
        return Err(Oops);
    }
    Ok(format!("item {id}"))
}

#[profile]
async fn slow_call() -> u32 {
    tokio::time::sleep(Duration::from_secs(30)).await;
    1
}

#[profile]
fn panics(flag: bool) -> u32 {
    if flag {
        panic!("on purpose");
    }
    0
}

struct Counter {
    hits: AtomicU32,
    total: u64,
}

impl Counter {
    #[profile]
    fn bump(&self) -> u32 {
        self.hits.fetch_add(1, Ordering::Relaxed) + 1
    }

    #[profile]
    fn add(&mut self, amount: u64) -> &mut u64 {
        self.total += amount;
        &mut self.total
    }

    #[profile]
    async fn describe(&self, prefix: impl std::fmt::Display) -> String {
        format!("{prefix}{}", self.total)
    }
}

trait Greeter {
    fn greet(&self, name: &str) -> String;
}

impl Greeter for Counter {
    #[profile(name = "it.greet")]
    fn greet(&self, name: &str) -> String {
        format!("hello {name}")
    }
}

#[profile]
fn generic_len<T: AsRef<str>>(value: T) -> usize {
    value.as_ref().len()
}

fn exposition(perf: &Perf) -> String {
    perf.render_prometheus().expect("ENABLE_PROMETHEUS is on")
}

fn calls(text: &str, function: &str, outcome: &str) -> f64 {
    support::sample(
        text,
        "perf_function_calls_total",
        &[("function", function), ("outcome", outcome)],
    )
    .unwrap_or(0.0)
}

fn histogram_count(text: &str, function: &str) -> f64 {
    support::sample(
        text,
        "perf_function_duration_seconds_count",
        &[("function", function)],
    )
    .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_counted_by_outcome_and_timed() {
    // Called before init: runs on the embedded default, never panics.
    assert_eq!(sync_add(1, 1), 2);
    assert!(global().is_embedded_default());

    let config = PerfConfig::builder()
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    let perf = perf_runtime::init(config).await.expect("init");

    for i in 0..7 {
        assert_eq!(sync_add(i, 1), i + 1);
    }
    assert_eq!(parse_number("21"), Ok(42));
    assert!(parse_number("x").is_err());
    assert!(parse_number("").is_err());
    for id in 0..5 {
        let _ = async_lookup(id).await;
    }
    let mut counter = Counter {
        hits: AtomicU32::new(0),
        total: 0,
    };
    for _ in 0..3 {
        counter.bump();
    }
    *counter.add(5) += 1;
    assert_eq!(counter.total, 6);
    assert_eq!(counter.describe("total=").await, "total=6");
    assert_eq!(counter.greet("ann"), "hello ann");
    assert_eq!(generic_len("abc") + generic_len(String::from("de")), 5);
    let caught = std::panic::catch_unwind(|| panics(true));
    assert!(caught.is_err());
    assert_eq!(panics(false), 0);
    // A future dropped before it finishes (a client that went away).
    let cancelled = tokio::time::timeout(Duration::from_millis(20), slow_call()).await;
    assert!(cancelled.is_err());

    let text = exposition(&perf);
    assert_eq!(
        calls(&text, "sync_add", "ok"),
        7.0,
        "the call before init went to no recorder"
    );
    assert_eq!(histogram_count(&text, "sync_add"), 7.0);
    assert_eq!(calls(&text, "it.parse", "ok"), 1.0);
    assert_eq!(calls(&text, "it.parse", "error"), 2.0);
    assert_eq!(histogram_count(&text, "it.parse"), 3.0);
    assert_eq!(calls(&text, "async_lookup", "ok"), 4.0);
    assert_eq!(calls(&text, "async_lookup", "error"), 1.0);
    assert_eq!(histogram_count(&text, "async_lookup"), 5.0);
    assert_eq!(calls(&text, "bump", "ok"), 3.0);
    assert_eq!(calls(&text, "add", "ok"), 1.0);
    assert_eq!(calls(&text, "describe", "ok"), 1.0);
    assert_eq!(calls(&text, "it.greet", "ok"), 1.0);
    assert_eq!(calls(&text, "generic_len", "ok"), 2.0);
    assert_eq!(calls(&text, "panics", "panic"), 1.0);
    assert_eq!(calls(&text, "panics", "ok"), 1.0);
    assert_eq!(calls(&text, "slow_call", "cancelled"), 1.0);
    for function in ["sync_add", "async_lookup", "slow_call", "panics"] {
        let in_flight =
            support::sample(&text, "perf_function_in_flight", &[("function", function)]);
        assert_eq!(in_flight, Some(0.0), "{function} in flight");
    }
    // Real histogram with latency buckets, not a summary.
    assert!(
        text.contains("# TYPE perf_function_duration_seconds histogram"),
        "{text}"
    );
    assert!(
        support::sample(
            &text,
            "perf_function_duration_seconds_bucket",
            &[("function", "sync_add"), ("le", "0.0005")]
        )
        .is_some(),
        "{text}"
    );
    assert_eq!(
        support::sample(
            &text,
            "perf_build_info",
            &[("version", perf_runtime::VERSION)]
        ),
        Some(1.0)
    );

    // The typed report agrees with the exposition.
    let report = perf.get_metrics();
    let add = report.function("sync_add").expect("sync_add in the report");
    assert_eq!(
        (add.calls_ok, add.calls_error, add.duration.count),
        (7, 0, 7)
    );
    let lookup = report
        .function("async_lookup")
        .expect("async_lookup in the report");
    assert_eq!((lookup.calls_ok, lookup.calls_error), (4, 1));
    assert!((lookup.error_rate_percent() - 20.0).abs() < 1e-9);
    assert!(lookup.duration.p99_ms.is_some());

    // A manual scope counts like an annotated function.
    {
        let _ok = profiling::scope("it.scope");
    }
    {
        let mut failed = profiling::scope("it.scope");
        failed.record(&Err::<(), _>(Oops));
    }
    let text = exposition(&perf);
    assert_eq!(calls(&text, "it.scope", "ok"), 1.0);
    assert_eq!(calls(&text, "it.scope", "error"), 1.0);

    // The example's handlers, through its router, then /metrics over HTTP.
    let app = perf_examples::chat::app(Default::default());
    let (status, body) = support::call(
        &app,
        "POST",
        "/api/chat",
        Some(json!({"message": "hello there"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let reply: serde_json::Value = serde_json::from_str(&body).expect("json reply");
    let id = reply["conversation_id"].as_u64().expect("conversation id");
    let (status, _) = support::call(
        &app,
        "POST",
        "/api/chat",
        Some(json!({"message": "and again", "conversation_id": id})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) =
        support::call(&app, "POST", "/api/chat", Some(json!({"message": "   "}))).await;
    assert_eq!(status, 400);
    let (status, body) =
        support::call(&app, "GET", &format!("/api/conversations/{id}"), None).await;
    assert_eq!(status, 200);
    assert!(body.contains("and again"), "{body}");
    assert_eq!(
        support::call(&app, "GET", "/api/users/7", None).await.0,
        200
    );
    assert_eq!(
        support::call(&app, "GET", "/api/users/0", None).await.0,
        404
    );

    let (status, text) = support::call(&app, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert_eq!(calls(&text, "chat.send", "ok"), 2.0);
    assert_eq!(calls(&text, "chat.send", "error"), 1.0);
    assert_eq!(histogram_count(&text, "chat.send"), 3.0);
    assert_eq!(calls(&text, "assistant.reply", "ok"), 2.0);
    assert_eq!(calls(&text, "chat.history", "ok"), 1.0);
    assert_eq!(calls(&text, "user.profile", "ok"), 1.0);
    assert_eq!(calls(&text, "user.profile", "error"), 1.0);
    assert!(
        text.contains("process_resident_memory_bytes"),
        "process metrics are exported"
    );
    if let Some(verdict) = support::promtool_check(&text) {
        verdict.unwrap_or_else(|complaints| panic!("promtool check metrics: {complaints}\n{text}"));
    }

    // No label value comes from a request: user ids and messages stay out.
    for forbidden in ["hello there", "user_id=\"7\"", "and again"] {
        assert!(
            !text.contains(forbidden),
            "{forbidden} leaked into /metrics"
        );
    }

    let (status, body) = support::call(&app, "GET", "/health", None).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = support::call(&app, "GET", "/status", None).await;
    assert_eq!(status, 200);
    let status_json: serde_json::Value = serde_json::from_str(&body).expect("status is JSON");
    assert_eq!(status_json["version"], perf_runtime::VERSION);
    assert_eq!(status_json["embedded_default"], false);

    perf_runtime::shutdown().await;
    assert!(global().is_embedded_default());
}
