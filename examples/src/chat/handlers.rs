//! HTTP handlers of the chat API.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use perf_runtime::prelude::*;
use serde::{Deserialize, Serialize};

use super::{AppState, Conversation};

/// Longest message accepted, in bytes.
const MAX_MESSAGE_BYTES: usize = 4096;

/// Who asks when a request does not say.
const ANONYMOUS: &str = "anonymous";

/// `POST /api/chat` body.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    /// What the user says.
    pub message: String,
    /// The conversation to continue; a new one when absent.
    pub conversation_id: Option<u64>,
    /// Who asks (answers are cached per user); `anonymous` when absent.
    #[serde(default)]
    pub user: Option<String>,
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
    /// The model failed or did not answer in time.
    #[error("the model failed: {0}")]
    Model(String),
    /// The model's rate limit refused the call.
    #[error("the model is busy: {0}")]
    Busy(String),
}

impl From<perf_runtime::ai::AiError> for ChatError {
    fn from(error: perf_runtime::ai::AiError) -> Self {
        match error {
            perf_runtime::ai::AiError::RateLimited { .. } => ChatError::Busy(error.to_string()),
            error => ChatError::Model(error.to_string()),
        }
    }
}

impl IntoResponse for ChatError {
    fn into_response(self) -> Response {
        let status = match self {
            ChatError::BadMessage(_) => StatusCode::BAD_REQUEST,
            ChatError::NoConversation(_) | ChatError::NoUser(_) => StatusCode::NOT_FOUND,
            ChatError::Directory(_) | ChatError::Jobs(_) | ChatError::Busy(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            // Never a 200 for a failed upstream.
            ChatError::Model(_) => StatusCode::BAD_GATEWAY,
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
    let conversation_id =
        state
            .conversations
            .open(request.conversation_id)
            .ok_or(ChatError::NoConversation(
                request.conversation_id.unwrap_or_default(),
            ))?;
    let user = request.user.as_deref().unwrap_or(ANONYMOUS);
    let reply = state
        .assistant
        .reply(user, conversation_id, &request.message)
        .await?;
    if !state
        .conversations
        .append(conversation_id, request.message, reply.clone())
    {
        return Err(ChatError::NoConversation(conversation_id));
    }
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
    /// Who asks; `anonymous` when absent.
    pub(crate) user: Option<String>,
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
            user: query.user,
        }),
    )
    .await
}

/// `GET /api/chat/stream?message=…`: the answer as server-sent events in
/// OpenAI's chunk shape (a piece of text each), then `data: [DONE]`; a
/// cached answer is replayed the same way. A failure midway ends the
/// stream with an `error` event, never a silent cut. What `perf load`
/// measures time to first token on.
#[profile(name = "chat.stream")]
pub(crate) async fn stream(
    State(state): State<AppState>,
    Query(query): Query<ChatQuery>,
) -> Result<Response, ChatError> {
    let message = query.message.unwrap_or_else(|| "hello".to_owned());
    let length = message.len();
    if message.trim().is_empty() || length > MAX_MESSAGE_BYTES {
        return Err(ChatError::BadMessage(length));
    }
    let user = query.user.as_deref().unwrap_or(ANONYMOUS);
    let answer = state.assistant.stream(user, &message).await?;
    let events = answer
        // A piece with neither text nor an ending (usage alone) says nothing
        // to a chat client.
        .filter(|piece| {
            let empty = piece
                .as_ref()
                .is_ok_and(|p| p.delta.is_empty() && p.finish_reason.is_none());
            std::future::ready(!empty)
        })
        .map(|piece| {
            Ok::<_, std::convert::Infallible>(match piece {
                Ok(piece) if piece.delta.is_empty() => {
                    let chunk = serde_json::json!({
                        "choices": [{ "delta": {}, "finish_reason": piece.finish_reason }]
                    });
                    Event::default().data(chunk.to_string())
                }
                Ok(piece) => {
                    let chunk = serde_json::json!({
                        "choices": [{ "delta": { "content": piece.delta }, "finish_reason": piece.finish_reason }]
                    });
                    Event::default().data(chunk.to_string())
                }
                Err(error) => Event::default()
                    .event("error")
                    .data(serde_json::json!({ "error": error.to_string() }).to_string()),
            })
        })
        .chain(futures_util::stream::once(async {
            Ok(Event::default().data("[DONE]"))
        }));
    Ok(Sse::new(events).into_response())
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
