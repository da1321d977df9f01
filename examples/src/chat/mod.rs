//! The example chat backend: conversations kept in process, an assistant
//! asked through `#[ai_optimized]` (a configured OpenAI-compatible model, or
//! the model simulator) with per-user sessions, user profiles from PostgreSQL when
//! DATABASE_URL is set, sign-up work done by background jobs
//! (`#[async_job]`), and the operator routes of the runtime.
//!
//! Every handler is `#[profile]`d, so `/metrics` shows calls, errors and
//! latency per route, and `/health` and `/status` report the runtime.

pub mod assistant;
mod handlers;
pub mod signup;
mod store;
pub mod users;

use axum::Router;
use axum::routing::{get, post};

pub use handlers::{ChatError, ChatReply, ChatRequest, UserProfile};
pub use store::{Conversation, ConversationStore, Turn};

pub use assistant::Assistant;

/// Shared state of the handlers.
#[derive(Clone, Default)]
pub struct AppState {
    /// Conversations by id.
    pub conversations: ConversationStore,
    /// The model and the conversations' sessions.
    pub assistant: Assistant,
}

/// The whole application: the chat API plus `/metrics`, `/health` and `/status`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/api/chat", post(handlers::send_message).get(handlers::ask))
        .route("/api/chat/stream", get(handlers::stream))
        .route("/api/conversations/{id}", get(handlers::get_conversation))
        .route("/api/users/{user_id}", get(handlers::get_user))
        .route("/api/signup", post(signup::signup))
        .route("/api/notifications", get(signup::notifications))
        .route("/api/broadcast", post(signup::broadcast))
        .with_state(state)
        .merge(perf_runtime::axum::routes())
}
