//! An L1 entry and its per-entry expiry.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::key::CacheKey;

/// A cached value with its freshness and tags.
#[derive(Clone)]
pub(crate) struct Entry<V> {
    pub(crate) value: V,
    pub(crate) fresh_until: Instant,
    pub(crate) stale_until: Instant,
    pub(crate) tags: Arc<[String]>,
}

impl<V> Entry<V> {
    pub(crate) fn is_fresh(&self, now: Instant) -> bool {
        now < self.fresh_until
    }
}

/// Each entry lives until the end of its stale window (absolute: a hit
/// never extends it).
pub(crate) struct EntryExpiry;

impl<V> moka::Expiry<CacheKey, Arc<Entry<V>>> for EntryExpiry {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        entry: &Arc<Entry<V>>,
        created_at: Instant,
    ) -> Option<Duration> {
        Some(entry.stale_until.saturating_duration_since(created_at))
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        entry: &Arc<Entry<V>>,
        updated_at: Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(entry.stale_until.saturating_duration_since(updated_at))
    }
}
