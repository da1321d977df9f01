//! Semantic entries in Redis, so that every instance sharing it finds the
//! prompts the others cached.
//!
//! The answers themselves live in the exact tier (L1 and L2 under their
//! exact key). What the other instances lack is the *vector index* entry
//! that points to them. Each partition has a Redis stream
//! (`perf:ai:sem:<hash>`, no prompt or scope in the name) of the entries
//! added to it: the prompt, its vector and its expiry. An instance that
//! misses in a partition reads what was added since it last looked (at
//! most once a second per partition, and at once the first time) and tries
//! again. A stream is capped at the index's bound per partition and expires
//! with its newest entry.
//!
//! Invalidation needs nothing here: an entry whose answer was invalidated
//! (or expired) points to nothing, and an instance that meets one drops it.

#![cfg(feature = "redis")]

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fred::prelude::{Client, ClientLike, Value};
use fred::types::{ClusterHash, CustomCommand};
use quanta::Instant;

use crate::ai::{PartitionKey, SemanticIndex};

/// A partition's stream is read at most this often.
const SYNC_EVERY: Duration = Duration::from_secs(1);
/// Entries read per round trip.
const BATCH: u64 = 1000;
/// Partitions whose read position is remembered; past it, the least
/// recently read are forgotten (and read again from the start if needed).
const MAX_TRACKED: usize = 10_000;
/// Longest prompt and vector accepted from Redis (bounded decoding).
const MAX_PROMPT_BYTES: usize = 64 * 1024;
const MAX_DIMENSIONS: usize = 8192;

/// An entry as another instance wrote it.
pub(crate) struct Record {
    pub(crate) text: String,
    pub(crate) vector: Vec<f32>,
    pub(crate) ttl: Duration,
}

/// Where this instance is in each partition's stream.
#[derive(Default)]
pub(crate) struct Streams {
    read: Mutex<HashMap<String, (String, Instant)>>,
}

/// The stream's name for `partition` of the function `namespace`: hashes
/// of the provider, the model, the scope and the rest, each a segment, so
/// that invalidation finds a provider's, a model's or a scope's streams by
/// pattern ([`pattern`]). No name or id appears in it.
pub(crate) fn stream_name(namespace: &str, partition: &PartitionKey) -> String {
    let mut rest = Vec::with_capacity(128);
    for part in [namespace, &partition.embedding_model] {
        rest.extend_from_slice(&(part.len() as u64).to_le_bytes());
        rest.extend_from_slice(part.as_bytes());
    }
    rest.extend_from_slice(&partition.context_hash.to_le_bytes());
    format!(
        "perf:ai:sem:{}:{}:{}:{:032x}",
        segment(&partition.provider),
        segment(&format!("{}/{}", partition.provider, partition.model)),
        segment(partition.scope.as_deref().unwrap_or("")),
        xxhash_rust::xxh3::xxh3_128(&rest)
    )
}

fn segment(text: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.as_bytes()))
}

/// The `SCAN` pattern of every stream of `target`.
pub(crate) fn pattern(target: &super::AiTarget) -> String {
    use super::AiTarget;
    match target {
        AiTarget::All => "perf:ai:sem:*".to_owned(),
        AiTarget::Provider(provider) => format!("perf:ai:sem:{}:*", segment(provider)),
        AiTarget::Model { provider, model } => format!(
            "perf:ai:sem:{}:{}:*",
            segment(provider),
            segment(&format!("{provider}/{model}"))
        ),
        AiTarget::Scope(scope) => format!("perf:ai:sem:*:*:{}:*", segment(scope)),
    }
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Appends an entry to `stream` and extends the stream's life to its TTL.
pub(crate) async fn append(
    client: &Client,
    stream: &str,
    cap: usize,
    text: &str,
    vector: &[f32],
    ttl: Duration,
) -> Result<(), String> {
    let expires = unix_ms(SystemTime::now() + ttl);
    let vector: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    let args: Vec<Value> = vec![
        stream.into(),
        "MAXLEN".into(),
        "~".into(),
        (cap as i64).into(),
        "*".into(),
        "p".into(),
        text.into(),
        "v".into(),
        Value::Bytes(vector.into()),
        "e".into(),
        (expires as i64).into(),
    ];
    let xadd = CustomCommand::new_static("XADD", ClusterHash::FirstKey, false);
    timed(client.custom::<Value, Value>(xadd, args)).await?;
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
    let pexpire = CustomCommand::new_static("PEXPIRE", ClusterHash::FirstKey, false);
    timed(client.custom::<Value, Value>(pexpire, vec![stream.into(), ttl_ms.into()])).await?;
    Ok(())
}

impl Streams {
    /// Whether `stream` is due to be read.
    pub(crate) fn due(&self, stream: &str) -> bool {
        let read = self.read.lock().unwrap_or_else(PoisonError::into_inner);
        read.get(stream)
            .is_none_or(|(_, at)| at.elapsed() >= SYNC_EVERY)
    }

    /// Reads what `stream` gained since the last read into `index`
    /// (`partition`, ids from `id_of`). Returns the entries added.
    pub(crate) async fn pull(
        &self,
        client: &Client,
        stream: &str,
        index: &SemanticIndex,
        partition: &PartitionKey,
        id_of: impl Fn(&str) -> u64,
    ) -> Result<usize, String> {
        let start = {
            let mut read = self.read.lock().unwrap_or_else(PoisonError::into_inner);
            if read.len() >= MAX_TRACKED && !read.contains_key(stream) {
                forget_oldest(&mut read);
            }
            let entry = read
                .entry(stream.to_owned())
                .or_insert_with(|| ("-".to_owned(), Instant::now()));
            entry.1 = Instant::now();
            entry.0.clone()
        };
        let from = if start == "-" {
            start
        } else {
            format!("({start}")
        };
        let xrange = CustomCommand::new_static("XRANGE", ClusterHash::FirstKey, false);
        let args: Vec<Value> = vec![
            stream.into(),
            from.into(),
            "+".into(),
            "COUNT".into(),
            (BATCH as i64).into(),
        ];
        let reply = timed(client.custom::<Value, Value>(xrange, args)).await?;
        let now = SystemTime::now();
        let mut added = 0;
        let mut last = None;
        if let Value::Array(entries) = reply {
            for entry in entries {
                let Some((id, record)) = parse_entry(entry, now) else {
                    continue;
                };
                last = Some(id);
                if let Some(record) = record {
                    let id = id_of(&record.text);
                    if index
                        .insert(partition, id, &record.vector, &record.text, record.ttl)
                        .is_ok()
                    {
                        added += 1;
                    }
                }
            }
        }
        if let Some(last) = last {
            let mut read = self.read.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(entry) = read.get_mut(stream) {
                entry.0 = last;
            }
        }
        Ok(added)
    }
}

fn forget_oldest(read: &mut HashMap<String, (String, Instant)>) {
    let mut by_age: Vec<(Instant, String)> = read
        .iter()
        .map(|(stream, (_, at))| (*at, stream.clone()))
        .collect();
    by_age.sort_unstable();
    for (_, stream) in by_age.into_iter().take(MAX_TRACKED / 10) {
        read.remove(&stream);
    }
}

/// One stream entry: its id, and the record unless it expired. Anything
/// malformed (another writer, a corrupted value) is skipped, never trusted.
fn parse_entry(entry: Value, now: SystemTime) -> Option<(String, Option<Record>)> {
    let Value::Array(mut parts) = entry else {
        return None;
    };
    if parts.len() != 2 {
        return None;
    }
    let fields = parts.pop()?;
    let id = parts.pop()?.as_string()?;
    let Value::Array(fields) = fields else {
        return Some((id, None));
    };
    let (mut text, mut vector, mut expires) = (None, None, None);
    for pair in fields.chunks(2) {
        let [name, value] = pair else { break };
        match name.as_str().as_deref() {
            Some("p") => text = value.as_str().map(|s| s.into_owned()),
            Some("v") => vector = value.as_bytes().map(<[u8]>::to_vec),
            Some("e") => expires = value.as_u64(),
            _ => {}
        }
    }
    let (Some(text), Some(vector), Some(expires)) = (text, vector, expires) else {
        return Some((id, None));
    };
    if text.len() > MAX_PROMPT_BYTES
        || vector.len() % 4 != 0
        || vector.is_empty()
        || vector.len() / 4 > MAX_DIMENSIONS
    {
        return Some((id, None));
    }
    let ttl = Duration::from_millis(expires.saturating_sub(unix_ms(now)));
    if ttl.is_zero() {
        return Some((id, None));
    }
    let vector = vector
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Some((id, Some(Record { text, vector, ttl })))
}

async fn timed<T>(
    future: impl std::future::Future<Output = fred::prelude::FredResult<T>>,
) -> Result<T, String> {
    crate::cache::l2_timed(future).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fields: Vec<Value>) -> Value {
        Value::Array(vec!["1-0".into(), Value::Array(fields)])
    }

    #[test]
    fn records_round_trip_and_garbage_is_skipped() {
        let now = SystemTime::now();
        let expires = (unix_ms(now) + 60_000) as i64;
        let vector: Vec<u8> = [0.6f32, 0.8].iter().flat_map(|x| x.to_le_bytes()).collect();
        let good = entry(vec![
            "p".into(),
            "What is Rust?".into(),
            "v".into(),
            Value::Bytes(vector.clone().into()),
            "e".into(),
            expires.into(),
        ]);
        let (id, record) = parse_entry(good, now).unwrap();
        let record = record.unwrap();
        assert_eq!(id, "1-0");
        assert_eq!(record.text, "What is Rust?");
        assert_eq!(record.vector, vec![0.6, 0.8]);
        assert!(record.ttl > Duration::from_secs(59));

        let odd_vector = entry(vec![
            "p".into(),
            "x".into(),
            "v".into(),
            Value::Bytes(vec![1, 2, 3].into()),
            "e".into(),
            expires.into(),
        ]);
        assert!(parse_entry(odd_vector, now).unwrap().1.is_none());
        let expired = entry(vec![
            "p".into(),
            "x".into(),
            "v".into(),
            Value::Bytes(vector.into()),
            "e".into(),
            1i64.into(),
        ]);
        assert!(parse_entry(expired, now).unwrap().1.is_none());
        assert!(parse_entry(Value::Null, now).is_none());
        assert!(
            parse_entry(entry(vec!["p".into()]), now)
                .unwrap()
                .1
                .is_none()
        );
    }

    #[test]
    fn stream_names_hide_the_scope_and_separate_partitions() {
        let a = PartitionKey::new("openai", "gpt-4", "e").with_scope("user-42");
        let b = PartitionKey::new("openai", "gpt-4", "e").with_scope("user-43");
        let name = stream_name("app::ask", &a);
        assert!(!name.contains("user-42"));
        assert_ne!(name, stream_name("app::ask", &b));
        assert_ne!(name, stream_name("app::other", &a));
    }

    #[test]
    fn invalidation_patterns_match_their_streams_only() {
        use super::super::AiTarget;
        let key = PartitionKey::new("openai", "gpt-4", "e").with_scope("u");
        let name = stream_name("app::ask", &key);
        let matches = |target: AiTarget| {
            let pattern = pattern(&target);
            let prefix = pattern.split('*').next().unwrap().to_owned();
            let parts: Vec<&str> = pattern.split(':').collect();
            let names: Vec<&str> = name.split(':').collect();
            name.starts_with(&prefix) && parts.iter().zip(&names).all(|(p, n)| *p == "*" || p == n)
        };
        assert!(matches(AiTarget::All));
        assert!(matches(AiTarget::Provider("openai".into())));
        assert!(!matches(AiTarget::Provider("ollama".into())));
        assert!(matches(AiTarget::Model {
            provider: "openai".into(),
            model: "gpt-4".into()
        }));
        assert!(!matches(AiTarget::Model {
            provider: "openai".into(),
            model: "gpt-5".into()
        }));
        assert!(matches(AiTarget::Scope("u".into())));
        assert!(!matches(AiTarget::Scope("v".into())));
    }
}
