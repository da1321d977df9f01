//! The runners: long-lived tasks, one per slot the pool may have, each
//! taking the next job handed out, running its body under its timeout with
//! panics caught, and passing what ended to the reporter. [`run`], one
//! attempt, is shared with the runners that claim for themselves
//! (`pull.rs`).

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{Notify, OwnedSemaphorePermit, mpsc};

use super::super::metrics;
use super::super::model::{Backoff, Claimed, JobRecord, Lease, NewJob, Priority};
use super::super::registry::{self, JobOutcome};
use super::Shared;

/// A job handed to the runners with the slot it holds.
pub(super) struct Handed {
    pub(super) job: Claimed,
    pub(super) permit: OwnedSemaphorePermit,
}

/// The runners' shared end of the hand-out channel.
pub(super) type Dispatch = Arc<tokio::sync::Mutex<mpsc::Receiver<Handed>>>;

/// An attempt that ended, for the reporter to record.
pub(super) struct Ended {
    pub(super) lease: Lease,
    pub(super) queue: Cow<'static, str>,
    pub(super) priority: Priority,
    /// Attempts so far, this one included.
    pub(super) attempts: u32,
    pub(super) backoff: Backoff,
    pub(super) outcome: JobOutcome,
    pub(super) ran: Duration,
    /// The job's slot, freed once the outcome is in the store: a job whose
    /// body ran is in flight until then (a crash now runs it again), and
    /// the pool never has more jobs in flight than slots.
    pub(super) slot: OwnedSemaphorePermit,
}

/// Runner `index`: runs jobs until the hand-out channel is closed and
/// empty. The outcome, with the job's slot, goes to the reporter.
pub(super) async fn runner(
    shared: Arc<Shared>,
    index: usize,
    dispatch: Dispatch,
    report: mpsc::UnboundedSender<Ended>,
) {
    loop {
        let next = dispatch.lock().await.recv().await;
        let Some(Handed { job, permit }) = next else {
            return;
        };
        shared.set_running(index, Some(job.lease.clone()));
        let ended = run(&shared, index, job, permit).await;
        shared.set_running(index, None);
        if let Err(refused) = report.send(ended) {
            // The reporter is gone (a store that panicked in it): record
            // here rather than stop running jobs.
            super::report::record_one(&*shared.store, refused.0).await;
        }
    }
}

/// One attempt of `job` on runner `index`.
pub(super) async fn run(
    shared: &Shared,
    index: usize,
    job: Claimed,
    slot: OwnedSemaphorePermit,
) -> Ended {
    let Claimed { record, lease } = job;
    let JobRecord {
        job:
            NewJob {
                name,
                queue,
                priority,
                payload,
                run_at,
                backoff,
                timeout,
                ..
            },
        attempts,
        ..
    } = record;
    let waited = SystemTime::now().duration_since(run_at).unwrap_or_default();
    metrics::started(&queue, priority, waited);
    // quanta reads the CPU's counter: a few ns, against tens for the
    // system clock, read several times per job already.
    let started = quanta::Instant::now();
    // Without heartbeats a job stored with a longer timeout than the pool
    // can hold it (an `enqueue_raw`) is stopped before its lease runs out.
    let timeout = shared
        .config
        .longest_run()
        .map_or(timeout, |longest| timeout.min(longest));
    let lost = &shared.running[index].lost;
    let outcome = match registry::handler(&name) {
        Some(handler) => guarded((handler.run)(&payload), timeout, lost).await,
        None => {
            let reason = format!(
                "no #[async_job] named `{name}` in this binary (it knows: {})",
                registry::names().join(", ")
            );
            tracing::warn!(job = %lease.id, reason, "job moved to the dead-letter queue");
            JobOutcome::Malformed(reason)
        }
    };
    Ended {
        lease,
        queue,
        priority,
        attempts,
        backoff,
        outcome,
        ran: started.elapsed(),
        slot,
    }
}

/// Runs `body` with panics caught, stopped after `timeout` or when `lost`
/// is signalled. The timer and the signal are set only if the body does not
/// end at its first poll: a timer takes a lock on tokio's timer wheel to
/// set and another to cancel, and many jobs (a no-op, a cache write) end
/// at once.
async fn guarded(
    body: BoxFuture<'static, JobOutcome>,
    timeout: Duration,
    lost: &Notify,
) -> JobOutcome {
    let mut body = std::pin::pin!(AssertUnwindSafe(body).catch_unwind());
    let ended = match futures_util::poll!(body.as_mut()) {
        std::task::Poll::Ready(ended) => ended,
        std::task::Poll::Pending => tokio::select! {
            // From the first poll's end: that poll took no time worth
            // counting against a limit of seconds.
            ended = tokio::time::timeout(timeout, body) => match ended {
                Ok(ended) => ended,
                Err(_) => return JobOutcome::Failed(format!("timed out after {timeout:?}")),
            },
            // Recorded as a failure, which the store refuses (the lease
            // is another worker's): counted as `lease_lost`.
            () = lost.notified() => return JobOutcome::Failed("stopped: its lease was taken over".to_owned()),
        },
    };
    ended
        .unwrap_or_else(|panic| JobOutcome::Failed(format!("panicked: {}", panic_message(&*panic))))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".to_owned())
}
