//! The AI answer cache behind `#[ai_optimized]`: exact and semantic hits,
//! limits on the calls that miss, streaming replay, usage and savings
//! metrics, invalidation and warming.
//!
//! Everything the attribute does can be done by hand: make an [`AiSpec`]
//! `static`, take its [`AiSite`] from an [`AiSiteCell`], and pass each call
//! through [`AiSite::call`] (or [`AiSite::call_stream`]) with an
//! [`AiRequest`] built from the prompt (any [`AiPrompt`]) and, to isolate
//! users from each other, a scope.
//!
//! - [`site`](AiSite): the path of a call (exact, semantic, body) and what
//!   is stored.
//! - [`AiPrompt`]: the canonical prompt: the context that changes the
//!   answer, and the last message matched by meaning.
//! - [`AiAnswer`]: what can be cached (`String`, [`ChatResponse`]); answers
//!   with tool calls never are.
//! - Streams: hits replayed as pieces; misses stored once they end.
//! - Limits: `max_concurrency`, `rpm`, `tpm` (shared through Redis when
//!   configured), `timeout`.
//! - [`invalidate`] by provider, model, scope or all; [`warm`] from a list.
//! - Settings: [`default_ttl`] per provider, [`tighten_similarity`] and
//!   `PERF_AI_SIMILARITY` (they raise the threshold, never lower it),
//!   [`use_embedder`].
//!
//! [`ChatResponse`]: crate::ai::ChatResponse

mod control;
mod embedder;
mod limits;
mod metrics;
mod prompt;
#[cfg(feature = "redis")]
mod shared;
mod site;
mod spec;
mod stream;
mod value;

pub use control::{AiTarget, invalidate, warm};
pub use embedder::{embedder, use_embedder};
pub use metrics::HitKind;
pub use prompt::{AiPrompt, AiRequest, Canonical};
pub use site::{AiSite, AiSiteCell};
pub use spec::{AiSpec, PERF_AI_SIMILARITY, Semantic, default_ttl, tighten_similarity};
pub use value::{AiAnswer, FromAiError, limit_error};
