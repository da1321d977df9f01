//! A model simulator: a loopback OpenAI-compatible server that makes up its
//! answers, so the example's demo and load tests run with no API key, no
//! network and no cost. It is not a model and says so: every answer starts
//! "This is a simulated answer", the response ids start with `simcmpl-`,
//! every response has the header `x-model-simulator: perf`, and the `model`
//! it names is the one asked for.
//!
//! What it does, and why:
//! - `POST /v1/chat/completions`, whole or streamed (server-sent events, a
//!   word a chunk, the usage chunk when `stream_options.include_usage`):
//!   the wire format `perf_runtime::ai::Provider` parses, and OpenAI's;
//! - the answer is made up from the last user message and the turn number
//!   (20 to 80 words, cut to `max_tokens` with `finish_reason: "length"`),
//!   the same for the same conversation and different for different ones,
//!   so caches can be exercised and checked;
//! - it is paced like a hosted model ([`SimulatorConfig`]: time to the first
//!   token, then a token at a time), so latency figures and the benefit of
//!   a cache look like they would in production;
//! - `usage` counts about four characters a prompt token (plus four a
//!   message) and one token an answer word, so token budgets and cost
//!   metrics have something to count;
//! - `POST /v1/embeddings` answers with [`LocalEmbedder`] vectors, so
//!   similar texts get similar vectors, as with a real embedding model;
//! - a body that is not a valid request gets a 400 with an OpenAI-style
//!   error body.
//!
//! ```no_run
//! use perf_examples::simulator::{self, SimulatorConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let simulator = simulator::start(SimulatorConfig::from_env()?).await?;
//! println!("OpenAI-compatible simulator at {}", simulator.base_url());
//! simulator.stop().await?;
//! # Ok(())
//! # }
//! ```
//!
//! [`LocalEmbedder`]: perf_runtime::ai::LocalEmbedder

mod answer;
mod config;
mod request;
mod routes;
mod server;

pub use config::{
    CHAT_SIMULATOR_FIRST_TOKEN_MS, CHAT_SIMULATOR_MS_PER_TOKEN, SimulatorConfig,
    SimulatorConfigError,
};
pub use server::{Simulator, start, start_on};

/// The header every answer carries: `x-model-simulator: perf`.
pub const SIMULATOR_HEADER: &str = "x-model-simulator";
