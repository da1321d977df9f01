//! Streamed answers (server-sent events) under load: the engine finds the
//! tokens, times the first one and the gaps between them, and tells
//! streams that ended properly from those that stopped or were cut. The
//! loopback server streams with known gaps, so the figures are checked
//! against what it was told to do, never against this machine's speed.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use perf_runtime::bench::{BenchmarkConfig, BenchmarkReport, run_benchmark};
use support::http_server::{BoxError, TestBody, TestServer, text};

/// Above an injected gap, what a loaded 2-core machine may add.
const MARGIN: Duration = Duration::from_millis(60);
const FIRST_TOKEN: Duration = Duration::from_millis(30);
const GAP: Duration = Duration::from_millis(15);
const TOKENS: usize = 5;

/// How a stream ends.
#[derive(Clone, Copy)]
enum End {
    /// `data: [DONE]`, then the body ends.
    Done,
    /// The body ends after the last token, no marker.
    Stop,
    /// The connection fails after the last token.
    Cut,
}

/// An OpenAI-style stream: the first token after FIRST_TOKEN, then one
/// every GAP, then `end`.
fn stream(end: End) -> Response<TestBody> {
    let frames = futures_util::stream::unfold(0, move |step| async move {
        if step < TOKENS {
            tokio::time::sleep(if step == 0 { FIRST_TOKEN } else { GAP }).await;
            let event =
                format!("data: {{\"choices\":[{{\"delta\":{{\"content\":\"t{step}\"}}}}]}}\n\n");
            return Some((Ok(Frame::data(Bytes::from(event))), step + 1));
        }
        if step > TOKENS {
            return None;
        }
        let last = match end {
            End::Done => Ok(Frame::data(Bytes::from_static(b"data: [DONE]\n\n"))),
            End::Stop => return None,
            End::Cut => {
                // A moment later, so that the last token is on the wire
                // before the server drops the connection.
                tokio::time::sleep(GAP).await;
                Err::<Frame<Bytes>, BoxError>("cut mid-stream".into())
            }
        };
        Some((last, step + 1))
    });
    Response::builder()
        .header("content-type", "text/event-stream; charset=utf-8")
        .body(BodyExt::boxed(StreamBody::new(frames)))
        .expect("response")
}

async fn load(path: &str) -> BenchmarkReport {
    let server = TestServer::start(|request, _hit| async move {
        match request.uri().path() {
            "/done" => stream(End::Done),
            "/stop" => stream(End::Stop),
            "/cut" => stream(End::Cut),
            _ => text(404, "no such stream"),
        }
    })
    .await;
    let config = BenchmarkConfig::builder("streams", server.url(path))
        .concurrent_users(4)
        .duration(Duration::from_secs(2))
        .build()
        .expect("valid config");
    let report = run_benchmark(config).await.expect("run");
    let streaming = report.streaming.as_ref().expect("streams were seen");
    println!(
        "{path}: requests {}, streams {}, ended properly {}, cut {}, no marker {}, tokens {} ({:.0}/s), \
         ttft p50 {:?} p99 {:?}, tpot p50 {:?} p99 {:?}, latency p50 {:?}",
        report.requests,
        streaming.streams,
        streaming.ended_properly,
        streaming.cut,
        streaming.without_end_marker,
        streaming.tokens,
        streaming.tokens_per_second,
        streaming.time_to_first_token.p50(),
        streaming.time_to_first_token.p99(),
        streaming.time_per_output_token.p50(),
        streaming.time_per_output_token.p99(),
        report.latency.p50(),
    );
    report
}

fn within(value: Duration, injected: Duration) -> bool {
    value >= injected && value <= injected + MARGIN
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_token_and_gaps_are_where_the_server_put_them_and_done_streams_end_properly() {
    let report = load("/done").await;
    let streaming = report.streaming.as_ref().expect("streams");
    assert!(report.requests > 0);
    assert_eq!(streaming.streams, report.requests);
    assert_eq!(streaming.ended_properly, report.requests);
    assert_eq!(streaming.ended_properly_ratio, 1.0);
    assert_eq!(streaming.tokens, report.requests * TOKENS as u64);
    assert_eq!(report.errors.total(), 0);
    assert_eq!(streaming.time_to_first_token.count, report.requests);
    assert!(within(streaming.time_to_first_token.p50(), FIRST_TOKEN));
    assert!(within(streaming.time_per_output_token.p50(), GAP));
    // The whole answer: first token, four gaps, the marker.
    assert!(report.latency.p50() >= FIRST_TOKEN + GAP * (TOKENS as u32 - 1));
    // The JSON carries the section; reports of plain answers do not.
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).expect("json");
    assert_eq!(json["streaming"]["ended_properly"], report.requests);
    assert!(json["streaming"]["time_to_first_token"]["p50_us"].as_u64() >= Some(30_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_without_its_end_marker_is_not_an_error_but_does_not_end_properly() {
    let report = load("/stop").await;
    let streaming = report.streaming.as_ref().expect("streams");
    assert_eq!(streaming.without_end_marker, report.requests);
    assert_eq!(streaming.ended_properly, 0);
    assert_eq!(streaming.ended_properly_ratio, 0.0);
    assert_eq!(report.errors.total(), 0);
    assert_eq!(streaming.tokens, report.requests * TOKENS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_stream_is_an_error_and_its_tokens_still_count() {
    let report = load("/cut").await;
    let streaming = report.streaming.as_ref().expect("streams");
    assert_eq!(streaming.cut, report.requests);
    assert_eq!(report.errors.other, report.requests);
    assert_eq!(streaming.ended_properly, 0);
    assert_eq!(streaming.tokens, report.requests * TOKENS as u64);
    // A cut answer has no latency; its first token was still timed.
    assert_eq!(report.latency.count, 0);
    assert!(within(streaming.time_to_first_token.p50(), FIRST_TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_answers_have_no_streaming_section() {
    let server = TestServer::start(|_request, _hit| async { text(200, "data: [DONE]\n\n") }).await;
    let config = BenchmarkConfig::builder("plain", server.url("/"))
        .concurrent_users(2)
        .duration(Duration::from_millis(500))
        .build()
        .expect("valid config");
    let report = run_benchmark(config).await.expect("run");
    assert!(report.requests > 0);
    assert!(report.streaming.is_none());
    assert!(!report.to_json().contains("\"streaming\""));
}
