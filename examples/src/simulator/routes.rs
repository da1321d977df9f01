//! The simulator's HTTP routes: `POST /v1/chat/completions` (whole or
//! streamed as server-sent events) and `POST /v1/embeddings`, answering in
//! OpenAI's wire format and pacing the answer like a hosted model.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use perf_runtime::ai::LocalEmbedder;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::SimulatorConfig;
use super::answer::Answer;
use super::request::{ChatBody, EmbeddingsBody};

/// What the routes share.
pub(crate) struct Shared {
    pub(crate) config: SimulatorConfig,
    /// Chat requests accepted (valid bodies).
    pub(crate) chat_requests: AtomicU64,
    /// Embeddings requests accepted.
    pub(crate) embedding_requests: AtomicU64,
}

/// The routes over `shared`.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "no such route on the model simulator",
            )
        })
        .layer(axum::middleware::map_response(mark))
        .with_state(shared)
}

async fn mark(mut response: Response) -> Response {
    response.headers_mut().insert(
        HeaderName::from_static(super::SIMULATOR_HEADER),
        HeaderValue::from_static("perf"),
    );
    response
}

/// An OpenAI-style error answer.
fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": {
        "message": message,
        "type": "invalid_request_error",
        "param": null,
        "code": null,
    }});
    (status, axum::Json(body)).into_response()
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

async fn chat(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let started = Instant::now();
    let request = match ChatBody::parse(&body) {
        Ok(request) => request,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let number = shared.chat_requests.fetch_add(1, Ordering::Relaxed);
    let answer = Answer::to(&request.messages, request.max_tokens());
    // Unique per request, like the real ids, and marked as simulated.
    let id = format!(
        "simcmpl-{:016x}",
        answer.seed ^ number.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    );
    let config = shared.config;
    if request.stream {
        return streamed(answer, request, id, config, started);
    }
    let tokens = u32::try_from(answer.completion_tokens()).unwrap_or(u32::MAX);
    tokio::time::sleep_until(started + config.first_token + config.per_token * tokens).await;
    let usage = usage(&answer);
    axum::Json(json!({
        "id": id,
        "object": "chat.completion",
        "created": unix_seconds(),
        "model": request.model,
        "system_fingerprint": "perf-model-simulator",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": answer.text(), "refusal": null},
            "logprobs": null,
            "finish_reason": answer.finish_reason,
        }],
        "usage": usage,
    }))
    .into_response()
}

fn usage(answer: &Answer) -> Value {
    json!({
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens(),
        "total_tokens": answer.prompt_tokens + answer.completion_tokens(),
    })
}

/// The answer as server-sent events: the headers at once, then after
/// `first_token` the role and the first word, then a word every
/// `per_token`, then the finish reason, the usage when asked for, and
/// `[DONE]`. Each event is due at a fixed offset from the request, so
/// timer jitter does not add up over a long answer.
fn streamed(
    answer: Answer,
    request: ChatBody,
    id: String,
    config: SimulatorConfig,
    started: Instant,
) -> Response {
    let created = unix_seconds();
    let chunk = |delta: Value, finish: Value, usage: Value| {
        let mut chunk = json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": request.model,
            "system_fingerprint": "perf-model-simulator",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if !usage.is_null() {
            chunk["choices"] = json!([]);
            chunk["usage"] = usage;
        }
        format!("data: {chunk}\n\n")
    };
    // (due, text) pairs; several events may share a due time.
    let mut events = vec![(
        config.first_token,
        chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
            Value::Null,
        ),
    )];
    let count = answer.words.len();
    for (i, word) in answer.words.iter().enumerate() {
        let piece = if i + 1 < count {
            format!("{word} ")
        } else {
            word.clone()
        };
        let due = config.first_token + config.per_token * u32::try_from(i).unwrap_or(u32::MAX);
        events.push((
            due,
            chunk(json!({"content": piece}), Value::Null, Value::Null),
        ));
    }
    let end = events.last().map_or(config.first_token, |(due, _)| *due);
    events.push((
        end,
        chunk(json!({}), json!(answer.finish_reason), Value::Null),
    ));
    if request.include_usage() {
        events.push((end, chunk(Value::Null, Value::Null, usage(&answer))));
    }
    events.push((end, "data: [DONE]\n\n".to_owned()));

    let frames = futures_util::stream::unfold(events.into_iter(), move |mut events| async move {
        let (due, text) = events.next()?;
        tokio::time::sleep_until(started + due).await;
        Some((Ok::<_, Infallible>(Bytes::from(text)), events))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(frames))
        .unwrap_or_else(|_| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not build the stream",
            )
        })
}

async fn embeddings(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request = match EmbeddingsBody::parse(&body) {
        Ok(request) => request,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let embedder = match request.dimensions {
        None => LocalEmbedder::new(),
        Some(dimensions) => match LocalEmbedder::with_dimensions(dimensions) {
            Ok(embedder) => embedder,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!("expected `dimensions` from 64 to 16384, found {dimensions}"),
                );
            }
        },
    };
    shared.embedding_requests.fetch_add(1, Ordering::Relaxed);
    let data: Vec<Value> = request
        .inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            json!({"object": "embedding", "index": index, "embedding": embedder.embed_one(input)})
        })
        .collect();
    let tokens: u64 = request
        .inputs
        .iter()
        .map(|input| (input.chars().count() as u64).div_ceil(4))
        .sum();
    axum::Json(json!({
        "object": "list",
        "model": request.model,
        "data": data,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
    .into_response()
}
