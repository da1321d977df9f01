//! [`FunctionCache`]: the cache of one `#[fast_endpoint]` function (or of
//! one value type of the manual API): L1 → L2 → single-flight → body →
//! write-back, with stale-while-revalidate and stale-if-error.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use metrics::Counter;

use futures_util::future::BoxFuture;

use super::entry::Entry;
use super::flight::{self, Flights, Role};
use super::key::CacheKey;
use super::l1::{L1, Lookup};
use super::mode::{Mode, Split};
use super::registry::{self, LocalCache};
use super::spec::{CacheSpec, Ttl};
use super::value_codec::ValueCodec;
use crate::monitor::names;

/// The cache of one function. Made once per function (in a `static`) and
/// never freed.
pub struct FunctionCache<V> {
    spec: &'static CacheSpec,
    l1: Option<L1<V>>,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    codec: Option<ValueCodec<V>>,
    flights: Flights,
    counters: OnceLock<L1Counters>,
    /// Hits are counted here, not on the shared counter: on a contended hot
    /// key that one atomic would bounce between cores on every hit.
    hits: super::striped::StripedCounter,
    #[cfg(feature = "redis")]
    breaker: super::l2::Breaker,
}

/// The L1 counters, registered once the recorder is settled (as profile
/// sites do): a hit then costs one atomic add, not a key lookup.
struct L1Counters {
    hit: Counter,
    miss: Counter,
    stale: Counter,
}

impl L1Counters {
    fn register(function: &'static str) -> Self {
        let counter = |outcome: &'static str| metrics::counter!(names::CACHE_REQUESTS, "function" => function, "tier" => "l1", "outcome" => outcome);
        L1Counters {
            hit: counter("hit"),
            miss: counter("miss"),
            stale: counter("stale"),
        }
    }
}

impl<V: Clone + Send + Sync + 'static> FunctionCache<V> {
    /// Makes the cache of `spec` and registers it for invalidation. `codec`
    /// is required for the L2 tier (without it, L2 is skipped).
    pub fn leak(spec: &'static CacheSpec, codec: Option<ValueCodec<V>>) -> &'static Self {
        let l1 = spec
            .tier
            .has_l1()
            .then(|| L1::new(spec.name, spec.max_entries));
        let cache: &'static Self = Box::leak(Box::new(FunctionCache {
            spec,
            l1,
            codec,
            flights: Flights::default(),
            counters: OnceLock::new(),
            hits: Default::default(),
            #[cfg(feature = "redis")]
            breaker: super::l2::Breaker::new(),
        }));
        registry::register(cache);
        cache
    }

    /// The description this cache was made from.
    pub fn spec(&self) -> &'static CacheSpec {
        self.spec
    }

    /// L1 entries right now (after pending maintenance).
    pub async fn l1_entries(&self) -> u64 {
        match &self.l1 {
            Some(l1) => l1.entries_exact().await,
            None => 0,
        }
    }

    /// A cached call: serves a fresh value from L1 or L2, else runs `body`
    /// once for all concurrent callers of `key`, caches what `M` says is
    /// cacheable, and serves a stale value when the body fails within the
    /// stale-if-error window.
    pub async fn call<M, R, F>(&'static self, key: CacheKey, ttl: Ttl, body: F) -> R
    where
        M: Mode<R, Value = V>,
        F: Future<Output = (R, Vec<String>)>,
    {
        let stale = match self.l1_lookup(key).await {
            Lookup::Fresh(value) => return M::join(value),
            Lookup::Stale(entry) => Some(entry),
            Lookup::Absent => None,
        };
        // Boxed: the miss path (L2 and the body) is large, and inlining it
        // would make every hit carry, and move, a future of that size.
        Box::pin(self.miss::<M, R, F>(key, ttl, body, stale)).await
    }

    /// As [`call`](Self::call), and a stale L1 value inside the
    /// stale-while-revalidate window is served at once while one background
    /// task refreshes it.
    pub async fn call_revalidating<M, R, F>(&'static self, key: CacheKey, ttl: Ttl, body: F) -> R
    where
        M: Mode<R, Value = V> + 'static,
        R: Send + 'static,
        F: Future<Output = (R, Vec<String>)> + Send + 'static,
    {
        let stale = match self.l1_lookup(key).await {
            Lookup::Fresh(value) => return M::join(value),
            Lookup::Stale(entry) => Some(entry),
            Lookup::Absent => None,
        };
        if let Some(entry) = &stale {
            let revalidate_until = entry.fresh_until + ttl.stale_while_revalidate;
            if Instant::now() < revalidate_until && tokio::runtime::Handle::try_current().is_ok() {
                self.count("stale");
                if !self.flights.is_running(&key) {
                    tokio::spawn(async move {
                        let _ = self.miss::<M, R, F>(key, ttl, body, None).await;
                    });
                }
                return M::join(entry.value.clone());
            }
        }
        Box::pin(self.miss::<M, R, F>(key, ttl, body, stale)).await
    }

    async fn l1_lookup(&self, key: CacheKey) -> Lookup<V> {
        let Some(l1) = &self.l1 else {
            return Lookup::Absent;
        };
        let found = l1.lookup(&key).await;
        self.count(match found {
            Lookup::Fresh(_) => "hit",
            _ => "miss",
        });
        found
    }

    async fn miss<M, R, F>(
        &'static self,
        key: CacheKey,
        ttl: Ttl,
        body: F,
        #[allow(unused_mut)] mut stale: Option<Arc<Entry<V>>>,
    ) -> R
    where
        M: Mode<R, Value = V>,
        F: Future<Output = (R, Vec<String>)>,
    {
        let _leader = loop {
            match self.flights.join(key) {
                Role::Leader(guard) => break guard,
                Role::Follower(done) => {
                    flight::wait(done).await;
                    if let Some(l1) = &self.l1
                        && let Lookup::Fresh(value) = l1.lookup(&key).await
                    {
                        return M::join(value);
                    }
                    // The leader failed, was cancelled, or stores only in
                    // L2: take the lead (or follow the next leader).
                }
            }
        };

        // Once Redis failed this call, the write-back skips it too: a call
        // waits on a sick Redis for one timeout at most.
        #[allow(unused_mut)]
        let mut l2_usable = true;
        #[cfg(feature = "redis")]
        match self.l2_lookup(key, &mut stale).await {
            L2Outcome::Hit(value) => return M::join(value),
            L2Outcome::Unavailable => l2_usable = false,
            L2Outcome::Miss => {}
        }

        metrics::counter!(names::CACHE_ORIGIN_CALLS, "function" => self.spec.name).increment(1);
        let (result, tags) = body.await;
        match M::split(result) {
            Split::Cache(value) => {
                let now = Instant::now();
                let entry = Entry {
                    value: value.clone(),
                    fresh_until: now + ttl.fresh,
                    stale_until: now + ttl.fresh + ttl.stale_window(),
                    tags: tags.into(),
                };
                self.store(key, entry, l2_usable).await;
                M::join(value)
            }
            Split::Error(result) => match stale {
                Some(entry) if Instant::now() < entry.fresh_until + ttl.stale_if_error => {
                    self.count("stale");
                    M::join(entry.value.clone())
                }
                _ => result,
            },
            Split::Skip(result) => result,
        }
    }

    /// A fresh L2 value (also put in L1); a stale one becomes the fallback.
    #[cfg(feature = "redis")]
    async fn l2_lookup(&self, key: CacheKey, stale: &mut Option<Arc<Entry<V>>>) -> L2Outcome<V> {
        let (true, Some(codec)) = (self.spec.tier.has_l2(), &self.codec) else {
            return L2Outcome::Miss;
        };
        let Some(client) = crate::global().redis_client() else {
            return L2Outcome::Miss;
        };
        match super::l2::get(&client, &self.breaker, self.spec, key, codec).await {
            super::l2::L2Lookup::Hit(entry) if entry.is_fresh(Instant::now()) => {
                let value = entry.value.clone();
                if let Some(l1) = &self.l1 {
                    l1.insert(key, entry).await;
                }
                L2Outcome::Hit(value)
            }
            super::l2::L2Lookup::Hit(entry) => {
                if stale.is_none() {
                    *stale = Some(Arc::new(entry));
                }
                L2Outcome::Miss
            }
            super::l2::L2Lookup::Miss => L2Outcome::Miss,
            super::l2::L2Lookup::Unavailable => L2Outcome::Unavailable,
        }
    }

    async fn store(
        &self,
        key: CacheKey,
        entry: Entry<V>,
        #[allow(unused_variables)] l2_usable: bool,
    ) {
        #[cfg(feature = "redis")]
        if let (true, true, Some(codec)) = (l2_usable, self.spec.tier.has_l2(), &self.codec)
            && let Some(client) = crate::global().redis_client()
        {
            super::l2::set(&client, &self.breaker, self.spec, key, &entry, codec).await;
        }
        if let Some(l1) = &self.l1 {
            l1.insert(key, entry).await;
        }
    }

    fn count(&self, outcome: &'static str) {
        if !crate::monitor::recorder::settled() {
            metrics::counter!(names::CACHE_REQUESTS, "function" => self.spec.name, "tier" => "l1", "outcome" => outcome)
                .increment(1);
            return;
        }
        let counters = self
            .counters
            .get_or_init(|| L1Counters::register(self.spec.name));
        match outcome {
            "hit" => self.hits.increment(),
            "stale" => counters.stale.increment(1),
            _ => counters.miss.increment(1),
        }
    }
}

#[cfg(feature = "redis")]
enum L2Outcome<V> {
    Hit(V),
    Miss,
    Unavailable,
}

impl<V: Clone + Send + Sync + 'static> LocalCache for FunctionCache<V> {
    fn namespace(&self) -> &'static str {
        self.spec.namespace
    }

    fn spec(&self) -> &'static CacheSpec {
        self.spec
    }

    fn drop_key(&self, key: CacheKey) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(l1) = &self.l1 {
                l1.invalidate(&key).await;
            }
        })
    }

    fn drop_tag(&self, tag: &str) {
        if let Some(l1) = &self.l1 {
            l1.invalidate_tag(tag);
        }
    }

    fn drop_all(&self) {
        if let Some(l1) = &self.l1 {
            l1.invalidate_all();
        }
    }

    fn publish(&self) {
        if let Some(counters) = self.counters.get() {
            counters.hit.absolute(self.hits.total());
        }
    }

    fn entries(&self) -> u64 {
        self.l1.as_ref().map_or(0, L1::entries)
    }
}
