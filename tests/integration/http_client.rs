//! The outbound HTTP client against loopback servers: retries, Retry-After,
//! the retry budget, the total deadline, the rate limit, the circuit
//! breaker, the size limit, connection reuse, streaming, h2c and faults
//! through the TCP fault proxy. Only lower bounds on wall-clock time.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use perf_runtime::http::{
    BreakerPolicy, BreakerState, HttpClient, HttpClientBuilder, HttpError, RetryNonIdempotent,
    RetryPolicy,
};
use support::fault_proxy::{Fault, FaultProxy};
use support::http_server::{TestServer, chunk_then_cut, text};

/// Retries without real waiting, a budget that never runs out, no breaker:
/// each test turns on what it looks at.
fn quick_retries() -> RetryPolicy {
    let mut policy = RetryPolicy::default();
    policy.max_attempts = 3;
    policy.base_delay = Duration::from_millis(1);
    policy.max_delay = Duration::from_millis(5);
    policy.budget_min_per_second = 1000;
    policy
}

fn builder() -> HttpClientBuilder {
    HttpClient::builder()
        .retry(quick_retries())
        .circuit_breaker(None)
}

/// Answers 503 for the first `failures` hits, then 200 "ok".
async fn failing_first(failures: usize) -> TestServer {
    TestServer::start(move |_, hit| async move {
        if hit <= failures {
            text(503, "busy")
        } else {
            text(200, "ok")
        }
    })
    .await
}

#[tokio::test]
async fn retries_503_then_succeeds() {
    let server = failing_first(2).await;
    let client = builder().build().expect("client");
    let response = client.get(&server.url("/")).await.expect("answered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.attempts(), 3);
    assert_eq!(response.bytes().await.expect("body"), "ok");
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn post_is_not_retried_unless_the_request_opts_in() {
    let server = TestServer::start(|_, _| async { text(503, "busy") }).await;
    let client = builder().build().expect("client");
    let post = || http::Request::post(server.url("/jobs"));

    let plain = post().body(Bytes::from("{}")).expect("request");
    let response = client.send(plain).await.expect("answered");
    assert_eq!(
        response.status(),
        503,
        "the last answer comes back as it is"
    );
    assert_eq!(server.hits(), 1, "a POST is sent once");

    let opted_in = post()
        .extension(RetryNonIdempotent)
        .body(Bytes::from("{}"))
        .expect("request");
    let response = client.send(opted_in).await.expect("answered");
    assert_eq!(response.attempts(), 3);
    assert_eq!(server.hits(), 1 + 3, "opted in: every attempt is used");
}

#[tokio::test]
async fn retry_after_in_seconds_is_waited_for() {
    let server = TestServer::start(|_, hit| async move {
        if hit == 1 {
            let mut busy = text(503, "busy");
            busy.headers_mut()
                .insert("retry-after", http::HeaderValue::from_static("1"));
            busy
        } else {
            text(200, "ok")
        }
    })
    .await;
    let client = builder().build().expect("client");
    let started = Instant::now();
    let response = client.get(&server.url("/")).await.expect("answered");
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}, the server asked for 1 s",
        started.elapsed()
    );
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_waited_for() {
    let server = TestServer::start(|_, hit| async move {
        if hit == 1 {
            let at = std::time::SystemTime::now() + Duration::from_secs(2);
            let mut busy = text(429, "slow down");
            busy.headers_mut().insert(
                "retry-after",
                httpdate::fmt_http_date(at).parse().expect("header"),
            );
            busy
        } else {
            text(200, "ok")
        }
    })
    .await;
    let client = builder().build().expect("client");
    let started = Instant::now();
    let response = client.get(&server.url("/")).await.expect("answered");
    assert_eq!(response.status(), 200);
    // The date has whole seconds: 2 s ahead is at least 1 s ahead.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_handed_back_instead_of_waited_for() {
    let server = TestServer::start(|_, _| async {
        let mut busy = text(503, "busy");
        busy.headers_mut()
            .insert("retry-after", http::HeaderValue::from_static("3600"));
        busy
    })
    .await;
    let client = builder().build().expect("client");
    let response = client.get(&server.url("/")).await.expect("answered");
    assert_eq!(response.status(), 503);
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn the_retry_budget_stops_a_retry_storm() {
    let server = TestServer::start(|_, _| async { text(503, "down") }).await;
    let mut policy = quick_retries();
    policy.max_attempts = 3;
    policy.budget_ratio = 0.2;
    policy.budget_min_per_second = 0;
    let client = builder().retry(policy).build().expect("client");
    let requests = 50;
    for _ in 0..requests {
        let response = client.get(&server.url("/")).await.expect("answered");
        assert_eq!(response.status(), 503);
    }
    let hits = server.hits();
    eprintln!("{requests} requests, every one failing: {hits} server hits");
    // Without a budget: 3 attempts each, 150 hits. With 20%: 50 + 10.
    assert!(hits > requests, "some retries were allowed: {hits}");
    assert!(
        hits <= requests + requests / 5 + 1,
        "retries stay within 20% of requests: {hits} hits"
    );
}

#[tokio::test]
async fn the_total_deadline_spans_attempts() {
    let server = TestServer::start(|_, _| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        text(503, "slow and busy")
    })
    .await;
    let mut policy = quick_retries();
    policy.max_attempts = 10;
    let deadline = Duration::from_millis(800);
    let client = builder()
        .retry(policy)
        .request_timeout(Duration::from_secs(5))
        .total_deadline(deadline)
        .build()
        .expect("client");
    let started = Instant::now();
    let error = client.get(&server.url("/")).await.expect_err("out of time");
    assert!(
        matches!(error, HttpError::DeadlineExceeded { attempts: 3, .. }),
        "{error}"
    );
    assert!(started.elapsed() >= deadline, "{:?}", started.elapsed());
    assert_eq!(server.hits(), 3, "two full attempts and a third cut short");
    assert!(error.to_string().contains(&server.host()), "{error}");
}

#[tokio::test]
async fn the_rate_limit_spaces_requests_to_a_host() {
    let server = TestServer::start(|_, _| async { text(200, "ok") }).await;
    let client = builder()
        .rate_limit_per_host(20.0, 2)
        .build()
        .expect("client");
    let started = Instant::now();
    for _ in 0..12 {
        client.get(&server.url("/")).await.expect("answered");
    }
    // 2 go at once, the other 10 at 20 per second.
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );

    let strict = builder()
        .rate_limit_per_host(1.0, 1)
        .total_deadline(Duration::from_millis(200))
        .build()
        .expect("client");
    strict.get(&server.url("/")).await.expect("the burst");
    let error = strict
        .get(&server.url("/"))
        .await
        .expect_err("no token in time");
    assert!(
        matches!(error, HttpError::RateLimited { burst: 1, .. }),
        "{error}"
    );
}

#[tokio::test]
async fn the_breaker_opens_fails_fast_half_opens_and_closes() {
    let healthy = Arc::new(AtomicBool::new(false));
    let server = TestServer::start({
        let healthy = Arc::clone(&healthy);
        move |_, _| {
            let healthy = healthy.load(Ordering::SeqCst);
            async move {
                if healthy {
                    text(200, "ok")
                } else {
                    text(500, "boom")
                }
            }
        }
    })
    .await;
    let mut breaker = BreakerPolicy::default();
    breaker.min_calls = 4;
    breaker.failure_ratio = 0.5;
    breaker.cool_down = Duration::from_millis(300);
    let client = builder()
        .circuit_breaker(Some(breaker))
        .build()
        .expect("client");
    let host = server.host();

    for _ in 0..4 {
        let response = client.get(&server.url("/")).await.expect("answered");
        assert_eq!(response.status(), 500);
    }
    assert_eq!(client.breaker_state(&host).await, Some(BreakerState::Open));
    let error = client.get(&server.url("/")).await.expect_err("fails fast");
    assert!(matches!(error, HttpError::CircuitOpen { .. }), "{error}");
    assert_eq!(server.hits(), 4, "an open breaker sends nothing");

    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        client.breaker_state(&host).await,
        Some(BreakerState::HalfOpen)
    );
    let probe = client.get(&server.url("/")).await.expect("the probe");
    assert_eq!(probe.status(), 500);
    assert_eq!(
        client.breaker_state(&host).await,
        Some(BreakerState::Open),
        "failed probe"
    );

    healthy.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let probe = client.get(&server.url("/")).await.expect("the probe");
    assert_eq!(probe.status(), 200);
    assert_eq!(
        client.breaker_state(&host).await,
        Some(BreakerState::Closed)
    );
    assert_eq!(server.hits(), 6);
}

#[tokio::test]
async fn a_body_over_the_size_limit_is_an_error_not_a_cut() {
    let server = TestServer::start(|request, _| async move {
        if request.uri().path() == "/stream" {
            chunked(2048)
        } else {
            text(200, vec![b'x'; 2048])
        }
    })
    .await;
    let client = builder()
        .max_response_bytes(Some(1024))
        .build()
        .expect("client");

    let declared = client.get(&server.url("/")).await.expect("headers");
    let error = declared.bytes().await.expect_err("too large");
    assert!(
        matches!(error, HttpError::ResponseTooLarge { limit: 1024, .. }),
        "{error}"
    );

    let streamed = client.get(&server.url("/stream")).await.expect("headers");
    let chunks: Vec<_> = streamed.into_stream().collect().await;
    assert!(
        matches!(chunks.last(), Some(Err(HttpError::ResponseTooLarge { .. }))),
        "the stream ends with the error: {chunks:?}"
    );
}

/// A chunked body of `size` bytes in 512-byte chunks (no content-length).
fn chunked(size: usize) -> http::Response<support::http_server::TestBody> {
    use http_body_util::BodyExt;
    let chunks =
        (0..size / 512).map(|_| Ok(hyper::body::Frame::data(Bytes::from(vec![b'y'; 512]))));
    http::Response::new(BodyExt::boxed(http_body_util::StreamBody::new(
        futures_util::stream::iter(chunks),
    )))
}

#[tokio::test]
async fn sequential_requests_reuse_one_connection() {
    let server = TestServer::start(|_, _| async { text(200, "ok") }).await;
    let client = builder().build().expect("client");
    for _ in 0..20 {
        let response = client.get(&server.url("/")).await.expect("answered");
        response.bytes().await.expect("body read to the end");
    }
    assert_eq!(server.hits(), 20);
    assert_eq!(server.connections(), 1, "keep-alive: one TCP connection");
}

#[tokio::test]
async fn a_streamed_body_is_not_retried_once_started() {
    let server = TestServer::start(|_, _| async { chunk_then_cut("data: 1\n\n") }).await;
    let client = builder().build().expect("client");
    let response = client.get(&server.url("/sse")).await.expect("headers");
    let mut stream = Box::pin(response.into_stream());
    let first = stream.next().await.expect("a chunk").expect("data");
    assert_eq!(first, "data: 1\n\n");
    let cut = stream.next().await.expect("an item").expect_err("the cut");
    assert!(matches!(cut, HttpError::Transport { .. }), "{cut}");
    assert_eq!(server.hits(), 1, "the caller had the body: no retry");
}

#[tokio::test]
async fn h2c_with_prior_knowledge_multiplexes_on_one_connection() {
    let server =
        TestServer::start(
            |request, _| async move { text(200, format!("{:?}", request.version())) },
        )
        .await;
    let client = builder()
        .http2_prior_knowledge(true)
        .build()
        .expect("client");
    let calls = (0..10).map(|_| {
        let client = client.clone();
        let url = server.url("/");
        async move {
            let response = client.get(&url).await.expect("answered");
            assert_eq!(response.version(), http::Version::HTTP_2);
            response.bytes().await.expect("body")
        }
    });
    for body in futures_util::future::join_all(calls).await {
        assert_eq!(body, "HTTP/2.0");
    }
    assert_eq!(
        server.connections(),
        1,
        "ten concurrent streams, one connection"
    );
}

#[tokio::test]
async fn a_blackholed_server_times_out_within_the_request_timeout() {
    let server = TestServer::start(|_, _| async { text(200, "ok") }).await;
    let proxy = FaultProxy::start(server.addr()).await;
    proxy.set(Fault::Blackhole);
    let mut policy = quick_retries();
    policy.max_attempts = 1;
    let timeout = Duration::from_millis(300);
    let client = builder()
        .retry(policy)
        .request_timeout(timeout)
        .build()
        .expect("client");
    let started = Instant::now();
    let error = client
        .get(&format!("http://{}/", proxy.addr()))
        .await
        .expect_err("no answer");
    assert!(matches!(error, HttpError::Timeout { .. }), "{error}");
    assert!(started.elapsed() >= timeout);
    assert_eq!(server.hits(), 0);
}

#[tokio::test]
async fn reset_connections_are_retried_for_idempotent_requests() {
    let server = TestServer::start(|_, _| async { text(200, "ok") }).await;
    let proxy = FaultProxy::start(server.addr()).await;
    proxy.set(Fault::Reset);
    let client = builder().build().expect("client");
    let url = format!("http://{}/", proxy.addr());
    let error = client.get(&url).await.expect_err("every connection reset");
    assert!(error.is_upstream_failure(), "{error}");
    assert_eq!(
        proxy.connections_opened(),
        3,
        "three attempts, three connections"
    );

    proxy.set(Fault::None);
    let response = client.get(&url).await.expect("healed");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn connection_refused_is_retried_and_the_error_hides_credentials() {
    let dead = support::with_dead_port("http://app:hunter2@127.0.0.1:1/v1?key=sk-secret");
    let client = builder().build().expect("client");
    let error = client.get(&dead).await.expect_err("nobody listens");
    let shown = format!("{error} / {error:?}");
    assert!(
        matches!(error, HttpError::Connect { attempts: 3, .. }),
        "{shown}"
    );
    assert!(shown.contains("127.0.0.1:"), "names the host: {shown}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("sk-secret"),
        "{shown}"
    );
}

#[tokio::test]
async fn requests_in_flight_per_host_are_capped() {
    let now = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start({
        let (now, peak) = (Arc::clone(&now), Arc::clone(&peak));
        move |_, _| {
            let (now, peak) = (Arc::clone(&now), Arc::clone(&peak));
            async move {
                let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(running, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                now.fetch_sub(1, Ordering::SeqCst);
                text(200, "ok")
            }
        }
    })
    .await;
    let client = builder()
        .max_connections_per_host(2)
        .build()
        .expect("client");
    let calls = (0..8).map(|_| {
        let client = client.clone();
        let url = server.url("/");
        async move { client.get(&url).await.expect("answered").bytes().await }
    });
    futures_util::future::join_all(calls).await;
    assert_eq!(server.hits(), 8);
    assert_eq!(peak.load(Ordering::SeqCst), 2, "never more than 2 at once");
    assert!(server.connections() <= 2, "{}", server.connections());
}

#[tokio::test]
async fn json_helpers_round_trip() {
    let server = TestServer::start(|request, _| async move {
        use http_body_util::BodyExt;
        let method = request.method().clone();
        let body = request
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let echoed: serde_json::Value = if body.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&body).expect("json")
        };
        let answer = serde_json::json!({ "method": method.as_str(), "echo": echoed });
        text(200, answer.to_string())
    })
    .await;
    let client = builder().build().expect("client");
    let got: serde_json::Value = client.get_json(&server.url("/")).await.expect("json");
    assert_eq!(got, serde_json::json!({ "method": "GET", "echo": null }));
    let posted: serde_json::Value = client
        .post_json(&server.url("/"), &serde_json::json!({ "q": "hi" }))
        .await
        .expect("json");
    assert_eq!(
        posted,
        serde_json::json!({ "method": "POST", "echo": { "q": "hi" } })
    );
}

/// The only test here that installs the Prometheus recorder (once per
/// process); the others' series carry other hosts, so counts stay exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_labelled_by_bounded_host_and_status_class() {
    let config = perf_runtime::PerfConfig::builder()
        .enable_monitoring(false)
        .build()
        .expect("config");
    let perf = perf_runtime::init(config).await.expect("init");
    let named = failing_first(2).await;
    let unnamed = TestServer::start(|_, _| async { text(200, "ok") }).await;
    let client = builder()
        .metric_hosts([named.host()])
        .max_host_labels(0)
        .circuit_breaker(Some(BreakerPolicy::default()))
        .build()
        .expect("client");
    client.get(&named.url("/")).await.expect("answered");
    client.get(&unnamed.url("/")).await.expect("answered");
    let limit = perf_runtime::limit::ConcurrencyLimit::builder("metrics_test")
        .initial(7)
        .build()
        .expect("limit");

    let text = perf.render_prometheus().expect("ENABLE_PROMETHEUS is on");
    let host = named.host();
    let value = |name: &str, labels: &[(&str, &str)]| support::sample(&text, name, labels);
    let requests = "perf_http_client_requests_total";
    assert_eq!(
        value(requests, &[("host", &host), ("status_class", "5xx")]),
        Some(2.0)
    );
    assert_eq!(
        value(requests, &[("host", &host), ("status_class", "2xx")]),
        Some(1.0)
    );
    assert_eq!(
        value("perf_http_client_retries_total", &[("host", &host)]),
        Some(2.0)
    );
    assert_eq!(
        value(
            "perf_http_client_request_duration_seconds_count",
            &[("host", &host), ("status_class", "2xx")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value("perf_http_client_breaker_state", &[("host", &host)]),
        Some(0.0)
    );
    assert_eq!(
        value(requests, &[("host", "other"), ("status_class", "2xx")]),
        Some(1.0),
        "a host past the label cap is `other`"
    );
    assert!(
        !text.contains(&unnamed.host()),
        "no series names the unlisted host"
    );
    assert_eq!(
        value("perf_concurrency_limit", &[("limiter", "metrics_test")]),
        Some(7.0)
    );
    assert_eq!(
        value("perf_concurrency_in_flight", &[("limiter", "metrics_test")]),
        Some(0.0)
    );
    drop(limit);
    if let Some(verdict) = support::promtool_check(&text) {
        verdict.expect("promtool accepts the exposition");
    }
}
