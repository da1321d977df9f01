//! # perf-runtime
//!
//! Make the backend of an AI chat service fast by annotation. This crate is
//! the one to depend on: it holds the runtime and re-exports the attributes.
//!
//! ```
//! use perf_runtime::prelude::*;
//!
//! #[profile]
//! async fn answer(question: String) -> Result<String, std::io::Error> {
//!     Ok(format!("you asked: {question}"))
//! }
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     // Everything in process unless REDIS_URL / DATABASE_URL say otherwise.
//!     let perf = perf_runtime::init(PerfConfig::from_env()?).await?;
//!     answer("hi".into()).await?;
//!     let calls = perf.get_metrics().function("answer").map(|f| f.calls_ok);
//!     assert_eq!(calls, Some(1));
//!     perf_runtime::shutdown().await;
//!     Ok(())
//! }
//! ```
//!
//! - [`config`]: [`PerfConfig`] from the environment or a builder.
//! - [`init`], [`global`], [`shutdown`] and the [`Perf`] handle with the
//!   status API (`get_status`, `get_metrics`, `quick_health_check`).
//! - [`cache`]: `#[fast_endpoint]`, tiers, invalidation, `cached_request`.
//! - [`profile`](mod@profile): `#[profile]` and manual scopes, recorded as Prometheus
//!   metrics and `tracing` spans.
//! - [`monitor`]: metric names, health checks, typed reports.
//! - [`limit`]: adaptive concurrency limits (AIMD, gradient) and their
//!   server layer.
//! - `db` (feature `postgres`): queries through the PostgreSQL pool,
//!   PgBouncer-safe, and the query-result cache invalidated by table.
//! - `http` (feature `http`): the shared outbound HTTP client.
//! - `ai` (feature `ai`): `#[ai_optimized]`'s exact and semantic answer
//!   cache, the OpenAI-compatible provider client (budgets, fallbacks),
//!   prices and savings metrics, conversation sessions.
//! - `bench` (feature `bench`): the load-testing engine: HTTP load in the
//!   closed and open (constant-rate) models with HDR-histogram percentiles,
//!   `run_fn` for in-process async functions, JSON reports.
//! - `axum` (feature `axum`): `/metrics`, `/health`, `/status` routes.
//!
//! ## Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `macros` | yes | the attributes |
//! | `prometheus` | yes | the Prometheus recorder installed by `init`, process metrics |
//! | `axum` | yes | [`axum::routes`] |
//! | `redis` | no | Redis through `fred` (REDIS_URL / REDIS_HOST): the L2 cache tier, the invalidation bus, a health check |
//! | `postgres` | no | PostgreSQL through `sqlx` (DATABASE_URL, `DB_*`): the pool and its metrics, `db` (PgBouncer-safe queries, the query-result cache), health check |
//! | `http` | no | [`http`]: the outbound HTTP client (hyper, rustls with ring): pool, timeouts, retries with a budget, rate limit and circuit breaker per host; the [`limit`] server layer |
//! | `ai` | no | `ai` and `#[ai_optimized]`: the answer cache (exact, then semantic: the `Embedder` trait, the local embedder, a vector index per scope with HNSW through `hnsw_rs`, the false-hit guard), the OpenAI-compatible provider client, prices and savings metrics, conversation sessions; implies `http` |
//! | `bench` | no | `bench`: load tests of HTTP endpoints (hyper, a keep-alive connection per virtual user) and of async functions; HDR histograms (`hdrhistogram`); JSON reports |
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "ai")]
#[cfg_attr(docsrs, doc(cfg(feature = "ai")))]
pub mod ai;
#[cfg(feature = "bench")]
#[cfg_attr(docsrs, doc(cfg(feature = "bench")))]
pub mod bench;
pub mod cache;
pub mod config;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod db;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
pub mod jobs;
mod lifecycle;
pub mod limit;
pub mod monitor;
pub mod profile;

#[cfg(feature = "axum")]
pub mod axum;
mod backends;

#[doc(hidden)]
pub mod __private;

/// The README's examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

pub use config::{ConfigError, PerfConfig};
pub use lifecycle::{InitError, Perf, VERSION, global, init, shutdown};

/// `#[profile]`: calls, errors, in-flight calls and a duration histogram for
/// a function, in a `tracing` span. See the [`profile`](mod@profile) module
/// for its arguments and expansion.
#[cfg(feature = "macros")]
pub use perf_macros::profile;

#[cfg(feature = "macros")]
#[doc = include_str!("../docs/fast_endpoint.md")]
pub use perf_macros::fast_endpoint;

#[cfg(feature = "macros")]
#[doc = include_str!("../docs/async_job.md")]
pub use perf_macros::async_job;

#[cfg(all(feature = "macros", feature = "ai"))]
#[cfg_attr(docsrs, doc(cfg(feature = "ai")))]
#[doc = include_str!("../docs/ai_optimized.md")]
pub use perf_macros::ai_optimized;

/// What an annotated service needs in scope: `use perf_runtime::prelude::*;`.
pub mod prelude {
    #[cfg(all(feature = "macros", feature = "ai"))]
    pub use crate::ai_optimized;
    pub use crate::{Perf, PerfConfig, global, init, shutdown};
    #[cfg(feature = "macros")]
    pub use crate::{async_job, fast_endpoint, profile};
}
