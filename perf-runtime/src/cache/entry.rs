//! An L1 entry and its per-entry expiry.

use std::sync::Arc;
use std::time::Duration;

use quanta::Instant;

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
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn is_fresh(&self, now: Instant) -> bool {
        now < self.fresh_until
    }
}

/// What moka holds for an entry: enough for its policy (expiry, tags), not
/// the value, which lives once, in the front map (see [`super::front`]).
pub(crate) struct Meta {
    pub(crate) stale_until: Instant,
    pub(crate) tags: Arc<[String]>,
    /// Bytes the entry's value is estimated to take (0 when unknown).
    pub(crate) weight: u32,
}

/// Each entry lives until the end of its stale window (absolute: a hit
/// never extends it).
pub(crate) struct EntryExpiry;

impl moka::Expiry<CacheKey, Arc<Meta>> for EntryExpiry {
    fn expire_after_create(
        &self,
        _key: &CacheKey,
        meta: &Arc<Meta>,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        // Entries keep time on the TSC clock (cheaper to read on every hit).
        Some(meta.stale_until.saturating_duration_since(Instant::now()))
    }

    fn expire_after_update(
        &self,
        _key: &CacheKey,
        meta: &Arc<Meta>,
        _updated_at: std::time::Instant,
        _duration_until_expiry: Option<Duration>,
    ) -> Option<Duration> {
        Some(meta.stale_until.saturating_duration_since(Instant::now()))
    }
}
