//! The runtime's PostgreSQL pool (`sqlx`), created lazily so start-up never
//! waits on the database, with a `SELECT 1` health check. Queries go
//! through [`Db`], which this backend hands out.
//!
//! The pool follows the `DB_*` settings. Behind PgBouncer (`DB_PGBOUNCER`)
//! sqlx's statement cache is off: a named statement prepared on one server
//! connection would be missing (or collide) on the next one PgBouncer picks.
//! That alone is not enough; [`Db`] also runs each parameterised query in a
//! transaction of its own (see `crate::db`).
//!
//! The health check uses the simple query protocol (`raw_sql`): it prepares
//! no statement, so it also works through PgBouncer in transaction mode.
//! When the pool cannot hand out a connection in time (sqlx retries a
//! refused connection until its deadline and then only says "timed out"),
//! the check connects once directly to report the real cause.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};

use crate::config::{PerfConfig, SecretUrl};
use crate::db::{Db, IdleCheck};
use crate::lifecycle::InitError;
use crate::monitor::HealthCheck;

/// Longest shutdown waits for lent connections to come back.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

pub(crate) struct PostgresBackend {
    db: Db,
    pool: PgPool,
    options: PgConnectOptions,
    url: SecretUrl,
    health_timeout: Duration,
}

impl PostgresBackend {
    pub(crate) fn connect(url: &SecretUrl, config: &PerfConfig) -> Result<Self, InitError> {
        let options =
            PgConnectOptions::from_str(url.expose()).map_err(|e| InitError::Postgres {
                url: url.redacted(),
                reason: url.scrub(&e.to_string()),
            })?;
        let options = if config.db_pgbouncer {
            options.statement_cache_capacity(0)
        } else {
            options
        };
        let idle_check = Arc::new(IdleCheck::new());
        let asked = Arc::clone(&idle_check);
        let pool = PgPoolOptions::new()
            .max_connections(config.db_max_connections)
            .min_connections(config.db_min_connections)
            .acquire_timeout(config.db_acquire_timeout)
            .idle_timeout(config.db_idle_timeout)
            .max_lifetime(config.db_max_lifetime)
            // A connection the server dropped (a restart) is found out
            // before a query gets it, so the pool heals by itself: pinged
            // when a failure since it was handed back (or a long idle) says
            // it may be broken, not before every query (see `IdleCheck`).
            .test_before_acquire(false)
            .before_acquire(move |conn, meta| {
                let asked = Arc::clone(&asked);
                Box::pin(async move {
                    if asked.needs_ping(meta.idle_for)
                        && let Err(error) = conn.ping().await
                    {
                        // Its siblings may be as dead: check them too.
                        asked.failed();
                        return Err(error);
                    }
                    Ok(true)
                })
            })
            .connect_lazy_with(options.clone());
        let db = Db::new(pool.clone(), idle_check, url.clone(), config);
        Ok(PostgresBackend {
            db,
            pool,
            options,
            url: url.clone(),
            health_timeout: config.health_check_timeout,
        })
    }

    pub(crate) fn describe(&self) -> String {
        if self.db.is_pgbouncer() {
            format!("{} (through PgBouncer)", self.url.redacted())
        } else {
            self.url.redacted()
        }
    }

    /// The query API over this pool.
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    pub(crate) fn health_check(&self) -> PostgresHealth {
        PostgresHealth {
            pool: self.pool.clone(),
            options: self.options.clone(),
            url: self.url.clone(),
            timeout: self.health_timeout,
        }
    }

    /// Closes the pool. It waits for lent connections to come back; one
    /// stuck on a dead network would hold shutdown forever, so the wait is
    /// bounded (the socket closes when the process ends).
    pub(crate) async fn close(&self) {
        if tokio::time::timeout(CLOSE_GRACE, self.pool.close())
            .await
            .is_err()
        {
            tracing::warn!(
                server = %self.url.redacted(),
                "PostgreSQL pool closed with connections still lent (a dead network?)"
            );
        }
    }
}

/// `SELECT 1` through the pool.
pub(crate) struct PostgresHealth {
    pool: PgPool,
    options: PgConnectOptions,
    url: SecretUrl,
    timeout: Duration,
}

impl HealthCheck for PostgresHealth {
    fn name(&self) -> &str {
        "postgres"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let failed = |cause: String| {
                format!(
                    "SELECT 1 on {} failed: {}",
                    self.url.redacted(),
                    self.url.scrub(&cause)
                )
            };
            // Half the budget for the pool, most of the rest to diagnose.
            let query = sqlx::raw_sql("SELECT 1").execute(&self.pool);
            match tokio::time::timeout(self.timeout / 2, query).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(sqlx::Error::PoolTimedOut)) | Err(_) => {}
                Ok(Err(error)) => return Err(failed(error.to_string())),
            }
            let direct = PgConnection::connect_with(&self.options);
            Err(failed(
                match tokio::time::timeout(self.timeout * 2 / 5, direct).await {
                    Ok(Err(error)) => format!("cannot connect: {error}"),
                    Ok(Ok(connection)) => {
                        let _ = connection.close().await;
                        "the pool had no free connection in time (the server accepts new ones)"
                            .to_owned()
                    }
                    Err(_) => "the server does not answer".to_owned(),
                },
            ))
        })
    }
}
