//! Where L1 values live: a sharded map read by every hit, with moka beside
//! it as the policy.
//!
//! moka owns capacity, admission and expiry, but its per-hit bookkeeping
//! (frequency sketch, access queues, clock reads) costs a few hundred
//! nanoseconds. So moka holds only each entry's [`Meta`] (expiry, tags,
//! weight) and the value lives here, inline in the map's slot: a hit is a
//! read lock on one of 32 shards, a lookup by the key's own bits, and a
//! clone of the value, with no pointer to chase. moka's eviction listener
//! removes what moka drops (matched by its `Meta`, so a newer slot stays),
//! so the map never holds more than moka; every slot still carries its
//! absolute deadlines, checked on read.
//!
//! Trade-off: hits served here are not seen by moka's policy, so eviction
//! follows admission and insertion order rather than recency.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, PoisonError, RwLock};

use quanta::Instant;

use super::entry::{Entry, Meta};
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

/// One value and its deadlines; `meta` is the record moka holds for it.
struct Slot<V> {
    value: V,
    fresh_until: Instant,
    meta: Arc<Meta>,
}

type Shard<V> = RwLock<HashMap<CacheKey, Slot<V>, BuildHasherDefault<KeyBits>>>;

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

    /// The value and its freshness deadline, cloned under the read lock.
    #[inline]
    pub(crate) fn get(&self, key: &CacheKey) -> Option<(V, Instant)> {
        let shard = self
            .shard(key)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard
            .get(key)
            .map(|slot| (slot.value.clone(), slot.fresh_until))
    }

    /// The whole entry (for stale serving).
    pub(crate) fn entry(&self, key: &CacheKey) -> Option<Entry<V>> {
        let shard = self
            .shard(key)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard.get(key).map(|slot| Entry {
            value: slot.value.clone(),
            fresh_until: slot.fresh_until,
            stale_until: slot.meta.stale_until,
            tags: Arc::clone(&slot.meta.tags),
        })
    }

    pub(crate) fn insert(&self, key: CacheKey, value: V, fresh_until: Instant, meta: Arc<Meta>) {
        let slot = Slot {
            value,
            fresh_until,
            meta,
        };
        self.shard(&key)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, slot);
    }

    /// Removes `key` if its slot was made with `meta` (a newer slot stays).
    pub(crate) fn remove_if_same(&self, key: &CacheKey, meta: &Arc<Meta>) {
        let mut shard = self
            .shard(key)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard
            .get(key)
            .is_some_and(|slot| Arc::ptr_eq(&slot.meta, meta))
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

    /// Keeps the slots whose record `keep` accepts.
    pub(crate) fn retain(&self, keep: impl Fn(&Meta) -> bool) {
        for shard in self.shards.iter() {
            shard
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, slot| keep(&slot.meta));
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
