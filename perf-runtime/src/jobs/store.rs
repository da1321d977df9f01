//! The contract every job store keeps (memory, Redis, PostgreSQL), checked
//! by one shared test suite run against each.
//!
//! - Priority order: higher first, FIFO within a priority; a job runs no
//!   earlier than its `run_at`.
//! - At least once: a job is removed from the runnable set only by
//!   [`complete`](JobStore::complete) or by moving to the dead-letter queue.
//!   A claim leases the job until a deadline; a lease that runs out (the
//!   worker died or stalled) is taken back by
//!   [`rescue_expired`](JobStore::rescue_expired) and the job runs again,
//!   or goes dead once it has been rescued too often (a job that kills its
//!   worker must not kill every worker in turn).
//! - Fencing: every call about a claimed job shows the claim's token; a
//!   worker whose lease was taken over is refused ([`Fenced::Stale`]).
//! - Unique keys: while a job with a key is pending, enqueueing another with
//!   that key returns the pending one's id.

use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::model::{Claimed, JobId, JobRecord, Lease, NewJob, WorkerId};

/// What a store's failure looks like: the backend's message, scrubbed of
/// secrets by the backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend did not answer or refused the command.
    #[error("job store {store} unavailable: {message}")]
    Unavailable {
        /// `memory`, `redis` or `postgres`.
        store: &'static str,
        /// What it said.
        message: String,
    },
    /// The store holds something it cannot read (written by another version
    /// or corrupted).
    #[error("job store {store} holds an unreadable record: {message}")]
    Corrupt {
        /// `memory`, `redis` or `postgres`.
        store: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The store holds as many pending jobs as it may (memory store).
    #[error("job store full: {capacity} pending jobs")]
    Full {
        /// Its capacity.
        capacity: usize,
    },
    /// The job is larger than the store accepts.
    #[error("job payload of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The payload's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

/// Whether a call about a claimed job was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fenced {
    /// Done as asked.
    Accepted,
    /// The lease is no longer this worker's (it ran out and the job was
    /// taken back, perhaps claimed by another worker): nothing was changed.
    Stale,
}

/// What enqueueing did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Enqueued {
    /// The job's id (the pending job's, for a duplicate unique key).
    pub id: JobId,
    /// True when a pending job with the same unique key was found and no
    /// new job was stored.
    pub duplicate: bool,
}

/// What a failed attempt led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterFailure {
    /// Scheduled to run again at this time.
    Retry(SystemTime),
    /// Moved to the dead-letter queue.
    Dead,
    /// The lease was no longer this worker's: nothing changed.
    Stale,
}

/// Waiting and running jobs per queue (for metrics and scaling).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// The queue.
    pub queue: String,
    /// Runnable now.
    pub available: u64,
    /// Waiting for their time.
    pub scheduled: u64,
    /// Leased to workers.
    pub running: u64,
    /// Dead letters.
    pub dead: u64,
}

/// A job store. Implementations: [`MemoryStore`](super::MemoryStore) (the
/// embedded default) and, with their features, Redis and PostgreSQL.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// `memory`, `redis` or `postgres` (metrics, errors).
    fn kind(&self) -> &'static str;

    /// Stores `job`; returns once it is stored (durably, for the durable
    /// stores).
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, StoreError>;

    /// Stores every job of `jobs` in one round trip, all or none.
    async fn enqueue_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, StoreError>;

    /// Stores `job` as the run of the recurring schedule `schedule` due at
    /// `fire_at`, unless a run of that schedule due at `fire_at` or later
    /// was stored already (by any process sharing the store): `None` then.
    /// The check and the insert are one atomic step, so however many
    /// schedulers run, each run is stored once.
    async fn enqueue_recurring(
        &self,
        schedule: &str,
        fire_at: SystemTime,
        job: NewJob,
    ) -> Result<Option<Enqueued>, StoreError>;

    /// Leases up to `limit` runnable jobs of `queues` (paused queues left
    /// out) to `worker` for `lease`, highest priority first, FIFO within a
    /// priority. Each claim counts as an attempt.
    async fn claim(
        &self,
        worker: &WorkerId,
        queues: &[String],
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError>;

    /// Extends the lease of a running job to `lease` from now.
    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Fenced, StoreError>;

    /// Marks the job done and drops its payload.
    async fn complete(&self, lease: &Lease) -> Result<Fenced, StoreError>;

    /// Whether the store's calls stay within this process, with no round
    /// trip worth batching or claiming ahead for: each of a pool's runners
    /// then claims its own next job and records each outcome as it ends,
    /// with no claimer or reporter between (a hop between tasks costs more
    /// than such a call). False unless a store says so.
    fn in_process(&self) -> bool {
        false
    }

    /// Marks the job of `done` done, fenced as by [`complete`](Self::complete),
    /// and claims as [`claim`](Self::claim) does, in one step where the
    /// store can (the memory store: under one lock). Runners that claim
    /// for themselves ([`in_process`](Self::in_process)) end a job that
    /// succeeded and take their next one with it.
    ///
    /// # Errors
    /// The store's error: then the job may or may not be marked done, and
    /// nothing was claimed.
    async fn complete_and_claim(
        &self,
        done: &Lease,
        worker: &WorkerId,
        queues: &[String],
        limit: usize,
        lease: Duration,
    ) -> Result<(Fenced, Vec<Claimed>), StoreError> {
        let fenced = self.complete(done).await?;
        Ok((fenced, self.claim(worker, queues, limit, lease).await?))
    }

    /// Marks every job of `leases` done, each fenced as by
    /// [`complete`](Self::complete), in one step (one lock, one round
    /// trip) where the store can; the answers in the order of `leases`.
    /// Workers report the jobs that ended while the previous report was
    /// on its way through here.
    ///
    /// # Errors
    /// The store's error: then some of the jobs may have been marked done
    /// and the others run again when their leases run out.
    async fn complete_many(&self, leases: &[Lease]) -> Result<Vec<Fenced>, StoreError> {
        let mut fenced = Vec::with_capacity(leases.len());
        for lease in leases {
            fenced.push(self.complete(lease).await?);
        }
        Ok(fenced)
    }

    /// Records a failed attempt: scheduled again at `retry_at` if attempts
    /// remain and `retry_at` is given, dead otherwise.
    async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry_at: Option<SystemTime>,
    ) -> Result<AfterFailure, StoreError>;

    /// Puts the job back to run at `until` without spending an attempt
    /// (a provider's 429, say).
    async fn snooze(&self, lease: &Lease, until: SystemTime) -> Result<Fenced, StoreError>;

    /// Hands a running job back unrun (graceful shutdown): runnable at
    /// once, its attempt not counted.
    async fn release(&self, lease: &Lease) -> Result<Fenced, StoreError>;

    /// Moves the job straight to the dead-letter queue with `reason` (an
    /// unknown job name, a payload that does not decode).
    async fn bury(&self, lease: &Lease, reason: &str) -> Result<Fenced, StoreError>;

    /// Takes back every job whose lease ran out: runnable again, or dead
    /// once it has been rescued more than `max_rescues` times. Returns the
    /// number rescued and the number buried.
    async fn rescue_expired(&self, max_rescues: u32) -> Result<(u64, u64), StoreError>;

    /// The job's record, if the store still has it.
    async fn get(&self, id: JobId) -> Result<Option<JobRecord>, StoreError>;

    /// Dead letters, oldest first.
    async fn list_dead(
        &self,
        queue: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, StoreError>;

    /// Puts a dead job back in its queue with fresh attempts. False if it
    /// is not dead.
    async fn requeue_dead(&self, id: JobId) -> Result<bool, StoreError>;

    /// Deletes dead jobs (of `queue`, or all); returns how many.
    async fn purge_dead(&self, queue: Option<&str>) -> Result<u64, StoreError>;

    /// Stops claims from `queue` until [`resume`](Self::resume).
    async fn pause(&self, queue: &str) -> Result<(), StoreError>;

    /// Lets claims from `queue` go on.
    async fn resume(&self, queue: &str) -> Result<(), StoreError>;

    /// Waiting, running and dead jobs per queue.
    async fn depths(&self) -> Result<Vec<QueueDepth>, StoreError>;

    /// Resolves when new work may be runnable (a job enqueued, a lease
    /// released) or after `within`, whichever is first. Workers wait here
    /// between empty claims instead of polling fast.
    async fn wait_for_work(&self, within: Duration);
}
