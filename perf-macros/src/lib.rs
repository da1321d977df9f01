//! Attribute macros of the `perf` framework.
//!
//! Do not depend on this crate directly: `perf-runtime` re-exports every
//! attribute (behind its default `macros` feature) and the generated code
//! calls into `::perf_runtime::__private`. The attributes are documented
//! where users find them, on their re-exports in `perf_runtime`.
//!
//! Each attribute hands off to its own module in one line: argument parsing,
//! validation and code generation live there, shared helpers in `args` and
//! `item`.

mod ai;
mod ai_emit;
mod ai_valid;
mod args;
mod endpoint;
mod item;
mod job;
mod profile;

use proc_macro::TokenStream;

/// Records calls, errors, in-flight calls and a duration histogram for a
/// function, inside a `tracing` span. See `perf_runtime::profile` for the
/// arguments and what the expansion looks like.
#[proc_macro_attribute]
pub fn profile(args: TokenStream, item: TokenStream) -> TokenStream {
    profile::expand(args.into(), item.into()).into()
}

/// Caches what an async function returns: L1 in process, L2 in Redis,
/// single-flight on misses. See `perf_runtime::cache` and the attribute's
/// re-export for its arguments.
#[proc_macro_attribute]
pub fn fast_endpoint(args: TokenStream, item: TokenStream) -> TokenStream {
    endpoint::expand(args.into(), item.into()).into()
}

/// Turns an async function into a background job: calling it stores the job
/// and returns its handle; a worker runs the body. See `perf_runtime::jobs`
/// and the attribute's re-export for its arguments.
#[proc_macro_attribute]
pub fn async_job(args: TokenStream, item: TokenStream) -> TokenStream {
    job::expand(args.into(), item.into()).into()
}

/// Caches a model's answers by prompt: exact and semantic hits, the
/// provider's rate and concurrency limits and a timeout around the body.
/// See the attribute's re-export in `perf_runtime` for its arguments.
#[proc_macro_attribute]
pub fn ai_optimized(args: TokenStream, item: TokenStream) -> TokenStream {
    ai::expand(args.into(), item.into()).into()
}
