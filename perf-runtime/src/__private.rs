//! Support for the code the attributes generate. Not a public API: names
//! here change with `perf-macros`, which is pinned to this crate's version.

pub use tracing;
pub use tracing::Instrument;

pub use crate::cache::mode::{Mode, OptionCacheNone, OptionMode, PlainMode, ResultMode};
pub use crate::cache::{
    CacheKey, CacheSpec, CodecProbe, FunctionCache, KeyError, KeyHasher, SerdeCodec, Tier, Ttl,
    key_seed,
};
pub use crate::profile::{OtherOutcome, OutcomeProbe, ProfileSite, ResultOutcome};

#[cfg(feature = "axum")]
pub use crate::cache::JsonCodec;

/// Without the `axum` feature there is no `Json` codec; the trait exists so
/// the expansion's `use` resolves either way.
#[cfg(not(feature = "axum"))]
#[doc(hidden)]
pub trait JsonCodec {}

/// Calls `f` once. A closure passed here is typed `FnOnce`, so a body that
/// returns a reborrow of a captured `&mut` (`fn get(&mut self) -> &mut T`)
/// still compiles.
#[inline(always)]
pub fn call_once<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// What `#[async_job]` expands to.
pub use crate::jobs::__private as jobs;

/// What `#[ai_optimized]` expands to.
#[cfg(feature = "ai")]
pub mod ai {
    pub use crate::ai::{
        AiError, AiRequest, AiSiteCell, AiSpec, ChatResponse, ChatStream, FromAiError, Semantic,
        limit_error,
    };
    pub use crate::cache::mode::{Mode, PlainMode, ResultMode};
}
