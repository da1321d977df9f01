//! Caching: typed per-function L1 (moka), shared L2 (Redis), single-flight,
//! stale serving, invalidation across instances, and the manual API.
//!
//! - [`key`]: a [`CacheKey`] is a 128-bit hash of a namespace (function path
//!   and schema version) and the canonical bytes of each argument. The bytes
//!   are self-delimiting (length-prefixed strings and sequences, tagged
//!   enums), so `("ab", "c")` and `("a", "bc")` never share a key, and no
//!   raw argument ever appears in a Redis key name.
//! - [`codec`]: a versioned, compact envelope for values stored outside the
//!   process (postcard, LZ4 above a size threshold). Decoding untrusted bytes
//!   is bounded in size and allocation and never panics: a bad value is a
//!   [`DecodeError`], which the tiers treat as a miss (and delete).
//! - [`FunctionCache`]: L1 → L2 → single-flight → body → write-back.
//! - [`invalidate_tag`], [`invalidate_function`], [`invalidate_key`]: here,
//!   in Redis, and on every instance through the pub/sub bus.
//! - [`cached_request`] and [`warm`]: the same machinery by hand.
//!
//! Fail-open: an L2 that errors or is slower than [`L2_TIMEOUT`] never fails
//! a call; failures are counted (`perf_cache_backend_errors_total`), logged
//! at most every 10 s, and after 5 in a row a breaker skips Redis for 2 s
//! before one probe.

pub(crate) mod bus;
mod clock;
pub mod codec;
mod entry;
mod flight;
mod front;
mod function;
mod invalidate;
pub mod key;
mod l1;
#[cfg(feature = "redis")]
mod l2;
#[cfg(feature = "redis")]
mod lock;
mod manual;
pub mod mode;
mod registry;
mod spec;
mod striped;
mod value_codec;

pub(crate) use registry::publish_entries;

pub use bus::CHANNEL as INVALIDATION_CHANNEL;
pub use codec::{DecodeError, EncodeError};
pub use function::FunctionCache;
#[cfg(all(feature = "redis", feature = "ai"))]
pub(crate) use invalidate::delete_matching;
pub use invalidate::{InvalidateError, invalidate_function, invalidate_key, invalidate_tag};
pub use key::{CacheKey, KeyError, KeyHasher, key_seed};
#[cfg(feature = "redis")]
pub use l2::L2_TIMEOUT;
#[cfg(all(feature = "redis", feature = "ai"))]
pub(crate) use l2::timed as l2_timed;
pub use manual::{MANUAL_NAMESPACE, WarmReport, cached_request, warm};
pub use spec::{CacheSpec, Tier, Ttl};
#[cfg(feature = "axum")]
#[doc(hidden)]
pub use value_codec::JsonCodec;
pub use value_codec::ValueCodec;
#[doc(hidden)]
pub use value_codec::{CodecProbe, SerdeCodec};

/// Logs a backend failure at most once every 10 s (with how many were
/// suppressed), so a Redis outage does not flood the logs.
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) fn rate_limited_warn(command: &str, reason: &str) {
    static THROTTLE: crate::monitor::throttle::Throttle = crate::monitor::throttle::Throttle::new();
    if let Some(suppressed) = THROTTLE.admit() {
        tracing::warn!(
            command,
            reason,
            suppressed,
            "cache L2 failed; calls go on without it"
        );
    }
}
