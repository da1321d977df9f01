//! How a worker pool runs, and the checks of those settings.

use std::time::Duration;

use super::super::model::JobSpec;

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
    /// Whether running jobs' leases are extended every `heartbeat` (the
    /// default: a job may then run longer than its lease). Off, no job may
    /// outlive its lease: the pool refuses to start when a linked job of
    /// its queues has a `timeout` above `lease` less one `heartbeat` (the
    /// longest a claimed job may wait to start), and a job stored with a
    /// longer timeout ([`Jobs::enqueue_raw`](super::super::Jobs::enqueue_raw))
    /// is stopped at that bound. It saves a store write per running job
    /// per heartbeat.
    pub heartbeats: bool,
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
            heartbeats: true,
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
    /// Without heartbeats, a linked job of the pool's queues may run longer
    /// than the pool can hold its lease: another worker would take it over
    /// while it still runs here.
    #[error(
        "job `{job}` may run {timeout:?} (its `timeout`), but without heartbeats this pool holds a job for at most {limit:?} (`lease` {lease:?} less one `heartbeat`): raise `lease`, shorten the job's `timeout`, or keep `heartbeats` on"
    )]
    LeaseShorterThanTimeout {
        /// The job's name.
        job: &'static str,
        /// Its `timeout`.
        timeout: Duration,
        /// The pool's `lease`.
        lease: Duration,
        /// The longest run the pool allows.
        limit: Duration,
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

    /// The longest a job may run in this pool: unbounded with heartbeats;
    /// without, the lease less one heartbeat (a claimed job may wait that
    /// long to start before its lease is confirmed again).
    pub(super) fn longest_run(&self) -> Option<Duration> {
        (!self.heartbeats).then(|| self.lease.saturating_sub(self.heartbeat))
    }

    /// Checks that every job of `specs` on this pool's queues can end
    /// within [`longest_run`](Self::longest_run).
    ///
    /// # Errors
    ///
    /// [`WorkerConfigError::LeaseShorterThanTimeout`] naming the first job
    /// (by name) that cannot.
    pub(super) fn check_timeouts<'a>(
        &self,
        specs: impl IntoIterator<Item = &'a JobSpec>,
    ) -> Result<(), WorkerConfigError> {
        let Some(limit) = self.longest_run() else {
            return Ok(());
        };
        let first_too_long = specs
            .into_iter()
            .filter(|spec| spec.timeout > limit && self.queues.iter().any(|q| q == spec.queue))
            .min_by_key(|spec| spec.name);
        match first_too_long {
            None => Ok(()),
            Some(spec) => Err(WorkerConfigError::LeaseShorterThanTimeout {
                job: spec.name,
                timeout: spec.timeout,
                lease: self.lease,
                limit,
            }),
        }
    }
}
