//! The query-result cache (L3): [`Db::cached_query`], writes that drop what
//! they change ([`Db::execute_invalidating`]) and [`invalidate_tables`].
//!
//! Built from the cache layer: one runtime-made [`FunctionCache`] per query
//! name and row type, whose entries are tagged with the tables they read.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::FromRow;
use sqlx::postgres::PgRow;

use super::{Db, DbError, Params};
use crate::cache::mode::ResultMode;
use crate::cache::{FunctionCache, KeyHasher, Ttl};
use crate::monitor::names;

/// Cached results per query name and row type in L1.
const MAX_ENTRIES_PER_QUERY: u64 = 10_000;
/// Bumped when the key layout below changes, so old entries are never read.
const KEY_SCHEMA: u32 = 1;

type Caches = HashMap<(&'static str, TypeId), &'static (dyn Any + Send + Sync)>;
static CACHES: Mutex<Option<Caches>> = Mutex::new(None);

impl Db {
    /// The rows of `sql` with `params`, from the cache when a result of the
    /// same query name, row type, SQL and values is fresh (younger than
    /// `ttl`), else from the database (once for all concurrent callers),
    /// then cached. Errors are not cached.
    ///
    /// `name` labels the query in metrics (`perf_db_query_cache_requests_total`,
    /// `perf_cache_requests_total`): keep it a fixed word per query.
    /// `tables` are the tables the result depends on: a write to one of them
    /// through [`Self::execute_invalidating`] or [`invalidate_tables`] drops it.
    ///
    /// # Errors
    /// As [`Self::fetch_all`].
    pub async fn cached_query<T>(
        &self,
        name: &'static str,
        sql: &'static str,
        params: Params,
        ttl: Duration,
        tables: &[&str],
    ) -> Result<Vec<T>, DbError>
    where
        T: for<'r> FromRow<'r, PgRow>
            + Serialize
            + DeserializeOwned
            + Clone
            + Send
            + Sync
            + Unpin
            + 'static,
    {
        let Some(key_bytes) = params.key_bytes() else {
            // Values bound without their key bytes (the framework's own
            // queries): caching would mix up results of different values.
            return self.fetch_all::<T>(sql, params).await;
        };
        let cache = cache_for::<T>(name);
        let mut hasher = KeyHasher::seeded(cache.spec().key_seed);
        hasher
            .part(std::any::type_name::<T>())
            .and_then(|h| h.part(sql))
            .and_then(|h| h.part(key_bytes))
            .expect("strings and bytes always serialize");
        let key = hasher.finish();
        let tags: Vec<String> = tables.iter().map(|table| table_tag(table)).collect();
        let asked_database = AtomicBool::new(false);
        let rows = cache
            .call::<ResultMode, _, _>(key, Ttl::fresh(ttl), async {
                asked_database.store(true, Ordering::Relaxed);
                (self.fetch_all::<T>(sql, params).await, tags)
            })
            .await;
        let outcome = if asked_database.load(Ordering::Relaxed) {
            "miss"
        } else {
            "hit"
        };
        metrics::counter!(names::DB_QUERY_CACHE_REQUESTS, "query" => name, "outcome" => outcome)
            .increment(1);
        rows
    }

    /// [`Self::execute`], then drops every cached result that depends on
    /// one of `tables`, in every instance.
    ///
    /// # Errors
    /// As [`Self::execute`]; [`DbError::Invalidation`] when the write
    /// succeeded but Redis could not be told (this process's cache was
    /// still cleared).
    pub async fn execute_invalidating(
        &self,
        sql: &'static str,
        params: Params,
        tables: &[&str],
    ) -> Result<u64, DbError> {
        let rows = self.execute(sql, params).await?;
        invalidate_tables(tables.iter().copied())
            .await
            .map_err(|error| DbError::Invalidation {
                rows,
                reason: error.to_string(),
            })?;
        Ok(rows)
    }
}

/// Drops every cached query result that depends on one of `tables`: here
/// at once, in Redis, and on every other instance through the invalidation
/// bus. Call it after writing to those tables by other means than
/// [`Db::execute_invalidating`].
///
/// # Errors
/// [`crate::cache::InvalidateError`] when Redis is configured but failed.
pub async fn invalidate_tables<'a>(
    tables: impl IntoIterator<Item = &'a str>,
) -> Result<(), crate::cache::InvalidateError> {
    for table in tables {
        crate::cache::invalidate_tag(&table_tag(table)).await?;
    }
    Ok(())
}

/// The cache tag of a table; prefixed so it never meets a user's own tags.
fn table_tag(table: &str) -> String {
    format!("perf_runtime::db::table:{table}")
}

fn cache_for<T>(name: &'static str) -> &'static FunctionCache<Vec<T>>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    let mut caches = CACHES.lock().unwrap_or_else(PoisonError::into_inner);
    let cache = caches
        .get_or_insert_with(HashMap::new)
        .entry((name, TypeId::of::<T>()))
        .or_insert_with(|| {
            // Made once per query name and row type, as a static would be.
            let namespace: &'static str = Box::leak(format!("perf_runtime::db::{name}").into());
            FunctionCache::<Vec<T>>::leak_runtime(
                name,
                namespace,
                KEY_SCHEMA,
                MAX_ENTRIES_PER_QUERY,
            )
        });
    cache
        .downcast_ref::<FunctionCache<Vec<T>>>()
        .expect("the map is keyed by the row type's TypeId")
}
