//! The in-process tier: values in a sharded map, moka beside it for
//! capacity, admission and expiry (see [`super::front`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::entry::{Entry, EntryExpiry, Meta};
use super::front::Front;
use super::key::CacheKey;
use crate::monitor::names;

pub(crate) struct L1<V> {
    moka: moka::future::Cache<CacheKey, Arc<Meta>>,
    front: Arc<Front<V>>,
    /// Estimated bytes of the values held (sum of their weights).
    bytes: Arc<AtomicU64>,
}

/// What L1 holds for a key.
pub(crate) enum Lookup<V> {
    Fresh(V),
    Stale(Entry<V>),
    Absent,
}

impl<V: Clone + Send + Sync + 'static> L1<V> {
    /// An L1 of at most `max_entries` entries, or, when `max_bytes` is not
    /// zero, of at most `max_bytes` bytes of values (by their weights).
    pub(crate) fn new(function: &'static str, max_entries: u64, max_bytes: u64) -> Self {
        let front = Arc::new(Front::new());
        let bytes = Arc::new(AtomicU64::new(0));
        let evicted_from = Arc::clone(&front);
        let evicted_bytes = Arc::clone(&bytes);
        let builder = if max_bytes > 0 {
            moka::future::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|_key, meta: &Arc<Meta>| meta.weight)
        } else {
            moka::future::Cache::builder().max_capacity(max_entries)
        };
        let moka = builder
            .expire_after(EntryExpiry)
            .support_invalidation_closures()
            .eviction_listener(move |key, meta: Arc<Meta>, cause| {
                use moka::notification::RemovalCause;
                evicted_bytes.fetch_sub(u64::from(meta.weight), Ordering::Relaxed);
                let cause = match cause {
                    // The front already holds the replacement.
                    RemovalCause::Replaced => "replaced",
                    RemovalCause::Expired => "expired",
                    RemovalCause::Size => "size",
                    RemovalCause::Explicit => "explicit",
                };
                if cause != "replaced" {
                    evicted_from.remove_if_same(&key, &meta);
                }
                metrics::counter!(names::CACHE_EVICTIONS, "function" => function, "cause" => cause)
                    .increment(1);
            })
            .build();
        L1 { moka, front, bytes }
    }

    /// A fresh value, without awaiting: the hit path.
    #[inline]
    pub(crate) fn fresh(&self, key: &CacheKey) -> Option<V> {
        let now = super::clock::coarse_now();
        match self.front.get(key) {
            Some((value, fresh_until)) if now < fresh_until => Some(value),
            _ => None,
        }
    }

    /// A fresh value, else a stale one still inside its window.
    pub(crate) fn lookup(&self, key: &CacheKey) -> Lookup<V> {
        if let Some(value) = self.fresh(key) {
            return Lookup::Fresh(value);
        }
        match self.front.entry(key) {
            Some(entry) => Lookup::Stale(entry),
            None => Lookup::Absent,
        }
    }

    /// Stores `entry`; `weight` is its value's estimated size in bytes (0
    /// when unknown).
    pub(crate) async fn insert(&self, key: CacheKey, entry: Entry<V>, weight: u32) {
        let meta = Arc::new(Meta {
            stale_until: entry.stale_until,
            tags: entry.tags,
            weight,
        });
        self.bytes.fetch_add(u64::from(weight), Ordering::Relaxed);
        // The front first: should moka drop the entry at once (admission),
        // its listener then finds the slot to remove.
        self.front
            .insert(key, entry.value, entry.fresh_until, Arc::clone(&meta));
        self.moka.insert(key, meta).await;
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
            .invalidate_entries_if(move |_, meta| meta.tags.contains(&owned));
        self.front
            .retain(|meta| !meta.tags.iter().any(|t| t == tag));
    }

    pub(crate) fn invalidate_all(&self) {
        self.moka.invalidate_all();
        self.front.clear();
    }

    /// Entries (approximate: pending maintenance not run).
    pub(crate) fn entries(&self) -> u64 {
        self.moka.entry_count()
    }

    /// Estimated bytes of the values held.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
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

    use quanta::Instant;

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
        let l1 = L1::<u64>::new("test", 50, 0);
        for n in 0..1000u64 {
            l1.insert(
                CacheKey::from_u128(u128::from(n) << 64 | u128::from(n)),
                entry(n, Duration::from_secs(60)),
                8,
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

        let short = L1::<u64>::new("test", 50, 0);
        for n in 0..10u64 {
            short
                .insert(
                    CacheKey::from_u128(u128::from(n)),
                    entry(n, Duration::from_millis(30)),
                    8,
                )
                .await;
        }
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(matches!(
            short.lookup(&CacheKey::from_u128(1)),
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
    async fn a_byte_bound_holds_by_weight() {
        // 100 values of 1,000 bytes each into 20,000 bytes: about 20 stay.
        let l1 = L1::<u64>::new("test", u64::MAX, 20_000);
        for n in 0..100u64 {
            l1.insert(
                CacheKey::from_u128(u128::from(n) << 64 | u128::from(n)),
                entry(n, Duration::from_secs(60)),
                1000,
            )
            .await;
        }
        l1.entries_exact().await;
        assert!(l1.bytes() <= 20_000, "bytes held: {}", l1.bytes());
        assert_eq!(l1.bytes(), l1.front.len() as u64 * 1000);
    }

    #[tokio::test]
    async fn invalidation_reaches_the_front() {
        let l1 = L1::<u64>::new("test", 100, 0);
        for n in 0..9u64 {
            l1.insert(
                CacheKey::from_u128(u128::from(n)),
                entry(n, Duration::from_secs(60)),
                8,
            )
            .await;
        }
        l1.invalidate(&CacheKey::from_u128(4)).await;
        assert!(matches!(l1.lookup(&CacheKey::from_u128(4)), Lookup::Absent));
        l1.invalidate_tag("tag:0");
        for n in [0u64, 3, 6] {
            assert!(
                matches!(
                    l1.lookup(&CacheKey::from_u128(u128::from(n))),
                    Lookup::Absent
                ),
                "{n}"
            );
        }
        assert!(matches!(
            l1.lookup(&CacheKey::from_u128(1)),
            Lookup::Fresh(1)
        ));
        l1.invalidate_all();
        assert!(matches!(l1.lookup(&CacheKey::from_u128(1)), Lookup::Absent));
    }

    /// How old an inserted entry already is.
    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Age {
        Fresh,
        /// Past freshness, inside its stale window.
        Stale,
        /// Past its stale window too: expired, gone once moka notices.
        Dead,
    }

    /// What a test does to L1.
    #[derive(Clone, Debug)]
    enum Op {
        Insert {
            key: u8,
            value: u8,
            age: Age,
            tag: u8,
        },
        Get(u8),
        Invalidate(u8),
        InvalidateTag(u8),
        InvalidateAll,
        /// moka's pending maintenance (evictions, listener calls).
        Maintain,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        let age = prop_oneof![Just(Age::Fresh), Just(Age::Stale), Just(Age::Dead)];
        prop_oneof![
            4 => (0..8u8, any::<u8>(), age, 0..3u8)
                .prop_map(|(key, value, age, tag)| Op::Insert { key, value, age, tag }),
            4 => (0..8u8).prop_map(Op::Get),
            1 => (0..8u8).prop_map(Op::Invalidate),
            1 => (0..3u8).prop_map(Op::InvalidateTag),
            1 => Just(Op::InvalidateAll),
            2 => Just(Op::Maintain),
        ]
    }

    fn aged_entry(value: u8, age: Age, tag: u8) -> Entry<u8> {
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        let (fresh_until, stale_until) = match age {
            Age::Fresh => (now + minute, now + 2 * minute),
            Age::Stale => (now - minute, now + minute),
            Age::Dead => (now - 2 * minute, now - minute),
        };
        Entry {
            value,
            fresh_until,
            stale_until,
            tags: vec![format!("tag:{tag}")].into(),
        }
    }

    async fn check_against_model(ops: Vec<Op>) {
        use std::collections::BTreeMap;
        // key → (value, age, tag): what a plain map says L1 holds.
        let mut model: BTreeMap<u8, (u8, Age, u8)> = BTreeMap::new();
        let l1 = L1::<u8>::new("model", 1000, 0);
        let key = |k: u8| CacheKey::from_u128(u128::from(k) << 120 | u128::from(k));
        let weight = |value: u8| u64::from(value) + 1;
        for op in ops {
            match op {
                Op::Insert {
                    key: k,
                    value,
                    age,
                    tag,
                } => {
                    let entry = aged_entry(value, age, tag);
                    l1.insert(key(k), entry, weight(value) as u32).await;
                    model.insert(k, (value, age, tag));
                }
                Op::Get(k) => match (l1.lookup(&key(k)), model.get(&k)) {
                    (Lookup::Fresh(got), Some(&(value, Age::Fresh, _))) => assert_eq!(got, value),
                    (Lookup::Stale(got), Some(&(value, Age::Stale | Age::Dead, _))) => {
                        assert_eq!(got.value, value)
                    }
                    // An expired entry may already be gone.
                    (Lookup::Absent, None | Some((_, Age::Dead, _))) => {}
                    (_, expected) => panic!("key {k}: L1 disagrees with the model {expected:?}"),
                },
                Op::Invalidate(k) => {
                    l1.invalidate(&key(k)).await;
                    model.remove(&k);
                }
                Op::InvalidateTag(tag) => {
                    l1.invalidate_tag(&format!("tag:{tag}"));
                    model.retain(|_, entry| entry.2 != tag);
                }
                Op::InvalidateAll => {
                    l1.invalidate_all();
                    model.clear();
                }
                Op::Maintain => {
                    l1.entries_exact().await;
                    // moka drops expired entries on a timer of about a
                    // second: each may or may not be gone yet.
                    let live: Vec<_> = model.values().filter(|e| e.1 != Age::Dead).collect();
                    let live_bytes: u64 = live.iter().map(|e| weight(e.0)).sum();
                    let all_bytes: u64 = model.values().map(|e| weight(e.0)).sum();
                    let held = l1.front.len();
                    assert!(
                        (live.len()..=model.len()).contains(&held),
                        "front holds {held}, model {} live of {}",
                        live.len(),
                        model.len()
                    );
                    assert!(
                        (live_bytes..=all_bytes).contains(&l1.bytes()),
                        "bytes {} outside {live_bytes}..={all_bytes}",
                        l1.bytes()
                    );
                    if live.len() == model.len() {
                        assert_eq!(l1.bytes(), live_bytes);
                    }
                }
            }
        }
    }

    proptest::proptest! {
        /// Any sequence of inserts (fresh, stale or expired), lookups and
        /// invalidations leaves L1 (the front, moka and the byte count)
        /// where a plain map says it should be.
        #[test]
        fn l1_follows_a_plain_map(ops in proptest::collection::vec(op(), 1..60)) {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(check_against_model(ops));
        }
    }
}
