//! The three queries of [`Db`] and the one rule they share: behind
//! PgBouncer, a query and its parameters travel inside one transaction.

use futures_util::future::BoxFuture;
use sqlx::postgres::{PgConnection, PgRow, Postgres};
use sqlx::{Connection, FromRow};

use super::lent::Lent;
use super::{Db, DbError, Params, pool_metrics};

impl Db {
    /// Every row of `sql` with `params` bound to `$1`, `$2`, …
    ///
    /// `sql` is a `&'static str` on purpose: values go in [`Params`], never
    /// into the text (no injection, and a stable key for the query cache).
    ///
    /// # Errors
    /// [`DbError`]: no connection in time, a value that does not encode, or
    /// the server's refusal.
    pub async fn fetch_all<T>(&self, sql: &'static str, params: Params) -> Result<Vec<T>, DbError>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static,
    {
        let arguments = params.into_arguments()?;
        let named = !self.inner.pgbouncer;
        self.on_one_connection(move |conn| {
            Box::pin(
                sqlx::query_as_with::<Postgres, T, _>(sql, arguments)
                    .persistent(named)
                    .fetch_all(conn),
            )
        })
        .await
    }

    /// The first row of `sql`, if any.
    ///
    /// # Errors
    /// As [`Self::fetch_all`].
    pub async fn fetch_optional<T>(
        &self,
        sql: &'static str,
        params: Params,
    ) -> Result<Option<T>, DbError>
    where
        T: for<'r> FromRow<'r, PgRow> + Send + Unpin + 'static,
    {
        let arguments = params.into_arguments()?;
        let named = !self.inner.pgbouncer;
        self.on_one_connection(move |conn| {
            Box::pin(
                sqlx::query_as_with::<Postgres, T, _>(sql, arguments)
                    .persistent(named)
                    .fetch_optional(conn),
            )
        })
        .await
    }

    /// Runs a statement (`INSERT`, `UPDATE`, `DELETE`, DDL) and returns the
    /// rows it affected.
    ///
    /// # Errors
    /// As [`Self::fetch_all`].
    pub async fn execute(&self, sql: &'static str, params: Params) -> Result<u64, DbError> {
        let arguments = params.into_arguments()?;
        let named = !self.inner.pgbouncer;
        self.on_one_connection(move |conn| {
            Box::pin(async move {
                let done = sqlx::query_with::<Postgres, _>(sql, arguments)
                    .persistent(named)
                    .execute(conn)
                    .await?;
                Ok(done.rows_affected())
            })
        })
        .await
    }

    /// Runs `query` on one pooled connection; behind PgBouncer, inside a
    /// transaction, so that PgBouncer keeps the same server connection from
    /// `Parse` to the last `Sync`.
    async fn on_one_connection<R>(
        &self,
        query: impl for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<R, sqlx::Error>>,
    ) -> Result<R, DbError> {
        let mut conn = self.acquire().await?;
        let run = async {
            if self.inner.pgbouncer {
                in_transaction(&mut conn, query).await
            } else {
                query(&mut conn).await
            }
        };
        match tokio::time::timeout(self.inner.query_timeout, run).await {
            Ok(result) => result.map_err(|error| self.query_failed(&error)),
            Err(_) => {
                // Mid-protocol, the connection cannot be reused: close it
                // rather than hand it back. No answer at all may be a
                // network that swallows packets: the idle connections are
                // pinged before they are lent, as after any failure.
                conn.discard();
                self.inner.idle_check.failed();
                Err(DbError::TimedOut {
                    server: self.server(),
                    timeout: self.inner.query_timeout,
                })
            }
        }
    }

    async fn acquire(&self) -> Result<Lent, DbError> {
        let started = quanta::Instant::now();
        let acquired = self.inner.pool.acquire().await;
        let timed_out = matches!(acquired, Err(sqlx::Error::PoolTimedOut));
        pool_metrics::record_acquire(started.elapsed(), timed_out);
        if timed_out {
            self.inner.idle_check.failed();
        }
        acquired
            .map(|conn| Lent::new(conn, self.inner.acquire_timeout))
            .map_err(|error| match error {
                sqlx::Error::PoolTimedOut => DbError::Unavailable {
                    server: self.server(),
                    timeout: self.inner.acquire_timeout,
                    cause: self.why_no_connection(),
                },
                other => self.query_failed(&other),
            })
    }

    /// A guess from the pool's state: a pool below its cap that still found
    /// no connection could not open one.
    fn why_no_connection(&self) -> &'static str {
        if self.inner.pool.size() < self.inner.max_connections {
            "no new connection could be opened (is the server up and reachable?)"
        } else {
            "every connection stayed busy (raise DB_MAX_CONNECTIONS or shorten queries)"
        }
    }

    pub(crate) fn query_failed(&self, error: &sqlx::Error) -> DbError {
        // Any failure, even a refused statement: the idle connections are
        // then pinged once each, which costs little, and telling a broken
        // connection from a refused statement by sqlx's error is guesswork.
        self.inner.idle_check.failed();
        DbError::Query {
            server: self.server(),
            reason: self.inner.server.scrub(&error.to_string()),
        }
    }
}

async fn in_transaction<R>(
    conn: &mut PgConnection,
    query: impl for<'c> FnOnce(&'c mut PgConnection) -> BoxFuture<'c, Result<R, sqlx::Error>>,
) -> Result<R, sqlx::Error> {
    let mut transaction = conn.begin().await?;
    match query(&mut transaction).await {
        Ok(value) => {
            transaction.commit().await?;
            Ok(value)
        }
        Err(error) => {
            // The query's error is the one worth reporting; a failed
            // rollback closes the connection anyway.
            let _ = transaction.rollback().await;
            Err(error)
        }
    }
}
