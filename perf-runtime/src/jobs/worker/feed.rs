//! The claimer: takes jobs from the store while the pool has free slots
//! and hands each, with its slot, to the runners.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};
use tokio::time::Instant;

use super::super::metrics;
use super::super::model::Claimed;
use super::super::store::{Fenced, StoreError};
use super::Shared;
use super::run::Handed;

pub(super) async fn claim_loop(
    shared: Arc<Shared>,
    hand_out: mpsc::Sender<Handed>,
    mut stopped: watch::Receiver<bool>,
) {
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
                    drop(permit);
                    claim_failed(&shared, &error, &mut failures, &mut stopped).await;
                    continue;
                }
            }
        }
        let Some((claimed_at, job)) = buffer.pop_front() else {
            // Nothing claimed: wait for work. Only an empty claim waits:
            // one that came back short may have skipped rows another
            // process's claim had locked (PostgreSQL), with jobs left.
            drop(permit);
            wait_for_work(&shared, &mut stopped).await;
            continue;
        };
        hand_out_if_still_leased(&shared, &hand_out, claimed_at, job, permit).await;
        while !buffer.is_empty() {
            let Ok(permit) = Arc::clone(shared.slots.semaphore()).try_acquire_owned() else {
                break;
            };
            if let Some((claimed_at, job)) = buffer.pop_front() {
                hand_out_if_still_leased(&shared, &hand_out, claimed_at, job, permit).await;
            }
        }
        metrics::busy(shared.slots.busy());
    }
    // Claimed but never handed out: back to the store for any worker.
    for (_, job) in buffer {
        shared.unprefetch(job.lease.id);
        shared.hand_back(&job.lease).await;
    }
}

/// Waits until the store signals work (or `idle_poll` passes), or the
/// pool stops.
pub(super) async fn wait_for_work(shared: &Shared, stopped: &mut watch::Receiver<bool>) {
    tokio::select! {
        () = shared.store.wait_for_work(shared.config.idle_poll) => {}
        _ = stopped.changed() => {}
    }
}

/// After a claim that failed (the `failures`th in a row, counted here):
/// logs it and waits before the next try, longer after each failure in a
/// row (100 ms doubling to 3.2 s), or until the pool stops.
pub(super) async fn claim_failed(
    shared: &Shared,
    error: &StoreError,
    failures: &mut u32,
    stopped: &mut watch::Receiver<bool>,
) {
    *failures = failures.saturating_add(1);
    tracing::warn!(store = shared.store.kind(), %error, "claiming jobs failed; retrying");
    let wait = Duration::from_millis(100).saturating_mul(1 << (*failures).min(5));
    let _ = tokio::time::timeout(wait, stopped.changed()).await;
}

/// Hands a job claimed ahead to the runners, unless its lease was taken
/// over while it waited: a process that stalled past its leases (a pause,
/// a frozen VM) must not run bodies another worker already runs. A job
/// claimed less than a heartbeat ago goes at once; an older one is
/// confirmed (and its lease extended) by a heartbeat first.
async fn hand_out_if_still_leased(
    shared: &Shared,
    hand_out: &mpsc::Sender<Handed>,
    claimed_at: Instant,
    job: Claimed,
    permit: OwnedSemaphorePermit,
) {
    shared.unprefetch(job.lease.id);
    if claimed_at.elapsed() >= shared.config.heartbeat {
        match shared
            .store
            .heartbeat(&job.lease, shared.config.lease)
            .await
        {
            Ok(Fenced::Accepted) => {}
            Ok(Fenced::Stale) => {
                tracing::warn!(job = %job.lease.id, "a job claimed ahead was taken over while it waited; not run here");
                metrics::finished(
                    &job.record.job.queue,
                    job.record.job.priority,
                    "lease_lost",
                    Duration::ZERO,
                );
                return;
            }
            Err(error) => {
                // Unknown whether it is still ours: leave it to its lease.
                tracing::warn!(job = %job.lease.id, %error, "could not confirm the lease of a job claimed ahead; not run here");
                return;
            }
        }
    }
    // The channel holds at most as many jobs as there are slots: this
    // never waits, and fails only when every runner has stopped.
    if let Err(refused) = hand_out.send(Handed { job, permit }).await {
        let lease = refused.0.job.lease;
        tracing::warn!(job = %lease.id, "no runner left to run a claimed job; handing it back");
        let _ = shared.store.release(&lease).await;
    }
}
