//! The OpenAI-compatible provider client against the loopback server of
//! `support::openai_server`: whole and streamed answers, retries (429 with
//! `Retry-After`, 5xx), fallback chains, requests- and tokens-per-minute
//! budgets, timeouts, the embeddings client, and the API key kept out of
//! every error, Debug output, log line and metric label. Only lower bounds
//! on wall-clock time.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use perf_runtime::ai::{
    AiError, Budget, ChatMessage, ChatRequest, ChatResponse, Embedder, FallbackChain,
    OpenAiEmbedder, Provider, ProviderConfig, ProviderConfigBuilder,
};
use perf_runtime::http::{HttpClient, RetryPolicy};
use support::openai_server::{CHAT, EMBEDDINGS, Fault, OpenAiServer, raw_vector};

/// Retries after short backoffs (a `Retry-After` still sets the wait), a
/// retry budget that never runs out and no breaker, so counts are exact.
fn http() -> HttpClient {
    let mut policy = RetryPolicy::default();
    policy.max_attempts = 3;
    policy.base_delay = Duration::from_millis(1);
    policy.max_delay = Duration::from_millis(5);
    policy.budget_min_per_second = 1000;
    HttpClient::builder()
        .retry(policy)
        .circuit_breaker(None)
        .build()
        .expect("http client")
}

fn provider(
    server: &OpenAiServer,
    name: &str,
    settings: impl FnOnce(ProviderConfigBuilder) -> ProviderConfigBuilder,
) -> Provider {
    let config = settings(ProviderConfig::builder(name, server.base_url()))
        .build()
        .expect("provider config");
    Provider::new(config, http())
}

fn ask(model: &str, question: &str) -> ChatRequest {
    ChatRequest::new(
        model,
        vec![
            ChatMessage::system("Answer briefly."),
            ChatMessage::user(question),
        ],
    )
}

#[tokio::test]
async fn streamed_and_whole_answers_have_the_same_text() {
    let server = OpenAiServer::start(8).await;
    let provider = provider(&server, "local", |b| b.api_key("sk-test-1"));
    let request = ask("model-a", "what is a monad");

    let whole = provider.chat(&request).await.expect("whole answer");
    let mut stream = provider.chat_stream(&request);
    let mut pieces = Vec::new();
    let mut streamed = String::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("a piece");
        streamed.push_str(&chunk.delta);
        pieces.push(chunk);
    }
    let collected = ChatResponse::from_stream(provider.chat_stream(&request))
        .await
        .expect("collected stream");
    println!(
        "whole: {:?} ({:?}); streamed in {} pieces: {streamed:?}",
        whole.content,
        whole.usage,
        pieces.len()
    );

    assert_eq!(
        whole.content,
        OpenAiServer::answer_to("what is a monad"),
        "the server's answer"
    );
    assert_eq!(streamed, whole.content);
    assert!(pieces.len() > 3, "the answer came in pieces");
    assert_eq!(collected.content, whole.content);
    assert_eq!(collected.usage, whole.usage, "usage from the last piece");
    assert_eq!(collected.finish_reason.as_deref(), Some("stop"));
    assert_eq!(whole.finish_reason.as_deref(), Some("stop"));
    assert_eq!(collected.model, "model-a");
    assert_eq!(
        (whole.provider.as_str(), collected.provider.as_str()),
        ("local", "local")
    );
    assert!(!whole.has_tool_calls());
    let seen = server.seen();
    assert_eq!(server.calls(CHAT, "model-a"), 3);
    assert_eq!(
        seen.iter().map(|s| s.stream).collect::<Vec<_>>(),
        [false, true, true]
    );
    assert!(
        seen.iter()
            .all(|s| s.authorization.as_deref() == Some("Bearer sk-test-1")),
        "the key goes out in the Authorization header"
    );
}

#[tokio::test]
async fn a_429_is_retried_after_the_delay_it_names() {
    let server = OpenAiServer::start(8).await;
    let provider = provider(&server, "local", |b| b);
    server.inject(Fault::TooManyRequests {
        retry_after_seconds: 1,
    });
    let answer = provider
        .chat(&ask("m", "hello"))
        .await
        .expect("answered after the retry");
    assert_eq!(answer.content, OpenAiServer::answer_to("hello"));
    let seen = server.seen();
    assert_eq!(seen.len(), 2, "refused once, answered once");
    let gap = seen[1].at - seen[0].at;
    println!("429 with Retry-After: 1 -> retried after {gap:?}");
    assert!(
        gap >= Duration::from_millis(950),
        "the retry waited for Retry-After: {gap:?}"
    );

    // The same before a stream starts.
    server.inject(Fault::TooManyRequests {
        retry_after_seconds: 1,
    });
    let streamed = ChatResponse::from_stream(provider.chat_stream(&ask("m", "hello")))
        .await
        .expect("stream after the retry");
    assert_eq!(streamed.content, answer.content);
    let seen = server.seen();
    assert_eq!(seen.len(), 4);
    assert!(seen[3].at - seen[2].at >= Duration::from_millis(950));

    // A 429 that lasts past the attempts comes back as RateLimited, with
    // the wait the server asked for.
    for _ in 0..3 {
        server.inject(Fault::TooManyRequests {
            retry_after_seconds: 0,
        });
    }
    let error = provider
        .chat(&ask("m", "hello"))
        .await
        .expect_err("still limited");
    println!("429 three times: {error}");
    assert!(
        matches!(&error, AiError::RateLimited { provider, model, retry_after: Some(wait) }
            if provider == "local" && model == "m" && wait.is_zero()),
        "{error:?}"
    );
    assert_eq!(server.calls_on(CHAT), 7, "three attempts, no more");
}

#[tokio::test]
async fn server_errors_are_retried() {
    let server = OpenAiServer::start(8).await;
    let provider = provider(&server, "local", |b| b.server_error_retries(1));

    // 500: by the provider (the HTTP client leaves 500 alone).
    server.inject(Fault::Status(500));
    let answer = provider.chat(&ask("m", "one")).await.expect("after a 500");
    assert_eq!(answer.content, OpenAiServer::answer_to("one"));
    assert_eq!(server.calls_on(CHAT), 2);

    // 503: by the HTTP client.
    server.inject(Fault::Status(503));
    server.inject(Fault::Status(503));
    provider
        .chat(&ask("m", "two"))
        .await
        .expect("after two 503s");
    assert_eq!(server.calls_on(CHAT), 5);

    // Two 500s with one retry allowed: the error, with its status.
    server.inject(Fault::Status(500));
    server.inject(Fault::Status(500));
    let error = provider
        .chat(&ask("m", "three"))
        .await
        .expect_err("500 twice");
    println!("500 twice: {error}");
    assert!(
        matches!(&error, AiError::Provider { provider, status: Some(500), reason }
            if provider == "local" && reason.contains("server had an error")),
        "{error:?}"
    );
    assert_eq!(server.calls_on(CHAT), 7);

    // A stream is not sent again once its body has begun: a cut stream is
    // an error, not a silent end and not a second request.
    server.inject(Fault::CutStream);
    let mut stream = provider.chat_stream(&ask("m", "four"));
    let mut text = String::new();
    let mut failure = None;
    while let Some(piece) = stream.next().await {
        match piece {
            Ok(chunk) => text.push_str(&chunk.delta),
            Err(error) => failure = Some(error),
        }
    }
    let failure = failure.expect("the cut is reported");
    println!("cut stream after {text:?}: {failure}");
    assert!(!text.is_empty(), "pieces before the cut arrived");
    assert!(failure.to_string().contains("[DONE]"), "{failure}");
    assert_eq!(server.calls_on(CHAT), 8, "the stream was not retried");
}

#[tokio::test]
async fn the_fallback_chain_is_taken_when_a_route_keeps_failing() {
    let first = OpenAiServer::start(8).await;
    let second = OpenAiServer::start(8).await;
    first.fail_model("big", 503);
    let primary = provider(&first, "primary", |b| b);
    let backup = provider(&second, "backup", |b| b);

    // Another model of the same provider.
    let chain = FallbackChain::new(primary.clone(), "big").or(primary.clone(), "small");
    let answer = chain
        .chat(&ask("ignored", "fall back"))
        .await
        .expect("the second route answers");
    println!(
        "answered by {}/{} after {} calls to big",
        answer.provider,
        answer.model,
        first.calls(CHAT, "big")
    );
    assert_eq!(
        (answer.provider.as_str(), answer.model.as_str()),
        ("primary", "small")
    );
    assert_eq!(
        first.calls(CHAT, "big"),
        3,
        "503 retried by the HTTP client, then given up"
    );
    assert_eq!(first.calls(CHAT, "small"), 1);

    // Another provider, streamed.
    let chain = FallbackChain::new(primary.clone(), "big").or(backup.clone(), "gpt-b");
    let streamed = ChatResponse::from_stream(chain.chat_stream(&ask("ignored", "fall back")))
        .await
        .expect("the backup streams");
    assert_eq!(streamed.provider, "backup");
    assert_eq!(streamed.content, OpenAiServer::answer_to("fall back"));
    assert_eq!(second.calls(CHAT, "gpt-b"), 1);
    assert_eq!(first.calls(CHAT, "big"), 6);

    // Every route failing: the last error comes back.
    second.fail_model("gpt-b", 502);
    let error = chain
        .chat(&ask("ignored", "x"))
        .await
        .expect_err("all routes fail");
    assert!(
        matches!(&error, AiError::Provider { provider, status: Some(502), .. } if provider == "backup"),
        "{error:?}"
    );

    // A request the provider refuses as wrong is not sent elsewhere.
    first.fail_model("bad", 400);
    let chain = FallbackChain::new(primary, "bad").or(backup, "gpt-c");
    let error = chain
        .chat(&ask("ignored", "x"))
        .await
        .expect_err("400 ends the chain");
    assert!(
        matches!(
            error,
            AiError::Provider {
                status: Some(400),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(second.calls(CHAT, "gpt-c"), 0);
    assert_eq!(
        chain.routes().collect::<Vec<_>>(),
        [("primary", "bad"), ("backup", "gpt-c")]
    );
}

#[tokio::test]
async fn calls_past_the_requests_per_minute_budget_are_refused() {
    let server = OpenAiServer::start(8).await;
    let limited = provider(&server, "limited", |b| {
        b.budget(Budget::per_minute(Some(3), None))
    });
    let mut served = 0;
    let mut refused = Vec::new();
    for i in 0..5 {
        match limited.chat(&ask("m", &format!("q{i}"))).await {
            Ok(_) => served += 1,
            Err(error) => refused.push(error),
        }
    }
    println!(
        "rpm 3: {served} served, {} refused: {}",
        refused.len(),
        refused[0]
    );
    assert_eq!(served, 3);
    assert_eq!(refused.len(), 2);
    for error in &refused {
        // The next request is 20 s away at 3 per minute (less whatever
        // time the calls took).
        assert!(
            matches!(error, AiError::RateLimited { provider, model, retry_after: Some(wait) }
                if provider == "limited" && model == "m"
                    && *wait > Duration::from_secs(10) && *wait <= Duration::from_secs(20)),
            "{error:?}"
        );
    }
    assert_eq!(server.calls(CHAT, "m"), 3, "refused calls never left");

    // Budgets are per model; over budget, a fallback takes over at once.
    limited
        .chat(&ask("other", "q"))
        .await
        .expect("another model has its own budget");
    let chain = FallbackChain::new(limited.clone(), "m").or(limited, "other");
    let answer = chain.chat(&ask("", "q")).await.expect("fell back");
    assert_eq!(answer.model, "other");
    assert_eq!(server.calls(CHAT, "m"), 3);
    assert_eq!(server.calls(CHAT, "other"), 2);
}

#[tokio::test]
async fn the_tokens_per_minute_budget_is_weighted_by_tokens() {
    const TIGHT: u64 = 200;
    let server = OpenAiServer::start(8).await;
    let limited = provider(&server, "limited", |b| {
        b.budget(Budget::per_minute(None, Some(1000)))
            .model_budget("tight", Budget::per_minute(None, Some(TIGHT)))
    });
    // Each call reserves its prompt estimate plus max_tokens: 100 or 600.
    let sized = |model: &str, reserve: u64| {
        let request = ask(model, "hi");
        let cap = reserve - request.estimated_prompt_tokens();
        request.max_tokens(u32::try_from(cap).expect("small"))
    };
    let mut small = 0;
    while limited.chat(&sized("small", 100)).await.is_ok() {
        small += 1;
        assert!(small <= 20, "the budget never refused");
    }
    let mut large = 0;
    while limited.chat(&sized("large", 600)).await.is_ok() {
        large += 1;
        assert!(large <= 20, "the budget never refused");
    }
    println!("tpm 1000: {small} calls of 100 tokens, {large} of 600");
    assert_eq!(small, 10);
    assert_eq!(large, 1);
    assert_eq!(server.calls(CHAT, "small"), 10);
    assert_eq!(server.calls(CHAT, "large"), 1);
    let error = limited
        .chat(&sized("large", 1001))
        .await
        .expect_err("more than a minute's budget");
    assert!(
        error
            .to_string()
            .contains("more than the whole tokens-per-minute budget"),
        "{error}"
    );

    // Without max_tokens a call reserves its prompt estimate; the usage the
    // server reports above it is charged afterwards, so "tight" (20 per
    // minute) serves fewer calls than reservations alone would allow.
    let request = ask("tight", "hi");
    let reserved = request.reserved_tokens();
    let whole = limited.chat(&request).await.expect("first");
    let used = whole.usage.expect("usage").total();
    assert!(
        used > reserved,
        "the server counts {used}, the estimate {reserved}"
    );
    let mut tight = 1;
    while limited.chat(&request).await.is_ok() {
        tight += 1;
        assert!(tight <= 40, "the budget never refused");
    }
    println!("tpm {TIGHT}: {tight} calls reserving {reserved} and using {used} tokens");
    // Call k + 1 goes while what is left after k charged calls covers a
    // reservation; by reservations alone it would be TIGHT / reserved.
    assert_eq!(tight, (TIGHT - reserved) / used + 1);
    assert!(tight < TIGHT / reserved);
}

#[tokio::test]
async fn a_timeout_names_the_provider() {
    let server = OpenAiServer::start(8).await;
    let slow = provider(&server, "slow-provider", |b| {
        b.timeout(Duration::from_millis(300))
    });
    server.inject(Fault::Delay(Duration::from_secs(3)));
    let error = slow.chat(&ask("m", "q")).await.expect_err("too slow");
    println!("whole: {error}");
    assert!(
        matches!(&error, AiError::Timeout { provider, after } if provider == "slow-provider"
            && *after == Duration::from_millis(300)),
        "{error:?}"
    );
    assert!(error.to_string().contains("slow-provider"), "{error}");

    // A stream whose pieces stop coming.
    server.stream_gap(Duration::from_secs(3));
    let error = ChatResponse::from_stream(slow.chat_stream(&ask("m", "q")))
        .await
        .expect_err("stalled stream");
    println!("stream: {error}");
    assert!(matches!(&error, AiError::Timeout { provider, .. } if provider == "slow-provider"));
}

#[tokio::test]
async fn the_embeddings_client_returns_unit_vectors_of_the_servers_dimension() {
    let server = OpenAiServer::start(48).await;
    let provider = provider(&server, "local", |b| b);
    let embedder = OpenAiEmbedder::detect(provider.clone(), "embed-1")
        .await
        .expect("dimension probe")
        .batch_size(2);
    assert_eq!(embedder.dimensions(), 48);
    assert_eq!(embedder.model(), "local/embed-1");
    let texts: Vec<String> = ["alpha", "beta", "gamma", "delta", "epsilon"]
        .iter()
        .map(|t| (*t).to_owned())
        .collect();
    let vectors = embedder.embed(&texts).await.expect("vectors");
    assert_eq!(vectors.len(), 5);
    for (text, vector) in texts.iter().zip(&vectors) {
        assert_eq!(vector.len(), 48);
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{text}: norm {norm}");
        // In input order, though the server lists them in reverse.
        let raw = raw_vector(text, 48);
        let raw_norm: f32 = raw.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!(raw_norm > 2.0, "the server's vectors are not unit length");
        for (got, want) in vector.iter().zip(&raw) {
            assert!((got - want / raw_norm).abs() < 1e-5);
        }
    }
    println!(
        "5 texts in batches of 2: {} embedding calls after the probe",
        server.calls(EMBEDDINGS, "embed-1") - 1
    );
    assert_eq!(server.calls(EMBEDDINGS, "embed-1"), 1 + 3);
    assert!(embedder.embed(&[]).await.expect("nothing").is_empty());
    assert_eq!(
        server.calls(EMBEDDINGS, "embed-1"),
        4,
        "no call for no text"
    );

    // Shortened vectors where the model supports it; a length mismatch is
    // an error, not a silent mix of vector spaces.
    let short = OpenAiEmbedder::new(provider.clone(), "embed-1", 16).request_dimensions(true);
    assert_eq!(short.embed(&texts[..1]).await.expect("short")[0].len(), 16);
    let wrong = OpenAiEmbedder::new(provider, "embed-1", 32);
    let error = wrong.embed(&texts[..1]).await.expect_err("48 is not 32");
    assert!(
        matches!(&error, AiError::Embedding { model, reason } if model == "local/embed-1"
            && reason.contains("32") && reason.contains("48")),
        "{error:?}"
    );
}

/// Collects what `tracing` writes, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn the_api_key_never_appears_in_errors_debug_output_logs_or_metrics() {
    const CANARY: &str = "sk-canary-7f3a9c1e5b2d";
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer({
            let captured = captured.clone();
            move || captured.clone()
        })
        .with_ansi(false)
        .finish();
    // The test runs on one thread, so every task it spawns logs here.
    let _logging = tracing::subscriber::set_default(subscriber);
    let config = perf_runtime::PerfConfig::builder()
        .enable_monitoring(false)
        .build()
        .expect("config");
    let perf = perf_runtime::init(config).await.expect("init");

    let server = OpenAiServer::start(8).await;
    let backup = OpenAiServer::start(8).await;
    let canary = provider(&server, "canary-p", |b| {
        b.api_key(CANARY)
            .timeout(Duration::from_millis(300))
            .budget(Budget::per_minute(Some(8), Some(10_000)))
    });
    let mut shown: Vec<String> = Vec::new();
    let mut show_error = |error: AiError| {
        shown.push(error.to_string());
        shown.push(format!("{error:?}"));
    };

    // An answer: the key did go out.
    canary.chat(&ask("m", "q")).await.expect("answer");
    assert_eq!(
        server.seen()[0].authorization.as_deref(),
        Some(format!("Bearer {CANARY}").as_str())
    );
    // A 401 whose message quotes the key, as OpenAI's does.
    server.require_key("sk-the-right-one");
    let refused = canary.chat(&ask("m", "q")).await.expect_err("401");
    assert!(matches!(
        refused,
        AiError::Provider {
            status: Some(401),
            ..
        }
    ));
    show_error(refused);
    let refused = ChatResponse::from_stream(canary.chat_stream(&ask("m", "q")))
        .await
        .expect_err("401 streamed");
    show_error(refused);
    // The same through a fallback chain, which logs each failure: a 401 is
    // not passed on, a 503 is.
    server.require_key(CANARY);
    server.fail_model("down", 503);
    let chain =
        FallbackChain::new(canary.clone(), "down").or(provider(&backup, "backup", |b| b), "up");
    chain.chat(&ask("", "q")).await.expect("fell back");
    show_error(canary.chat(&ask("down", "q")).await.expect_err("503"));
    // Rate limited, over budget, timed out, unreachable.
    server.inject(Fault::TooManyRequests {
        retry_after_seconds: 0,
    });
    server.inject(Fault::TooManyRequests {
        retry_after_seconds: 0,
    });
    server.inject(Fault::TooManyRequests {
        retry_after_seconds: 0,
    });
    show_error(canary.chat(&ask("m", "q")).await.expect_err("429"));
    server.inject(Fault::Delay(Duration::from_secs(2)));
    show_error(canary.chat(&ask("m", "q")).await.expect_err("timeout"));
    let over_budget = loop {
        if let Err(error @ AiError::RateLimited { .. }) = canary.chat(&ask("m", "q")).await {
            break error;
        }
    };
    show_error(over_budget);
    let unreachable = Provider::new(
        ProviderConfig::builder("dead", support::with_dead_port("http://127.0.0.1:1/v1"))
            .api_key(CANARY)
            .build()
            .expect("config"),
        http(),
    );
    show_error(unreachable.chat(&ask("m", "q")).await.expect_err("refused"));
    let embedder = OpenAiEmbedder::new(unreachable.clone(), "e", 8);
    show_error(
        embedder
            .embed(&["x".to_owned()])
            .await
            .expect_err("refused"),
    );
    show_error(
        ProviderConfig::builder("bad", "http://127.0.0.1:1/v1")
            .api_key(format!("{CANARY}\n"))
            .build()
            .expect_err("newline in key"),
    );
    show_error(
        ProviderConfig::list_from_lookup(|name| match name {
            "OPENAI_API_KEY" => Some(format!("{CANARY}\u{7f}")),
            _ => None,
        })
        .expect_err("bad key"),
    );
    for debug in [
        format!("{canary:?}"),
        format!("{:?}", canary.config()),
        format!("{chain:?}"),
        format!("{embedder:?}"),
        format!("{:?}", canary.config().api_key()),
    ] {
        shown.push(debug);
    }
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    let metrics = perf.render_prometheus().expect("prometheus recorder");
    println!(
        "checked {} error and Debug strings, {} bytes of logs, {} bytes of metrics",
        shown.len(),
        logs.len(),
        metrics.len()
    );
    for text in &shown {
        assert!(
            !text.contains(CANARY) && !text.contains("canary-7f3a"),
            "{text}"
        );
    }
    assert!(
        logs.contains("fallback chain"),
        "the fallback was logged: {logs}"
    );
    assert!(!logs.contains("canary-7f3a"), "{logs}");
    assert!(!metrics.contains("canary-7f3a"), "{metrics}");
    let ok = support::sample(
        &metrics,
        "perf_ai_requests_total",
        &[("provider", "canary-p"), ("model", "m"), ("outcome", "ok")],
    );
    assert!(ok.is_some_and(|n| n >= 1.0), "calls are counted: {metrics}");
    assert!(metrics.contains("perf_ai_tokens_total"));
    perf.shutdown().await;
}
