//! A loopback OpenAI-compatible server for the AI tests: chat completions
//! (whole, or streamed as server-sent events), embeddings, call counts by
//! route and model, and faults injected per test (429 with `Retry-After`,
//! 5xx, slow answers, cut streams, a model that always fails, a refused
//! key quoted back in the error the way OpenAI does).
//!
//! Answers are deterministic: the text for a conversation is
//! `"You asked: <last user message>. Here is a short answer."`, cut to
//! `max_tokens` words; the usage counts words (prompt: words of every
//! message plus 3 per message; completion: words of the answer). Embedding
//! vectors come from a hash of the text, are NOT of unit length (the client
//! must normalise) and are listed in reverse order with their `index` (the
//! client must sort).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};

use super::http_server::{BoxError, TestBody, TestServer, text};

/// Route names used by the counters.
pub const CHAT: &str = "chat";
/// Route names used by the counters.
pub const EMBEDDINGS: &str = "embeddings";

/// What the next request (of any model) gets instead of an answer; faults
/// queue up and are used one per request, in order.
#[derive(Clone, Debug)]
pub enum Fault {
    /// 429 with `Retry-After: <seconds>`.
    TooManyRequests { retry_after_seconds: u64 },
    /// This status with an OpenAI-style error body.
    Status(u16),
    /// The answer, after this long.
    Delay(Duration),
    /// A streamed answer that stops after two words without `[DONE]`.
    CutStream,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub route: &'static str,
    pub model: String,
    pub at: Instant,
    pub authorization: Option<String>,
    pub stream: bool,
}

#[derive(Default)]
struct State {
    faults: Mutex<VecDeque<Fault>>,
    /// Models that always answer this status.
    failing_models: Mutex<HashMap<String, u16>>,
    seen: Mutex<Vec<Seen>>,
    /// When set, requests without `Bearer <key>` get a 401 quoting the
    /// key they sent.
    expected_key: Mutex<Option<String>>,
    dimensions: usize,
    /// Pause between streamed pieces.
    stream_gap: Mutex<Duration>,
}

/// A running server; stops when dropped.
pub struct OpenAiServer {
    server: TestServer,
    state: Arc<State>,
}

impl OpenAiServer {
    /// A server whose embeddings have `dimensions` floats.
    pub async fn start(dimensions: usize) -> OpenAiServer {
        let state = Arc::new(State {
            dimensions,
            ..State::default()
        });
        let server = TestServer::start({
            let state = Arc::clone(&state);
            move |request, _| handle(Arc::clone(&state), request)
        })
        .await;
        OpenAiServer { server, state }
    }

    /// `http://127.0.0.1:port/v1`: the base URL for a provider.
    pub fn base_url(&self) -> String {
        self.server.url("/v1")
    }

    /// Queues `fault` for the next request that has none before it.
    pub fn inject(&self, fault: Fault) {
        self.state.faults.lock().unwrap().push_back(fault);
    }

    /// Makes every request for `model` answer `status`.
    pub fn fail_model(&self, model: &str, status: u16) {
        self.state
            .failing_models
            .lock()
            .unwrap()
            .insert(model.to_owned(), status);
    }

    /// Requires `Bearer <key>`; anything else gets a 401 that quotes the
    /// key sent, as OpenAI's own error message does.
    pub fn require_key(&self, key: &str) {
        *self.state.expected_key.lock().unwrap() = Some(key.to_owned());
    }

    /// Pauses between streamed pieces.
    pub fn stream_gap(&self, gap: Duration) {
        *self.state.stream_gap.lock().unwrap() = gap;
    }

    /// Requests received on `route` for `model`.
    pub fn calls(&self, route: &str, model: &str) -> usize {
        self.seen()
            .iter()
            .filter(|seen| seen.route == route && seen.model == model)
            .count()
    }

    /// Requests received on `route`, every model.
    pub fn calls_on(&self, route: &str) -> usize {
        self.seen()
            .iter()
            .filter(|seen| seen.route == route)
            .count()
    }

    /// Every request received, in order of arrival.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }

    /// The answer this server gives to `question` (the last user message),
    /// unbounded by `max_tokens`.
    pub fn answer_to(question: &str) -> String {
        format!("You asked: {question}. Here is a short answer.")
    }
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Response<TestBody> {
    let route = match (request.method().as_str(), request.uri().path()) {
        ("POST", "/v1/chat/completions") => CHAT,
        ("POST", "/v1/embeddings") => EMBEDDINGS,
        _ => return error(404, "no such route"),
    };
    let authorization = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let Ok(body) = request.into_body().collect().await else {
        return error(400, "unreadable body");
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body.to_bytes()) else {
        return error(400, "body is not JSON");
    };
    let model = body["model"].as_str().unwrap_or_default().to_owned();
    let stream = body["stream"].as_bool().unwrap_or(false);
    state.seen.lock().unwrap().push(Seen {
        route,
        model: model.clone(),
        at: Instant::now(),
        authorization: authorization.clone(),
        stream,
    });

    let expected = state.expected_key.lock().unwrap().clone();
    if let Some(expected) = expected {
        let sent = authorization
            .as_deref()
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        if sent != expected {
            return error(401, &format!("Incorrect API key provided: {sent}."));
        }
    }
    let failing = state.failing_models.lock().unwrap().get(&model).copied();
    if let Some(status) = failing {
        return error(status, &format!("model {model} is failing"));
    }
    let fault = state.faults.lock().unwrap().pop_front();
    let mut cut = false;
    match fault {
        Some(Fault::TooManyRequests {
            retry_after_seconds,
        }) => {
            let mut response = error(429, "Rate limit reached, please retry later.");
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                retry_after_seconds.to_string().parse().unwrap(),
            );
            return response;
        }
        Some(Fault::Status(status)) => return error(status, "The server had an error."),
        Some(Fault::Delay(delay)) => tokio::time::sleep(delay).await,
        Some(Fault::CutStream) => cut = true,
        None => {}
    }
    match route {
        CHAT if stream => {
            let gap = *state.stream_gap.lock().unwrap();
            streamed(&body, &model, gap, cut)
        }
        CHAT => whole(&body, &model),
        _ => embeddings(&body, &model, state.dimensions),
    }
}

/// An OpenAI-style error answer.
fn error(status: u16, message: &str) -> Response<TestBody> {
    let body = json!({"error": {"message": message, "type": "test_error", "code": status}});
    let mut response = text(status, body.to_string());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        "application/json".parse().unwrap(),
    );
    response
}

fn words(text: &str) -> usize {
    text.split_whitespace().count()
}

/// The answer's words and the usage for a chat request.
fn answer(body: &Value) -> (Vec<String>, u64, u64) {
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let question = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default();
    let mut answer: Vec<String> = OpenAiServer::answer_to(question)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if let Some(max) = body["max_tokens"].as_u64() {
        answer.truncate(max as usize);
    }
    let prompt = messages
        .iter()
        .map(|m| 3 + words(m["content"].as_str().unwrap_or_default()) as u64)
        .sum();
    let completion = answer.len() as u64;
    (answer, prompt, completion)
}

fn whole(body: &Value, model: &str) -> Response<TestBody> {
    let (answer, prompt, completion) = answer(body);
    let finish = if body["max_tokens"]
        .as_u64()
        .is_some_and(|max| completion >= max)
    {
        "length"
    } else {
        "stop"
    };
    let reply = json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.join(" ")}, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    });
    let mut response = text(200, reply.to_string());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        "application/json".parse().unwrap(),
    );
    response
}

/// The answer as SSE: a role-only piece, one piece per word, a piece with
/// the finish reason, the usage when asked for, then `[DONE]`.
fn streamed(body: &Value, model: &str, gap: Duration, cut: bool) -> Response<TestBody> {
    let (answer, prompt, completion) = answer(body);
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    let count = answer.len();
    for (i, word) in answer.into_iter().enumerate() {
        let piece = if i + 1 < count {
            format!("{word} ")
        } else {
            word
        };
        events.push(chunk(json!({"content": piece}), Value::Null));
    }
    events.push(chunk(json!({}), json!("stop")));
    if body["stream_options"]["include_usage"] == true {
        events.push(json!({"id": "chatcmpl-test", "object": "chat.completion.chunk", "model": model, "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}}));
    }
    let mut lines: Vec<String> = events
        .into_iter()
        .map(|event| format!("data: {event}\n\n"))
        .collect();
    if cut {
        // The role piece and two words, then the body ends.
        lines.truncate(3);
    } else {
        lines.push("data: [DONE]\n\n".to_owned());
    }
    let frames = futures_util::stream::unfold(
        (VecDeque::from(lines), true),
        move |(mut lines, first)| async move {
            let line = lines.pop_front()?;
            if !first && !gap.is_zero() {
                tokio::time::sleep(gap).await;
            }
            Some((
                Ok::<_, BoxError>(Frame::data(Bytes::from(line))),
                (lines, false),
            ))
        },
    );
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(frames)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        "text/event-stream".parse().unwrap(),
    );
    *response.status_mut() = StatusCode::OK;
    response
}

/// A deterministic, non-unit vector for `text`.
pub fn raw_vector(text: &str, dimensions: usize) -> Vec<f32> {
    // FNV-1a seeds a linear congruential generator.
    let mut seed = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    (0..dimensions)
        .map(|_| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            // In [-4, 4): far from unit length.
            ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 8.0
        })
        .collect()
}

fn embeddings(body: &Value, model: &str, dimensions: usize) -> Response<TestBody> {
    let inputs: Vec<String> = match &body["input"] {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect(),
        _ => return error(400, "input must be a string or a list of strings"),
    };
    let dimensions = body["dimensions"]
        .as_u64()
        .map_or(dimensions, |d| d as usize);
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(index, input)| {
            json!({"object": "embedding", "index": index, "embedding": raw_vector(input, dimensions)})
        })
        .collect();
    let tokens: usize = inputs.iter().map(|input| words(input)).sum();
    let reply = json!({"object": "list", "model": model, "data": data,
                       "usage": {"prompt_tokens": tokens, "total_tokens": tokens}});
    let mut response = text(200, reply.to_string());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        "application/json".parse().unwrap(),
    );
    response
}
