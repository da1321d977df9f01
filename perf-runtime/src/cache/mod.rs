//! Cache keys and the encoding of cached values, shared by every tier.
//!
//! - [`key`]: a [`CacheKey`] is a 128-bit hash of a namespace (function path
//!   and schema version) and the canonical bytes of each argument. The bytes
//!   are self-delimiting (length-prefixed strings and sequences, tagged
//!   enums), so `("ab", "c")` and `("a", "bc")` never share a key, and no
//!   raw argument ever appears in a Redis key name.
//! - [`codec`]: a versioned, compact envelope for values stored outside the
//!   process (postcard, LZ4 above a size threshold). Decoding untrusted bytes
//!   is bounded in size and allocation and never panics: a bad value is a
//!   [`DecodeError`], which the tiers treat as a miss.

pub mod codec;
pub mod key;

pub use codec::{DecodeError, EncodeError};
pub use key::{CacheKey, KeyError, KeyHasher};
