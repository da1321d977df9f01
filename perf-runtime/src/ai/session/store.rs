//! [`SessionStore`]: the two tiers put together, one session at a time.
//!
//! Every operation on a session holds that session's stripe lock (one of
//! [`STRIPES`] async mutexes, chosen by the id's hash) from its L1 lookup to
//! its L1 update, Redis round trip included: two calls in one process never
//! interleave on a session, so none loses the other's messages. Between
//! processes the Redis scripts do that job (see `l2.rs`).

use std::sync::Arc;
use std::time::Instant;

use xxhash_rust::xxh3::xxh3_128;

use super::config::SessionConfig;
use super::state::Session;
use super::{codec, names, trim};
use crate::ai::{AiError, ChatMessage};

/// Stripe locks per store.
const STRIPES: usize = 256;

/// Conversation contexts by session id: kept decoded in process (L1, moka),
/// and compressed in Redis (L2) when the runtime has Redis, so another
/// process (or this one after a restart) finds them. Cheap to clone; clones
/// share both tiers. See [the module docs](super) for tiers, limits and
/// failure behaviour.
///
/// ```
/// use perf_runtime::ai::ChatMessage;
/// use perf_runtime::ai::session::{SessionConfig, SessionStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let sessions = SessionStore::new(SessionConfig::default());
/// sessions
///     .append("session-42", [ChatMessage::system("Be brief."), ChatMessage::user("Hi")])
///     .await?;
/// sessions.append("session-42", [ChatMessage::assistant("Hello!")]).await?;
/// assert_eq!(sessions.len("session-42").await, 3);
///
/// // The system message, then the newest messages that fit 20 tokens.
/// let context = sessions.context("session-42", 20).await;
/// assert_eq!(context.first().map(|m| m.content.as_str()), Some("Be brief."));
/// assert_eq!(context.last().map(|m| m.content.as_str()), Some("Hello!"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SessionStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: SessionConfig,
    l1: moka::future::Cache<u128, Arc<Session>>,
    stripes: Box<[tokio::sync::Mutex<()>]>,
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    runtime: Runtime,
}

/// Whose Redis connection the store uses.
enum Runtime {
    /// [`crate::global`]'s, looked up on every call (so a store made before
    /// `init` uses Redis once `init` has run).
    Global,
    /// This instance's.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Instance(crate::Perf),
}

/// The id's hash, which names the session everywhere (the raw id is kept
/// nowhere).
#[derive(Clone, Copy)]
struct Key(u128);

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("config", &self.inner.config)
            .field("l1_sessions", &self.inner.l1.entry_count())
            .finish_non_exhaustive()
    }
}

/// L1 entries live until their session's end.
struct UntilExpiry;

impl moka::Expiry<u128, Arc<Session>> for UntilExpiry {
    fn expire_after_create(
        &self,
        _: &u128,
        session: &Arc<Session>,
        created_at: Instant,
    ) -> Option<std::time::Duration> {
        Some(session.expires_at.saturating_duration_since(created_at))
    }

    fn expire_after_update(
        &self,
        _: &u128,
        session: &Arc<Session>,
        updated_at: Instant,
        _: Option<std::time::Duration>,
    ) -> Option<std::time::Duration> {
        Some(session.expires_at.saturating_duration_since(updated_at))
    }
}

impl SessionStore {
    /// A store on the global runtime's Redis ([`crate::global`], looked up
    /// on each call), or in process only when it has none.
    pub fn new(config: SessionConfig) -> Self {
        SessionStore::build(config, Runtime::Global)
    }

    /// A store on the Redis of `perf` (an instance from
    /// [`Perf::start`](crate::Perf::start)), or in process only when it has
    /// none.
    pub fn with_runtime(config: SessionConfig, perf: &crate::Perf) -> Self {
        SessionStore::build(config, Runtime::Instance(perf.clone()))
    }

    fn build(config: SessionConfig, runtime: Runtime) -> Self {
        names::describe();
        let l1 = moka::future::Cache::builder()
            .max_capacity(config.l1_capacity())
            .expire_after(UntilExpiry)
            .build();
        SessionStore {
            inner: Arc::new(Inner {
                config,
                l1,
                stripes: (0..STRIPES).map(|_| tokio::sync::Mutex::new(())).collect(),
                runtime,
            }),
        }
    }

    /// The settings.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// The Redis key of `session_id`: the prefix and the hex xxh3-128 hash
    /// of the id (never the id itself). For operators inspecting a session.
    pub fn redis_key(&self, session_id: &str) -> String {
        self.redis_name(key_of(session_id))
    }

    fn redis_name(&self, key: Key) -> String {
        format!("{}{:032x}", self.inner.config.key_prefix(), key.0)
    }

    fn stripe(&self, key: Key) -> &tokio::sync::Mutex<()> {
        &self.inner.stripes[(key.0 as u64 % STRIPES as u64) as usize]
    }

    /// Adds `messages` to the end of the session (creating it), drops the
    /// oldest past [`max_messages`](SessionConfig::max_messages), restarts
    /// its TTL, and returns how many messages it now keeps.
    ///
    /// With Redis, the whole session is written there before this returns;
    /// a Redis that fails or is slower than 250 ms is skipped (counted in
    /// `perf_ai_session_backend_errors_total`), and the session is written
    /// there on a later call.
    ///
    /// # Errors
    /// [`AiError::SessionTooLarge`] when the session would exceed 8 MiB
    /// encoded; it is then left as it was.
    pub async fn append(
        &self,
        session_id: &str,
        messages: impl IntoIterator<Item = ChatMessage>,
    ) -> Result<usize, AiError> {
        let new: Vec<ChatMessage> = messages.into_iter().collect();
        let key = key_of(session_id);
        let _turn = self.stripe(key).lock().await;
        let (mut session, reachable) = match self.inner.l1.get(&key.0).await {
            Some(session) => (Session::clone(&session), true),
            None => self.restore_for_write(key).await,
        };
        session.push(new, self.inner.config.max_messages());
        let size = codec::payload_bound(&session.messages);
        if size > codec::MAX_DECODED_BYTES {
            return Err(AiError::SessionTooLarge {
                size,
                limit: codec::MAX_DECODED_BYTES,
            });
        }
        session.expires_at = Instant::now() + self.inner.config.ttl();
        metrics::histogram!(names::MESSAGES).record(session.messages.len() as f64);
        #[cfg(feature = "redis")]
        if reachable && let Some(client) = self.redis() {
            session = self.write_through(&client, key, session).await;
        }
        #[cfg(not(feature = "redis"))]
        let _ = reachable;
        let count = session.messages.len();
        self.inner.l1.insert(key.0, Arc::new(session)).await;
        Ok(count)
    }

    /// Every message the session keeps, oldest first (empty when there is
    /// no such session).
    pub async fn messages(&self, session_id: &str) -> Vec<ChatMessage> {
        self.load(key_of(session_id))
            .await
            .map(|session| session.messages.clone())
            .unwrap_or_default()
    }

    /// The context for the next model call: the system messages first,
    /// then the most recent messages whose estimated tokens fit in what
    /// `token_budget` leaves, in order (never starting with a tool result).
    /// When not even the newest message fits (the system messages alone
    /// may be over the budget), the newest user message is kept anyway, the
    /// one case where the context exceeds the budget. Estimates as
    /// [`ChatRequest::estimated_prompt_tokens`](crate::ai::ChatRequest::estimated_prompt_tokens).
    pub async fn context(&self, session_id: &str, token_budget: u64) -> Vec<ChatMessage> {
        self.load(key_of(session_id))
            .await
            .map(|session| trim::fit(&session.messages, token_budget))
            .unwrap_or_default()
    }

    /// How many messages the session keeps (0 when there is none).
    pub async fn len(&self, session_id: &str) -> usize {
        self.load(key_of(session_id))
            .await
            .map_or(0, |session| session.messages.len())
    }

    /// Forgets the session, here and in Redis (where an empty version,
    /// kept for the TTL, tells other processes holding it in L1). When
    /// Redis cannot be reached, the removal is made here and sent on a
    /// later call.
    pub async fn remove(&self, session_id: &str) {
        let key = key_of(session_id);
        let _turn = self.stripe(key).lock().await;
        #[cfg(feature = "redis")]
        if let Some(client) = self.redis() {
            let known = self.inner.l1.get(&key.0).await;
            let mut session = Session::empty(Instant::now() + self.inner.config.ttl());
            session.sync.head = known.and_then(|s| s.sync.head);
            session.sync.cleared = true;
            let token = next_token();
            if let Ok(encoded) = codec::encode(&[], token, session.expires_at_ms()) {
                match super::l2::overwrite(
                    &client,
                    &self.redis_name(key),
                    encoded.into_bytes(),
                    self.inner.config.ttl(),
                )
                .await
                {
                    Ok(()) => session.sync = super::state::SyncState::synced(token),
                    Err(reason) => {
                        super::l2::failed(super::l2::Kind::Remove, &reason);
                        session.sync.note_attempt(token);
                    }
                }
            }
            self.inner.l1.insert(key.0, Arc::new(session)).await;
            return;
        }
        self.inner.l1.invalidate(&key.0).await;
    }

    /// The session as it stands, from L1 when current, else from Redis.
    async fn load(&self, key: Key) -> Option<Arc<Session>> {
        #[cfg(feature = "redis")]
        if let Some(client) = self.redis() {
            return self.load_tiered(&client, key).await;
        }
        let found = self.inner.l1.get(&key.0).await;
        count_read("l1", found.is_some());
        found
    }

    /// The session to append to when L1 has none: Redis's version, or a
    /// new one; and whether Redis answered.
    async fn restore_for_write(&self, key: Key) -> (Session, bool) {
        let fresh = Session::empty(Instant::now() + self.inner.config.ttl());
        #[cfg(feature = "redis")]
        if let Some(client) = self.redis() {
            use super::l2::{Fetched, Kind, failed, fetch};
            return match fetch(&client, &self.redis_name(key), None).await {
                Ok(Fetched::Found(stored)) => (Session::from_stored(stored), true),
                Ok(Fetched::Absent | Fetched::Unchanged) => (fresh, true),
                Err(reason) => {
                    failed(Kind::Read, &reason);
                    (fresh, false)
                }
            };
        }
        let _ = key;
        (fresh, true)
    }
}

#[cfg(feature = "redis")]
impl SessionStore {
    /// Rounds of merge and retry before a write gives up for this call
    /// (the session stays ahead of Redis and is written on a later call).
    const WRITE_ROUNDS: usize = 8;

    fn redis(&self) -> Option<fred::prelude::Client> {
        match &self.inner.runtime {
            Runtime::Global => crate::global().redis_client(),
            Runtime::Instance(perf) => perf.redis_client(),
        }
    }

    async fn load_tiered(&self, client: &fred::prelude::Client, key: Key) -> Option<Arc<Session>> {
        use super::l2::{Fetched, Kind, failed, fetch};
        let name = self.redis_name(key);
        let _turn = self.stripe(key).lock().await;
        let cached = self.inner.l1.get(&key.0).await;
        let known = match cached {
            // Ahead of Redis (an earlier write failed): write it now.
            Some(session) if session.sync.dirty() => {
                count_read("l1", true);
                let session = self
                    .write_through(client, key, Session::clone(&session))
                    .await;
                return Some(self.keep(key, session).await);
            }
            Some(ref session) => session.sync.head,
            None => None,
        };
        match fetch(client, &name, known).await {
            Ok(Fetched::Unchanged) if cached.is_some() => {
                count_read("l1", true);
                cached
            }
            Ok(Fetched::Found(stored)) => {
                count_read("l1", false);
                count_read("l2", true);
                Some(self.keep(key, Session::from_stored(stored)).await)
            }
            Ok(Fetched::Absent | Fetched::Unchanged) => match cached {
                // Redis lost it (a restart without persistence), or its TTL
                // ran out there a moment before here: serve ours, and
                // write it back on the next call.
                Some(session) => {
                    count_read("l1", true);
                    let mut session = Session::clone(&session);
                    session.rebase_on_absent();
                    Some(self.keep(key, session).await)
                }
                None => {
                    count_read("l1", false);
                    count_read("l2", false);
                    None
                }
            },
            Err(reason) => {
                failed(Kind::Read, &reason);
                count_read("l1", cached.is_some());
                cached
            }
        }
    }

    async fn keep(&self, key: Key, session: Session) -> Arc<Session> {
        let session = Arc::new(session);
        self.inner.l1.insert(key.0, session.clone()).await;
        session
    }

    /// Writes `session` to Redis if Redis still holds the version it was
    /// based on; else merges with what Redis holds and tries again.
    /// Returns the session as it then stands.
    async fn write_through(
        &self,
        client: &fred::prelude::Client,
        key: Key,
        mut session: Session,
    ) -> Session {
        use super::l2::{Fetched, Kind, failed, fetch, write};
        let name = self.redis_name(key);
        let max = self.inner.config.max_messages();
        for _ in 0..Self::WRITE_ROUNDS {
            let token = next_token();
            let encoded = match codec::encode(&session.messages, token, session.expires_at_ms()) {
                Ok(encoded) => encoded,
                Err(error) => {
                    // Not reached: appends refuse sessions over the limit.
                    tracing::debug!(%error, "session not written to Redis");
                    return session;
                }
            };
            metrics::histogram!(names::BYTES, "form" => "raw").record(encoded.raw_len() as f64);
            metrics::histogram!(names::BYTES, "form" => "compressed")
                .record(encoded.compressed_len() as f64);
            metrics::histogram!(names::COMPRESSION_RATIO).record(encoded.ratio());
            let ttl = session.ttl_left();
            match write(client, &name, session.sync.head, encoded.into_bytes(), ttl).await {
                Ok(true) => {
                    session.sync = super::state::SyncState::synced(token);
                    return session;
                }
                Ok(false) => {
                    metrics::counter!(names::CONFLICTS).increment(1);
                    match fetch(client, &name, None).await {
                        Ok(Fetched::Found(theirs)) => session.rebase(theirs, max),
                        Ok(Fetched::Absent | Fetched::Unchanged) => session.rebase_on_absent(),
                        Err(reason) => {
                            failed(Kind::Read, &reason);
                            return session;
                        }
                    }
                }
                Err(reason) => {
                    failed(Kind::Write, &reason);
                    session.sync.note_attempt(token);
                    return session;
                }
            }
        }
        session
    }
}

fn key_of(session_id: &str) -> Key {
    Key(xxh3_128(session_id.as_bytes()))
}

fn count_read(tier: &'static str, hit: bool) {
    let outcome = if hit { "hit" } else { "miss" };
    metrics::counter!(names::READS, "tier" => tier, "outcome" => outcome).increment(1);
}

/// A token for a write, unique across processes in practice: a per-process
/// seed (process id and start time) hashed with a counter.
#[cfg(feature = "redis")]
fn next_token() -> u64 {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEED: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let mut bytes = [0u8; 20];
        bytes[..16].copy_from_slice(&nanos.to_le_bytes());
        bytes[16..].copy_from_slice(&std::process::id().to_le_bytes());
        xxhash_rust::xxh3::xxh3_64(&bytes)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    xxhash_rust::xxh3::xxh3_64_with_seed(&n.to_le_bytes(), seed)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::ai::Role;

    fn store(
        settings: impl FnOnce(super::super::SessionConfigBuilder) -> super::super::SessionConfigBuilder,
    ) -> SessionStore {
        SessionStore::new(settings(SessionConfig::builder()).build().unwrap())
    }

    fn texts(messages: &[ChatMessage]) -> Vec<&str> {
        messages.iter().map(|m| m.content.as_str()).collect()
    }

    #[tokio::test]
    async fn append_read_and_remove_in_process() {
        let sessions = store(|b| b);
        assert_eq!(sessions.len("s").await, 0);
        assert!(sessions.messages("s").await.is_empty());
        let n = sessions
            .append("s", [ChatMessage::system("sys"), ChatMessage::user("q1")])
            .await
            .unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            sessions
                .append("s", [ChatMessage::assistant("a1")])
                .await
                .unwrap(),
            3
        );
        assert_eq!(sessions.append("s", []).await.unwrap(), 3);
        assert_eq!(texts(&sessions.messages("s").await), ["sys", "q1", "a1"]);
        assert_eq!(sessions.len("other").await, 0, "sessions are apart");
        // Clones share the tiers.
        assert_eq!(sessions.clone().len("s").await, 3);
        sessions.remove("s").await;
        assert_eq!(sessions.len("s").await, 0);
        assert_eq!(
            sessions
                .append("s", [ChatMessage::user("again")])
                .await
                .unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn max_messages_drops_the_oldest_non_system() {
        let sessions = store(|b| b.max_messages(3));
        sessions
            .append("s", [ChatMessage::system("sys")])
            .await
            .unwrap();
        for i in 0..5 {
            sessions
                .append("s", [ChatMessage::user(format!("u{i}"))])
                .await
                .unwrap();
        }
        assert_eq!(texts(&sessions.messages("s").await), ["sys", "u3", "u4"]);
        let context = sessions.context("s", 1_000).await;
        assert_eq!(context.first().map(|m| m.role), Some(Role::System));
    }

    #[tokio::test]
    async fn a_session_past_the_size_limit_is_refused_and_left_as_it_was() {
        let sessions = store(|b| b);
        sessions
            .append("s", [ChatMessage::user("kept")])
            .await
            .unwrap();
        let huge = ChatMessage::user("x".repeat(codec::MAX_DECODED_BYTES));
        let error = sessions.append("s", [huge]).await.unwrap_err();
        assert!(matches!(error, AiError::SessionTooLarge { .. }), "{error}");
        assert_eq!(texts(&sessions.messages("s").await), ["kept"]);
    }

    #[tokio::test]
    async fn sessions_expire_after_their_ttl() {
        let sessions = store(|b| b.ttl(Duration::from_millis(50)));
        sessions
            .append("s", [ChatMessage::user("q")])
            .await
            .unwrap();
        let mut gone = false;
        for _ in 0..200 {
            if sessions.len("s").await == 0 {
                gone = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(gone, "the session outlived its TTL by 10 s");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_appends_to_one_session_lose_nothing() {
        let sessions = store(|b| b.max_messages(10_000));
        let tasks: Vec<_> = (0..8)
            .map(|task| {
                let sessions = sessions.clone();
                tokio::spawn(async move {
                    for i in 0..50 {
                        sessions
                            .append("shared", [ChatMessage::user(format!("{task}-{i}"))])
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        let messages = sessions.messages("shared").await;
        assert_eq!(messages.len(), 400);
        let mut seen: Vec<_> = texts(&messages).into_iter().collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 400, "every message once");
    }

    #[test]
    fn redis_keys_hash_the_id() {
        let sessions = SessionStore::new(SessionConfig::default());
        let key = sessions.redis_key("user-42:chat-7");
        assert!(key.starts_with("perf:ai:session:"));
        assert_eq!(key.len(), "perf:ai:session:".len() + 32);
        assert!(!key.contains("user-42"));
        assert_ne!(key, sessions.redis_key("user-42:chat-8"));
        assert!(!format!("{sessions:?}").contains("user-42"));
    }
}
