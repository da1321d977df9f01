//! The example's `/api/chat` through `#[ai_optimized]`, against the model
//! simulator (which counts the calls it answers): a paraphrase served by
//! meaning, another user never served the first one's answer, the
//! conversation carried by the session into the next turn, and the
//! streamed endpoint replaying a cached answer with the same text.

use axum::Router;
use perf_examples::chat::{AppState, Assistant, app};
use perf_examples::simulator::{self, SimulatorConfig};
use perf_runtime::ai::{Provider, ProviderConfig};
use perf_runtime::http::HttpClient;
use serde_json::{Value, json};

mod support;

async fn post(app: &Router, body: Value) -> Value {
    let (status, answer) = support::call(app, "POST", "/api/chat", Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    serde_json::from_str(&answer).expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_goes_through_the_ai_cache_with_a_session_per_user() {
    let simulator = simulator::start(SimulatorConfig::instant())
        .await
        .expect("simulator");
    let config = ProviderConfig::builder("simulator", simulator.base_url())
        .build()
        .expect("config");
    let provider = Provider::new(config, HttpClient::builder().build().expect("http"));
    let app = app(AppState {
        assistant: Assistant::with_provider(provider, "sim-test"),
        ..AppState::default()
    });

    let first = post(
        &app,
        json!({"message": "How do I reverse a list in Python?", "user": "alice"}),
    )
    .await;
    assert_eq!(simulator.requests(), 1);
    // A new conversation, the same question in other words: by meaning.
    let paraphrase = post(
        &app,
        json!({"message": "How can I reverse a list in Python?", "user": "alice"}),
    )
    .await;
    assert_eq!(paraphrase["reply"], first["reply"]);
    assert_eq!(simulator.requests(), 1);
    // Another user asks the same: never served alice's answer.
    post(
        &app,
        json!({"message": "How do I reverse a list in Python?", "user": "bob"}),
    )
    .await;
    assert_eq!(simulator.requests(), 2);

    // The next turn of alice's first conversation carries it: the
    // simulator numbers the turns it sees.
    let conversation = first["conversation_id"].clone();
    let follow_up = post(
        &app,
        json!({"message": "And in Rust?", "user": "alice", "conversation_id": conversation}),
    )
    .await;
    assert_eq!(simulator.requests(), 3);
    let reply = follow_up["reply"].as_str().expect("reply");
    assert!(reply.contains("(turn 2)"), "{reply}");
    // The same follow-up in a fresh conversation is another context.
    let fresh = post(&app, json!({"message": "And in Rust?", "user": "alice"})).await;
    assert!(fresh["reply"].as_str().expect("reply").contains("(turn 1)"));
    assert_eq!(simulator.requests(), 4);

    // Streamed: the model once, then a replay with the same text.
    let streamed = |app: Router| async move {
        let (status, body) = support::call(
            &app,
            "GET",
            "/api/chat/stream?message=Why%20is%20the%20sky%20blue%3F&user=carol",
            None,
        )
        .await;
        assert_eq!(status, 200);
        text_of(&body)
    };
    let live = streamed(app.clone()).await;
    assert_eq!(simulator.requests(), 5);
    // The answer is stored once its stream has ended, in the background.
    let mut replayed = String::new();
    for _ in 0..100 {
        replayed = streamed(app.clone()).await;
        if simulator.requests() == 5 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(replayed, live);
    assert!(
        simulator.requests() <= 6,
        "stored after at most one more call"
    );
    let whole = post(
        &app,
        json!({"message": "Why is the sky blue?", "user": "carol"}),
    )
    .await;
    assert_eq!(
        whole["reply"].as_str(),
        Some(live.as_str()),
        "streamed and whole answers agree"
    );
}

/// The text of an SSE body in OpenAI's chunk shape.
fn text_of(body: &str) -> String {
    body.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .filter(|data| *data != "[DONE]")
        .filter_map(|data| {
            let chunk: Value = serde_json::from_str(data).ok()?;
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}
