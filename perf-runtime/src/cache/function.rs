//! [`FunctionCache`]: the cache of one `#[fast_endpoint]` function (or of
//! one value type of the manual API): L1 → L2 → single-flight → body →
//! write-back, with stale-while-revalidate and stale-if-error.

use quanta::Instant;
use std::future::Future;
use std::sync::OnceLock;

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
    codec: Option<ValueCodec<V>>,
    flights: Flights<V>,
    counters: OnceLock<L1Counters>,
    /// Hits are counted here, not on the shared counter: on a contended hot
    /// key that one atomic would bounce between cores on every hit. Published
    /// (as a total) when metrics are rendered.
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
    lookup: metrics::Histogram,
}

impl L1Counters {
    fn register(function: &'static str) -> Self {
        let counter = |outcome: &'static str| metrics::counter!(names::CACHE_REQUESTS, "function" => function, "tier" => "l1", "outcome" => outcome);
        L1Counters {
            hit: counter("hit"),
            miss: counter("miss"),
            stale: counter("stale"),
            lookup: metrics::histogram!(names::CACHE_L1_LOOKUP_DURATION, "function" => function),
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
            .then(|| L1::new(spec.name, spec.max_entries, spec.max_bytes));
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

    /// A cache made at run time (the manual API, the query cache): both
    /// tiers, bounded by entries, each call bringing its own TTL; leaked,
    /// like the `static` of an annotated function.
    pub(crate) fn leak_runtime(
        name: &'static str,
        namespace: &'static str,
        schema_version: u32,
        max_entries: u64,
    ) -> &'static Self
    where
        V: serde::Serialize + serde::de::DeserializeOwned,
    {
        let spec: &'static CacheSpec = Box::leak(Box::new(CacheSpec {
            name,
            namespace,
            schema_version,
            key_seed: super::key::key_seed(namespace, schema_version),
            // Not used: each call passes its TTL.
            ttl: Ttl::fresh(std::time::Duration::from_secs(300)),
            tier: super::spec::Tier::L1L2,
            max_entries,
            max_bytes: 0,
            lock: std::time::Duration::ZERO,
        }));
        Self::leak(spec, Some(ValueCodec::serde()))
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

    /// A fresh L1 value, found without awaiting anything: the expansion
    /// tries this before it builds the body's future, so a hit costs a key,
    /// a map read and a clone. `None` sends the caller to
    /// [`call`](Self::call).
    #[inline]
    pub fn hit(&self, key: &CacheKey) -> Option<V> {
        let l1 = self.l1.as_ref()?;
        let value = if super::striped::sample_this_call() {
            self.timed_lookup(l1, key)
        } else {
            l1.fresh(key)
        }?;
        self.hits.increment();
        Some(value)
    }

    /// The sampled lookup, timed into the L1 lookup histogram.
    #[cold]
    fn timed_lookup(&self, l1: &L1<V>, key: &CacheKey) -> Option<V> {
        let started = Instant::now();
        let value = l1.fresh(key);
        if crate::monitor::recorder::settled() {
            self.counters
                .get_or_init(|| L1Counters::register(self.spec.name))
                .lookup
                .record(started.elapsed().as_secs_f64());
        }
        value
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

    /// A fresh value of `key` from L1, else from L2 (then kept in L1),
    /// without running anything: how the semantic cache reads the answer a
    /// matched prompt points to.
    #[cfg_attr(not(feature = "ai"), allow(dead_code))]
    pub(crate) async fn peek(&self, key: CacheKey) -> Option<V> {
        self.read(key, false).await
    }

    /// As [`peek`](Self::peek), and counted in `perf_cache_requests_total`
    /// as the lookup of a [`call`](Self::call) is (an L1 hit or miss, then
    /// L2's own outcome): how a streamed answer, which cannot go through
    /// `call`, reads its entry, so streamed and whole calls count alike.
    #[cfg_attr(not(feature = "ai"), allow(dead_code))]
    pub(crate) async fn lookup(&self, key: CacheKey) -> Option<V> {
        self.read(key, true).await
    }

    /// L1, then L2; the L1 outcome `counted` or not.
    #[cfg_attr(not(feature = "ai"), allow(dead_code))]
    async fn read(&self, key: CacheKey, counted: bool) -> Option<V> {
        let in_l1 = if counted {
            self.hit(&key)
        } else {
            self.l1.as_ref().and_then(|l1| l1.fresh(&key))
        };
        if in_l1.is_some() {
            return in_l1;
        }
        if counted && self.l1.is_some() {
            self.count("miss");
        }
        #[cfg(feature = "redis")]
        if let L2Outcome::Hit(value) = self.l2_lookup(key, &mut None).await {
            return Some(value);
        }
        None
    }

    /// Whether L1 holds a fresh value of `key` (not counted as a hit).
    #[cfg_attr(not(feature = "ai"), allow(dead_code))]
    pub(crate) fn holds(&self, key: &CacheKey) -> bool {
        self.l1.as_ref().is_some_and(|l1| l1.fresh(key).is_some())
    }

    /// Stores `value` under `key` for `ttl` (L1, and L2 when configured),
    /// tagged with `tags`: a value made outside [`call`](Self::call), such
    /// as a streamed answer put together once it ended.
    #[cfg_attr(not(feature = "ai"), allow(dead_code))]
    pub(crate) async fn put(
        &self,
        key: CacheKey,
        ttl: std::time::Duration,
        value: V,
        tags: Vec<String>,
    ) {
        let now = Instant::now();
        let entry = Entry {
            value,
            fresh_until: now + ttl,
            stale_until: now + ttl,
            tags: tags.into(),
        };
        self.store(key, entry, true).await;
    }

    async fn l1_lookup(&self, key: CacheKey) -> Lookup<V> {
        let Some(l1) = &self.l1 else {
            return Lookup::Absent;
        };
        let found = l1.lookup(&key);
        match found {
            Lookup::Fresh(_) => self.hits.increment(),
            _ => self.count("miss"),
        }
        found
    }

    async fn miss<M, R, F>(
        &'static self,
        key: CacheKey,
        ttl: Ttl,
        body: F,
        #[allow(unused_mut)] mut stale: Option<Entry<V>>,
    ) -> R
    where
        M: Mode<R, Value = V>,
        F: Future<Output = (R, Vec<String>)>,
    {
        let leader = loop {
            match self.flights.join(key) {
                Role::Leader(guard) => break guard,
                Role::Follower(done) => {
                    if let Some(value) = flight::wait(done).await {
                        return M::join(value);
                    }
                    // The leader failed or was cancelled: take the lead (or
                    // follow the next leader).
                }
            }
        };
        // A leader that stored its value and ended between this caller's
        // L1 lookup and its joining left no flight to follow: its value is
        // in L1 by now, and running the body again would be a second origin
        // call for one key (seen under load: 2,726 body runs for 2,720 keys).
        if let Some(value) = self.l1.as_ref().and_then(|l1| l1.fresh(&key)) {
            leader.publish(value.clone());
            return M::join(value);
        }

        // Once Redis failed this call, the write-back skips it too: a call
        // waits on a sick Redis for one timeout at most.
        #[allow(unused_mut)]
        let mut l2_usable = true;
        #[cfg(feature = "redis")]
        let mut held_lock = None;
        #[cfg(feature = "redis")]
        match self.l2_lookup(key, &mut stale).await {
            L2Outcome::Hit(value) => {
                leader.publish(value.clone());
                return M::join(value);
            }
            L2Outcome::Unavailable => l2_usable = false,
            L2Outcome::Miss if !self.spec.lock.is_zero() => {
                match self.wait_for_other_instances(key, &mut stale).await {
                    Waited::Hit(value) => {
                        leader.publish(value.clone());
                        return M::join(value);
                    }
                    Waited::Lead(lock) => held_lock = lock,
                    Waited::Unavailable => l2_usable = false,
                }
            }
            L2Outcome::Miss => {}
        }

        metrics::counter!(names::CACHE_ORIGIN_CALLS, "function" => self.spec.name).increment(1);
        let (result, tags) = body.await;
        let result = match M::split(result) {
            Split::Cache(value) => {
                let now = Instant::now();
                let entry = Entry {
                    value: value.clone(),
                    fresh_until: now + ttl.fresh,
                    stale_until: now + ttl.fresh + ttl.stale_window(),
                    tags: tags.into(),
                };
                // Followers need not wait for the write-back.
                leader.publish(value.clone());
                self.store(key, entry, l2_usable).await;
                M::join(value)
            }
            Split::Error(result) => match stale {
                Some(entry) if Instant::now() < entry.fresh_until + ttl.stale_if_error => {
                    self.count("stale");
                    // The followers get the same answer.
                    leader.publish(entry.value.clone());
                    M::join(entry.value)
                }
                _ => result,
            },
            Split::Skip(result) => result,
        };
        #[cfg(feature = "redis")]
        if let Some(lock) = held_lock {
            lock.release().await;
        }
        result
    }

    /// Takes the key's Redis lock, or waits for the instance holding it to
    /// put the value in L2; computes itself (`Lead(None)`) once `lock` has
    /// passed.
    #[cfg(feature = "redis")]
    async fn wait_for_other_instances(
        &self,
        key: CacheKey,
        stale: &mut Option<Entry<V>>,
    ) -> Waited<V> {
        let Some(client) = crate::global().redis_client() else {
            return Waited::Lead(None);
        };
        let name = super::lock::lock_name(self.spec, key);
        let deadline = Instant::now() + self.spec.lock;
        let mut pause = super::lock::FIRST_PAUSE;
        loop {
            match super::lock::try_acquire(&client, &name, self.spec.lock).await {
                Ok(Some(lock)) => {
                    self.count_lock("acquired");
                    return Waited::Lead(Some(lock));
                }
                Ok(None) => {}
                Err(reason) => {
                    super::l2::backend_error(&self.breaker, self.spec, "SET NX", &reason);
                    return Waited::Unavailable;
                }
            }
            let now = Instant::now();
            if now >= deadline {
                self.count_lock("timeout");
                return Waited::Lead(None);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(super::lock::MAX_PAUSE);
            match self.l2_lookup(key, stale).await {
                L2Outcome::Hit(value) => {
                    self.count_lock("waited");
                    return Waited::Hit(value);
                }
                L2Outcome::Unavailable => return Waited::Unavailable,
                L2Outcome::Miss => {}
            }
        }
    }

    #[cfg(feature = "redis")]
    fn count_lock(&self, outcome: &'static str) {
        metrics::counter!(names::CACHE_LOCKS, "function" => self.spec.name, "outcome" => outcome)
            .increment(1);
    }

    /// A fresh L2 value (also put in L1); a stale one becomes the fallback.
    #[cfg(feature = "redis")]
    async fn l2_lookup(&self, key: CacheKey, stale: &mut Option<Entry<V>>) -> L2Outcome<V> {
        let (true, Some(codec)) = (self.spec.tier.has_l2(), &self.codec) else {
            return L2Outcome::Miss;
        };
        let Some(client) = crate::global().redis_client() else {
            return L2Outcome::Miss;
        };
        match super::l2::get(&client, &self.breaker, self.spec, key, codec).await {
            super::l2::L2Lookup::Hit(entry, size) if entry.is_fresh(Instant::now()) => {
                let value = entry.value.clone();
                if let Some(l1) = &self.l1 {
                    l1.insert(key, entry, size).await;
                }
                L2Outcome::Hit(value)
            }
            super::l2::L2Lookup::Hit(entry, _) => {
                if stale.is_none() {
                    *stale = Some(entry);
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
        // Encoded once: for Redis, and as the value's weight in L1.
        let raw = self.codec.and_then(|codec| match (codec.to_bytes)(&entry.value) {
            Ok(raw) => Some(raw),
            Err(error) => {
                tracing::warn!(function = self.spec.name, %error, "value not stored in L2: it does not encode");
                None
            }
        });
        // Without a codec the weight is the value's shallow size (a floor).
        let weight = raw.as_ref().map_or(std::mem::size_of::<V>(), Vec::len);
        #[cfg(feature = "redis")]
        if let (true, true, Some(raw)) = (l2_usable, self.spec.tier.has_l2(), raw)
            && let Some(client) = crate::global().redis_client()
        {
            super::l2::set(&client, &self.breaker, self.spec, key, &entry, raw).await;
        }
        if let Some(l1) = &self.l1 {
            let weight = u32::try_from(weight).unwrap_or(u32::MAX);
            l1.insert(key, entry, weight).await;
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
            "stale" => counters.stale.increment(1),
            _ => counters.miss.increment(1),
        }
    }
}

/// How waiting on another instance's computation ended.
#[cfg(feature = "redis")]
enum Waited<V> {
    /// Its value arrived in L2.
    Hit(V),
    /// Compute here: holding the lock (`Some`), or after waiting long enough.
    Lead(Option<super::lock::HeldLock>),
    /// Redis failed: compute here and skip the write-back.
    Unavailable,
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
        if crate::monitor::recorder::settled() {
            let counters = self
                .counters
                .get_or_init(|| L1Counters::register(self.spec.name));
            counters.hit.absolute(self.hits.total());
        }
    }

    fn entries(&self) -> u64 {
        self.l1.as_ref().map_or(0, L1::entries)
    }

    fn bytes(&self) -> u64 {
        self.l1.as_ref().map_or(0, L1::bytes)
    }
}
