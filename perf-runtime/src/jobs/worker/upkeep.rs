//! The pool's upkeep: leases of running jobs kept alive, and jobs whose
//! worker's lease ran out taken back.

use std::sync::Arc;

use tokio::sync::watch;

use super::super::metrics;
use super::super::store::Fenced;
use super::Shared;

/// Extends the lease of every job running in (or claimed ahead by) this
/// pool, every heartbeat: one loop for the pool rather than a task per job.
pub(super) async fn heartbeat_loop(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let every = shared.config.heartbeat;
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stopped.changed() => {}
        }
        // After a stop, running jobs still finish within the grace period
        // (or are handed back): keep their leases until the pool is empty.
        let leases = shared.held_leases();
        if *stopped.borrow() && leases.is_empty() {
            return;
        }
        for lease in leases {
            match shared.store.heartbeat(&lease, shared.config.lease).await {
                Ok(Fenced::Accepted) => {}
                Ok(Fenced::Stale) => {
                    tracing::warn!(job = %lease.id, "job lease lost (taken over by another worker); its body here is stopped");
                    shared.lease_lost(&lease);
                }
                Err(error) => tracing::warn!(job = %lease.id, %error, "heartbeat failed"),
            }
        }
    }
}

pub(super) async fn sweep_loop(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
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
