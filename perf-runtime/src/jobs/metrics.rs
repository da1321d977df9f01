//! What the job system records. Labels: queue names (set in code, so
//! bounded), priority levels (named levels, `other` for the rest) and
//! outcomes.

use std::time::Duration;

use super::model::Priority;
use crate::monitor::names;

pub(super) fn describe() {
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    DESCRIBED.call_once(|| {
        metrics::describe_counter!(names::JOBS_ENQUEUED, "Jobs stored, by queue and priority.");
        metrics::describe_counter!(names::JOBS_STARTED, "Job attempts started.");
        metrics::describe_counter!(
            names::JOBS_FINISHED,
            "Job attempts ended, by outcome (succeeded, retried, dead, snoozed, lease_lost)."
        );
        metrics::describe_counter!(
            names::JOBS_RESCUED,
            "Jobs taken back after their worker's lease ran out (rescued or dead)."
        );
        metrics::describe_gauge!(names::JOBS_QUEUE_DEPTH, "Jobs per queue and state.");
        metrics::describe_histogram!(
            names::JOBS_WAIT,
            metrics::Unit::Seconds,
            "Time from when a job could run to its start."
        );
        metrics::describe_histogram!(
            names::JOBS_RUN,
            metrics::Unit::Seconds,
            "Job attempt run time."
        );
        metrics::describe_gauge!(names::JOBS_WORKERS_BUSY, "Jobs running in this process.");
    });
}

pub(super) fn enqueued(queue: &str, priority: Priority, count: u64) {
    metrics::counter!(names::JOBS_ENQUEUED, "queue" => queue.to_owned(), "priority" => priority.label())
        .increment(count);
}

pub(super) fn started(queue: &str, priority: Priority, waited: Duration) {
    metrics::counter!(names::JOBS_STARTED, "queue" => queue.to_owned(), "priority" => priority.label())
        .increment(1);
    metrics::histogram!(names::JOBS_WAIT, "queue" => queue.to_owned()).record(waited.as_secs_f64());
}

pub(super) fn finished(queue: &str, priority: Priority, outcome: &'static str, ran: Duration) {
    metrics::counter!(
        names::JOBS_FINISHED,
        "queue" => queue.to_owned(),
        "priority" => priority.label(),
        "outcome" => outcome
    )
    .increment(1);
    metrics::histogram!(names::JOBS_RUN, "queue" => queue.to_owned()).record(ran.as_secs_f64());
}

pub(super) fn rescued(rescued: u64, buried: u64) {
    metrics::counter!(names::JOBS_RESCUED, "outcome" => "rescued").increment(rescued);
    metrics::counter!(names::JOBS_RESCUED, "outcome" => "dead").increment(buried);
}

pub(super) fn busy(running: usize) {
    metrics::gauge!(names::JOBS_WORKERS_BUSY).set(running as f64);
}

pub(super) fn depth(queue: &str, state: &'static str, jobs: u64) {
    metrics::gauge!(names::JOBS_QUEUE_DEPTH, "queue" => queue.to_owned(), "state" => state)
        .set(jobs as f64);
}
