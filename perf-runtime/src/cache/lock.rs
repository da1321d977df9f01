//! Single-flight across instances: a short Redis lock per key.
//!
//! In one process, concurrent misses on a key already wait for one leader
//! ([`super::flight`]). With `#[fast_endpoint(lock = "2s")]`, that leader
//! also takes `SET <key>:lock <token> NX PX 2000` before running the body,
//! so leaders on other instances wait for its value to appear in L2 instead
//! of computing it too. A waiter polls L2 with a growing pause and computes
//! itself when the lock's time is up (the holder died or is slow) or Redis
//! fails: the lock saves work, it never blocks a call for longer than `lock`.
//! The holder releases the lock once the value is stored, by a
//! compare-and-delete on its token, so it never deletes a lock another
//! instance took after its own expired.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fred::interfaces::{KeysInterface, LuaInterface};
use fred::prelude::{Client, Expiration};
use fred::types::SetOptions;

use super::key::CacheKey;
use super::spec::CacheSpec;

/// First pause between two looks at L2 while another instance computes.
pub(crate) const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// Longest pause between two looks.
pub(crate) const MAX_PAUSE: Duration = Duration::from_millis(100);

/// Deletes the lock only if it still holds our token.
const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// A lock this process holds. Released by [`release`](Self::release), or,
/// if dropped first (a cancelled or failed leader), by a spawned task.
pub(crate) struct HeldLock {
    client: Client,
    name: String,
    token: String,
    released: bool,
}

/// The Redis name of `key`'s lock.
pub(crate) fn lock_name(spec: &CacheSpec, key: CacheKey) -> String {
    let mut name = key.redis_name(spec.namespace, spec.schema_version);
    name.push_str(":lock");
    name
}

/// A token unique to this process start (pid and start time) and this
/// acquisition.
fn token() -> String {
    static PROCESS: LazyLock<String> = LazyLock::new(|| {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        format!("{}-{started:x}", std::process::id())
    });
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{}:{}", *PROCESS, NEXT.fetch_add(1, Ordering::Relaxed))
}

/// Tries to take the lock for `ttl`: `Ok(None)` when another holder has it.
pub(crate) async fn try_acquire(
    client: &Client,
    name: &str,
    ttl: Duration,
) -> Result<Option<HeldLock>, String> {
    let token = token();
    let ttl_ms = ttl.as_millis().max(1) as i64;
    let reply: Option<String> = super::l2::timed(client.set(
        name,
        token.as_str(),
        Some(Expiration::PX(ttl_ms)),
        Some(SetOptions::NX),
        false,
    ))
    .await?;
    Ok(reply.map(|_| HeldLock {
        client: client.clone(),
        name: name.to_owned(),
        token,
        released: false,
    }))
}

impl HeldLock {
    /// Releases the lock (if it is still ours).
    pub(crate) async fn release(mut self) {
        self.released = true;
        // A failure leaves the lock to expire on its own.
        let _ = release(&self.client, &self.name, &self.token).await;
    }
}

async fn release(client: &Client, name: &str, token: &str) -> Result<i64, String> {
    super::l2::timed(client.eval::<i64, _, _, _>(RELEASE, name, token)).await
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (client, name, token) = (
                self.client.clone(),
                std::mem::take(&mut self.name),
                std::mem::take(&mut self.token),
            );
            runtime.spawn(async move {
                let _ = release(&client, &name, &token).await;
            });
        }
    }
}
