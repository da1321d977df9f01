//! The example chat backend.
//!
//! Run with: `cargo run -p perf-examples --example chat_server`
//!
//! Needs nothing else: with no REDIS_URL and no DATABASE_URL everything runs
//! in process, and with no model provider configured the assistant asks the
//! bundled model simulator (loopback, realistic latency; answers say they are
//! simulated). Set OPENAI_BASE_URL (and OPENAI_API_KEY) or PERF_AI_PROVIDERS,
//! and CHAT_MODEL, to ask a real OpenAI-compatible server. With DATABASE_URL, user profiles are read from PostgreSQL
//! (table `chat_users`, created and seeded at start); with REDIS_URL, cached
//! values are shared by every instance. Listens on 127.0.0.1:8000 (set `CHAT_ADDR` to change it).
//!
//! ```text
//! curl -s localhost:8000/api/chat -H 'content-type: application/json' -d '{"message":"How do I reverse a list in Python?","user":"alice"}'
//! curl -s localhost:8000/api/chat -H 'content-type: application/json' -d '{"message":"How can I reverse a list in Python?","user":"alice"}'
//! curl -sN 'localhost:8000/api/chat/stream?message=hello'
//! curl -s localhost:8000/metrics | grep perf_ai_
//! curl -s localhost:8000/api/users/7
//! curl -s localhost:8000/metrics | grep perf_function
//! curl -s localhost:8000/health
//! curl -s localhost:8000/status
//! ```

use perf_examples::chat::{AppState, app};
use perf_runtime::PerfConfig;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();

    let perf = perf_runtime::init(PerfConfig::from_env()?).await?;
    if let Some(db) = perf.db() {
        perf_examples::chat::users::prepare(&db).await?;
        tracing::info!(server = %db.server(), "user profiles come from PostgreSQL");
    }
    let addr = std::env::var("CHAT_ADDR").unwrap_or_else(|_| "127.0.0.1:8000".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e} (set CHAT_ADDR to another address)"))?;
    tracing::info!(
        %addr,
        health = %perf.quick_health_check().await.summary,
        "chat backend listening; try POST /api/chat, GET /metrics, /health, /status"
    );
    axum::serve(listener, app(AppState::default()))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    perf_runtime::shutdown().await;
    Ok(())
}
