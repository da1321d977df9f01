//! Profiling: calls, errors, in-flight calls and durations per function.
//!
//! Three ways in, one mechanism ([`ProfileSite`]):
//!
//! - `#[profile]` on a function (sync or async, free or a method);
//! - [`scope`] for a block: `let _call = profile::scope("rank_results");`
//!   (the seed's `profiler.profile("my_operation")`);
//! - a `static` [`ProfileSite`] of your own, for a hot block.
//!
//! Every call records, with the labels `function` and `module`:
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `perf_function_calls_total` | counter | `function`, `module`, `outcome` (`ok`, `error`, `panic`, `cancelled`) |
//! | `perf_function_in_flight` | gauge | `function`, `module` |
//! | `perf_function_duration_seconds` | histogram (buckets) | `function`, `module` |
//!
//! Label values come from the program text, never from arguments, so the
//! number of series is bounded by the number of annotated functions.
//!
//! # `#[profile]`
//!
//! ```
//! use perf_runtime::prelude::*;
//!
//! /// Loads a user. (Docs, other attributes and the signature are kept.)
//! #[profile]
//! async fn load_user(id: u64) -> Result<String, std::io::Error> {
//!     if id == 0 {
//!         // An early return (or `?`) is measured too, as an error.
//!         return Err(std::io::Error::other("no user 0"));
//!     }
//!     Ok(format!("user {id}"))
//! }
//!
//! struct Ranker;
//! impl Ranker {
//!     #[profile(name = "rank", level = "debug", fields(n = candidates.len()))]
//!     fn rank(&self, candidates: Vec<u32>) -> Vec<u32> {
//!         let mut sorted = candidates;
//!         sorted.sort_unstable();
//!         sorted
//!     }
//! }
//! # let _ = Ranker.rank(vec![3, 1, 2]);
//! ```
//!
//! Arguments, all optional:
//!
//! | argument | default | meaning |
//! |---|---|---|
//! | `name = "…"` | the function's name | the `function` label and the span name |
//! | `level = "…"` | `"info"` | the span's level: `trace`, `debug`, `info`, `warn`, `error` |
//! | `fields(…)` | none | span fields in `tracing` syntax, e.g. `fields(user_id = %id)` |
//! | `crate = "…"` | `::perf_runtime` | where the runtime is, for a re-export |
//!
//! The span records no argument: pass what you want to see with `fields(..)`,
//! so secrets and user data stay out of traces unless asked for.
//!
//! A `Result` that is `Err` counts as an error. A panic in a sync function
//! counts as `panic`; an async function's future that is dropped before it
//! finishes counts as `cancelled` (so does one that panicked: the runtime
//! drops it after catching the panic).
//!
//! Roughly, `#[profile] async fn f(x: u32) -> R { body }` becomes:
//!
//! ```text
//! async fn f(x: u32) -> R {
//!     static SITE: ProfileSite = ProfileSite::new("f", module_path!());
//!     let span = tracing::info_span!("f");
//!     let call = SITE.start();
//!     let out = Instrument::instrument(async move { body }, span).await;
//!     call.finish(outcome_of(&out));
//!     out
//! }
//! ```
//!
//! A sync function runs its body in a closure called once, so `return` and
//! `?` still pass through the measurement.

mod outcome;
mod scope;
mod site;

pub use outcome::Outcome;
#[doc(hidden)]
pub use outcome::{OtherOutcome, OutcomeProbe, ResultOutcome};
pub use scope::{ProfileScope, scope};
pub(crate) use site::publish_in_flight;
pub use site::{CallGuard, ProfileSite};
