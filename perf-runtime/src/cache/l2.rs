//! The Redis tier: one record per key, a tag index, and a circuit breaker so
//! that once Redis is known to be down no call waits on it.
//!
//! Key names hold no argument or tag value: `perf:{function}:v{version}:{hash}`
//! for records, `perf:tag:{hash}` for tag indexes.
//!
//! Record: the codec envelope of `(fresh_until_ms, stale_until_ms, value)`
//! (Unix milliseconds), stored with `PX` = until the end of the stale window.
//! An L2 hit fills L1 with the remaining time, never a fresh TTL.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use quanta::Instant;

use fred::interfaces::{KeysInterface, SetsInterface};
use fred::prelude::{Client, Expiration};
use fred::types::ExpireOptions;

use super::codec;
use super::entry::Entry;
use super::key::CacheKey;
use super::spec::CacheSpec;
use super::value_codec::ValueCodec;
use crate::monitor::names;

/// Longest one L2 command may take before the call goes on without it.
pub const L2_TIMEOUT: Duration = Duration::from_millis(250);
/// Consecutive failures that open the breaker.
const BREAKER_THRESHOLD: u32 = 5;
/// How long the breaker stays open before one probe is let through.
const BREAKER_OPEN: Duration = Duration::from_secs(2);

/// Stops calling Redis after repeated failures; lets one probe through
/// after a pause, and closes on its success.
pub(crate) struct Breaker {
    failures: AtomicU32,
    open_until_ms: AtomicU64,
    epoch: Instant,
}

impl Breaker {
    pub(crate) fn new() -> Self {
        Breaker {
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub(crate) fn allow(&self) -> bool {
        let open_until = self.open_until_ms.load(Ordering::Relaxed);
        if open_until == 0 {
            return true;
        }
        let now = self.now_ms();
        // Half-open: the first caller past the pause takes the probe.
        now >= open_until
            && self
                .open_until_ms
                .compare_exchange(
                    open_until,
                    now + BREAKER_OPEN.as_millis() as u64,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    pub(crate) fn success(&self) {
        self.failures.store(0, Ordering::Relaxed);
        self.open_until_ms.store(0, Ordering::Relaxed);
    }

    pub(crate) fn failure(&self) {
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= BREAKER_THRESHOLD {
            self.open_until_ms.store(
                self.now_ms() + BREAKER_OPEN.as_millis() as u64,
                Ordering::Relaxed,
            );
        }
    }
}

pub(crate) enum L2Lookup<V> {
    /// The entry and its value's encoded size.
    Hit(Entry<V>, u32),
    Miss,
    Unavailable,
}

fn unix_ms(at: Instant) -> u64 {
    let now = Instant::now();
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let offset = if at >= now {
        wall + (at - now)
    } else {
        wall.saturating_sub(now - at)
    };
    offset.as_millis() as u64
}

fn instant_from_unix_ms(ms: u64) -> Instant {
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let now = Instant::now();
    if ms >= wall {
        now + Duration::from_millis(ms - wall)
    } else {
        now.checked_sub(Duration::from_millis(wall - ms))
            .unwrap_or(now)
    }
}

/// The Redis set that indexes a tag's entries. The tag is hashed: tags
/// usually carry ids (`user:42`), which stay out of key names.
pub(crate) fn tag_key(tag: &str) -> String {
    format!(
        "perf:tag:{:032x}",
        xxhash_rust::xxh3::xxh3_128(tag.as_bytes())
    )
}

pub(crate) async fn timed<T>(
    future: impl std::future::Future<Output = fred::prelude::FredResult<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(L2_TIMEOUT, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {} ms", L2_TIMEOUT.as_millis())),
    }
}

/// Looks `key` up; a value that fails to decode is deleted and counted as a miss.
pub(crate) async fn get<V>(
    client: &Client,
    breaker: &Breaker,
    spec: &CacheSpec,
    key: CacheKey,
    value_codec: &ValueCodec<V>,
) -> L2Lookup<V> {
    if !breaker.allow() {
        metrics::counter!(names::CACHE_REQUESTS, "function" => spec.name, "tier" => "l2", "outcome" => "skipped").increment(1);
        return L2Lookup::Unavailable;
    }
    let name = key.redis_name(spec.namespace, spec.schema_version);
    let started = quanta::Instant::now();
    let reply = timed(client.get::<Option<fred::bytes::Bytes>, _>(name.as_str())).await;
    metrics::histogram!(names::CACHE_L2_LOOKUP_DURATION, "function" => spec.name)
        .record(started.elapsed().as_secs_f64());
    let bytes = match reply {
        Ok(Some(bytes)) => {
            breaker.success();
            bytes
        }
        Ok(None) => {
            breaker.success();
            metrics::counter!(names::CACHE_REQUESTS, "function" => spec.name, "tier" => "l2", "outcome" => "miss").increment(1);
            return L2Lookup::Miss;
        }
        Err(reason) => {
            backend_error(breaker, spec, "GET", &reason);
            return L2Lookup::Unavailable;
        }
    };
    let decoded = codec::decode::<(u64, u64, Vec<u8>)>(&bytes, codec::DEFAULT_MAX_VALUE_BYTES)
        .and_then(|(fresh, stale, raw)| {
            let size = u32::try_from(raw.len()).unwrap_or(u32::MAX);
            Ok((fresh, stale, (value_codec.from_bytes)(&raw)?, size))
        });
    match decoded {
        Ok((fresh_ms, stale_ms, value, size)) => {
            metrics::counter!(names::CACHE_REQUESTS, "function" => spec.name, "tier" => "l2", "outcome" => "hit").increment(1);
            L2Lookup::Hit(
                Entry {
                    value,
                    fresh_until: instant_from_unix_ms(fresh_ms),
                    stale_until: instant_from_unix_ms(stale_ms),
                    tags: Vec::new().into(),
                },
                size,
            )
        }
        Err(error) => {
            metrics::counter!(names::CACHE_DECODE_ERRORS, "function" => spec.name).increment(1);
            tracing::debug!(function = spec.name, %error, "undecodable L2 value deleted");
            let _ = timed(client.del::<i64, _>(name.as_str())).await;
            metrics::counter!(names::CACHE_REQUESTS, "function" => spec.name, "tier" => "l2", "outcome" => "miss").increment(1);
            L2Lookup::Miss
        }
    }
}

/// Stores `entry`, whose value encodes to `raw`, under `key` (and in its
/// tags' index). Failures are
/// counted and otherwise ignored: the value is still returned to the caller.
pub(crate) async fn set<V>(
    client: &Client,
    breaker: &Breaker,
    spec: &CacheSpec,
    key: CacheKey,
    entry: &Entry<V>,
    raw: Vec<u8>,
) {
    if !breaker.allow() {
        return;
    }
    let record = (unix_ms(entry.fresh_until), unix_ms(entry.stale_until), raw);
    let Ok(bytes) = codec::encode(&record) else {
        return;
    };
    let name = key.redis_name(spec.namespace, spec.schema_version);
    let ttl_ms = entry
        .stale_until
        .saturating_duration_since(Instant::now())
        .as_millis()
        .max(1) as i64;
    let stored = timed(client.set::<(), _, _>(
        name.as_str(),
        fred::bytes::Bytes::from(bytes),
        Some(Expiration::PX(ttl_ms)),
        None,
        false,
    ))
    .await;
    if let Err(reason) = stored {
        return backend_error(breaker, spec, "SET", &reason);
    }
    breaker.success();
    let ttl_s = ttl_ms / 1000 + 1;
    for tag in entry.tags.iter() {
        let index = tag_key(tag);
        let indexed = async {
            client
                .sadd::<i64, _, _>(index.as_str(), name.as_str())
                .await?;
            // The index lives as long as its longest entry.
            client
                .expire::<i64, _>(index.as_str(), ttl_s, Some(ExpireOptions::NX))
                .await?;
            client
                .expire::<i64, _>(index.as_str(), ttl_s, Some(ExpireOptions::GT))
                .await
        };
        if let Err(reason) = timed(indexed).await {
            return backend_error(breaker, spec, "SADD", &reason);
        }
    }
}

pub(crate) fn backend_error(breaker: &Breaker, spec: &CacheSpec, command: &str, reason: &str) {
    breaker.failure();
    metrics::counter!(names::CACHE_BACKEND_ERRORS, "function" => spec.name).increment(1);
    metrics::counter!(names::CACHE_REQUESTS, "function" => spec.name, "tier" => "l2", "outcome" => "error").increment(1);
    crate::cache::rate_limited_warn(command, reason);
}

/// Deletes one key's record.
pub(crate) async fn delete(client: &Client, name: &str) -> Result<(), String> {
    timed(client.del::<i64, _>(name)).await.map(|_| ())
}

/// Deletes every record indexed under `tag`, and the index.
pub(crate) async fn delete_tag(client: &Client, tag: &str) -> Result<(), String> {
    let index = tag_key(tag);
    let names: Vec<String> = timed(client.smembers(index.as_str())).await?;
    for chunk in names.chunks(256) {
        timed(client.del::<i64, _>(chunk.to_vec())).await?;
    }
    timed(client.del::<i64, _>(index.as_str()))
        .await
        .map(|_| ())
}
