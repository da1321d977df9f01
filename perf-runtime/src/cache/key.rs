//! [`CacheKey`]: what identifies a cached value.
//!
//! ```
//! use perf_runtime::cache::KeyHasher;
//!
//! let key = |user: u64, lang: &str| {
//!     let mut hasher = KeyHasher::new("chat::profile", 1);
//!     hasher.part(&user).unwrap();
//!     hasher.part(lang).unwrap();
//!     hasher.finish()
//! };
//! assert_eq!(key(42, "en"), key(42, "en"));
//! assert_ne!(key(42, "en"), key(42, "de"));
//! assert!(key(42, "en").redis_name("chat::profile", 1).starts_with("perf:chat::profile:v1:"));
//! ```
//!
//! The namespace and schema version are folded into a 64-bit seed once (at
//! compile time for `#[fast_endpoint]`, see [`key_seed`]); arguments are
//! encoded with serde (postcard's format) and hashed with XXH3-128 under that
//! seed, so a call hashes only its own arguments. The encoding is
//! deterministic for a given type and value, so every instance of a service
//! computes the same key for the same call. Types whose serialization
//! depends on iteration order (`HashMap`, `HashSet`) are not: use `BTreeMap`
//! or `BTreeSet` in cached arguments.

use postcard::ser_flavors::Flavor;
use serde::Serialize;
use xxhash_rust::xxh3::Xxh3;

/// A 128-bit key: collisions are as unlikely as random 128-bit values
/// colliding (about 2⁻⁶⁴ after 2³² distinct keys).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CacheKey(u128);

impl CacheKey {
    /// A key from its raw 128 bits.
    pub const fn from_u128(bits: u128) -> Self {
        CacheKey(bits)
    }

    /// The raw 128 bits.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// The Redis key name: a readable prefix (function path and schema
    /// version) and the hash in hex; no argument value appears in it.
    pub fn redis_name(self, namespace: &str, schema_version: u32) -> String {
        format!("perf:{namespace}:v{schema_version}:{:032x}", self.0)
    }
}

impl std::fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CacheKey({:032x})", self.0)
    }
}

/// An argument could not be encoded into a key (its `Serialize` failed).
#[derive(Debug, thiserror::Error)]
#[error("cannot build a cache key: an argument failed to serialize ({0})")]
#[non_exhaustive]
pub struct KeyError(String);

/// The seed of a namespace (a function path) at a schema version: two
/// namespaces or two versions hash their arguments under different seeds, so
/// they never share keys. A `const fn`, so the attribute computes it at
/// compile time.
pub const fn key_seed(namespace: &str, schema_version: u32) -> u64 {
    xxhash_rust::const_xxh3::xxh3_64_with_seed(namespace.as_bytes(), schema_version as u64)
}

/// Builds a [`CacheKey`] from a namespace and argument values.
///
/// Small keys (the usual case) are collected in a buffer on the stack and
/// hashed in one pass; a key that outgrows it continues in a streaming
/// hasher. Both give the same digest for the same bytes.
pub struct KeyHasher {
    seed: u64,
    buffer: [u8; INLINE_KEY_BYTES],
    len: usize,
    stream: Option<Box<Xxh3>>,
}

/// Bytes of key material hashed in one pass without allocating.
const INLINE_KEY_BYTES: usize = 128;

impl KeyHasher {
    /// Starts a key in `namespace` (a function path) at `schema_version`:
    /// two namespaces or two versions never share keys.
    pub fn new(namespace: &str, schema_version: u32) -> Self {
        Self::seeded(key_seed(namespace, schema_version))
    }

    /// Starts a key under a seed made by [`key_seed`].
    #[inline]
    pub fn seeded(seed: u64) -> Self {
        KeyHasher {
            seed,
            buffer: [0; INLINE_KEY_BYTES],
            len: 0,
            stream: None,
        }
    }

    /// Adds one argument (or a tuple of them: a tuple encodes as its fields
    /// in order). Each argument's encoding is self-delimiting, so a sequence
    /// of parts of fixed types maps to keys one-to-one.
    ///
    /// # Errors
    /// [`KeyError`] when the value's `Serialize` implementation fails.
    #[inline]
    pub fn part<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<&mut Self, KeyError> {
        postcard::serialize_with_flavor(value, KeyFlavor { hasher: self })
            .map_err(|e| KeyError(e.to_string()))?;
        Ok(self)
    }

    /// The key.
    #[inline]
    pub fn finish(&self) -> CacheKey {
        match &self.stream {
            Some(stream) => CacheKey(stream.digest128()),
            None => CacheKey(xxhash_rust::xxh3::xxh3_128_with_seed(
                &self.buffer[..self.len],
                self.seed,
            )),
        }
    }

    #[inline]
    fn write(&mut self, data: &[u8]) {
        if let Some(stream) = &mut self.stream {
            stream.update(data);
        } else if self.len + data.len() <= INLINE_KEY_BYTES {
            self.buffer[self.len..self.len + data.len()].copy_from_slice(data);
            self.len += data.len();
        } else {
            let mut stream = Box::new(Xxh3::with_seed(self.seed));
            stream.update(&self.buffer[..self.len]);
            stream.update(data);
            self.stream = Some(stream);
        }
    }
}

/// Feeds postcard's output into the key.
struct KeyFlavor<'a> {
    hasher: &'a mut KeyHasher,
}

impl Flavor for KeyFlavor<'_> {
    type Output = ();

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.hasher.write(&[data]);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.hasher.write(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key_of<T: Serialize>(namespace: &str, parts: &[T]) -> CacheKey {
        let mut hasher = KeyHasher::new(namespace, 1);
        for part in parts {
            hasher.part(part).expect("serializable");
        }
        hasher.finish()
    }

    #[test]
    fn separators_cannot_collide() {
        assert_ne!(key_of("f", &["ab", "c"]), key_of("f", &["a", "bc"]));
        assert_ne!(key_of("f", &["a:b"]), key_of("f", &["a", "b"]));
        assert_ne!(key_of("f", &[""]), key_of::<&str>("f", &[]));
        assert_ne!(key_of("f:a", &["b"]), key_of("f", &["a", "b"]));
    }

    #[test]
    fn namespace_and_version_separate_keys() {
        assert_ne!(key_of("f", &[1u64]), key_of("g", &[1u64]));
        let v1 = KeyHasher::new("f", 1).part(&1u64).unwrap().finish();
        let v2 = KeyHasher::new("f", 2).part(&1u64).unwrap().finish();
        assert_ne!(v1, v2);
    }

    #[test]
    fn keys_that_outgrow_the_buffer_match_one_pass_hashing() {
        // Streaming and one-pass XXH3 agree, so a key's value does not
        // depend on where the buffer ran out.
        let long = "y".repeat(1000);
        let mut hasher = KeyHasher::new("f", 1);
        hasher.part(long.as_str()).unwrap();
        let bytes = postcard::to_allocvec(long.as_str()).unwrap();
        assert_eq!(
            hasher.finish().as_u128(),
            xxhash_rust::xxh3::xxh3_128_with_seed(&bytes, key_seed("f", 1))
        );
    }

    #[test]
    fn the_compile_time_seed_matches_the_runtime_one() {
        const SEED: u64 = key_seed("chat::profile", 3);
        assert_eq!(
            SEED,
            xxhash_rust::xxh3::xxh3_64_with_seed(b"chat::profile", 3)
        );
    }

    #[test]
    fn a_tuple_part_is_its_fields_in_order() {
        let mut one = KeyHasher::new("f", 1);
        one.part(&(&7u64, "x")).unwrap();
        let mut two = KeyHasher::new("f", 1);
        two.part(&7u64).unwrap().part("x").unwrap();
        assert_eq!(one.finish(), two.finish());
    }

    #[test]
    fn long_arguments_hash_like_short_ones() {
        let long = "x".repeat(10_000);
        assert_eq!(key_of("f", &[long.as_str()]), key_of("f", &[long.as_str()]));
        assert_ne!(key_of("f", &[long.as_str()]), key_of("f", &[&long[1..]]));
    }

    #[test]
    fn redis_names_hold_no_argument() {
        let name = key_of("chat::profile", &["alice@example.com"]).redis_name("chat::profile", 3);
        assert!(name.starts_with("perf:chat::profile:v3:"));
        assert!(!name.contains("alice"));
        assert_eq!(name.len(), "perf:chat::profile:v3:".len() + 32);
    }

    proptest! {
        /// Distinct argument tuples give distinct keys (injective encoding).
        #[test]
        fn distinct_arguments_distinct_keys(
            a in (any::<u64>(), ".{0,12}", proptest::collection::vec(".{0,4}", 0..4)),
            b in (any::<u64>(), ".{0,12}", proptest::collection::vec(".{0,4}", 0..4)),
        ) {
            let key = |(n, s, v): &(u64, String, Vec<String>)| {
                let mut hasher = KeyHasher::new("f", 1);
                hasher.part(n).unwrap().part(s).unwrap().part(v).unwrap();
                hasher.finish()
            };
            prop_assert_eq!(a == b, key(&a) == key(&b));
        }
    }
}
