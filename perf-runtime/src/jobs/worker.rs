//! The worker pool: claims jobs while it has free slots, runs each under
//! its timeout with panics caught, keeps its lease alive with heartbeats,
//! and reports the outcome to the store. A sweeper takes back jobs whose
//! worker's lease ran out (in this process or any other).

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use tokio::sync::watch;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::metrics;
use super::model::{Claimed, JobId, Lease, WorkerId, rand_u64};
use super::registry::{self, JobOutcome};
use super::scaling::{Slots, scale_loop};
use super::store::{AfterFailure, Fenced, JobStore};

/// How a worker pool runs.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// Jobs run at once (`MAX_ASYNC_WORKERS`): with `min_concurrency`,
    /// the most.
    pub concurrency: usize,
    /// The fewest jobs run at once when the pool scales with the work
    /// waiting (`MIN_ASYNC_WORKERS`); `None` keeps it at `concurrency`.
    pub min_concurrency: Option<usize>,
    /// How often a scaling pool reads its queues' depth.
    pub scale_interval: Duration,
    /// Queues worked, all at once, the best job first across them.
    pub queues: Vec<String>,
    /// How long a claim holds a job without a heartbeat: a worker that dies
    /// loses its jobs to another after at most this (plus `sweep`).
    pub lease: Duration,
    /// How often a running job's lease is extended; at most a third of
    /// `lease`, so two heartbeats may fail before the lease runs out.
    pub heartbeat: Duration,
    /// How often expired leases are looked for.
    pub sweep: Duration,
    /// Times a job may lose its worker before it is dead (a job that crashes
    /// its process must not crash every worker in turn).
    pub max_rescues: u32,
    /// Longest wait between claims when the queues are empty (a new job
    /// wakes the pool sooner).
    pub idle_poll: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 100,
            min_concurrency: None,
            scale_interval: Duration::from_secs(1),
            queues: vec!["default".to_owned()],
            lease: Duration::from_secs(30),
            heartbeat: Duration::from_secs(10),
            sweep: Duration::from_secs(1),
            max_rescues: 3,
            idle_poll: Duration::from_secs(1),
        }
    }
}

/// A refused worker configuration.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum WorkerConfigError {
    /// A setting out of range.
    #[error("worker setting `{setting}`: {reason}")]
    Invalid {
        /// The setting.
        setting: &'static str,
        /// What was expected.
        reason: String,
    },
    /// Two or more linked `#[async_job]` functions go by one job name, so
    /// a stored job of that name has no one body to run.
    #[error(
        "#[async_job] functions share the job name(s) {}: give each a distinct `name = \"…\"`",
        .names.join(", ")
    )]
    SharedJobName {
        /// The shared names, sorted.
        names: Vec<&'static str>,
    },
}

impl WorkerConfig {
    /// Checks the settings against each other.
    ///
    /// # Errors
    ///
    /// A [`WorkerConfigError`] naming the setting: no queue, zero
    /// concurrency, a lease under a second, or a heartbeat that cannot keep
    /// the lease alive (more than a third of it).
    pub fn check(&self) -> Result<(), WorkerConfigError> {
        let invalid = |setting, reason: &str| {
            Err(WorkerConfigError::Invalid {
                setting,
                reason: reason.to_owned(),
            })
        };
        if self.concurrency == 0 {
            return invalid("concurrency", "expected at least 1");
        }
        if self
            .min_concurrency
            .is_some_and(|floor| floor == 0 || floor > self.concurrency)
        {
            return invalid(
                "min_concurrency",
                "expected at least 1 and at most `concurrency`",
            );
        }
        if self.scale_interval.is_zero() {
            return invalid("scale_interval", "expected more than zero");
        }
        if self.queues.is_empty() {
            return invalid("queues", "expected at least one queue");
        }
        if self.lease < Duration::from_secs(1) {
            return invalid("lease", "expected at least 1 s");
        }
        if self.heartbeat.is_zero() || self.heartbeat.saturating_mul(3) > self.lease {
            return invalid(
                "heartbeat",
                "expected more than zero and at most a third of the lease",
            );
        }
        if self.sweep.is_zero() || self.idle_poll.is_zero() {
            return invalid("sweep", "expected sweep and idle_poll above zero");
        }
        Ok(())
    }
}

/// A running worker pool; stopped by [`WorkerPool::shutdown`] (or dropped:
/// then it stops claiming and leaves running jobs to their leases).
pub struct WorkerPool {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

struct Shared {
    store: Arc<dyn JobStore>,
    config: WorkerConfig,
    worker: WorkerId,
    slots: Arc<Slots>,
    running: Mutex<HashMap<JobId, (Lease, AbortHandle)>>,
    /// Claimed by this pool, waiting for a free slot.
    prefetched: Mutex<HashMap<JobId, Lease>>,
}

impl std::fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPool")
            .field("worker", &self.shared.worker)
            .field("store", &self.shared.store.kind())
            .field("config", &self.shared.config)
            .finish()
    }
}

impl WorkerPool {
    /// Starts claiming from `store` on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// The configuration's [`WorkerConfigError`], or
    /// [`WorkerConfigError::SharedJobName`] when linked jobs share a name.
    pub fn start(
        store: Arc<dyn JobStore>,
        config: WorkerConfig,
    ) -> Result<WorkerPool, WorkerConfigError> {
        config.check()?;
        registry::check().map_err(|names| WorkerConfigError::SharedJobName { names })?;
        metrics::describe();
        let floor = config.min_concurrency.unwrap_or(config.concurrency);
        let shared = Arc::new(Shared {
            store,
            slots: Arc::new(Slots::new(floor, config.concurrency)),
            config,
            worker: WorkerId::fresh(),
            running: Mutex::new(HashMap::new()),
            prefetched: Mutex::new(HashMap::new()),
        });
        let (stop, stopped) = watch::channel(false);
        let mut tasks = vec![
            tokio::spawn(claim_loop(Arc::clone(&shared), stopped.clone())),
            tokio::spawn(sweep_loop(Arc::clone(&shared), stopped.clone())),
        ];
        if shared.slots.scales() {
            let waiting = Arc::clone(&shared);
            tasks.push(tokio::spawn(scale_loop(
                Arc::clone(&shared.slots),
                Arc::clone(&shared.store),
                shared.config.queues.clone(),
                shared.config.scale_interval,
                move || waiting.prefetched_count(),
                stopped.clone(),
            )));
        }
        // Not among `tasks`: shutdown awaits those before draining, and the
        // draining jobs still need their leases kept.
        tokio::spawn(heartbeat_loop(Arc::clone(&shared), stopped));
        Ok(WorkerPool {
            shared,
            stop,
            tasks,
        })
    }

    /// This process's worker id.
    pub fn worker_id(&self) -> &WorkerId {
        &self.shared.worker
    }

    /// Jobs running now.
    pub fn busy(&self) -> usize {
        self.shared.slots.busy()
    }

    /// Jobs that may run at once now: `concurrency`, or between
    /// `min_concurrency` and it when the pool scales.
    pub fn limit(&self) -> usize {
        self.shared.slots.limit()
    }

    /// Stops claiming, lets running jobs finish within `grace`, then stops
    /// the rest and hands them back to the store unrun (their attempt not
    /// counted), so another worker takes them at once.
    pub async fn shutdown(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        // The scaler has stopped with the other tasks: the limit holds still.
        let everyone = u32::try_from(self.shared.slots.limit()).unwrap_or(u32::MAX);
        let drained =
            tokio::time::timeout(grace, self.shared.slots.semaphore().acquire_many(everyone)).await;
        if drained.is_ok() {
            return;
        }
        let left: Vec<(Lease, AbortHandle)> = self
            .shared
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, held)| held)
            .collect();
        for (lease, abort) in left {
            abort.abort();
            if let Err(error) = self.shared.store.release(&lease).await {
                tracing::warn!(job = %lease.id, %error, "could not hand a job back at shutdown; its lease will run out");
            }
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn claim_loop(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let mut failures = 0u32;
    // Claimed ahead of a free slot: one claim serves a round of jobs instead
    // of one claim per freed slot (a round trip per job on a remote store).
    // Each with the time it was claimed.
    let mut buffer: VecDeque<(Instant, Claimed)> = VecDeque::new();
    while !*stopped.borrow() {
        let permit = tokio::select! {
            permit = Arc::clone(shared.slots.semaphore()).acquire_owned() => permit,
            _ = stopped.changed() => break,
        };
        let Ok(permit) = permit else {
            break;
        };
        if buffer.is_empty() {
            let slots = &shared.slots;
            let want = slots.semaphore().available_permits() + 1 + slots.limit();
            match shared
                .store
                .claim(
                    &shared.worker,
                    &shared.config.queues,
                    want,
                    shared.config.lease,
                )
                .await
            {
                Ok(claimed) => {
                    failures = 0;
                    shared.prefetched(claimed.iter().map(|job| job.lease.clone()));
                    let now = Instant::now();
                    buffer.extend(claimed.into_iter().map(|job| (now, job)));
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(store = shared.store.kind(), %error, "claiming jobs failed; retrying");
                    drop(permit);
                    let wait = Duration::from_millis(100).saturating_mul(1 << failures.min(5));
                    let _ = tokio::time::timeout(wait, stopped.changed()).await;
                    continue;
                }
            }
        }
        let Some((claimed_at, job)) = buffer.pop_front() else {
            drop(permit);
            tokio::select! {
                () = shared.store.wait_for_work(shared.config.idle_poll) => {}
                _ = stopped.changed() => {}
            }
            continue;
        };
        start_if_still_leased(&shared, claimed_at, job, permit).await;
        while !buffer.is_empty() {
            let Ok(permit) = Arc::clone(shared.slots.semaphore()).try_acquire_owned() else {
                break;
            };
            if let Some((claimed_at, job)) = buffer.pop_front() {
                start_if_still_leased(&shared, claimed_at, job, permit).await;
            }
        }
        metrics::busy(shared.slots.busy());
    }
    // Claimed but never started: back to the store for any worker.
    for (_, job) in buffer {
        shared.unprefetch(job.lease.id);
        if let Err(error) = shared.store.release(&job.lease).await {
            tracing::warn!(job = %job.lease.id, %error, "could not hand a job back; its lease will run out");
        }
    }
}

impl Shared {
    fn prefetched(&self, leases: impl Iterator<Item = Lease>) {
        let mut prefetched = self
            .prefetched
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        prefetched.extend(leases.map(|lease| (lease.id, lease)));
    }

    fn prefetched_count(&self) -> usize {
        self.prefetched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn unprefetch(&self, id: JobId) {
        self.prefetched
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
    }
}

/// Starts a job claimed ahead, unless its lease was taken over while it
/// waited: a process that stalled past its leases (a pause, a frozen VM)
/// must not run bodies another worker already runs. A job claimed less
/// than a heartbeat ago starts at once; an older one is confirmed (and its
/// lease extended) by a heartbeat first.
async fn start_if_still_leased(
    shared: &Arc<Shared>,
    claimed_at: Instant,
    job: Claimed,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    if claimed_at.elapsed() < shared.config.heartbeat {
        spawn_job(shared, job, permit);
        return;
    }
    match shared
        .store
        .heartbeat(&job.lease, shared.config.lease)
        .await
    {
        Ok(Fenced::Accepted) => spawn_job(shared, job, permit),
        Ok(Fenced::Stale) => {
            shared.unprefetch(job.lease.id);
            tracing::warn!(job = %job.lease.id, "a job claimed ahead was taken over while it waited; not run here");
            metrics::finished(
                &job.record.job.queue,
                job.record.job.priority,
                "lease_lost",
                Duration::ZERO,
            );
        }
        Err(error) => {
            // Unknown whether it is still ours: leave it to its lease.
            shared.unprefetch(job.lease.id);
            tracing::warn!(job = %job.lease.id, %error, "could not confirm the lease of a job claimed ahead; not run here");
        }
    }
}

fn spawn_job(shared: &Arc<Shared>, job: Claimed, permit: tokio::sync::OwnedSemaphorePermit) {
    let lease = job.lease.clone();
    let id = lease.id;
    shared.unprefetch(id);
    let task_shared = Arc::clone(shared);
    // Registered before the task can finish and remove itself.
    let mut running = shared
        .running
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let handle = tokio::spawn(async move {
        run_job(&task_shared, job).await;
        task_shared
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        drop(permit);
    });
    running.insert(id, (lease, handle.abort_handle()));
}

async fn run_job(shared: &Shared, job: Claimed) {
    let Claimed { record, lease } = job;
    let queue = record.job.queue.clone();
    let priority = record.job.priority;
    let waited = SystemTime::now()
        .duration_since(record.job.run_at)
        .unwrap_or_default();
    metrics::started(&queue, priority, waited);
    let started = tokio::time::Instant::now();
    let Some(handler) = registry::handler(&record.job.name) else {
        let reason = format!(
            "no #[async_job] named `{}` in this binary (it knows: {})",
            record.job.name,
            registry::names().join(", ")
        );
        bury(shared, &lease, &reason).await;
        metrics::finished(&queue, priority, "dead", started.elapsed());
        return;
    };
    let body = AssertUnwindSafe((handler.run)(&record.job.payload)).catch_unwind();
    let outcome = match tokio::time::timeout(record.job.timeout, body).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(panic)) => JobOutcome::Failed(format!("panicked: {}", panic_message(&*panic))),
        Err(_) => JobOutcome::Failed(format!("timed out after {:?}", record.job.timeout)),
    };
    let ran = started.elapsed();
    let store = &shared.store;
    let label = match outcome {
        JobOutcome::Done => fenced(store.complete(&lease).await, "succeeded"),
        JobOutcome::Snooze(wait) => fenced(
            store.snooze(&lease, SystemTime::now() + wait).await,
            "snoozed",
        ),
        JobOutcome::Malformed(reason) => fenced(store.bury(&lease, &reason).await, "dead"),
        JobOutcome::Failed(error) => {
            // The claim counted this attempt: after attempt n comes retry n.
            let wait = record
                .job
                .backoff
                .delay(record.attempts.max(1), unit_random());
            match store
                .fail(&lease, &error, Some(SystemTime::now() + wait))
                .await
            {
                Ok(AfterFailure::Retry(_)) => "retried",
                Ok(AfterFailure::Dead) => "dead",
                Ok(AfterFailure::Stale) => "lease_lost",
                Err(error) => {
                    tracing::warn!(job = %lease.id, %error, "could not record a job failure; its lease will run out");
                    "store_error"
                }
            }
        }
    };
    metrics::finished(&queue, priority, label, ran);
}

/// The outcome label of a fenced call.
fn fenced(
    result: Result<Fenced, super::store::StoreError>,
    accepted: &'static str,
) -> &'static str {
    match result {
        Ok(Fenced::Accepted) => accepted,
        Ok(Fenced::Stale) => "lease_lost",
        Err(error) => {
            tracing::warn!(%error, "could not record a job's outcome; its lease will run out and it runs again");
            "store_error"
        }
    }
}

async fn bury(shared: &Shared, lease: &Lease, reason: &str) {
    tracing::warn!(job = %lease.id, reason, "job moved to the dead-letter queue");
    if let Err(error) = shared.store.bury(lease, reason).await {
        tracing::warn!(job = %lease.id, %error, "could not bury a job; its lease will run out");
    }
}

/// Extends the lease of every job running in this pool, every heartbeat:
/// one loop for the pool rather than a task per job.
async fn heartbeat_loop(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let every = shared.config.heartbeat;
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stopped.changed() => {}
        }
        // After a stop, running jobs still finish within the grace period
        // (or are handed back): keep their leases until the pool is empty.
        let mut leases: Vec<Lease> = shared
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(|(lease, _)| lease.clone())
            .collect();
        leases.extend(
            shared
                .prefetched
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .cloned(),
        );
        if *stopped.borrow() && leases.is_empty() {
            return;
        }
        for lease in leases {
            match shared.store.heartbeat(&lease, shared.config.lease).await {
                Ok(Fenced::Accepted) => {}
                Ok(Fenced::Stale) => {
                    tracing::warn!(job = %lease.id, "job lease lost (taken over); its outcome will be refused");
                }
                Err(error) => tracing::warn!(job = %lease.id, %error, "heartbeat failed"),
            }
        }
    }
}

async fn sweep_loop(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let mut depth_every = 0u32;
    while !*stopped.borrow() {
        match shared.store.rescue_expired(shared.config.max_rescues).await {
            Ok((0, 0)) => {}
            Ok((rescued, buried)) => {
                tracing::warn!(
                    rescued,
                    buried,
                    "took back jobs whose worker stopped answering"
                );
                metrics::rescued(rescued, buried);
            }
            Err(error) => tracing::warn!(%error, "sweeping expired job leases failed"),
        }
        depth_every += 1;
        if depth_every % 5 == 1
            && let Ok(depths) = shared.store.depths().await
        {
            for depth in depths {
                metrics::depth(&depth.queue, "available", depth.available);
                metrics::depth(&depth.queue, "scheduled", depth.scheduled);
                metrics::depth(&depth.queue, "running", depth.running);
                metrics::depth(&depth.queue, "dead", depth.dead);
            }
        }
        let _ = tokio::time::timeout(shared.config.sweep, stopped.changed()).await;
    }
}

fn unit_random() -> f64 {
    (rand_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}
