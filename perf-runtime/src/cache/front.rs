//! The read path of L1: a sharded map in front of moka.
//!
//! moka owns capacity, admission and expiry, but its per-hit bookkeeping
//! (frequency sketch, access queues, clock reads) costs a few hundred
//! nanoseconds. Hits are served from this map instead: a read lock on one
//! of 32 shards and a lookup by the key's own bits. Every insert goes to
//! both; moka's eviction listener removes what moka drops, so the map never
//! holds more than moka (plus entries in flight), and every entry still
//! carries its absolute expiry, checked on read.
//!
//! Trade-off: hits served here are not seen by moka's policy, so eviction
//! follows admission and insertion order rather than recency.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, PoisonError, RwLock};

use super::entry::Entry;
use super::key::CacheKey;

const SHARDS: usize = 32;

/// The key is already a uniform 128-bit hash: use its bits as they are.
#[derive(Default)]
pub(crate) struct KeyBits(u64);

impl Hasher for KeyBits {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached for types other than CacheKey; fold the bytes in.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u128(&mut self, bits: u128) {
        self.0 = bits as u64;
    }
}

type Shard<V> = RwLock<HashMap<CacheKey, Arc<Entry<V>>, BuildHasherDefault<KeyBits>>>;

pub(crate) struct Front<V> {
    shards: Box<[Shard<V>]>,
}

impl<V: Clone> Front<V> {
    pub(crate) fn new() -> Self {
        Front {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
        }
    }

    fn shard(&self, key: &CacheKey) -> &Shard<V> {
        // High bits pick the shard; the map inside uses the low ones.
        &self.shards[(key.as_u128() >> 120) as usize % SHARDS]
    }

    /// The value and its freshness deadline, cloned under the read lock
    /// (no reference count is touched on a hit).
    #[inline]
    pub(crate) fn get(&self, key: &CacheKey) -> Option<(V, std::time::Instant)> {
        let shard = self
            .shard(key)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard
            .get(key)
            .map(|entry| (entry.value.clone(), entry.fresh_until))
    }

    /// The whole entry (for stale serving).
    pub(crate) fn entry(&self, key: &CacheKey) -> Option<Arc<Entry<V>>> {
        let shard = self
            .shard(key)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard.get(key).cloned()
    }

    pub(crate) fn insert(&self, key: CacheKey, entry: Arc<Entry<V>>) {
        self.shard(&key)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, entry);
    }

    /// Removes `key` if it still maps to `entry` (a newer entry stays).
    pub(crate) fn remove_if_same(&self, key: &CacheKey, entry: &Arc<Entry<V>>) {
        let mut shard = self
            .shard(key)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard
            .get(key)
            .is_some_and(|current| Arc::ptr_eq(current, entry))
        {
            shard.remove(key);
        }
    }

    pub(crate) fn remove(&self, key: &CacheKey) {
        self.shard(key)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    pub(crate) fn retain(&self, keep: impl Fn(&Entry<V>) -> bool) {
        for shard in self.shards.iter() {
            shard
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, entry| keep(entry));
        }
    }

    /// Entries held (for tests and checks).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.read().unwrap_or_else(PoisonError::into_inner).len())
            .sum()
    }

    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            shard
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
    }
}
