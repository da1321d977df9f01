//! The example's model simulator (`perf_examples::simulator`) through the
//! runtime's own client: `perf_runtime::ai::Provider` parses its whole and
//! streamed answers alike, `OpenAiEmbedder` its embeddings; it marks itself
//! as a simulator, cuts answers at `max_tokens`, refuses bad bodies the
//! OpenAI way and is no faster than configured (lower bounds only).

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use perf_examples::simulator::{self, SIMULATOR_HEADER, Simulator, SimulatorConfig};
use perf_runtime::ai::{
    ChatMessage, ChatRequest, ChatResponse, Embedder, LocalEmbedder, OpenAiEmbedder, Provider,
    ProviderConfig,
};
use perf_runtime::http::HttpClient;
use serde_json::Value;
use tokio::time::Instant;

fn http() -> HttpClient {
    HttpClient::builder()
        .circuit_breaker(None)
        .build()
        .expect("http client")
}

fn provider(simulator: &Simulator) -> Provider {
    let config = ProviderConfig::builder("simulator", simulator.base_url())
        .build()
        .expect("provider config");
    Provider::new(config, http())
}

fn ask(question: &str) -> ChatRequest {
    ChatRequest::new(
        "gpt-4o-mini",
        vec![
            ChatMessage::system("Answer briefly."),
            ChatMessage::user(question),
        ],
    )
}

async fn streamed(provider: &Provider, request: &ChatRequest) -> ChatResponse {
    ChatResponse::from_stream(provider.chat_stream(request))
        .await
        .expect("streamed answer")
}

/// A raw POST, for what the client does not show: status, headers, body.
async fn post(simulator: &Simulator, path: &str, body: &str) -> (u16, http::HeaderMap, Value) {
    let request = http::Request::post(format!("{}{path}", simulator.base_url()))
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Bytes::from(body.to_owned()))
        .expect("request");
    let response = http().send(request).await.expect("answered");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("body");
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, headers, json)
}

#[tokio::test]
async fn whole_and_streamed_answers_agree_and_count_tokens() {
    let simulator = simulator::start(SimulatorConfig::instant())
        .await
        .expect("simulator");
    let provider = provider(&simulator);
    let request = ask("How do I tune PostgreSQL indexes for a busy table?");

    let whole = provider.chat(&request).await.expect("whole answer");
    let mut stream = provider.chat_stream(&request);
    let mut pieces = 0;
    let mut text = String::new();
    let mut usage = None;
    let mut finish = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("a piece");
        pieces += 1;
        text.push_str(&chunk.delta);
        usage = chunk.usage.or(usage);
        finish = chunk.finish_reason.or(finish);
    }
    println!(
        "whole ({:?}): {:?}\nstreamed in {pieces} pieces",
        whole.usage, whole.content
    );

    assert_eq!(text, whole.content, "the same text either way");
    assert!(
        whole
            .content
            .starts_with("This is a simulated answer (turn 1) about tune, postgresql and indexes."),
        "{}",
        whole.content
    );
    let words = whole.content.split_whitespace().count() as u64;
    assert!((20..=80).contains(&words), "{words} words");
    assert!(pieces as u64 >= words, "a word a piece: {pieces} pieces");
    let expected_usage = Some(perf_runtime::ai::Usage {
        prompt_tokens: request.estimated_prompt_tokens(),
        completion_tokens: words,
    });
    assert_eq!(
        whole.usage, expected_usage,
        "prompt ≈ chars / 4, a token a word"
    );
    assert_eq!(usage, expected_usage, "the stream's usage chunk");
    assert_eq!(whole.finish_reason.as_deref(), Some("stop"));
    assert_eq!(finish.as_deref(), Some("stop"));
    assert_eq!(whole.model, "gpt-4o-mini", "answers as the model asked");
    assert_eq!(simulator.requests(), 2);

    // The same conversation, the same answer; another prompt, another.
    let again = provider.chat(&request).await.expect("again");
    assert_eq!(again.content, whole.content);
    let other = provider
        .chat(&ask("Recommend a science fiction novel"))
        .await
        .expect("other");
    assert_ne!(other.content, whole.content);
    assert!(
        other.content.contains("recommend, science and fiction"),
        "{}",
        other.content
    );
    // A later turn of the same question differs too.
    let later = ChatRequest::new(
        "gpt-4o-mini",
        vec![
            ChatMessage::user("How do I tune PostgreSQL indexes for a busy table?"),
            ChatMessage::assistant(whole.content.clone()),
            ChatMessage::user("How do I tune PostgreSQL indexes for a busy table?"),
        ],
    );
    let later = provider.chat(&later).await.expect("turn 2");
    assert!(later.content.contains("(turn 2)"), "{}", later.content);
    assert_eq!(simulator.requests(), 5);
    simulator.stop().await.expect("stopped");
}

#[tokio::test]
async fn max_tokens_cuts_the_answer_whole_and_streamed() {
    let simulator = simulator::start(SimulatorConfig::instant())
        .await
        .expect("simulator");
    let provider = provider(&simulator);
    let request = ask("Explain the borrow checker").max_tokens(7);
    let whole = provider.chat(&request).await.expect("whole");
    let stream = streamed(&provider, &request).await;
    println!("cut at 7 tokens: {:?}", whole.content);
    assert_eq!(whole.content.split_whitespace().count(), 7);
    assert_eq!(stream.content, whole.content);
    for answer in [&whole, &stream] {
        assert_eq!(answer.finish_reason.as_deref(), Some("length"));
        assert_eq!(answer.usage.map(|u| u.completion_tokens), Some(7));
    }
    let full = provider
        .chat(&ask("Explain the borrow checker"))
        .await
        .expect("uncut");
    assert!(
        full.content.starts_with(&whole.content),
        "the cut answer is the start of the whole one"
    );
}

#[tokio::test]
async fn embeddings_are_the_local_embedders_vectors() {
    let simulator = simulator::start(SimulatorConfig::instant())
        .await
        .expect("simulator");
    let embedder = OpenAiEmbedder::detect(provider(&simulator), "text-embedding-3-small")
        .await
        .expect("detected");
    assert_eq!(embedder.dimensions(), LocalEmbedder::DIMENSIONS);
    let texts = [
        "How do I reverse a list in Python?",
        "how can I reverse a list in python",
        "What is the capital of France?",
    ]
    .map(str::to_owned);
    let vectors = embedder.embed(&texts).await.expect("embedded");
    let local = LocalEmbedder::new();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    for (text, vector) in texts.iter().zip(&vectors) {
        let expected = local.embed_one(text);
        assert!(
            dot(vector, &expected) > 0.9999,
            "{text}: the local vector, in order"
        );
    }
    let (near, far) = (dot(&vectors[0], &vectors[1]), dot(&vectors[0], &vectors[2]));
    println!("paraphrase {near:.3}, unrelated {far:.3}");
    assert!(near > 0.9 && far < 0.3, "meaningful vectors: {near} {far}");
    assert_eq!(simulator.embedding_requests(), 2, "the probe and one batch");

    let (status, _, body) = post(
        &simulator,
        "/embeddings",
        r#"{"model":"e","input":["a","b"],"dimensions":64}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["model"], "e");
    assert_eq!(body["data"][1]["index"], 1);
    assert_eq!(
        body["data"][0]["embedding"].as_array().map(Vec::len),
        Some(64)
    );
    assert_eq!(body["usage"]["prompt_tokens"], 2);
}

#[tokio::test]
async fn it_says_it_is_a_simulator_and_refuses_bad_bodies_like_openai() {
    let simulator = simulator::start(SimulatorConfig::instant())
        .await
        .expect("simulator");
    let (status, headers, body) = post(
        &simulator,
        "/chat/completions",
        r#"{"model":"claude-x","messages":[{"role":"user","content":"hi there"}]}"#,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(headers[SIMULATOR_HEADER], "perf");
    assert!(
        body["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("simcmpl-")),
        "{body}"
    );
    assert_eq!(body["model"], "claude-x");
    assert_eq!(body["object"], "chat.completion");

    for (path, bad, expected) in [
        (
            "/chat/completions",
            "{not json",
            "expected a chat completion request as JSON",
        ),
        (
            "/chat/completions",
            r#"{"model":"m","messages":[]}"#,
            "at least one message",
        ),
        (
            "/embeddings",
            r#"{"model":"e","input":42}"#,
            "a string or a list of strings",
        ),
        (
            "/embeddings",
            r#"{"model":"e","input":"x","dimensions":3}"#,
            "from 64 to 16384",
        ),
    ] {
        let (status, headers, body) = post(&simulator, path, bad).await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(headers[SIMULATOR_HEADER], "perf");
        assert_eq!(body["error"]["type"], "invalid_request_error");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{bad}: {message}");
    }
    let (status, _, body) = post(&simulator, "/completions", "{}").await;
    assert_eq!(status, 404);
    assert!(body["error"]["message"].is_string());
    assert_eq!(simulator.requests(), 1, "refused bodies are not counted");

    let addr = simulator.addr();
    simulator.stop().await.expect("stopped");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening after stop"
    );
}

#[tokio::test]
async fn answers_are_no_faster_than_configured() {
    let config = SimulatorConfig {
        first_token: Duration::from_millis(300),
        per_token: Duration::from_millis(10),
    };
    let simulator = simulator::start(config).await.expect("simulator");
    let provider = provider(&simulator);
    let request = ask("Why is the sky blue?");

    let started = Instant::now();
    let mut stream = provider.chat_stream(&request);
    let mut first_token = None;
    let mut words = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("a piece");
        if !chunk.delta.is_empty() {
            first_token.get_or_insert_with(|| started.elapsed());
            words += 1;
        }
    }
    let streamed = started.elapsed();
    let first_token = first_token.expect("some text");

    let started = Instant::now();
    let whole = provider.chat(&request).await.expect("whole");
    let took = started.elapsed();
    let tokens = whole.usage.expect("usage").completion_tokens;
    println!(
        "stream: first token after {first_token:?}, {words} words in {streamed:?}; whole: {tokens} tokens in {took:?}"
    );
    assert!(first_token >= config.first_token, "TTFT {first_token:?}");
    assert_eq!(words as u64, tokens);
    let per_token = config.per_token * u32::try_from(tokens - 1).expect("small");
    assert!(
        streamed >= config.first_token + per_token,
        "stream {streamed:?}"
    );
    assert!(
        took >= config.first_token + config.per_token * u32::try_from(tokens).expect("small"),
        "whole answer {took:?}"
    );
}
