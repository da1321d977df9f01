//! The manual API: [`cached_request`] (the seed's
//! `cached_request(cache_key, operation, ttl)`) and [`warm`].

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::function::FunctionCache;
use super::key::KeyHasher;
use super::mode::ResultMode;
use super::spec::Ttl;

/// Entries per value type in the manual cache's L1.
const MANUAL_MAX_ENTRIES: u64 = 10_000;
/// How many loads [`warm`] runs at once.
const WARM_CONCURRENCY: usize = 8;

/// The namespace of the manual cache's keys.
pub const MANUAL_NAMESPACE: &str = "perf_runtime::cached_request";

static CACHES: Mutex<Option<HashMap<TypeId, &'static (dyn Any + Send + Sync)>>> = Mutex::new(None);

fn cache_for<T>() -> &'static FunctionCache<T>
where
    T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let mut caches = CACHES.lock().unwrap_or_else(PoisonError::into_inner);
    let entry = caches
        .get_or_insert_with(HashMap::new)
        .entry(TypeId::of::<T>())
        .or_insert_with(|| {
            FunctionCache::<T>::leak_runtime(
                "cached_request",
                MANUAL_NAMESPACE,
                1,
                MANUAL_MAX_ENTRIES,
            )
        });
    entry
        .downcast_ref::<FunctionCache<T>>()
        .expect("the map is keyed by the value's TypeId")
}

/// Returns the value cached under `cache_key`, or runs `operation`, caches
/// an `Ok` for `ttl` (in L1, and in Redis when configured) and returns it.
/// Concurrent callers of one key run `operation` once. Errors are not cached.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use perf_runtime::cache::cached_request;
///
/// let answer: Result<u64, String> =
///     cached_request("expensive_op:42", || async { Ok(42 * 2) }, Duration::from_secs(600)).await;
/// assert_eq!(answer, Ok(84));
/// // Cached now: the operation does not run again.
/// let again: Result<u64, String> =
///     cached_request("expensive_op:42", || async { Err("not called".to_owned()) }, Duration::from_secs(600)).await;
/// assert_eq!(again, Ok(84));
/// # }
/// ```
///
/// Entries of different value types never mix: each type has its own cache.
pub async fn cached_request<T, E, F, Fut>(
    cache_key: &str,
    operation: F,
    ttl: Duration,
) -> Result<T, E>
where
    T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let cache = cache_for::<T>();
    let mut hasher = KeyHasher::new(MANUAL_NAMESPACE, 1);
    hasher
        .part(std::any::type_name::<T>())
        .and_then(|h| h.part(cache_key))
        .expect("strings always serialize");
    let key = hasher.finish();
    cache
        .call::<ResultMode, _, _>(key, Ttl::fresh(ttl), async move {
            (operation().await, Vec::new())
        })
        .await
}

/// What [`warm`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct WarmReport {
    /// Keys now cached (loaded, or already there).
    pub cached: usize,
    /// Keys whose loader failed.
    pub failed: usize,
}

/// Loads `keys` into the manual cache ahead of traffic, a few at a time;
/// keys already cached are not loaded again.
pub async fn warm<T, E, F, Fut>(
    keys: impl IntoIterator<Item = String>,
    loader: F,
    ttl: Duration,
) -> WarmReport
where
    T: Clone + Serialize + DeserializeOwned + Send + Sync + 'static,
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let loader = &loader;
    let loads = keys.into_iter().map(|key| async move {
        let load = || loader(key.clone());
        cached_request(&key, load, ttl).await.is_ok()
    });
    WarmReport::count(loads, WARM_CONCURRENCY).await
}

impl WarmReport {
    /// Runs `loads` (each true when its value is now cached), at most
    /// `concurrency` at once, and counts how they ended.
    pub(crate) async fn count<Fut>(loads: impl IntoIterator<Item = Fut>, concurrency: usize) -> Self
    where
        Fut: Future<Output = bool>,
    {
        let results: Vec<bool> = futures_util::stream::iter(loads)
            .buffer_unordered(concurrency)
            .collect()
            .await;
        let cached = results.iter().filter(|ok| **ok).count();
        WarmReport {
            cached,
            failed: results.len() - cached,
        }
    }
}
