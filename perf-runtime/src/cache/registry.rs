//! Every function cache of the process, for invalidation by key, function
//! or tag, locally and (with Redis) on every instance.

use std::sync::{PoisonError, RwLock};

use futures_util::future::BoxFuture;

use super::key::CacheKey;
use super::spec::CacheSpec;

/// What invalidation needs from a function cache, whatever its value type.
pub(crate) trait LocalCache: Send + Sync {
    fn namespace(&self) -> &'static str;
    fn spec(&self) -> &'static CacheSpec;
    fn drop_key(&self, key: CacheKey) -> BoxFuture<'_, ()>;
    fn drop_tag(&self, tag: &str);
    fn drop_all(&self);
    /// Entries in L1 (approximate: pending maintenance not run).
    fn entries(&self) -> u64;
    /// Estimated bytes of the L1 values held.
    fn bytes(&self) -> u64;
    /// Publishes counts kept locally (L1 hits) to the recorder.
    fn publish(&self);
}

static CACHES: RwLock<Vec<&'static dyn LocalCache>> = RwLock::new(Vec::new());

pub(crate) fn register(cache: &'static dyn LocalCache) {
    CACHES
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .push(cache);
}

pub(crate) fn all() -> Vec<&'static dyn LocalCache> {
    CACHES
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

pub(crate) fn in_namespace(namespace: &str) -> Vec<&'static dyn LocalCache> {
    all()
        .into_iter()
        .filter(|c| c.namespace() == namespace)
        .collect()
}

/// Drops what a message names from this process's L1 caches.
pub(crate) async fn apply(message: &super::bus::Invalidation) {
    use super::bus::Invalidation;
    match message {
        Invalidation::Key { namespace, key } => {
            for cache in in_namespace(namespace) {
                cache.drop_key(*key).await;
            }
        }
        Invalidation::Function { namespace } => {
            for cache in in_namespace(namespace) {
                cache.drop_all();
            }
        }
        Invalidation::Tag { tag } => {
            for cache in all() {
                cache.drop_tag(tag);
            }
        }
        Invalidation::Everything => {
            for cache in all() {
                cache.drop_all();
            }
        }
    }
}

/// Sets `perf_cache_entries` and `perf_cache_bytes` of every function cache.
pub(crate) fn publish_entries() {
    for cache in all() {
        metrics::gauge!(crate::monitor::names::CACHE_ENTRIES, "function" => cache.spec().name)
            .set(cache.entries() as f64);
        metrics::gauge!(crate::monitor::names::CACHE_BYTES, "function" => cache.spec().name)
            .set(cache.bytes() as f64);
        cache.publish();
    }
}
