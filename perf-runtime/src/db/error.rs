//! [`DbError`]: why a query through [`Db`](super::Db) failed.

use std::time::Duration;

/// A query through [`Db`](super::Db) failed. Server addresses are shown with
/// their password as `***`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// No pool: the runtime has no database.
    #[error(
        "no PostgreSQL pool: set DATABASE_URL (with connection pooling on) and call perf_runtime::init"
    )]
    NotConfigured,
    /// No connection came free within the acquire timeout: the server is
    /// down or unreachable, or every connection stayed busy.
    #[error("PostgreSQL at {server} gave no connection within {timeout:?}: {cause}")]
    Unavailable {
        /// The server, password redacted.
        server: String,
        /// The acquire timeout (`DB_ACQUIRE_TIMEOUT`).
        timeout: Duration,
        /// The likely cause, from the pool's state.
        cause: &'static str,
    },
    /// A parameter could not be encoded for the server or for the cache key.
    #[error("parameter {index} cannot be bound: {reason}")]
    Bind {
        /// The parameter's position, from 1 as in `$1`.
        index: usize,
        /// What the encoder said.
        reason: String,
    },
    /// The server refused the query, or the connection broke during it.
    #[error("query on {server} failed: {reason}")]
    Query {
        /// The server, password redacted.
        server: String,
        /// What the server or driver said, password redacted.
        reason: String,
    },
    /// The query ran past `DB_QUERY_TIMEOUT`; its connection was closed.
    #[error("a query on {server} ran past {} s (DB_QUERY_TIMEOUT); its connection was closed", timeout.as_secs_f64())]
    TimedOut {
        /// The server, password redacted.
        server: String,
        /// The query timeout (`DB_QUERY_TIMEOUT`).
        timeout: Duration,
    },
    /// The write succeeded, but cached results of its tables could not be
    /// dropped everywhere.
    #[error(
        "the write succeeded ({rows} rows), but its tables' cached results were not dropped everywhere: {reason}"
    )]
    Invalidation {
        /// Rows the write affected.
        rows: u64,
        /// What the cache layer said.
        reason: String,
    },
}
