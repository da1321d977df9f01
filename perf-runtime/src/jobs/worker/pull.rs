//! Runners that claim for themselves, for a store whose calls stay in this
//! process ([`JobStore::in_process`](super::super::store::JobStore::in_process)):
//! each runner takes a slot, claims one job, runs it, records its outcome
//! and claims the next, and waits for work only when the store has none.
//! No claimer or reporter stands between: every hop between tasks may
//! wake a sleeping thread through the kernel, which costs several times
//! more than the in-process store call it would carry (with a claimer and
//! a reporter, the memory store's jobs cost about 5 µs each, most of it
//! threads parked and woken). A job that succeeded is recorded and the
//! next claimed in one store call (one lock), and the runner keeps its
//! slot for that next job.

use std::ops::ControlFlow;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, watch};

use super::super::metrics;
use super::super::model::Claimed;
use super::super::registry::JobOutcome;
use super::Shared;
use super::feed::{claim_failed, wait_for_work};
use super::report::{finished, label, record_one};
use super::run::{Ended, run};

/// A claimed job and the slot it holds.
type Next = (Claimed, OwnedSemaphorePermit);

/// Runner `index`: claims and runs jobs one at a time until the pool stops
/// (the job it runs then still finishes, as with the other runners).
pub(super) async fn runner(shared: Arc<Shared>, index: usize, mut stopped: watch::Receiver<bool>) {
    let mut failures = 0u32;
    let mut next: Option<Next> = None;
    loop {
        let (job, slot) = match next.take() {
            // Claimed with the last completion as the pool stopped: back
            // to the store unrun, as shutdown hands back what has not
            // started.
            Some((job, _slot)) if *stopped.borrow() => {
                shared.hand_back(&job.lease).await;
                return;
            }
            Some(next) => next,
            None => match claim_one(&shared, &mut stopped, &mut failures).await {
                ControlFlow::Continue(Some(next)) => next,
                ControlFlow::Continue(None) => continue,
                ControlFlow::Break(()) => return,
            },
        };
        shared.set_running(index, Some(job.lease.clone()));
        let ended = run(&shared, index, job, slot).await;
        shared.set_running(index, None);
        if ended.outcome == JobOutcome::Done && !*stopped.borrow() {
            next = complete_and_claim_next(&shared, ended).await;
        } else {
            record_one(&*shared.store, ended).await;
        }
    }
}

/// Takes a slot and claims a job with it. With none to claim, waits for
/// work (or the stop) and answers `Continue(None)`, as after a failed
/// claim; `Break` once the pool stops.
async fn claim_one(
    shared: &Shared,
    stopped: &mut watch::Receiver<bool>,
    failures: &mut u32,
) -> ControlFlow<(), Option<Next>> {
    if *stopped.borrow() {
        return ControlFlow::Break(());
    }
    let permit = tokio::select! {
        permit = Arc::clone(shared.slots.semaphore()).acquire_owned() => permit,
        changed = stopped.changed() => match changed {
            Ok(()) => return ControlFlow::Continue(None),
            Err(_) => return ControlFlow::Break(()),
        },
    };
    let Ok(permit) = permit else {
        return ControlFlow::Break(());
    };
    let config = &shared.config;
    let claimed = shared
        .store
        .claim(&shared.worker, &config.queues, 1, config.lease)
        .await;
    match claimed {
        Ok(mut jobs) => {
            *failures = 0;
            match jobs.pop() {
                Some(job) => {
                    metrics::busy(shared.slots.busy());
                    ControlFlow::Continue(Some((job, permit)))
                }
                None => {
                    drop(permit);
                    idle(shared, stopped).await;
                    ControlFlow::Continue(None)
                }
            }
        }
        Err(error) => {
            drop(permit);
            claim_failed(shared, &error, failures, stopped).await;
            ControlFlow::Continue(None)
        }
    }
}

/// Records that the job of `ended` succeeded and claims the next one for
/// its slot, in one store call. With no next job the slot is freed (the
/// runner's next claim finds the queues empty and waits for work).
async fn complete_and_claim_next(shared: &Shared, ended: Ended) -> Option<Next> {
    let config = &shared.config;
    let answer = shared
        .store
        .complete_and_claim(
            &ended.lease,
            &shared.worker,
            &config.queues,
            1,
            config.lease,
        )
        .await;
    let (fenced, mut claimed) = match answer {
        Ok((fenced, claimed)) => (Ok(fenced), claimed),
        Err(error) => (Err(error), Vec::new()),
    };
    finished(&ended, label(fenced, "succeeded"));
    let job = claimed.pop()?;
    Some((job, ended.slot))
}

/// The runner has no job: the busy gauge moves (when a runner starts or
/// stops being busy, not at every job of a busy runner), then it waits for
/// work or the stop.
async fn idle(shared: &Shared, stopped: &mut watch::Receiver<bool>) {
    metrics::busy(shared.slots.busy());
    wait_for_work(shared, stopped).await;
}
