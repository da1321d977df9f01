//! The in-process tier: moka for capacity, admission and expiry, with a
//! sharded map in front for hits (see [`super::front`]).

use std::sync::Arc;
use std::time::Instant;

use super::entry::{Entry, EntryExpiry};
use super::front::Front;
use super::key::CacheKey;
use crate::monitor::names;

pub(crate) struct L1<V> {
    moka: moka::future::Cache<CacheKey, Arc<Entry<V>>>,
    front: Arc<Front<V>>,
}

/// What L1 holds for a key.
pub(crate) enum Lookup<V> {
    Fresh(V),
    Stale(Arc<Entry<V>>),
    Absent,
}

impl<V: Clone + Send + Sync + 'static> L1<V> {
    pub(crate) fn new(function: &'static str, max_entries: u64) -> Self {
        let front = Arc::new(Front::new());
        let evicted_from = Arc::clone(&front);
        let moka = moka::future::Cache::builder()
            .max_capacity(max_entries)
            .expire_after(EntryExpiry)
            .support_invalidation_closures()
            .eviction_listener(move |key, entry: Arc<Entry<V>>, cause| {
                use moka::notification::RemovalCause;
                let cause = match cause {
                    // The front already holds the replacement.
                    RemovalCause::Replaced => "replaced",
                    RemovalCause::Expired => "expired",
                    RemovalCause::Size => "size",
                    RemovalCause::Explicit => "explicit",
                };
                if cause != "replaced" {
                    evicted_from.remove_if_same(&key, &entry);
                }
                metrics::counter!(names::CACHE_EVICTIONS, "function" => function, "cause" => cause)
                    .increment(1);
            })
            .build();
        L1 { moka, front }
    }

    /// A fresh value from the front; else moka (which refills the front).
    #[inline]
    pub(crate) async fn lookup(&self, key: &CacheKey) -> Lookup<V> {
        let now = Instant::now();
        if let Some((value, fresh_until)) = self.front.get(key)
            && now < fresh_until
        {
            return Lookup::Fresh(value);
        }
        if let Some(entry) = self.front.entry(key) {
            return Lookup::Stale(entry);
        }
        match self.moka.get(key).await {
            Some(entry) if entry.is_fresh(now) => {
                let value = entry.value.clone();
                self.front.insert(*key, entry);
                Lookup::Fresh(value)
            }
            Some(entry) => Lookup::Stale(entry),
            None => Lookup::Absent,
        }
    }

    pub(crate) async fn insert(&self, key: CacheKey, entry: Entry<V>) {
        let entry = Arc::new(entry);
        self.moka.insert(key, Arc::clone(&entry)).await;
        self.front.insert(key, entry);
    }

    pub(crate) async fn invalidate(&self, key: &CacheKey) {
        self.front.remove(key);
        self.moka.invalidate(key).await;
    }

    pub(crate) fn invalidate_tag(&self, tag: &str) {
        let owned = tag.to_owned();
        // Cannot fail: the cache is built with invalidation closures.
        let _ = self
            .moka
            .invalidate_entries_if(move |_, entry| entry.tags.contains(&owned));
        self.front
            .retain(|entry| !entry.tags.iter().any(|t| t == tag));
    }

    pub(crate) fn invalidate_all(&self) {
        self.moka.invalidate_all();
        self.front.clear();
    }

    /// Entries (approximate: pending maintenance not run).
    pub(crate) fn entries(&self) -> u64 {
        self.moka.entry_count()
    }

    /// Entries after running pending maintenance.
    pub(crate) async fn entries_exact(&self) -> u64 {
        self.moka.run_pending_tasks().await;
        self.moka.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn entry(value: u64, ttl: Duration) -> Entry<u64> {
        let now = Instant::now();
        Entry {
            value,
            fresh_until: now + ttl,
            stale_until: now + ttl,
            tags: vec![format!("tag:{}", value % 3)].into(),
        }
    }

    #[tokio::test]
    async fn the_front_never_outlives_what_moka_drops() {
        let l1 = L1::<u64>::new("test", 50);
        for n in 0..1000u64 {
            l1.insert(
                CacheKey::from_u128(u128::from(n) << 64 | u128::from(n)),
                entry(n, Duration::from_secs(60)),
            )
            .await;
        }
        let kept = l1.entries_exact().await;
        assert!(kept <= 50, "moka is bounded: {kept}");
        assert_eq!(
            l1.front.len() as u64,
            kept,
            "the front holds exactly what moka holds"
        );

        let short = L1::<u64>::new("test", 50);
        for n in 0..10u64 {
            short
                .insert(
                    CacheKey::from_u128(u128::from(n)),
                    entry(n, Duration::from_millis(30)),
                )
                .await;
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(matches!(
            short.lookup(&CacheKey::from_u128(1)).await,
            Lookup::Stale(_) | Lookup::Absent
        ));
        // moka's timer wheel removes expired entries with about a second of
        // granularity; when it does, they leave the front too.
        let mut left = usize::MAX;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            short.entries_exact().await;
            left = short.front.len();
            if left == 0 {
                break;
            }
        }
        assert_eq!(left, 0, "expired entries leave the front too");
    }

    #[tokio::test]
    async fn invalidation_reaches_the_front() {
        let l1 = L1::<u64>::new("test", 100);
        for n in 0..9u64 {
            l1.insert(
                CacheKey::from_u128(u128::from(n)),
                entry(n, Duration::from_secs(60)),
            )
            .await;
        }
        l1.invalidate(&CacheKey::from_u128(4)).await;
        assert!(matches!(
            l1.lookup(&CacheKey::from_u128(4)).await,
            Lookup::Absent
        ));
        l1.invalidate_tag("tag:0");
        for n in [0u64, 3, 6] {
            assert!(
                matches!(
                    l1.lookup(&CacheKey::from_u128(u128::from(n))).await,
                    Lookup::Absent
                ),
                "{n}"
            );
        }
        assert!(matches!(
            l1.lookup(&CacheKey::from_u128(1)).await,
            Lookup::Fresh(1)
        ));
        l1.invalidate_all();
        assert!(matches!(
            l1.lookup(&CacheKey::from_u128(1)).await,
            Lookup::Absent
        ));
    }
}
