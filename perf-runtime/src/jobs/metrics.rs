//! What the job system records. Labels: queue names (set in code, so
//! bounded), priority levels (named levels, `other` for the rest) and
//! outcomes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use metrics::{Counter, Histogram, Label};

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
        metrics::describe_gauge!(
            names::JOBS_WORKERS_LIMIT,
            "Jobs this process may run at once (moves with the queues' depth when scaling)."
        );
        metrics::describe_counter!(
            names::JOBS_RECURRING,
            "Runs of recurring jobs, by schedule and outcome (enqueued, taken, failed)."
        );
    });
}

/// Label sets seen so far and their handles, per thread: a job's series
/// are looked up in the registry once per thread, not per job (a registry
/// look-up with owned labels costs about a microsecond; a job's own work
/// here is less). Per thread rather than one map behind a lock: every
/// worker thread records several series per job, and a shared lock was
/// the most contended one of the job path. Keyed by the queue's hash, the
/// queue kept to tell the (rare) collisions apart.
#[derive(Default)]
struct Handles {
    counters: HashMap<CounterKey, (Box<str>, Counter), foldhash::fast::RandomState>,
    histograms: HashMap<(&'static str, u64), (Box<str>, Histogram), foldhash::fast::RandomState>,
}

/// A counter's name, queue hash, priority label and outcome.
type CounterKey = (&'static str, u64, &'static str, &'static str);

thread_local! {
    static HANDLES: RefCell<Handles> = RefCell::default();
}

fn queue_hash(queue: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(queue.as_bytes())
}

/// Adds `by` to a counter. The cached handle is used in place: a clone
/// (and its drop) would touch the handle's shared reference count, a cache
/// line the worker threads would pass back and forth on every job.
fn count(name: &'static str, queue: &str, priority: Priority, outcome: &'static str, by: u64) {
    let make = || {
        let mut labels = vec![
            Label::new("queue", queue.to_owned()),
            Label::new("priority", priority.label()),
        ];
        if !outcome.is_empty() {
            labels.push(Label::new("outcome", outcome));
        }
        metrics::counter!(name, labels)
    };
    // Before `init` settles the recorder, a cached handle would stay bound
    // to the wrong one.
    if !crate::monitor::recorder::settled() {
        return make().increment(by);
    }
    let key = (name, queue_hash(queue), priority.label(), outcome);
    HANDLES.with_borrow_mut(|handles| match handles.counters.get(&key) {
        Some((known, counter)) if **known == *queue => counter.increment(by),
        Some(_) => make().increment(by),
        None => {
            let counter = make();
            counter.increment(by);
            if handles.counters.len() < MAX_SERIES {
                handles.counters.insert(key, (queue.into(), counter));
            }
        }
    });
}

/// Records `value` in a histogram, its handle used in place (see [`count`]).
fn observe(name: &'static str, queue: &str, value: f64) {
    let make = || metrics::histogram!(name, "queue" => queue.to_owned());
    if !crate::monitor::recorder::settled() {
        return make().record(value);
    }
    let key = (name, queue_hash(queue));
    HANDLES.with_borrow_mut(|handles| match handles.histograms.get(&key) {
        Some((known, histogram)) if **known == *queue => histogram.record(value),
        Some(_) => make().record(value),
        None => {
            let histogram = make();
            histogram.record(value);
            if handles.histograms.len() < MAX_SERIES {
                handles.histograms.insert(key, (queue.into(), histogram));
            }
        }
    });
}

/// Handles kept at most per thread (queues are named in code, so this is
/// never near).
const MAX_SERIES: usize = 4096;

pub(super) fn enqueued(queue: &str, priority: Priority, jobs: u64) {
    count(names::JOBS_ENQUEUED, queue, priority, "", jobs);
}

pub(super) fn started(queue: &str, priority: Priority, waited: Duration) {
    count(names::JOBS_STARTED, queue, priority, "", 1);
    observe(names::JOBS_WAIT, queue, waited.as_secs_f64());
}

pub(super) fn finished(queue: &str, priority: Priority, outcome: &'static str, ran: Duration) {
    count(names::JOBS_FINISHED, queue, priority, outcome, 1);
    observe(names::JOBS_RUN, queue, ran.as_secs_f64());
}

pub(super) fn rescued(rescued: u64, buried: u64) {
    metrics::counter!(names::JOBS_RESCUED, "outcome" => "rescued").increment(rescued);
    metrics::counter!(names::JOBS_RESCUED, "outcome" => "dead").increment(buried);
}

pub(super) fn busy(running: usize) {
    metrics::gauge!(names::JOBS_WORKERS_BUSY).set(running as f64);
}

pub(super) fn workers_limit(limit: usize) {
    metrics::gauge!(names::JOBS_WORKERS_LIMIT).set(limit as f64);
}

pub(super) fn depth(queue: &str, state: &'static str, jobs: u64) {
    metrics::gauge!(names::JOBS_QUEUE_DEPTH, "queue" => queue.to_owned(), "state" => state)
        .set(jobs as f64);
}
