//! [`PostgresStore`]: jobs in a PostgreSQL table, through the runtime's
//! [`Db`] (PgBouncer-safe, bounded waits, no leaked pool slots).
//!
//! - Claims take rows with `FOR UPDATE SKIP LOCKED`, so workers in many
//!   processes never wait on each other's rows, and lease them in the same
//!   statement: no job is between "taken" and "leased".
//! - Times are milliseconds since the epoch on the server's clock
//!   (`clock_timestamp()`), so workers on machines whose clocks differ agree
//!   on when a lease runs out.
//! - Unique keys are a partial unique index over pending jobs: a duplicate
//!   enqueue conflicts, including with a transaction that has not committed
//!   yet (PostgreSQL makes the second insert wait for the first's outcome),
//!   so a rolled-back enqueue never leaves zero jobs or two.
//! - Enqueues `NOTIFY perf_jobs`; idle workers `LISTEN` and wake at once
//!   (directly connected; behind PgBouncer's transaction pooling LISTEN does
//!   not work, and workers fall back to polling every `idle_poll`).
//! - Completed jobs are kept for [`PostgresStore::COMPLETED_KEPT`]
//!   (status queries, `JobHandle::wait`), then deleted by the sweep, at
//!   most once a [`PostgresStore::PURGE_EVERY`] per process and in bounded
//!   batches, as the Redis store lets them expire: the table holds a day of
//!   work, not all of it ever. Dead jobs stay until purged through the
//!   dead-letter API.
//! - The schema is created on start (`CREATE … IF NOT EXISTS` under an
//!   advisory lock, so processes starting together do not race).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgRow};
use sqlx::{FromRow, Row};
use tokio::sync::Mutex;

use super::model::{
    Backoff, Claimed, JobId, JobRecord, JobState, Lease, NewJob, Priority, WorkerId,
};
use super::store::{AfterFailure, Enqueued, Fenced, JobStore, QueueDepth, StoreError};
use crate::db::{Db, DbError, Params};

/// The schema, created if missing. Run as one simple-protocol script.
const SCHEMA: &str = r"
BEGIN;
SELECT pg_advisory_xact_lock(74646571);
CREATE TABLE IF NOT EXISTS perf_jobs (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT     NOT NULL,
    queue        TEXT     NOT NULL,
    priority     SMALLINT NOT NULL,
    payload      BYTEA    NOT NULL,
    state        TEXT     NOT NULL,
    run_at       BIGINT   NOT NULL,
    max_attempts INTEGER  NOT NULL,
    backoff      BYTEA    NOT NULL,
    timeout_ms   BIGINT   NOT NULL,
    unique_key   TEXT,
    attempts     INTEGER  NOT NULL DEFAULT 0,
    rescues      INTEGER  NOT NULL DEFAULT 0,
    last_error   TEXT,
    token        BIGINT,
    lease_until  BIGINT,
    worker       TEXT,
    enqueued_at  BIGINT   NOT NULL,
    finished_at  BIGINT
);
CREATE SEQUENCE IF NOT EXISTS perf_jobs_token;
CREATE INDEX IF NOT EXISTS perf_jobs_runnable
    ON perf_jobs (queue, priority DESC, run_at, id) WHERE state = 'available';
CREATE INDEX IF NOT EXISTS perf_jobs_leases
    ON perf_jobs (lease_until) WHERE state = 'running';
CREATE INDEX IF NOT EXISTS perf_jobs_dead
    ON perf_jobs (finished_at, id) WHERE state = 'dead';
CREATE INDEX IF NOT EXISTS perf_jobs_completed
    ON perf_jobs (finished_at) WHERE state = 'completed';
CREATE UNIQUE INDEX IF NOT EXISTS perf_jobs_unique_pending
    ON perf_jobs (unique_key) WHERE unique_key IS NOT NULL AND state IN ('available', 'running');
CREATE TABLE IF NOT EXISTS perf_job_queues (
    queue  TEXT PRIMARY KEY,
    paused BOOLEAN NOT NULL DEFAULT false
);
CREATE TABLE IF NOT EXISTS perf_job_schedules (
    schedule TEXT PRIMARY KEY,
    last_run BIGINT NOT NULL
);
COMMIT;
";

/// Now, in ms since the epoch, on the server's clock.
macro_rules! now_ms {
    () => {
        "(extract(epoch from clock_timestamp()) * 1000)::bigint"
    };
}

const INSERT: &str = concat!(
    "INSERT INTO perf_jobs (name, queue, priority, payload, state, run_at, max_attempts, ",
    "backoff, timeout_ms, unique_key, enqueued_at) ",
    "VALUES ($1, $2, $3, $4, 'available', $5, $6, $7, $8, $9, ",
    now_ms!(),
    ") ON CONFLICT (unique_key) WHERE unique_key IS NOT NULL AND state IN ('available', 'running') ",
    "DO NOTHING RETURNING id"
);

/// A job without a unique key, and the wake-up, in one round trip.
const INSERT_NOTIFY: &str = concat!(
    "WITH job AS (INSERT INTO perf_jobs (name, queue, priority, payload, state, run_at, ",
    "max_attempts, backoff, timeout_ms, enqueued_at) ",
    "VALUES ($1, $2, $3, $4, 'available', $5, $6, $7, $8, ",
    now_ms!(),
    ") RETURNING id, queue) SELECT id, pg_notify('perf_jobs', queue)::text FROM job"
);

/// Moves a schedule's last run forward to `$2`; no row when a run at `$2`
/// or later was stored already. A concurrent caller waits on the row lock
/// and then sees the moved value, so one run is stored once.
const ADVANCE_SCHEDULE: &str = concat!(
    "INSERT INTO perf_job_schedules (schedule, last_run) VALUES ($1, $2) ",
    "ON CONFLICT (schedule) DO UPDATE SET last_run = EXCLUDED.last_run ",
    "WHERE perf_job_schedules.last_run < EXCLUDED.last_run RETURNING schedule"
);

const PENDING_WITH_KEY: &str =
    "SELECT id FROM perf_jobs WHERE unique_key = $1 AND state IN ('available', 'running')";

const NOTIFY: &str = "SELECT pg_notify('perf_jobs', $1)";

/// Inserts the jobs of eight parallel arrays in their order and returns
/// their ids as one array, in that order (ids come from a sequence, drawn
/// as the rows go in: ascending in insertion order). One array, not a row
/// per job: 10,000 rows cost the client more to read than the insert
/// costs the server. The enqueue time is read once for the batch.
const INSERT_BATCH: &str = concat!(
    "WITH now AS (SELECT ",
    now_ms!(),
    " AS ms), ins AS (INSERT INTO perf_jobs (name, queue, priority, payload, state, run_at, ",
    "max_attempts, backoff, timeout_ms, enqueued_at) ",
    "SELECT t.name, t.queue, t.priority, t.payload, 'available', t.run_at, t.max_attempts, ",
    "t.backoff, t.timeout_ms, now.ms FROM unnest($1::text[], $2::text[], $3::smallint[], ",
    "$4::bytea[], $5::bigint[], $6::integer[], $7::bytea[], $8::bigint[]) WITH ORDINALITY ",
    "AS t(name, queue, priority, payload, run_at, max_attempts, backoff, timeout_ms, n) ",
    "CROSS JOIN now ORDER BY t.n RETURNING id) ",
    "SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM ins"
);

/// Per queue, the best runnable rows in index order (a LATERAL scan of
/// `perf_jobs_runnable`, so a backlog of any size costs a few index reads,
/// never a sort), then the best of those across queues.
const CLAIM: &str = concat!(
    "WITH picked AS (SELECT j.id FROM unnest($1::text[]) AS q(name) ",
    "CROSS JOIN LATERAL (SELECT id, priority, run_at FROM perf_jobs ",
    "WHERE state = 'available' AND queue = q.name AND run_at <= ",
    now_ms!(),
    " ORDER BY priority DESC, run_at, id LIMIT $2 FOR UPDATE SKIP LOCKED) j ",
    "WHERE q.name NOT IN (SELECT queue FROM perf_job_queues WHERE paused) ",
    "ORDER BY j.priority DESC, j.run_at, j.id LIMIT $2) ",
    "UPDATE perf_jobs j SET state = 'running', attempts = j.attempts + 1, ",
    "token = nextval('perf_jobs_token'), worker = $4, lease_until = ",
    now_ms!(),
    " + $3 FROM picked WHERE j.id = picked.id RETURNING j.id, j.name, j.queue, j.priority, ",
    "j.payload, j.state, j.run_at, j.max_attempts, j.backoff, j.timeout_ms, j.unique_key, ",
    "j.attempts, j.rescues, j.last_error, j.token, j.enqueued_at, j.finished_at"
);

const HEARTBEAT: &str = concat!(
    "UPDATE perf_jobs SET lease_until = ",
    now_ms!(),
    " + $3 WHERE id = $1 AND token = $2 AND state = 'running'"
);

const COMPLETE: &str = concat!(
    "UPDATE perf_jobs SET state = 'completed', payload = '', token = NULL, ",
    "lease_until = NULL, finished_at = ",
    now_ms!(),
    " WHERE id = $1 AND token = $2 AND state = 'running'"
);

/// $1: ids, $2: their tokens. Returns the ids marked done.
const COMPLETE_MANY: &str = concat!(
    "UPDATE perf_jobs AS j SET state = 'completed', payload = '', token = NULL, ",
    "lease_until = NULL, finished_at = ",
    now_ms!(),
    " FROM unnest($1::bigint[], $2::bigint[]) AS l(id, token) ",
    "WHERE j.id = l.id AND j.token = l.token AND j.state = 'running' RETURNING j.id"
);

const FAIL: &str = concat!(
    "UPDATE perf_jobs SET last_error = $3, token = NULL, lease_until = NULL, ",
    "state = CASE WHEN $4::bigint IS NOT NULL AND attempts < max_attempts ",
    "THEN 'available' ELSE 'dead' END, ",
    "run_at = COALESCE($4::bigint, run_at), ",
    "finished_at = CASE WHEN $4::bigint IS NOT NULL AND attempts < max_attempts ",
    "THEN NULL ELSE ",
    now_ms!(),
    " END WHERE id = $1 AND token = $2 AND state = 'running' RETURNING state, run_at"
);

const SNOOZE: &str = "UPDATE perf_jobs SET state = 'available', attempts = attempts - 1, \
     token = NULL, lease_until = NULL, run_at = $3 \
     WHERE id = $1 AND token = $2 AND state = 'running'";

const RELEASE: &str = concat!(
    "UPDATE perf_jobs SET state = 'available', attempts = attempts - 1, token = NULL, ",
    "lease_until = NULL, run_at = ",
    now_ms!(),
    " WHERE id = $1 AND token = $2 AND state = 'running'"
);

const BURY: &str = concat!(
    "UPDATE perf_jobs SET state = 'dead', last_error = $3, token = NULL, lease_until = NULL, ",
    "finished_at = ",
    now_ms!(),
    " WHERE id = $1 AND token = $2 AND state = 'running'"
);

/// Rows deleted per statement, and statements per purge at most: a purge
/// never holds locks on more than this many rows at once, and keeps up with
/// 5,000 × 20 completions a minute per process.
const PURGE_BATCH: i64 = 5_000;
const PURGE_ROUNDS: usize = 20;

/// $1: age in ms, $2: most rows.
const PURGE_COMPLETED: &str = concat!(
    "DELETE FROM perf_jobs WHERE id IN (SELECT id FROM perf_jobs ",
    "WHERE state = 'completed' AND finished_at < ",
    now_ms!(),
    " - $1 ORDER BY finished_at LIMIT $2)"
);

const RESCUE: &str = concat!(
    "UPDATE perf_jobs SET rescues = rescues + 1, token = NULL, lease_until = NULL, ",
    "state = CASE WHEN rescues + 1 > $1 THEN 'dead' ELSE 'available' END, ",
    "run_at = ",
    now_ms!(),
    ", finished_at = CASE WHEN rescues + 1 > $1 THEN ",
    now_ms!(),
    " ELSE NULL END, ",
    "last_error = CASE WHEN rescues + 1 > $1 THEN 'its worker stopped answering ' || ",
    "(rescues + 1) || ' times (lease ran out); not run again' ELSE last_error END ",
    "WHERE state = 'running' AND lease_until < ",
    now_ms!(),
    " RETURNING state"
);

const GET: &str = "SELECT id, name, queue, priority, payload, state, run_at, max_attempts, \
     backoff, timeout_ms, unique_key, attempts, rescues, last_error, token, enqueued_at, \
     finished_at FROM perf_jobs WHERE id = $1";

const LIST_DEAD: &str = "SELECT id, name, queue, priority, payload, state, run_at, \
     max_attempts, backoff, timeout_ms, unique_key, attempts, rescues, last_error, token, \
     enqueued_at, finished_at FROM perf_jobs WHERE state = 'dead' \
     AND ($1::text IS NULL OR queue = $1) ORDER BY finished_at, id LIMIT $2";

const REQUEUE_DEAD: &str = concat!(
    "UPDATE perf_jobs SET state = 'available', attempts = 0, rescues = 0, finished_at = NULL, ",
    "run_at = ",
    now_ms!(),
    " WHERE id = $1 AND state = 'dead'"
);

const PURGE_DEAD: &str =
    "DELETE FROM perf_jobs WHERE state = 'dead' AND ($1::text IS NULL OR queue = $1)";

const PAUSE: &str = "INSERT INTO perf_job_queues (queue, paused) VALUES ($1, $2) \
     ON CONFLICT (queue) DO UPDATE SET paused = EXCLUDED.paused";

const DEPTHS: &str = concat!(
    "SELECT queue, ",
    "count(*) FILTER (WHERE state = 'available' AND run_at <= ",
    now_ms!(),
    ") AS available, ",
    "count(*) FILTER (WHERE state = 'available' AND run_at > ",
    now_ms!(),
    ") AS scheduled, ",
    "count(*) FILTER (WHERE state = 'running') AS running, ",
    "count(*) FILTER (WHERE state = 'dead') AS dead ",
    "FROM perf_jobs WHERE state <> 'completed' GROUP BY queue ORDER BY queue"
);

/// Jobs in PostgreSQL: durable, shared by every process on the database.
pub struct PostgresStore {
    db: Db,
    listener: Mutex<Option<PgListener>>,
    /// When this process last deleted expired completed rows.
    last_purge: Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("server", &self.db.server())
            .finish()
    }
}

impl PostgresStore {
    /// How long a completed job's row is kept.
    pub const COMPLETED_KEPT: Duration = Duration::from_secs(24 * 60 * 60);
    /// How often a process's sweep deletes expired completed rows.
    pub const PURGE_EVERY: Duration = Duration::from_secs(60);

    /// The store on `db`, its schema created if missing.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the schema cannot be created.
    pub async fn connect(db: Db) -> Result<Self, StoreError> {
        sqlx::raw_sql(SCHEMA)
            .execute(db.pool())
            .await
            .map_err(|error| unavailable(&db.query_failed(&error)))?;
        // LISTEN needs a session of its own: not through PgBouncer.
        let listener = if db.is_pgbouncer() {
            None
        } else {
            match PgListener::connect_with(db.pool()).await {
                Ok(mut listener) => match listener.listen("perf_jobs").await {
                    Ok(()) => Some(listener),
                    Err(_) => None,
                },
                Err(_) => None,
            }
        };
        Ok(PostgresStore {
            db,
            listener: Mutex::new(listener),
            last_purge: Mutex::new(None),
        })
    }

    /// Deletes completed jobs that finished more than `older_than` ago, in
    /// batches, the oldest first; returns how many. The sweep of a running
    /// worker pool does this with [`Self::COMPLETED_KEPT`] once a
    /// [`Self::PURGE_EVERY`]; call it for another retention.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] with the server's refusal (rows deleted
    /// by earlier batches stay deleted).
    pub async fn purge_completed(&self, older_than: Duration) -> Result<u64, StoreError> {
        let age = i64::try_from(older_than.as_millis()).unwrap_or(i64::MAX);
        let mut deleted = 0;
        for _ in 0..PURGE_ROUNDS {
            let batch = self
                .db
                .execute(
                    PURGE_COMPLETED,
                    Params::unkeyed().bind(age).bind(PURGE_BATCH),
                )
                .await
                .map_err(|e| unavailable(&e))?;
            deleted += batch;
            if batch < PURGE_BATCH as u64 {
                break;
            }
        }
        Ok(deleted)
    }

    /// [`purge_completed`](Self::purge_completed) with
    /// [`Self::COMPLETED_KEPT`], if this process has not done it within
    /// [`Self::PURGE_EVERY`]. Failures
    /// are logged: the next sweep tries again.
    async fn purge_now_and_then(&self) {
        {
            let mut last = self.last_purge.lock().await;
            if last.is_some_and(|at| at.elapsed() < Self::PURGE_EVERY) {
                return;
            }
            *last = Some(std::time::Instant::now());
        }
        match self.purge_completed(Self::COMPLETED_KEPT).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "deleted completed jobs older than a day"),
            Err(error) => {
                tracing::warn!(%error, "deleting old completed jobs failed; the next sweep tries again")
            }
        }
    }

    /// Stores `job` inside the caller's transaction: the job exists only if
    /// that transaction commits. (A unique key taken by a pending job makes
    /// this return the pending job's id.)
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] with the server's refusal.
    pub async fn enqueue_in(
        &self,
        tx: &mut sqlx::PgConnection,
        job: NewJob,
    ) -> Result<Enqueued, StoreError> {
        let (name, queue, unique_key) =
            (job.name.clone(), job.queue.clone(), job.unique_key.clone());
        let backoff = encode_backoff(&job.backoff)?;
        let inserted: Option<(i64,)> = sqlx::query_as(INSERT)
            .persistent(!self.db.is_pgbouncer())
            .bind(name)
            .bind(queue.clone())
            .bind(job.priority.0)
            .bind(job.payload)
            .bind(millis(job.run_at))
            .bind(i32::try_from(job.max_attempts).unwrap_or(i32::MAX))
            .bind(backoff)
            .bind(i64::try_from(job.timeout.as_millis()).unwrap_or(i64::MAX))
            .bind(unique_key.clone())
            .fetch_optional(&mut *tx)
            .await
            .map_err(|error| self.sql_error(&error))?;
        if let Some((id,)) = inserted {
            sqlx::query(NOTIFY)
                .persistent(!self.db.is_pgbouncer())
                .bind(queue)
                .execute(&mut *tx)
                .await
                .map_err(|error| self.sql_error(&error))?;
            return Ok(Enqueued {
                id: JobId(id as u64),
                duplicate: false,
            });
        }
        let pending: Option<(i64,)> = sqlx::query_as(PENDING_WITH_KEY)
            .persistent(!self.db.is_pgbouncer())
            .bind(unique_key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|error| self.sql_error(&error))?;
        match pending {
            Some((id,)) => Ok(Enqueued {
                id: JobId(id as u64),
                duplicate: true,
            }),
            None => Err(StoreError::Unavailable {
                store: "postgres",
                message: "the unique key's pending job finished while enqueueing; try again"
                    .to_owned(),
            }),
        }
    }

    fn sql_error(&self, error: &sqlx::Error) -> StoreError {
        unavailable(&self.db.query_failed(error))
    }

    async fn fenced(&self, sql: &'static str, params: Params) -> Result<Fenced, StoreError> {
        let changed = self
            .db
            .execute(sql, params)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(if changed == 1 {
            Fenced::Accepted
        } else {
            Fenced::Stale
        })
    }
}

fn lease_params(lease: &Lease) -> Params {
    Params::unkeyed()
        .bind(lease.id.0 as i64)
        .bind(lease.token as i64)
}

#[async_trait]
impl JobStore for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, StoreError> {
        if job.unique_key.is_none() {
            let params = Params::unkeyed()
                .bind(job.name)
                .bind(job.queue)
                .bind(job.priority.0)
                .bind(job.payload)
                .bind(millis(job.run_at))
                .bind(i32::try_from(job.max_attempts).unwrap_or(i32::MAX))
                .bind(encode_backoff(&job.backoff)?)
                .bind(i64::try_from(job.timeout.as_millis()).unwrap_or(i64::MAX));
            let row: Option<(i64, String)> = self
                .db
                .fetch_optional(INSERT_NOTIFY, params)
                .await
                .map_err(|e| unavailable(&e))?;
            let (id, _) = row.ok_or_else(|| StoreError::Unavailable {
                store: "postgres",
                message: "the insert returned no id".to_owned(),
            })?;
            return Ok(Enqueued {
                id: JobId(id as u64),
                duplicate: false,
            });
        }
        // A conflict whose pending job finishes between our insert and our
        // look-up leaves neither: insert again.
        for _ in 0..3 {
            let mut tx = self
                .db
                .pool()
                .begin()
                .await
                .map_err(|error| self.sql_error(&error))?;
            match self.enqueue_in(&mut tx, job.clone()).await {
                Ok(enqueued) => {
                    tx.commit().await.map_err(|error| self.sql_error(&error))?;
                    return Ok(enqueued);
                }
                Err(StoreError::Unavailable { message, .. })
                    if message.starts_with("the unique key's pending job finished") =>
                {
                    continue;
                }
                Err(error) => return Err(error),
            }
        }
        Err(StoreError::Unavailable {
            store: "postgres",
            message: "a unique key kept changing hands while enqueueing".to_owned(),
        })
    }

    async fn enqueue_recurring(
        &self,
        schedule: &str,
        fire_at: SystemTime,
        job: NewJob,
    ) -> Result<Option<Enqueued>, StoreError> {
        let mut tx = self
            .db
            .pool()
            .begin()
            .await
            .map_err(|error| self.sql_error(&error))?;
        let advanced: Option<(String,)> = sqlx::query_as(ADVANCE_SCHEDULE)
            .persistent(!self.db.is_pgbouncer())
            .bind(schedule)
            .bind(millis(fire_at))
            .fetch_optional(&mut *tx)
            .await
            .map_err(|error| self.sql_error(&error))?;
        if advanced.is_none() {
            return Ok(None);
        }
        let enqueued = self.enqueue_in(&mut tx, job).await?;
        tx.commit().await.map_err(|error| self.sql_error(&error))?;
        Ok(Some(enqueued))
    }

    async fn enqueue_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, StoreError> {
        if jobs.iter().any(|job| job.unique_key.is_some()) {
            // Unique keys need the per-job conflict check: one transaction.
            let mut tx = self
                .db
                .pool()
                .begin()
                .await
                .map_err(|error| self.sql_error(&error))?;
            let mut stored = Vec::with_capacity(jobs.len());
            for job in jobs {
                stored.push(self.enqueue_in(&mut tx, job).await?);
            }
            tx.commit().await.map_err(|error| self.sql_error(&error))?;
            return Ok(stored);
        }
        let count = jobs.len();
        let mut queues: Vec<&str> = jobs.iter().map(|job| &*job.queue).collect();
        queues.sort_unstable();
        queues.dedup();
        let ids: Option<(Vec<i64>,)> = self
            .db
            .fetch_optional(INSERT_BATCH, batch_params(&jobs)?)
            .await
            .map_err(|e| unavailable(&e))?;
        let ids = ids.map(|(ids,)| ids).unwrap_or_default();
        if ids.len() != count {
            return Err(StoreError::Unavailable {
                store: "postgres",
                message: format!(
                    "the batch insert returned {} ids for {} jobs",
                    ids.len(),
                    count
                ),
            });
        }
        for queue in queues {
            let _ = self.db.execute(NOTIFY, Params::unkeyed().bind(queue)).await;
        }
        Ok(ids
            .into_iter()
            .map(|id| Enqueued {
                id: JobId(id as u64),
                duplicate: false,
            })
            .collect())
    }

    async fn claim(
        &self,
        worker: &WorkerId,
        queues: &[String],
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        let params = Params::unkeyed()
            .bind(queues.to_vec())
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .bind(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX))
            .bind(worker.0.clone());
        let mut rows: Vec<JobRow> = self
            .db
            .fetch_all(CLAIM, params)
            .await
            .map_err(|e| unavailable(&e))?;
        // RETURNING keeps no order: hand them out best first.
        rows.sort_by_key(|row| (std::cmp::Reverse(row.priority), row.run_at, row.id));
        rows.into_iter()
            .map(|row| {
                let token = row.token.unwrap_or_default() as u64;
                let record = row.into_record()?;
                Ok(Claimed {
                    lease: Lease {
                        id: record.id,
                        token,
                    },
                    record,
                })
            })
            .collect()
    }

    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Fenced, StoreError> {
        let params =
            lease_params(lease).bind(i64::try_from(extend.as_millis()).unwrap_or(i64::MAX));
        self.fenced(HEARTBEAT, params).await
    }

    async fn complete(&self, lease: &Lease) -> Result<Fenced, StoreError> {
        self.fenced(COMPLETE, lease_params(lease)).await
    }

    async fn complete_many(&self, leases: &[Lease]) -> Result<Vec<Fenced>, StoreError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<i64> = leases.iter().map(|lease| lease.id.0 as i64).collect();
        let tokens: Vec<i64> = leases.iter().map(|lease| lease.token as i64).collect();
        let done: Vec<(i64,)> = self
            .db
            .fetch_all(COMPLETE_MANY, Params::unkeyed().bind(ids).bind(tokens))
            .await
            .map_err(|e| unavailable(&e))?;
        let done: std::collections::HashSet<i64> = done.into_iter().map(|(id,)| id).collect();
        Ok(leases
            .iter()
            .map(|lease| {
                if done.contains(&(lease.id.0 as i64)) {
                    Fenced::Accepted
                } else {
                    Fenced::Stale
                }
            })
            .collect())
    }

    async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry_at: Option<SystemTime>,
    ) -> Result<AfterFailure, StoreError> {
        let params = lease_params(lease)
            .bind(error.to_owned())
            .bind(retry_at.map(millis));
        let row: Option<(String, i64)> = self
            .db
            .fetch_optional(FAIL, params)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(match row {
            None => AfterFailure::Stale,
            Some((state, _)) if state == "dead" => AfterFailure::Dead,
            Some((_, run_at)) => AfterFailure::Retry(from_millis(run_at)),
        })
    }

    async fn snooze(&self, lease: &Lease, until: SystemTime) -> Result<Fenced, StoreError> {
        self.fenced(SNOOZE, lease_params(lease).bind(millis(until)))
            .await
    }

    async fn release(&self, lease: &Lease) -> Result<Fenced, StoreError> {
        self.fenced(RELEASE, lease_params(lease)).await
    }

    async fn bury(&self, lease: &Lease, reason: &str) -> Result<Fenced, StoreError> {
        self.fenced(BURY, lease_params(lease).bind(reason.to_owned()))
            .await
    }

    async fn rescue_expired(&self, max_rescues: u32) -> Result<(u64, u64), StoreError> {
        let states: Vec<(String,)> = self
            .db
            .fetch_all(
                RESCUE,
                Params::unkeyed().bind(i32::try_from(max_rescues).unwrap_or(i32::MAX)),
            )
            .await
            .map_err(|e| unavailable(&e))?;
        let buried = states.iter().filter(|(state,)| state == "dead").count() as u64;
        self.purge_now_and_then().await;
        Ok((states.len() as u64 - buried, buried))
    }

    async fn get(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        let row: Option<JobRow> = self
            .db
            .fetch_optional(GET, Params::unkeyed().bind(id.0 as i64))
            .await
            .map_err(|e| unavailable(&e))?;
        row.map(JobRow::into_record).transpose()
    }

    async fn list_dead(
        &self,
        queue: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let params = Params::unkeyed()
            .bind(queue.map(str::to_owned))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX));
        let rows: Vec<JobRow> = self
            .db
            .fetch_all(LIST_DEAD, params)
            .await
            .map_err(|e| unavailable(&e))?;
        rows.into_iter().map(JobRow::into_record).collect()
    }

    async fn requeue_dead(&self, id: JobId) -> Result<bool, StoreError> {
        let changed = self
            .db
            .execute(REQUEUE_DEAD, Params::unkeyed().bind(id.0 as i64))
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(changed == 1)
    }

    async fn purge_dead(&self, queue: Option<&str>) -> Result<u64, StoreError> {
        self.db
            .execute(PURGE_DEAD, Params::unkeyed().bind(queue.map(str::to_owned)))
            .await
            .map_err(|e| unavailable(&e))
    }

    async fn pause(&self, queue: &str) -> Result<(), StoreError> {
        self.db
            .execute(PAUSE, Params::unkeyed().bind(queue.to_owned()).bind(true))
            .await
            .map(drop)
            .map_err(|e| unavailable(&e))
    }

    async fn resume(&self, queue: &str) -> Result<(), StoreError> {
        self.db
            .execute(PAUSE, Params::unkeyed().bind(queue.to_owned()).bind(false))
            .await
            .map(drop)
            .map_err(|e| unavailable(&e))?;
        let _ = self
            .db
            .execute(NOTIFY, Params::unkeyed().bind(queue.to_owned()))
            .await;
        Ok(())
    }

    async fn depths(&self) -> Result<Vec<QueueDepth>, StoreError> {
        let rows: Vec<(String, i64, i64, i64, i64)> = self
            .db
            .fetch_all(DEPTHS, Params::unkeyed())
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(rows
            .into_iter()
            .map(|(queue, available, scheduled, running, dead)| QueueDepth {
                queue,
                available: available as u64,
                scheduled: scheduled as u64,
                running: running as u64,
                dead: dead as u64,
            })
            .collect())
    }

    async fn wait_for_work(&self, within: Duration) {
        let mut listener = self.listener.lock().await;
        match listener.as_mut() {
            Some(listener) => {
                let _ = tokio::time::timeout(within, listener.recv()).await;
            }
            None => tokio::time::sleep(within.min(Duration::from_millis(100))).await,
        }
    }
}

/// A row of `perf_jobs`.
struct JobRow {
    id: i64,
    name: String,
    queue: String,
    priority: i16,
    payload: Vec<u8>,
    state: String,
    run_at: i64,
    max_attempts: i32,
    backoff: Vec<u8>,
    timeout_ms: i64,
    unique_key: Option<String>,
    attempts: i32,
    rescues: i32,
    last_error: Option<String>,
    token: Option<i64>,
    enqueued_at: i64,
    finished_at: Option<i64>,
}

impl<'r> FromRow<'r, PgRow> for JobRow {
    fn from_row(row: &'r PgRow) -> Result<Self, sqlx::Error> {
        Ok(JobRow {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            queue: row.try_get("queue")?,
            priority: row.try_get("priority")?,
            payload: row.try_get("payload")?,
            state: row.try_get("state")?,
            run_at: row.try_get("run_at")?,
            max_attempts: row.try_get("max_attempts")?,
            backoff: row.try_get("backoff")?,
            timeout_ms: row.try_get("timeout_ms")?,
            unique_key: row.try_get("unique_key")?,
            attempts: row.try_get("attempts")?,
            rescues: row.try_get("rescues")?,
            last_error: row.try_get("last_error")?,
            token: row.try_get("token")?,
            enqueued_at: row.try_get("enqueued_at")?,
            finished_at: row.try_get("finished_at")?,
        })
    }
}

impl JobRow {
    fn into_record(self) -> Result<JobRecord, StoreError> {
        let backoff: Backoff =
            rmp_serde::from_slice(&self.backoff).map_err(|error| StoreError::Corrupt {
                store: "postgres",
                message: format!("job {}: backoff does not decode: {error}", self.id),
            })?;
        let state = match self.state.as_str() {
            "available" if from_millis(self.run_at) > SystemTime::now() => JobState::Scheduled,
            "available" => JobState::Available,
            "running" => JobState::Running,
            "completed" => JobState::Completed,
            "dead" => JobState::Dead,
            other => {
                return Err(StoreError::Corrupt {
                    store: "postgres",
                    message: format!("job {}: unknown state `{other}`", self.id),
                });
            }
        };
        Ok(JobRecord {
            id: JobId(self.id as u64),
            job: NewJob {
                name: self.name.into(),
                queue: self.queue.into(),
                priority: Priority(self.priority),
                payload: self.payload,
                run_at: from_millis(self.run_at),
                max_attempts: self.max_attempts.max(0) as u32,
                backoff,
                timeout: Duration::from_millis(self.timeout_ms.max(0) as u64),
                unique_key: self.unique_key,
            },
            state,
            attempts: self.attempts.max(0) as u32,
            rescues: self.rescues.max(0) as u32,
            last_error: self.last_error,
            enqueued_at: from_millis(self.enqueued_at),
            finished_at: self.finished_at.map(from_millis),
        })
    }
}

/// The columns of [`INSERT_BATCH`], borrowed from `jobs`: no copy of a
/// name, queue or payload per job, and each distinct backoff encoded once
/// (a batch of one job type has one).
fn batch_params(jobs: &[NewJob]) -> Result<Params, StoreError> {
    let mut encoded: Vec<(Backoff, Vec<u8>)> = Vec::new();
    let mut backoff_of_job = Vec::with_capacity(jobs.len());
    for job in jobs {
        let index = match encoded.iter().position(|(known, _)| *known == job.backoff) {
            Some(index) => index,
            None => {
                encoded.push((job.backoff, encode_backoff(&job.backoff)?));
                encoded.len() - 1
            }
        };
        backoff_of_job.push(index);
    }
    let column = |value: fn(&NewJob) -> i64| jobs.iter().map(value).collect::<Vec<i64>>();
    Ok(Params::unkeyed()
        .bind(jobs.iter().map(|job| &*job.name).collect::<Vec<&str>>())
        .bind(jobs.iter().map(|job| &*job.queue).collect::<Vec<&str>>())
        .bind(jobs.iter().map(|job| job.priority.0).collect::<Vec<i16>>())
        .bind(
            jobs.iter()
                .map(|job| &job.payload[..])
                .collect::<Vec<&[u8]>>(),
        )
        .bind(column(|job| millis(job.run_at)))
        .bind(
            jobs.iter()
                .map(|job| i32::try_from(job.max_attempts).unwrap_or(i32::MAX))
                .collect::<Vec<i32>>(),
        )
        .bind(
            backoff_of_job
                .iter()
                .map(|&index| &encoded[index].1[..])
                .collect::<Vec<&[u8]>>(),
        )
        .bind(column(|job| {
            i64::try_from(job.timeout.as_millis()).unwrap_or(i64::MAX)
        })))
}

fn encode_backoff(backoff: &Backoff) -> Result<Vec<u8>, StoreError> {
    rmp_serde::to_vec(backoff).map_err(|error| StoreError::Corrupt {
        store: "postgres",
        message: format!("backoff does not encode: {error}"),
    })
}

fn millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |since| {
        i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
    })
}

fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

fn unavailable(error: &DbError) -> StoreError {
    StoreError::Unavailable {
        store: "postgres",
        message: error.to_string(),
    }
}
