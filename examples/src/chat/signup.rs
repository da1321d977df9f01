//! Background work of a new user, the seed guide's `process_user_signup`
//! and `send_notification`: `POST /api/signup` answers 202 at once with the
//! job's id, and a worker does the rest, retrying on failure. On the
//! embedded default the jobs live in process; with `JOB_STORE=postgres`
//! (or `redis`) they survive a restart and any instance may run them.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use axum::Json;
use axum::http::StatusCode;
use perf_runtime::prelude::*;
use serde::{Deserialize, Serialize};

use super::ChatError;

/// Notifications kept for `GET /api/notifications` (a stand-in for mail or
/// push; the newest first, bounded).
static OUTBOX: Mutex<VecDeque<Notification>> = Mutex::new(VecDeque::new());
const OUTBOX_KEPT: usize = 1000;

/// A notification sent to a user.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Notification {
    /// To whom.
    pub user_id: u64,
    /// What.
    pub message: String,
}

/// `POST /api/signup` body.
#[derive(Debug, Deserialize)]
pub struct SignupRequest {
    /// The new user.
    pub user_id: u64,
    /// Where to write to them.
    pub email: String,
}

/// `POST /api/signup` answer: the job doing the work.
#[derive(Debug, Serialize, Deserialize)]
pub struct SignupAccepted {
    /// The `process_user_signup` job's id.
    pub job_id: u64,
}

/// Warms the user's profile in the cache and sends a welcome notification,
/// as a job of its own (so a slow notifier does not hold this one).
#[async_job(
    priority = "high",
    max_retries = 5,
    timeout = "30s",
    unique = "{user_id}"
)]
pub async fn process_user_signup(user_id: u64, email: String) -> Result<(), String> {
    if !email.contains('@') {
        return Err(format!("user {user_id}: `{email}` is not an email address"));
    }
    // A profile that does not exist yet is not an error here: the cache
    // holds no errors, and the next read goes to the directory.
    let _ = super::handlers::get_user(axum::extract::Path(user_id)).await;
    send_notification(user_id, format!("Welcome! We wrote to {email}."))
        .await
        .map_err(|error| error.to_string())?;
    Ok(())
}

/// Delivers a notification (here: into the in-process outbox).
#[async_job(queue = "notifications", max_retries = 10, backoff_base = "500ms")]
pub async fn send_notification(user_id: u64, message: String) {
    let mut outbox = OUTBOX.lock().unwrap_or_else(PoisonError::into_inner);
    outbox.push_front(Notification { user_id, message });
    outbox.truncate(OUTBOX_KEPT);
}

/// `POST /api/signup`: enqueues `process_user_signup`, answers 202.
#[profile(name = "user.signup")]
pub(crate) async fn signup(
    Json(request): Json<SignupRequest>,
) -> Result<(StatusCode, Json<SignupAccepted>), ChatError> {
    let handle = process_user_signup(request.user_id, request.email)
        .await
        .map_err(|error| ChatError::Jobs(error.to_string()))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(SignupAccepted {
            job_id: handle.id().0,
        }),
    ))
}

/// `POST /api/broadcast` body.
#[derive(Debug, Deserialize)]
pub struct BroadcastRequest {
    /// Who gets it.
    pub user_ids: Vec<u64>,
    /// What.
    pub message: String,
}

/// `POST /api/broadcast` answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct BroadcastAccepted {
    /// `send_notification` jobs stored.
    pub stored: u64,
}

/// Jobs stored per round trip by `POST /api/broadcast`.
const BROADCAST_BATCH: usize = 500;

/// `POST /api/broadcast`: one `send_notification` job per user, stored in
/// batches (one round trip each), answers 202 with how many were stored.
#[profile(name = "user.broadcast")]
pub(crate) async fn broadcast(
    Json(request): Json<BroadcastRequest>,
) -> Result<(StatusCode, Json<BroadcastAccepted>), ChatError> {
    use futures_util::{StreamExt, stream};
    let message = request.message;
    let jobs =
        stream::iter(request.user_ids).map(|user_id| send_notification(user_id, message.clone()));
    let summary = perf_runtime::jobs::global()
        .enqueue_stream(jobs, BROADCAST_BATCH)
        .await
        .map_err(|error| ChatError::Jobs(error.to_string()))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(BroadcastAccepted {
            stored: summary.items,
        }),
    ))
}

/// `GET /api/notifications`: the newest notifications sent.
pub(crate) async fn notifications() -> Json<Vec<Notification>> {
    let outbox = OUTBOX.lock().unwrap_or_else(PoisonError::into_inner);
    Json(outbox.iter().take(50).cloned().collect())
}
