//! Conversation sessions: the messages of each chat kept between requests,
//! so a service sends the model the conversation so far without the client
//! resending it, and finds it again after a restart or on another instance.
//!
//! [`SessionStore`] keeps each session in two tiers:
//! - **L1**, in process: the decoded session (a hit decodes nothing) in a
//!   moka cache of [`l1_capacity`](SessionConfig::l1_capacity) sessions,
//!   each living until its session's end;
//! - **L2**, Redis, when the runtime has Redis (`REDIS_URL`, feature
//!   `redis`): the session as postcard compressed with LZ4 behind a
//!   versioned header ([`codec`]), under `{key_prefix}{xxh3-128 of the id}`
//!   (the id itself never appears in a key), `SET` with `PX` = the time
//!   left. Measured on 50-message conversations: 1.47 times smaller than
//!   the raw postcard for prose that never repeats itself, 7.5 times for
//!   chat that reuses its phrasing (`docs/ai-sessions.md`).
//!
//! A read finds the session in L1 and asks Redis, in one round trip,
//! whether it is still the version there (a 9-byte comparison in a script;
//! the value crosses the network only when another process changed it).
//! A session not in L1 is restored from Redis: a new process finds the
//! conversation. A write is a compare-and-set script: when another
//! process wrote first, the store reads that version, puts its own new
//! messages on top and tries again, so concurrent appends from several
//! processes lose nothing. In one process, calls on one session take turns
//! (a striped async lock), so they lose nothing either.
//!
//! # Lifetime and limits
//! - The TTL ([`ttl`](SessionConfig::ttl), 24 h by default) is absolute
//!   from the last write (an append or a remove); reads do not extend it.
//! - A session keeps at most [`max_messages`](SessionConfig::max_messages)
//!   (200 by default): past that the oldest non-system messages go first.
//! - A session is at most 8 MiB encoded ([`codec::MAX_DECODED_BYTES`]):
//!   [`append`](SessionStore::append) refuses to grow past it
//!   ([`AiError::SessionTooLarge`](crate::ai::AiError::SessionTooLarge)).
//! - [`context`](SessionStore::context) gives the system messages and the
//!   newest messages within a token budget; when not even the newest fits,
//!   the newest user message is kept anyway, over the budget.
//!
//! # When Redis fails
//! Fail-open: a Redis error or a command slower than 250 ms never fails a
//! call. It is counted (`perf_ai_session_backend_errors_total`) and logged
//! at most every 10 s, and the store goes on in L1. A session written while
//! Redis was away is written there on its next read or append, merged with
//! whatever another process wrote meanwhile (a write that timed out but
//! landed is recognised by its token and not repeated). A value in Redis
//! that cannot be decoded counts as absent and is deleted. When Redis loses
//! its data (a restart without persistence), each process serves the
//! sessions it holds in L1 and writes them back. A removal leaves an empty
//! version in Redis for the TTL, so processes holding the session in L1
//! see it; a session only in one process's L1 is lost with that process
//! (or when L1 evicts it) if Redis never got it.
//!
//! # Metrics
//! `perf_ai_session_reads_total` (`tier` = l1|l2, `outcome` = hit|miss),
//! `perf_ai_session_messages` (messages per session at each append),
//! `perf_ai_session_bytes` (`form` = raw|compressed, each write to Redis),
//! `perf_ai_session_compression_ratio`,
//! `perf_ai_session_backend_errors_total` (`kind` = read|write|remove),
//! `perf_ai_session_conflicts_total` (writes merged after another
//! process's) and `perf_ai_session_decode_errors_total`. No label carries
//! a session id.

pub mod codec;
mod config;
#[cfg(feature = "redis")]
mod l2;
mod names;
mod state;
mod store;
mod trim;

pub use config::{
    DEFAULT_KEY_PREFIX, DEFAULT_L1_CAPACITY, DEFAULT_MAX_MESSAGES, DEFAULT_TTL, SessionConfig,
    SessionConfigBuilder,
};
pub use store::SessionStore;
