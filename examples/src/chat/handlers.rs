//! HTTP handlers of the chat API.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use perf_runtime::prelude::*;
use serde::{Deserialize, Serialize};

use super::{AppState, Conversation, assistant};

/// Longest message accepted, in bytes.
const MAX_MESSAGE_BYTES: usize = 4096;

/// `POST /api/chat` body.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    /// What the user says.
    pub message: String,
    /// The conversation to continue; a new one when absent.
    pub conversation_id: Option<u64>,
}

/// `POST /api/chat` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChatReply {
    /// The conversation this turn belongs to.
    pub conversation_id: u64,
    /// The assistant's answer.
    pub reply: String,
}

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// The message is empty or too long.
    #[error("message must be 1 to {MAX_MESSAGE_BYTES} bytes, got {0}")]
    BadMessage(usize),
    /// No conversation has this id.
    #[error("no conversation {0}")]
    NoConversation(u64),
    /// No user has this id.
    #[error("no user {0}")]
    NoUser(u64),
    /// The user directory (PostgreSQL) failed.
    #[error("the user directory is unavailable: {0}")]
    Directory(String),
    /// A background job could not be stored.
    #[error("the job could not be stored: {0}")]
    Jobs(String),
}

impl IntoResponse for ChatError {
    fn into_response(self) -> Response {
        let status = match self {
            ChatError::BadMessage(_) => StatusCode::BAD_REQUEST,
            ChatError::NoConversation(_) | ChatError::NoUser(_) => StatusCode::NOT_FOUND,
            ChatError::Directory(_) | ChatError::Jobs(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

/// Answers a message, continuing or starting a conversation.
#[profile(name = "chat.send")]
pub(crate) async fn send_message(
    State(state): State<AppState>,
    Json(request): Json<ChatRequest>,
) -> Result<Json<ChatReply>, ChatError> {
    let length = request.message.len();
    if request.message.trim().is_empty() || length > MAX_MESSAGE_BYTES {
        return Err(ChatError::BadMessage(length));
    }
    let turns_so_far = match request.conversation_id {
        Some(id) => state
            .conversations
            .get(id)
            .ok_or(ChatError::NoConversation(id))?
            .turns
            .len(),
        None => 0,
    };
    let reply = assistant::reply(&request.message, turns_so_far).await;
    let conversation_id = state
        .conversations
        .append(request.conversation_id, request.message, reply.clone())
        .ok_or(ChatError::NoConversation(
            request.conversation_id.unwrap_or_default(),
        ))?;
    Ok(Json(ChatReply {
        conversation_id,
        reply,
    }))
}

/// `GET /api/chat?message=…` query: a one-off question (default "hello"),
/// so that a plain `perf load http://127.0.0.1:8000/api/chat` or a browser
/// gets an answer.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatQuery {
    /// What the user says.
    pub(crate) message: Option<String>,
}

/// Answers a one-off message in a new conversation.
pub(crate) async fn ask(
    state: State<AppState>,
    Query(query): Query<ChatQuery>,
) -> Result<Json<ChatReply>, ChatError> {
    let message = query.message.unwrap_or_else(|| "hello".to_owned());
    send_message(
        state,
        Json(ChatRequest {
            message,
            conversation_id: None,
        }),
    )
    .await
}

/// `GET /api/chat/stream?message=…`: the answer as server-sent events, one
/// word per event as a model streams tokens (OpenAI's chunk shape), then
/// `data: [DONE]`. What `perf load` measures time to first token on.
#[profile(name = "chat.stream")]
pub(crate) async fn stream(Query(query): Query<ChatQuery>) -> Result<Response, ChatError> {
    let message = query.message.unwrap_or_else(|| "hello".to_owned());
    let length = message.len();
    if message.trim().is_empty() || length > MAX_MESSAGE_BYTES {
        return Err(ChatError::BadMessage(length));
    }
    let reply = assistant::reply(&message, 0).await;
    let chunks: Vec<Result<Event, std::convert::Infallible>> = reply
        .split_inclusive(' ')
        .map(|word| {
            let chunk = serde_json::json!({ "choices": [{ "delta": { "content": word } }] });
            Ok(Event::default().data(chunk.to_string()))
        })
        .chain(std::iter::once(Ok(Event::default().data("[DONE]"))))
        .collect();
    Ok(Sse::new(futures_util::stream::iter(chunks)).into_response())
}

/// Returns a conversation's turns.
#[profile(name = "chat.history")]
pub(crate) async fn get_conversation(
    State(state): State<AppState>,
    Path(id): Path<u64>,
) -> Result<Json<Conversation>, ChatError> {
    state
        .conversations
        .get(id)
        .map(Json)
        .ok_or(ChatError::NoConversation(id))
}

/// A user's public profile.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserProfile {
    /// The user's id.
    pub user_id: u64,
    /// Display name.
    pub name: String,
    /// `free` or `pro`.
    pub plan: String,
}

/// A user profile: from PostgreSQL when DATABASE_URL is set, else from
/// the in-process stand-in (users 1 to 1000 either way). Cached for five
/// minutes in process (and in Redis when REDIS_URL is set), tagged by user
/// so `perf_runtime::cache::invalidate_tag("user:7")` drops it everywhere;
/// errors (no such user, database down) are never cached.
#[fast_endpoint(cache_ttl = "5m", tags = ["user:{user_id}"])]
#[profile(name = "user.profile", fields(user_id))]
pub(crate) async fn get_user(Path(user_id): Path<u64>) -> Result<Json<UserProfile>, ChatError> {
    match super::users::find(user_id).await {
        Ok(Some(profile)) => Ok(Json(profile)),
        Ok(None) => Err(ChatError::NoUser(user_id)),
        Err(error) => Err(ChatError::Directory(error.to_string())),
    }
}
