//! The worker pool.
//!
//! With a store whose calls stay in this process (the memory store), each
//! runner claims, runs and records its own jobs (`pull.rs`). Otherwise one
//! task claims jobs while the pool has free slots (`feed.rs`) and hands
//! each, with its slot, to one of a fixed set of runner tasks (`run.rs`),
//! which runs the body under its timeout with panics caught. Runners pass
//! what ended, with its slot, to one reporter task (`report.rs`), which
//! records the outcomes in the store (the completions that piled up while
//! its previous report was on its way go in one call) and then frees the
//! slots. Long-lived runners and batched
//! reports keep the per-job cost of the pool near that of a channel and a
//! few tasks; a task per job and a store call per completion cost several
//! times more. Beside them, one loop extends the leases of running jobs and
//! one takes back jobs whose worker's lease ran out, in this process or any
//! other (`upkeep.rs`).

mod config;
mod feed;
mod pull;
mod report;
mod run;
mod upkeep;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use config::{WorkerConfig, WorkerConfigError};

use super::metrics;
use super::model::{JobId, Lease, WorkerId};
use super::registry;
use super::scaling::{Slots, scale_loop};
use super::store::JobStore;
use run::Dispatch;

/// How long shutdown waits for the outcomes of finished jobs to reach the
/// store after the runners have stopped.
const REPORT_GRACE: Duration = Duration::from_secs(5);

/// A running worker pool; stopped by [`WorkerPool::shutdown`] (or dropped:
/// then it stops claiming, lets the jobs it has started finish, and leaves
/// any it could not finish to their leases).
pub struct WorkerPool {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    /// The claimer, the sweeper and the scaler.
    tasks: Vec<JoinHandle<()>>,
    runners: Vec<JoinHandle<()>>,
    reporter: Option<JoinHandle<()>>,
    /// Jobs handed out and not yet taken by a runner.
    dispatch: Dispatch,
}

struct Shared {
    store: Arc<dyn JobStore>,
    config: WorkerConfig,
    worker: WorkerId,
    slots: Arc<Slots>,
    /// What each runner runs now, by runner.
    running: Box<[Running]>,
    /// Claimed by this pool, not yet handed to a runner.
    prefetched: Mutex<HashMap<JobId, Lease, foldhash::fast::RandomState>>,
}

/// A runner's job, as the rest of the pool sees it.
#[derive(Default)]
struct Running {
    /// The lease of the job it runs now.
    lease: Mutex<Option<Lease>>,
    /// Signalled when that lease was found taken over: the body stops (its
    /// outcome would be refused, and another worker runs it now).
    lost: tokio::sync::Notify,
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
    /// [`WorkerConfigError::SharedJobName`] when linked jobs share a name,
    /// [`WorkerConfigError::LeaseShorterThanTimeout`] when heartbeats are
    /// off and a linked job may outlive its lease.
    pub fn start(
        store: Arc<dyn JobStore>,
        config: WorkerConfig,
    ) -> Result<WorkerPool, WorkerConfigError> {
        config.check()?;
        registry::check().map_err(|names| WorkerConfigError::SharedJobName { names })?;
        config.check_timeouts(registry::specs())?;
        metrics::describe();
        let floor = config.min_concurrency.unwrap_or(config.concurrency);
        let ceiling = config.concurrency;
        let shared = Arc::new(Shared {
            store,
            slots: Arc::new(Slots::new(floor, ceiling)),
            config,
            worker: WorkerId::fresh(),
            running: (0..ceiling).map(|_| Running::default()).collect(),
            prefetched: Mutex::new(HashMap::default()),
        });
        let (stop, stopped) = watch::channel(false);
        // Every job in the channel holds a slot, so it never holds more
        // than the ceiling and a send never waits.
        let (hand_out, dispatch) = mpsc::channel(ceiling);
        let dispatch: Dispatch = Arc::new(tokio::sync::Mutex::new(dispatch));
        let (ended, reports) = mpsc::unbounded_channel();
        let mut tasks = vec![tokio::spawn(upkeep::sweep_loop(
            Arc::clone(&shared),
            stopped.clone(),
        ))];
        let runners = if shared.store.in_process() {
            // Each runner claims its own jobs: no claimer, no reporter.
            drop(hand_out);
            (0..ceiling)
                .map(|index| {
                    tokio::spawn(pull::runner(Arc::clone(&shared), index, stopped.clone()))
                })
                .collect()
        } else {
            tasks.push(tokio::spawn(feed::claim_loop(
                Arc::clone(&shared),
                hand_out,
                stopped.clone(),
            )));
            (0..ceiling)
                .map(|index| {
                    tokio::spawn(run::runner(
                        Arc::clone(&shared),
                        index,
                        Arc::clone(&dispatch),
                        ended.clone(),
                    ))
                })
                .collect()
        };
        drop(ended);
        let reporter = tokio::spawn(report::reporter(Arc::clone(&shared.store), reports));
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
        if shared.config.heartbeats {
            tokio::spawn(upkeep::heartbeat_loop(Arc::clone(&shared), stopped));
        }
        Ok(WorkerPool {
            shared,
            stop,
            tasks,
            runners,
            reporter: Some(reporter),
            dispatch,
        })
    }

    /// This process's worker id.
    pub fn worker_id(&self) -> &WorkerId {
        &self.shared.worker
    }

    /// Jobs in flight: handed to a runner, running, or ended with the
    /// outcome on its way to the store.
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
        // The claimer has stopped and closed the channel, or the runners
        // claim for themselves and have seen the stop: each runner ends once
        // the jobs it was handed, or claimed, are done.
        let mut runners = std::mem::take(&mut self.runners);
        let finished =
            tokio::time::timeout(grace, futures_util::future::join_all(runners.iter_mut())).await;
        if finished.is_err() {
            for runner in &runners {
                runner.abort();
            }
            for runner in runners {
                let _ = runner.await;
            }
            self.hand_back_unfinished().await;
        }
        // The reporter ends once every runner has (the last sender gone).
        if let Some(mut reporter) = self.reporter.take()
            && tokio::time::timeout(REPORT_GRACE, &mut reporter)
                .await
                .is_err()
        {
            reporter.abort();
            tracing::warn!(
                "the outcomes of some finished jobs did not reach the store in time; their leases will run out and they run again"
            );
        }
    }

    /// After the runners were stopped: what they ran and what was handed
    /// out to none of them goes back to the store.
    async fn hand_back_unfinished(&self) {
        let mut left = self.shared.running_leases(Option::take);
        {
            let mut dispatch = self.dispatch.lock().await;
            while let Ok(handed) = dispatch.try_recv() {
                left.push(handed.job.lease);
            }
        }
        for lease in left {
            self.shared.hand_back(&lease).await;
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Shared {
    /// Hands a claimed job back to the store unrun (its attempt not
    /// counted), for any worker to take at once.
    async fn hand_back(&self, lease: &Lease) {
        if let Err(error) = self.store.release(lease).await {
            tracing::warn!(job = %lease.id, %error, "could not hand a job back; its lease will run out");
        }
    }

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

    /// Records what runner `index` runs (`None`: nothing).
    fn set_running(&self, index: usize, lease: Option<Lease>) {
        *self.running[index]
            .lease
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = lease;
    }

    /// Stops the body of the job whose lease is `lost`, if a runner still
    /// runs it. (A runner that is between jobs misses the signal, which is
    /// then about nothing; a runner about to wait for it is told again at
    /// the next heartbeat.)
    fn lease_lost(&self, lost: &Lease) {
        for running in &*self.running {
            let current = running
                .lease
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .is_some_and(|lease| lease == lost);
            if current {
                running.lost.notify_waiters();
            }
        }
    }

    /// The leases of the jobs the runners run, each read (or taken) by
    /// `read` under its runner's lock.
    fn running_leases(&self, read: impl Fn(&mut Option<Lease>) -> Option<Lease>) -> Vec<Lease> {
        self.running
            .iter()
            .filter_map(|running| {
                read(&mut running.lease.lock().unwrap_or_else(PoisonError::into_inner))
            })
            .collect()
    }

    /// The leases this pool must keep alive: running and claimed ahead.
    fn held_leases(&self) -> Vec<Lease> {
        let mut leases = self.running_leases(|lease| lease.clone());
        leases.extend(
            self.prefetched
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .values()
                .cloned(),
        );
        leases
    }
}
