//! The reporter: records in the store how each attempt ended. Successes
//! that piled up while the previous report was on its way go in one
//! [`complete_many`](JobStore::complete_many) call (one lock, one round
//! trip); failures, snoozes and dead letters, rarer and each with its own
//! data, go one call each, side by side. Each job's slot is freed once its
//! outcome is recorded.

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::mpsc;

use super::super::metrics;
use super::super::model::{Lease, rand_u64};
use super::super::registry::JobOutcome;
use super::super::store::{AfterFailure, Fenced, JobStore, StoreError};
use super::run::Ended;

/// The most outcomes recorded in one step.
const MAX_REPORT: usize = 1024;

/// Records outcomes until every runner has stopped.
pub(super) async fn reporter(store: Arc<dyn JobStore>, mut ended: mpsc::UnboundedReceiver<Ended>) {
    let mut batch = Vec::with_capacity(MAX_REPORT);
    while ended.recv_many(&mut batch, MAX_REPORT).await > 0 {
        record(&*store, &mut batch).await;
    }
}

/// Records the outcomes of `batch` (emptied), then frees their slots.
async fn record(store: &dyn JobStore, batch: &mut Vec<Ended>) {
    let (done, other): (Vec<Ended>, Vec<Ended>) = batch
        .drain(..)
        .partition(|ended| ended.outcome == JobOutcome::Done);
    if !done.is_empty() {
        let leases: Vec<Lease> = done.iter().map(|ended| ended.lease.clone()).collect();
        match store.complete_many(&leases).await {
            Ok(answers) => {
                for (ended, answer) in done.iter().zip(answers) {
                    finished(ended, label(Ok(answer), "succeeded"));
                }
            }
            Err(error) => {
                tracing::warn!(jobs = done.len(), %error, "could not record that jobs succeeded; their leases will run out and they run again");
                for ended in &done {
                    finished(ended, "store_error");
                }
            }
        }
    }
    futures_util::future::join_all(other.into_iter().map(|ended| record_one(store, ended))).await;
}

/// Records one outcome with its own store call (no batch to build: a
/// store that completes in process, or a reporter that is gone), then
/// frees its slot.
pub(super) async fn record_one(store: &dyn JobStore, ended: Ended) {
    let outcome = outcome_of(store, &ended).await;
    finished(&ended, outcome);
}

/// Records one attempt's outcome in the store; its outcome label.
async fn outcome_of(store: &dyn JobStore, ended: &Ended) -> &'static str {
    let lease = &ended.lease;
    match &ended.outcome {
        JobOutcome::Done => label(store.complete(lease).await, "succeeded"),
        JobOutcome::Snooze(wait) => label(
            store.snooze(lease, SystemTime::now() + *wait).await,
            "snoozed",
        ),
        JobOutcome::Malformed(reason) => label(store.bury(lease, reason).await, "dead"),
        JobOutcome::Failed(error) => {
            // The claim counted this attempt: after attempt n comes retry n.
            let wait = ended.backoff.delay(ended.attempts.max(1), unit_random());
            match store
                .fail(lease, error, Some(SystemTime::now() + wait))
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
    }
}

pub(super) fn finished(ended: &Ended, outcome: &'static str) {
    metrics::finished(&ended.queue, ended.priority, outcome, ended.ran);
}

/// The outcome label of a fenced call.
pub(super) fn label(result: Result<Fenced, StoreError>, accepted: &'static str) -> &'static str {
    match result {
        Ok(Fenced::Accepted) => accepted,
        Ok(Fenced::Stale) => "lease_lost",
        Err(error) => {
            tracing::warn!(%error, "could not record a job's outcome; its lease will run out and it runs again");
            "store_error"
        }
    }
}

fn unit_random() -> f64 {
    (rand_u64() >> 11) as f64 / (1u64 << 53) as f64
}
