//! The assistant: a model asked through `#[ai_optimized]`, with each
//! user's conversation kept as a session.
//!
//! The model is any OpenAI-compatible server the environment configures
//! (`OPENAI_API_KEY` / `OPENAI_BASE_URL`, or `PERF_AI_PROVIDERS`; the model
//! from `CHAT_MODEL`, else the provider's first listed one). With none
//! configured, the example starts its **model simulator** on loopback
//! (`crate::simulator`: realistic latency and token counts, no key, no
//! network), so the demo and the load tests run anywhere.
//!
//! Answers are cached per user (`scope = user`): the same question in the
//! same context, or one that means the same, is answered from the cache;
//! another user's answers are never served. The context of a turn is the
//! system prompt and the conversation so far, read from the session store
//! (in process, and compressed in Redis when REDIS_URL is set, so a restart
//! or another instance carries the conversation on).

use std::sync::Arc;

use perf_runtime::ai::session::{SessionConfig, SessionStore};
use perf_runtime::ai::{
    AiError, ChatMessage, ChatRequest, ChatResponse, ChatStream, Provider, ProviderConfig,
};
use perf_runtime::http::HttpClient;
use perf_runtime::prelude::*;
use tokio::sync::OnceCell;

use super::ChatError;
use crate::simulator::{self, Simulator, SimulatorConfig};

/// The variable that names the model to ask.
pub const CHAT_MODEL: &str = "CHAT_MODEL";
/// The model the simulator answers as.
pub const SIMULATED_MODEL: &str = "perf-simulator-1";
/// What frames every conversation. Kept byte-stable: it is part of every
/// cache key (and of providers' own prompt caches).
const SYSTEM_PROMPT: &str = "You are the assistant of a chat service. Answer clearly and briefly.";
/// Estimated tokens of earlier turns sent with a new one.
const CONTEXT_TOKENS: u64 = 2_000;
/// Longest answer asked for.
const MAX_ANSWER_TOKENS: u32 = 400;

/// The model behind the chat, made on first use.
#[derive(Clone)]
pub struct Assistant {
    backend: Arc<OnceCell<Backend>>,
    sessions: SessionStore,
}

impl Default for Assistant {
    fn default() -> Self {
        Assistant {
            backend: Arc::default(),
            sessions: SessionStore::new(SessionConfig::default()),
        }
    }
}

/// Where answers come from.
pub struct Backend {
    provider: Provider,
    model: String,
    /// Kept running while the backend lives, when it is the simulator.
    _simulator: Option<Simulator>,
}

impl Backend {
    /// The configured provider, else the simulator.
    async fn from_env() -> Result<Backend, ChatError> {
        let configured = ProviderConfig::list_from_env().map_err(model_error)?;
        let http = HttpClient::from_config(perf_runtime::global().config())
            .map_err(|e| ChatError::Model(e.to_string()))?;
        if let Some(config) = configured.into_iter().next() {
            let model = std::env::var(CHAT_MODEL)
                .ok()
                .or_else(|| config.default_model().map(str::to_owned))
                .ok_or_else(|| {
                    ChatError::Model(format!(
                        "provider `{}` lists no model: set {CHAT_MODEL}",
                        config.name()
                    ))
                })?;
            tracing::info!(
                provider = config.name(),
                model,
                "the assistant asks a configured model"
            );
            return Ok(Backend {
                provider: Provider::new(config, http),
                model,
                _simulator: None,
            });
        }
        let settings = SimulatorConfig::from_env().map_err(|e| ChatError::Model(e.to_string()))?;
        let simulator = simulator::start(settings)
            .await
            .map_err(|e| ChatError::Model(format!("the model simulator did not start: {e}")))?;
        let config = ProviderConfig::builder("simulator", simulator.base_url())
            .models([SIMULATED_MODEL])
            .build()
            .map_err(model_error)?;
        tracing::info!(
            url = %simulator.base_url(),
            "no model provider configured: the assistant asks the model simulator"
        );
        Ok(Backend {
            provider: Provider::new(config, http),
            model: SIMULATED_MODEL.to_owned(),
            _simulator: Some(simulator),
        })
    }
}

fn model_error(error: AiError) -> ChatError {
    ChatError::Model(error.to_string())
}

impl Assistant {
    /// An assistant asking `model` of `provider` (instead of reading the
    /// environment on first use).
    pub fn with_provider(provider: Provider, model: impl Into<String>) -> Self {
        let backend = Backend {
            provider,
            model: model.into(),
            _simulator: None,
        };
        Assistant {
            backend: Arc::new(OnceCell::new_with(Some(backend))),
            ..Assistant::default()
        }
    }

    async fn backend(&self) -> Result<&Backend, ChatError> {
        self.backend.get_or_try_init(Backend::from_env).await
    }

    /// The request for `message` in `user`'s conversation `conversation`:
    /// the system prompt, the recent turns that fit the context budget,
    /// the new message.
    async fn request(
        &self,
        backend: &Backend,
        session: Option<&str>,
        message: &str,
    ) -> ChatRequest {
        let mut messages = vec![ChatMessage::system(SYSTEM_PROMPT)];
        if let Some(session) = session {
            messages.extend(self.sessions.context(session, CONTEXT_TOKENS).await);
        }
        messages.push(ChatMessage::user(message));
        ChatRequest::new(backend.model.clone(), messages).max_tokens(MAX_ANSWER_TOKENS)
    }

    /// Answers `message` from `user` in conversation `conversation`, and
    /// keeps both in the conversation's session.
    pub async fn reply(
        &self,
        user: &str,
        conversation: u64,
        message: &str,
    ) -> Result<String, ChatError> {
        let backend = self.backend().await?;
        let session = session_id(user, conversation);
        let request = self.request(backend, Some(&session), message).await;
        let answer = ask(backend, user, request).await?;
        let turn = [
            ChatMessage::user(message),
            ChatMessage::assistant(answer.content.clone()),
        ];
        if let Err(error) = self.sessions.append(&session, turn).await {
            // The answer stands; the next turn has less context.
            tracing::warn!(%error, "turn not kept in the session");
        }
        Ok(answer.content)
    }

    /// Streams the answer to a one-off `message` from `user`.
    pub async fn stream(&self, user: &str, message: &str) -> Result<ChatStream, ChatError> {
        let backend = self.backend().await?;
        let request = self.request(backend, None, message).await;
        Ok(ask_streaming(backend, user, request).await)
    }
}

/// A session per user and conversation: ids are per process, users are not.
fn session_id(user: &str, conversation: u64) -> String {
    format!("{user}/{conversation}")
}

/// One model call, cached per user: exact and semantic hits, 64 calls at
/// most in flight, a minute at most.
#[ai_optimized(
    provider = "chat",
    model = "assistant",
    cache_ttl = "1h",
    scope = user,
    prompt = request,
    max_concurrency = 64,
    timeout = "60s"
)]
#[profile(name = "assistant.reply", level = "debug")]
async fn ask(
    backend: &Backend,
    user: &str,
    request: ChatRequest,
) -> Result<ChatResponse, ChatError> {
    Ok(backend.provider.chat(&request).await?)
}

/// The same, streamed: a cached answer is replayed as a stream.
#[ai_optimized(
    provider = "chat",
    model = "assistant",
    cache_ttl = "1h",
    scope = user,
    prompt = request,
    max_concurrency = 64
)]
async fn ask_streaming(backend: &Backend, user: &str, request: ChatRequest) -> ChatStream {
    backend.provider.chat_stream(&request)
}
