//! The Redis tier: one value per session, written only by a compare-and-set
//! script, read by a script that sends the value only when it changed.
//!
//! Both scripts look at the value's first 9 bytes (format version and the
//! token of the write that stored it, see [`codec`](super::codec)):
//! - [`fetch`] answers 0 when there is no session, 1 when the head is the
//!   one the caller already holds (nothing else crosses the network), or
//!   the whole value;
//! - [`write`] stores the new value (with `PX`) only when the head is the
//!   one the caller read, or the key is absent when the caller read
//!   nothing; else it answers 0 and the caller merges and tries again.
//!
//! A write that times out may still run later (the client queues commands
//! while it reconnects); being conditional, it then fails harmlessly
//! unless nothing changed in between.
//!
//! Every command is bounded by [`REDIS_TIMEOUT`]; failures are counted,
//! logged at a bounded rate, and never reach the caller.

use std::time::Duration;

use fred::bytes::Bytes;
use fred::interfaces::{KeysInterface, LuaInterface};
use fred::prelude::{Client, Expiration};
use fred::types::Value;

use super::codec::{self, Decoded, HEAD_LEN};
use super::names;

/// Longest one Redis command may take before the store goes on without it.
pub(super) const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// ARGV[1]: the head the caller holds ('' for none).
const FETCH: &str = r"
local head = redis.call('GETRANGE', KEYS[1], 0, 8)
if head == '' then return 0 end
if head == ARGV[1] then return 1 end
return redis.call('GET', KEYS[1])
";

/// ARGV[1]: the head the caller read ('' for an absent key); ARGV[2]: the
/// new value; ARGV[3]: its time to live in milliseconds.
const WRITE: &str = r"
if redis.call('GETRANGE', KEYS[1], 0, 8) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
";

/// What Redis holds for a session.
pub(super) enum Fetched {
    /// Nothing (or a value that could not be read, now deleted).
    Absent,
    /// The version the caller holds.
    Unchanged,
    /// Another version.
    Found(Decoded),
}

/// Which operation failed, for the error counter.
#[derive(Clone, Copy)]
pub(super) enum Kind {
    Read,
    Write,
    Remove,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::Write => "write",
            Kind::Remove => "remove",
        }
    }
}

/// Counts and (at a bounded rate) logs a failed command.
pub(super) fn failed(kind: Kind, reason: &str) {
    metrics::counter!(names::BACKEND_ERRORS, "kind" => kind.label()).increment(1);
    crate::cache::rate_limited_warn(
        match kind {
            Kind::Read => "ai session read",
            Kind::Write => "ai session write",
            Kind::Remove => "ai session remove",
        },
        reason,
    );
}

async fn timed<T>(
    future: impl std::future::Future<Output = fred::prelude::FredResult<T>>,
) -> Result<T, String> {
    match tokio::time::timeout(REDIS_TIMEOUT, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(format!("{}: {}", error.kind().to_str(), error.details())),
        Err(_) => Err(format!("no answer within {} ms", REDIS_TIMEOUT.as_millis())),
    }
}

fn head_arg(head: Option<u64>) -> Value {
    Value::Bytes(match head {
        Some(token) => Bytes::copy_from_slice(&codec::head(token)),
        None => Bytes::new(),
    })
}

/// Reads the session at `key`, sending only a marker when its head is still
/// `known`.
///
/// # Errors
/// What went wrong with Redis.
pub(super) async fn fetch(
    client: &Client,
    key: &str,
    known: Option<u64>,
) -> Result<Fetched, String> {
    let reply: Value = timed(client.eval(FETCH, key, vec![head_arg(known)])).await?;
    if let Value::Integer(answer) = reply {
        return match answer {
            0 => Ok(Fetched::Absent),
            1 => Ok(Fetched::Unchanged),
            other => Err(format!(
                "unexpected answer {other} from the session read script"
            )),
        };
    }
    let Some(bytes) = reply.as_bytes() else {
        return Err(format!(
            "unexpected {} from the session read script",
            reply.kind()
        ));
    };
    match codec::decode(bytes) {
        Ok(decoded) => Ok(Fetched::Found(decoded)),
        Err(error) => {
            metrics::counter!(names::DECODE_ERRORS).increment(1);
            tracing::debug!(%error, "unreadable session deleted from Redis");
            // A failed delete leaves it for the next reader, or its TTL.
            let _ = timed(client.del::<i64, _>(key)).await;
            Ok(Fetched::Absent)
        }
    }
}

/// Stores `bytes` at `key` for `ttl` if the session there is still the one
/// whose head was `expected` (`None`: no session). `Ok(false)`: another
/// writer came first.
///
/// # Errors
/// What went wrong with Redis (the write may or may not have happened).
pub(super) async fn write(
    client: &Client,
    key: &str,
    expected: Option<u64>,
    bytes: Vec<u8>,
    ttl: Duration,
) -> Result<bool, String> {
    debug_assert!(bytes.len() >= HEAD_LEN);
    let args = vec![
        head_arg(expected),
        Value::Bytes(Bytes::from(bytes)),
        Value::Integer(ttl_ms(ttl)),
    ];
    let reply: i64 = timed(client.eval(WRITE, key, args)).await?;
    Ok(reply == 1)
}

/// Stores `bytes` at `key` for `ttl` whatever is there (a removal wins over
/// any version).
///
/// # Errors
/// What went wrong with Redis.
pub(super) async fn overwrite(
    client: &Client,
    key: &str,
    bytes: Vec<u8>,
    ttl: Duration,
) -> Result<(), String> {
    timed(client.set::<(), _, _>(
        key,
        Bytes::from(bytes),
        Some(Expiration::PX(ttl_ms(ttl))),
        None,
        false,
    ))
    .await
}

fn ttl_ms(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1)
}
