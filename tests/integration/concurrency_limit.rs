//! Adaptive concurrency limits over real sockets: the server layer sheds
//! with 503 and holds a streamed response's permit until its body ends; the
//! client's limit does the same for streamed responses and adapts to what
//! the upstream answers.

mod support;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use futures_util::StreamExt;
use perf_runtime::http::{HttpClient, HttpError, RetryPolicy};
use perf_runtime::limit::{Aimd, Algorithm, ConcurrencyLimit, ConcurrencyLimitLayer, Overload};
use support::http_server::{TestServer, text};
use tokio::sync::mpsc;

type Chunks = mpsc::UnboundedSender<Result<Bytes, Infallible>>;

/// One try per request: a 503 must reach the test, not be retried.
fn single_attempt_client() -> perf_runtime::http::HttpClientBuilder {
    let mut once = RetryPolicy::default();
    once.max_attempts = 1;
    HttpClient::builder().retry(once).circuit_breaker(None)
}

/// An axum app under `limit`: `/stream` streams what the test sends on the
/// channel it gets back, `/hello` answers at once.
async fn limited_app(limit: ConcurrencyLimit) -> (String, Chunks) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let receiver = Arc::new(Mutex::new(Some(receiver)));
    let stream = move || {
        let receiver = receiver.lock().expect("lock").take().expect("one stream");
        let chunks = futures_util::stream::unfold(receiver, |mut receiver| async move {
            receiver.recv().await.map(|chunk| (chunk, receiver))
        });
        async move { Body::from_stream(chunks) }
    };
    let app = Router::new()
        .route("/stream", get(stream))
        .route("/hello", get(|| async { "hello" }))
        .layer(ConcurrencyLimitLayer::new(limit));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, sender)
}

#[tokio::test]
async fn the_server_layer_sheds_with_503_while_a_stream_holds_the_only_permit() {
    let limit = ConcurrencyLimit::builder("server")
        .initial(1)
        .bounds(1, 1)
        .overload(Overload::Reject)
        .build()
        .expect("limit");
    let (base, chunks) = limited_app(limit.clone()).await;
    let client = single_attempt_client().build().expect("client");

    let streaming = client
        .get(&format!("{base}/stream"))
        .await
        .expect("headers");
    assert_eq!(streaming.status(), 200);
    let mut body = Box::pin(streaming.into_stream());
    chunks.send(Ok(Bytes::from("data: 1\n\n"))).expect("send");
    assert_eq!(
        body.next().await.expect("chunk").expect("data"),
        "data: 1\n\n"
    );
    assert_eq!(limit.in_flight(), 1, "the open stream holds the permit");

    let shed = client
        .get(&format!("{base}/hello"))
        .await
        .expect("answered");
    assert_eq!(shed.status(), 503, "no room while the stream runs");

    drop(chunks);
    assert!(body.next().await.is_none(), "the stream ended");
    assert_eq!(limit.in_flight(), 0);
    let hello = client
        .get(&format!("{base}/hello"))
        .await
        .expect("answered");
    assert_eq!(hello.status(), 200, "the ended stream gave its place back");
}

#[tokio::test]
async fn the_client_limit_holds_a_permit_until_the_streamed_body_ends() {
    let server = TestServer::start(|request, _| async move {
        if request.uri().path() == "/slow-stream" {
            let chunks = futures_util::stream::unfold(0, |step| async move {
                (step < 3).then_some(())?;
                tokio::time::sleep(Duration::from_millis(50)).await;
                let frame = hyper::body::Frame::data(Bytes::from(format!("data: {step}\n\n")));
                Some((Ok::<_, support::http_server::BoxError>(frame), step + 1))
            });
            http::Response::new(http_body_util::BodyExt::boxed(
                http_body_util::StreamBody::new(chunks),
            ))
        } else {
            text(200, "ok")
        }
    })
    .await;
    let limit = ConcurrencyLimit::builder("client")
        .initial(1)
        .bounds(1, 1)
        .overload(Overload::Reject)
        .build()
        .expect("limit");
    let client = single_attempt_client()
        .concurrency_limit(limit.clone())
        .build()
        .expect("client");

    let streaming = client
        .get(&server.url("/slow-stream"))
        .await
        .expect("headers");
    assert_eq!(limit.in_flight(), 1);
    let refused = client.get(&server.url("/")).await.expect_err("limit full");
    assert!(
        matches!(refused, HttpError::ConcurrencyLimited { .. }),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("`client` is full"),
        "{refused}"
    );

    let chunks: Vec<_> = streaming.into_stream().collect().await;
    assert_eq!(chunks.len(), 3);
    assert_eq!(
        limit.in_flight(),
        0,
        "the end of the body released the permit"
    );
    client.get(&server.url("/")).await.expect("room again");
}

#[tokio::test]
async fn the_client_limit_grows_on_fast_successes_and_shrinks_on_503() {
    let overloaded = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let server = TestServer::start({
        let overloaded = Arc::clone(&overloaded);
        move |_, _| {
            let busy = overloaded.load(std::sync::atomic::Ordering::SeqCst);
            async move {
                if busy {
                    text(503, "busy")
                } else {
                    text(200, "ok")
                }
            }
        }
    })
    .await;
    let limit = ConcurrencyLimit::builder("adaptive")
        .initial(4)
        .bounds(2, 64)
        // Loopback answers in well under 2 s: only outcomes move this limit.
        .algorithm(Algorithm::Aimd({
            let mut aimd = Aimd::default();
            aimd.latency_threshold = Duration::from_secs(2);
            aimd
        }))
        .overload(Overload::Wait(Duration::from_secs(30)))
        .build()
        .expect("limit");
    let client = single_attempt_client()
        .concurrency_limit(limit.clone())
        .build()
        .expect("client");
    let round = |size: usize| {
        let calls = (0..size).map(|_| {
            let client = client.clone();
            let url = server.url("/");
            async move {
                let response = client.get(&url).await.expect("answered");
                response.bytes().await.expect("body");
            }
        });
        futures_util::future::join_all(calls)
    };

    for _ in 0..5 {
        round(limit.limit()).await;
    }
    let grown = limit.limit();
    assert!(grown > 4, "fast successes grew the limit: 4 -> {grown}");

    overloaded.store(true, std::sync::atomic::Ordering::SeqCst);
    round(grown).await;
    assert!(
        limit.limit() < grown,
        "503s shrank it: {grown} -> {}",
        limit.limit()
    );
}
