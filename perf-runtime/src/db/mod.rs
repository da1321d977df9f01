//! PostgreSQL queries through the runtime's pool (feature `postgres`):
//! [`Db`] with `fetch_all`, `fetch_optional` and `execute`, safe behind
//! PgBouncer in transaction mode, and a read-through query-result cache
//! (the seed's L3) invalidated by table, on every instance.
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use perf_runtime::db::Params;
//!
//! // DATABASE_URL (and REDIS_URL, for a cache shared by every instance) from the environment.
//! let perf = perf_runtime::init(perf_runtime::PerfConfig::from_env()?).await?;
//! let db = perf.db().expect("DATABASE_URL is set");
//!
//! // Rows decode into any `sqlx::FromRow` type: tuples, or `#[derive(sqlx::FromRow)]` structs.
//! let names: Vec<(i64, String)> = db
//!     .cached_query(
//!         "users_by_lang",
//!         "SELECT id, name FROM users WHERE lang = $1",
//!         Params::new().bind("en"),
//!         Duration::from_secs(60),
//!         &["users"],
//!     )
//!     .await?;
//!
//! // A write through the helper drops every cached result that reads `users`, everywhere.
//! db.execute_invalidating(
//!     "UPDATE users SET name = $1 WHERE id = $2",
//!     Params::new().bind("Ada").bind(1_i64),
//!     &["users"],
//! )
//! .await?;
//! # let _ = names;
//! # Ok(())
//! # }
//! ```
//!
//! # PgBouncer
//!
//! PgBouncer in transaction mode (Debian's 1.18 keeps no prepared statement
//! across transactions) hands each transaction, and each statement outside
//! one, to whichever server connection is free. sqlx runs a parameterised
//! query as two round trips, each ended by `Sync`: `Parse`/`Describe`, then
//! `Bind`/`Execute`. Outside a transaction PgBouncer may send the second to
//! another server connection, where the statement is missing or, worse,
//! another client's statement of the same name waits. Turning sqlx's
//! statement cache off does not help: sqlx still names the statements it
//! prepares (`sqlx_s_1`, …) and never closes them. So with `DB_PGBOUNCER`
//! (or `?pgbouncer=true` in `DATABASE_URL`) every query of [`Db`] uses the
//! unnamed statement and runs in a transaction of its own (`BEGIN`, the
//! query, `COMMIT`): PgBouncer keeps one server connection for the whole of
//! it. The cost is two short round trips per query.
//!
//! # Outages
//!
//! A query waits at most `DB_ACQUIRE_TIMEOUT` for a connection, then fails
//! with [`DbError::Unavailable`] naming the server (password masked), and
//! runs at most `DB_QUERY_TIMEOUT` once it has one ([`DbError::TimedOut`];
//! the connection is then closed, so a dead network never holds a call).
//! Connections are tested before use, so after a server restart the pool
//! drops the dead ones and opens new ones by itself.
//!
//! # The query cache
//!
//! [`Db::cached_query`] keys a result by its query name, result type, SQL
//! text and bound values (hashed: no value appears in a Redis key name) and
//! tags it with the tables it reads. [`Db::execute_invalidating`] and
//! [`invalidate_tables`] drop every result tagged with a table, in this
//! process, in Redis and, through the invalidation bus, on every instance.
//! It is the cache layer of [`crate::cache`] (L1 in process, L2 in Redis when
//! configured, single-flight), with one cache per query name and row type.

mod cached;
mod error;
mod idle_check;
mod lent;
mod params;
mod pool_metrics;
mod query;

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;

use crate::config::{PerfConfig, SecretUrl};

pub use cached::invalidate_tables;
pub use error::DbError;
pub(crate) use idle_check::IdleCheck;
pub use params::Params;
pub use pool_metrics::PoolStatus;
/// Rows decode into a [`FromRow`] type (a tuple, or a struct with sqlx's
/// `#[derive(FromRow)]`).
pub use sqlx::FromRow;
/// A row of PostgreSQL, as [`FromRow`] sees it.
pub use sqlx::postgres::PgRow;

/// The query API over the runtime's PostgreSQL pool; cheap to clone. Get it
/// from [`Perf::db`](crate::Perf::db).
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    /// Told of every failure, so the idle connections older than it are
    /// pinged before they are lent.
    idle_check: Arc<IdleCheck>,
    server: SecretUrl,
    pgbouncer: bool,
    acquire_timeout: Duration,
    query_timeout: Duration,
    max_connections: u32,
}

impl Db {
    pub(crate) fn new(
        pool: PgPool,
        idle_check: Arc<IdleCheck>,
        server: SecretUrl,
        config: &PerfConfig,
    ) -> Self {
        Db {
            inner: Arc::new(Inner {
                pool,
                idle_check,
                server,
                pgbouncer: config.db_pgbouncer,
                acquire_timeout: config.db_acquire_timeout,
                query_timeout: config.db_query_timeout,
                max_connections: config.db_max_connections,
            }),
        }
    }

    /// The pool, for what needs a connection of its own (LISTEN, scripts).
    pub(crate) fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// Whether queries are made PgBouncer-safe (`DB_PGBOUNCER`).
    pub fn is_pgbouncer(&self) -> bool {
        self.inner.pgbouncer
    }

    /// The server, password shown as `***`.
    pub fn server(&self) -> String {
        self.inner.server.redacted()
    }

    /// The pool's connections now: open, idle, in use.
    pub fn pool_status(&self) -> PoolStatus {
        PoolStatus::of(&self.inner.pool, self.inner.max_connections)
    }

    /// Sets the pool's size, idle and in-use gauges.
    pub(crate) fn publish_pool_gauges(&self) {
        self.pool_status().publish();
    }
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("server", &self.server())
            .field("pgbouncer", &self.inner.pgbouncer)
            .finish_non_exhaustive()
    }
}
