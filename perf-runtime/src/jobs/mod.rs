//! Background jobs: `#[async_job]` functions, job stores, and the worker
//! pool that runs them.
//!
//! ```ignore
//! use perf_runtime::async_job;
//!
//! #[async_job(priority = "high", max_retries = 5, timeout = "30s")]
//! async fn send_welcome(user_id: u64, email: String) -> Result<(), MailError> {
//!     mailer().send(&email, "Welcome!").await
//! }
//!
//! // Calling it stores the job and returns its handle once stored; a
//! // worker runs the body, retrying with backoff, dead-lettering at the end.
//! let handle = send_welcome(7, "a@example.com".into()).await?;
//! handle.wait().await?;
//! ```
//!
//! - **Stores** keep one contract ([`JobStore`]): priority order, leases
//!   with heartbeats and fencing tokens, rescue of jobs whose worker died,
//!   retries with backoff, a dead-letter queue, unique keys, pause/resume,
//!   snooze. [`MemoryStore`] is the embedded default and **loses queued and
//!   running jobs when the process exits**.
//! - **Workers** ([`WorkerPool`]) run up to `MAX_ASYNC_WORKERS` jobs at
//!   once, each under its timeout with panics caught; a sweeper takes back
//!   jobs whose lease ran out; shutdown lets running jobs finish within a
//!   grace period and hands the rest back.
//! - **Handlers** register themselves at compile time: a worker knows every
//!   `#[async_job]` linked into the binary, and a job whose name it does
//!   not know goes to the dead-letter queue with the reason.
//! - **Recurring jobs** ([`Schedule`], or `#[async_job(cron = "…")]`) are
//!   stored at the times of a cron expression, each run once however many
//!   processes run the schedule.

mod batch;
mod enqueue;
mod memory;
mod metrics;
mod model;
#[cfg(feature = "postgres")]
mod postgres;
mod recurring;
#[cfg(feature = "redis")]
mod redis;
mod registry;
mod scaling;
mod store;
mod worker;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

pub use batch::{ChunkError, ChunkSummary, process_in_chunks};
pub use enqueue::{Enqueue, JobError, JobHandle};
pub use memory::{DEFAULT_CAPACITY, MemoryStore};
pub use model::{
    Backoff, Claimed, JobId, JobRecord, JobSpec, JobState, Lease, NewJob, Priority, WorkerId,
};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use recurring::{Schedule, ScheduleError};
#[cfg(feature = "redis")]
pub use redis::RedisStore;
pub use registry::{IntoJobOutcome, JobHandler, JobOutcome, MAX_PAYLOAD_BYTES, RunFn};
pub use store::{AfterFailure, Enqueued, Fenced, JobStore, QueueDepth, StoreError};
pub use worker::{WorkerConfig, WorkerConfigError, WorkerPool};

/// What the expansion of `#[async_job]` names.
#[doc(hidden)]
pub mod __private {
    pub use super::enqueue::{Enqueue, unique_key};
    pub use super::model::{Backoff, JobSpec, Priority};
    pub use super::registry::{IntoJobOutcome, JobHandler, JobOutcome, decode};
    pub use futures_util::future::BoxFuture;
    pub use inventory;

    /// A job argument is stored and read back on a worker.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be a job argument: it must be serde `Serialize` and `DeserializeOwned`, `Send` and `'static`",
        label = "stored with the job, so it must be serializable and owned"
    )]
    pub trait JobArgument: serde::Serialize + serde::de::DeserializeOwned + Send + 'static {}
    impl<T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static> JobArgument for T {}

    /// Fails to compile, on the argument's type, when it cannot be stored.
    pub const fn assert_job_argument<T: JobArgument>() {}
}

/// A job store and, when started, the worker pool working it. Cloned
/// freely; clones share both.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<JobsInner>,
}

struct JobsInner {
    store: Arc<dyn JobStore>,
    pool: Mutex<Option<WorkerPool>>,
    /// Running recurring schedules, by name.
    schedules: Mutex<HashMap<String, tokio::task::AbortHandle>>,
}

impl Drop for JobsInner {
    fn drop(&mut self) {
        for (_, task) in self
            .schedules
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
        {
            task.abort();
        }
    }
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("store", &self.inner.store.kind())
            .finish_non_exhaustive()
    }
}

impl Jobs {
    /// Jobs on `store`, no workers yet.
    pub fn new(store: Arc<dyn JobStore>) -> Self {
        Jobs {
            inner: Arc::new(JobsInner {
                store,
                pool: Mutex::new(None),
                schedules: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn JobStore> {
        &self.inner.store
    }

    /// Starts a worker pool on the store (replacing a running one, which is
    /// stopped without grace).
    ///
    /// # Errors
    ///
    /// The configuration's [`WorkerConfigError`].
    pub fn start_workers(&self, config: WorkerConfig) -> Result<(), WorkerConfigError> {
        let pool = WorkerPool::start(Arc::clone(&self.inner.store), config)?;
        *self
            .inner
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(pool);
        Ok(())
    }

    /// True while a worker pool runs in this process.
    pub fn has_workers(&self) -> bool {
        self.inner
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Stops the worker pool: see [`WorkerPool::shutdown`].
    pub async fn stop_workers(&self, grace: std::time::Duration) {
        let pool = self
            .inner
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(pool) = pool {
            pool.shutdown(grace).await;
        }
    }

    /// Runs `schedule` in this process (a task on the current Tokio
    /// runtime) until [`unschedule`](Self::unschedule) or the job system
    /// is dropped. Other processes may run a schedule of the same name on
    /// the same store: each run is stored once between them.
    ///
    /// # Errors
    ///
    /// [`ScheduleError::Duplicate`] when a schedule of that name runs here.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn schedule(&self, schedule: Schedule) -> Result<(), ScheduleError> {
        let mut schedules = self
            .inner
            .schedules
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if schedules.contains_key(schedule.name()) {
            return Err(ScheduleError::Duplicate(schedule.name().to_owned()));
        }
        let name = schedule.name().to_owned();
        let task = tokio::spawn(schedule.run(Arc::clone(&self.inner.store)));
        schedules.insert(name, task.abort_handle());
        Ok(())
    }

    /// Stops the schedule `name` here; false if none ran.
    pub fn unschedule(&self, name: &str) -> bool {
        let task = self
            .inner
            .schedules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
        task.map(|task| task.abort()).is_some()
    }

    /// The names of the schedules running here, sorted.
    pub fn schedules(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .inner
            .schedules
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        names.sort_unstable();
        names
    }

    /// Stops every schedule running here.
    pub fn unschedule_all(&self) {
        for name in self.schedules() {
            self.unschedule(&name);
        }
    }

    /// Stores `job` as it is (for jobs built by hand; `#[async_job]`
    /// functions build theirs).
    ///
    /// # Errors
    ///
    /// [`JobError::NotStored`] when the store did not take it.
    pub async fn enqueue_raw(&self, job: NewJob) -> Result<JobHandle, JobError> {
        self.enqueue_job("raw", job).await
    }

    /// Stores every job in one round trip, all or none.
    ///
    /// # Errors
    ///
    /// [`JobError::NotStored`] when the store did not take them.
    pub async fn enqueue_batch<A, I>(&self, jobs: I) -> Result<Vec<JobHandle>, JobError>
    where
        A: serde::Serialize + Send + 'static,
        I: IntoIterator<Item = Enqueue<A>>,
    {
        let mut name = "batch";
        let mut batch = Vec::new();
        for job in jobs {
            name = job.name();
            batch.push(job.to_job()?);
        }
        let counts = count_by_queue(&batch);
        let stored = self
            .inner
            .store
            .enqueue_batch(batch)
            .await
            .map_err(|source| JobError::NotStored { name, source })?;
        for ((queue, priority), count) in counts {
            metrics::enqueued(&queue, priority, count);
        }
        Ok(stored
            .into_iter()
            .map(|enqueued| self.handle(enqueued))
            .collect())
    }

    /// Stores the jobs of `jobs` (a stream of any length) in batches of
    /// `chunk_size`, one round trip and all-or-none per batch, one batch
    /// at a time: memory holds one batch, and on an error exactly the
    /// batches before the failed one are stored.
    ///
    /// ```no_run
    /// # use perf_runtime::async_job;
    /// # #[async_job(queue = "newsletter")]
    /// # async fn send_newsletter(user_id: u64) {}
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use futures_util::{StreamExt, stream};
    ///
    /// let users = stream::iter(0..1_000_000u64);
    /// let stored = perf_runtime::jobs::global()
    ///     .enqueue_stream(users.map(send_newsletter), 1_000)
    ///     .await?;
    /// assert_eq!(stored.items, 1_000_000);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ChunkError`] around the batch's [`JobError::NotStored`], saying
    /// how many jobs were stored before it.
    ///
    /// # Panics
    ///
    /// If `chunk_size` is 0.
    pub async fn enqueue_stream<A, S>(
        &self,
        jobs: S,
        chunk_size: usize,
    ) -> Result<ChunkSummary, ChunkError<JobError>>
    where
        A: serde::Serialize + Send + 'static,
        S: futures_util::Stream<Item = Enqueue<A>>,
    {
        process_in_chunks(jobs, chunk_size, 1, |batch| async move {
            self.enqueue_batch(batch).await.map(drop)
        })
        .await
    }

    pub(crate) async fn enqueue_job(
        &self,
        name: &'static str,
        job: NewJob,
    ) -> Result<JobHandle, JobError> {
        let (queue, priority) = (job.queue.clone(), job.priority);
        let enqueued = self
            .inner
            .store
            .enqueue(job)
            .await
            .map_err(|source| JobError::NotStored { name, source })?;
        if !enqueued.duplicate {
            metrics::enqueued(&queue, priority, 1);
        }
        Ok(self.handle(enqueued))
    }

    fn handle(&self, enqueued: Enqueued) -> JobHandle {
        JobHandle::new(enqueued.id, enqueued.duplicate, self.clone())
    }
}

fn count_by_queue(batch: &[NewJob]) -> HashMap<(Cow<'static, str>, Priority), u64> {
    let mut counts = HashMap::new();
    for job in batch {
        *counts.entry((job.queue.clone(), job.priority)).or_default() += 1;
    }
    counts
}

/// The process's job system, once set by [`install`].
static GLOBAL: Mutex<Option<Jobs>> = Mutex::new(None);

/// The job system `init` starts: the store `JOB_STORE` names, worked by
/// `MAX_ASYNC_WORKERS` workers over every queue of the linked jobs.
pub(crate) async fn start_for(perf: &crate::Perf) -> Result<Jobs, crate::InitError> {
    use crate::config::JobStoreKind;
    let config = perf.config();
    let store: Arc<dyn JobStore> = match config.job_store {
        JobStoreKind::Memory => Arc::new(MemoryStore::new()),
        JobStoreKind::Postgres => postgres_store(perf).await?,
        JobStoreKind::Redis => redis_store(perf)?,
    };
    let jobs = Jobs::new(store);
    let workers = WorkerConfig {
        concurrency: config.max_async_workers as usize,
        min_concurrency: match config.min_async_workers {
            0 => None,
            floor => Some(floor as usize),
        },
        queues: registry::queues(),
        ..WorkerConfig::default()
    };
    let refused = |reason: String| crate::InitError::Jobs {
        store: jobs.store().kind(),
        reason,
    };
    jobs.start_workers(workers)
        .map_err(|error| refused(error.to_string()))?;
    for schedule in recurring::linked().map_err(|error| refused(error.to_string()))? {
        jobs.schedule(schedule)
            .map_err(|error| refused(error.to_string()))?;
    }
    Ok(jobs)
}

#[cfg(feature = "postgres")]
async fn postgres_store(perf: &crate::Perf) -> Result<Arc<dyn JobStore>, crate::InitError> {
    let db = perf.db().ok_or_else(|| crate::InitError::Jobs {
        store: "postgres",
        reason: "needs DATABASE_URL".to_owned(),
    })?;
    let store = PostgresStore::connect(db)
        .await
        .map_err(|error| crate::InitError::Jobs {
            store: "postgres",
            reason: error.to_string(),
        })?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "postgres"))]
async fn postgres_store(_: &crate::Perf) -> Result<Arc<dyn JobStore>, crate::InitError> {
    Err(crate::InitError::FeatureMissing {
        setting: "JOB_STORE",
        feature: "postgres",
    })
}

#[cfg(feature = "redis")]
fn redis_store(perf: &crate::Perf) -> Result<Arc<dyn JobStore>, crate::InitError> {
    let store = RedisStore::from_perf(perf, "perf:jobs").ok_or_else(|| crate::InitError::Jobs {
        store: "redis",
        reason: "needs REDIS_URL (or REDIS_HOST)".to_owned(),
    })?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "redis"))]
fn redis_store(_: &crate::Perf) -> Result<Arc<dyn JobStore>, crate::InitError> {
    Err(crate::InitError::FeatureMissing {
        setting: "JOB_STORE",
        feature: "redis",
    })
}

/// Takes the process's job system out (for `shutdown`).
pub(crate) fn uninstall() -> Option<Jobs> {
    GLOBAL.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// Makes `jobs` the process's job system (what `#[async_job]` calls
/// enqueue into).
pub fn install(jobs: Jobs) {
    *GLOBAL.lock().unwrap_or_else(PoisonError::into_inner) = Some(jobs);
}

/// The process's job system. Before [`install`], the embedded default: a
/// [`MemoryStore`] with a worker pool started on the current tokio runtime
/// on first use (`MAX_ASYNC_WORKERS` from the environment, else 100).
pub fn global() -> Jobs {
    let mut global = GLOBAL.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(jobs) = &*global {
        return jobs.clone();
    }
    let jobs = Jobs::new(Arc::new(MemoryStore::new()));
    if tokio::runtime::Handle::try_current().is_ok() {
        let concurrency = crate::PerfConfig::from_env()
            .map(|config| config.max_async_workers as usize)
            .unwrap_or(100);
        let config = WorkerConfig {
            concurrency,
            queues: registry::queues(),
            ..WorkerConfig::default()
        };
        if let Err(error) = jobs.start_workers(config) {
            tracing::error!(%error, "could not start the default job workers");
        }
    }
    *global = Some(jobs.clone());
    jobs
}
