//! The load engine against the example backend, as a newcomer would run
//! `perf load http://127.0.0.1:8000/api/chat -c 100 -d 30s`: the example
//! served on loopback, a plain GET of `/api/chat` and the streamed answer
//! of `/api/chat/stream`, every answer a 200, every stream ended with its
//! marker and made of the reply's words (the answers come from the model
//! simulator the example starts, through `#[ai_optimized]`).

use std::time::Duration;

use perf_runtime::bench::{BenchmarkConfig, BenchmarkReport, run_benchmark};

async fn serve_example() -> String {
    let app = perf_examples::chat::app(Default::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

/// The body of a plain GET (HTTP/1.1, the connection closed after it).
async fn http_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest.split_at(rest.find('/').expect("a path"));
    let mut socket = tokio::net::TcpStream::connect(host).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.expect("send");
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.expect("read");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .expect("a body")
}

async fn load(url: String) -> BenchmarkReport {
    let config = BenchmarkConfig::builder("example", url)
        .concurrent_users(20)
        .duration(Duration::from_secs(1))
        .build()
        .expect("valid config");
    let report = run_benchmark(config).await.expect("run");
    println!(
        "{}: {} requests, {:.0} req/s, p50 {:?}, p99 {:?}, errors {:?}, streaming {:?}",
        report.target,
        report.requests,
        report.requests_per_second,
        report.latency.p50(),
        report.latency.p99(),
        report.errors,
        report
            .streaming
            .as_ref()
            .map(|s| (s.streams, s.ended_properly, s.tokens)),
    );
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_of_the_chat_endpoint_answers_every_request() {
    let base = serve_example().await;
    let report = load(format!("{base}/api/chat")).await;
    assert!(report.requests > 0);
    assert_eq!(report.status_codes.get(&200), Some(&report.requests));
    assert_eq!(report.errors.total(), 0);
    assert!(report.streaming.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_streamed_chat_answer_ends_properly_with_one_token_per_word() {
    let base = serve_example().await;
    // The whole answer, asked once: the stream must carry the same words.
    let whole = http_get(&format!("{base}/api/chat?message=hello")).await;
    let reply: serde_json::Value = serde_json::from_str(&whole).expect("json");
    let words = reply["reply"]
        .as_str()
        .expect("reply")
        .split_whitespace()
        .count() as u64;
    let report = load(format!("{base}/api/chat/stream?message=hello")).await;
    let streaming = report.streaming.as_ref().expect("streamed answers");
    assert!(report.requests > 0);
    assert_eq!(report.errors.total(), 0);
    assert_eq!(streaming.streams, report.requests);
    assert_eq!(streaming.ended_properly, report.requests);
    // A data event per word and one that ends the answer, whether streamed
    // from the model (the first requests) or replayed from the cache (the
    // rest): the same text either way.
    assert_eq!(streaming.tokens, (words + 1) * report.requests);
    assert_eq!(streaming.time_to_first_token.count, report.requests);
}
