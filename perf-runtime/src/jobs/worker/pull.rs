//! Runners that claim for themselves, for a store whose calls stay in this
//! process ([`JobStore::in_process`](super::super::store::JobStore::in_process)):
//! each runner takes a slot, claims one job, runs it, records its outcome
//! and claims the next, and waits for work only when the store has none.
//! No claimer or reporter stands between: every hop between tasks may
//! wake a sleeping thread through the kernel, which costs several times
//! more than the in-process store call it would carry (with a claimer and
//! a reporter, the memory store's jobs cost about 5 µs each, most of it
//! threads parked and woken).

use std::sync::Arc;

use tokio::sync::watch;

use super::super::metrics;
use super::Shared;
use super::feed::claim_failed;
use super::report::record_one;
use super::run::run;

/// Runner `index`: claims and runs jobs one at a time until the pool stops
/// (the job it runs then still finishes, as with the other runners).
pub(super) async fn runner(shared: Arc<Shared>, index: usize, mut stopped: watch::Receiver<bool>) {
    let mut failures = 0u32;
    let mut idle = true;
    while !*stopped.borrow() {
        let permit = tokio::select! {
            permit = Arc::clone(shared.slots.semaphore()).acquire_owned() => permit,
            changed = stopped.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return,
            },
        };
        let Ok(permit) = permit else {
            return;
        };
        let config = &shared.config;
        let claimed = shared
            .store
            .claim(&shared.worker, &config.queues, 1, config.lease)
            .await;
        let job = match claimed {
            Ok(mut jobs) => {
                failures = 0;
                jobs.pop()
            }
            Err(error) => {
                drop(permit);
                claim_failed(&shared, &error, &mut failures, &mut stopped).await;
                continue;
            }
        };
        let Some(job) = job else {
            drop(permit);
            // The gauge moves when a runner starts or stops being busy, not
            // at every job of a busy runner.
            idle = true;
            metrics::busy(shared.slots.busy());
            tokio::select! {
                () = shared.store.wait_for_work(config.idle_poll) => {}
                _ = stopped.changed() => {}
            }
            continue;
        };
        if std::mem::take(&mut idle) {
            metrics::busy(shared.slots.busy());
        }
        shared.set_running(index, Some(job.lease.clone()));
        let ended = run(job, permit, &shared.running[index].lost).await;
        shared.set_running(index, None);
        record_one(&*shared.store, ended).await;
    }
}
