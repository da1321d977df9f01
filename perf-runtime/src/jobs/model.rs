//! What a job is: its id, priority, retry policy, and the record a store
//! keeps for it.

use std::borrow::Cow;
use std::fmt;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

/// A job's id, given by the store when it accepts the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct JobId(pub u64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Higher runs first; FIFO within one priority.
///
/// The named levels are `critical` (30), `high` (20), `normal` (10, the
/// default) and `low` (0); any `i16` may be given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Priority(pub i16);

impl Priority {
    /// 30.
    pub const CRITICAL: Priority = Priority(30);
    /// 20.
    pub const HIGH: Priority = Priority(20);
    /// 10, the default.
    pub const NORMAL: Priority = Priority(10);
    /// 0.
    pub const LOW: Priority = Priority(0);

    /// The metric label: the level's name, or `other` for another number
    /// (labels stay bounded).
    pub fn label(self) -> &'static str {
        match self {
            Priority::CRITICAL => "critical",
            Priority::HIGH => "high",
            Priority::NORMAL => "normal",
            Priority::LOW => "low",
            _ => "other",
        }
    }
}

impl Default for Priority {
    fn default() -> Self {
        Priority::NORMAL
    }
}

/// The wait before retry `n` (the first retry is `n = 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Backoff {
    /// `base × 2ⁿ⁻¹`, capped at `cap`, with full jitter (a uniform wait
    /// between zero and that), so retries of many jobs do not line up.
    Exponential {
        /// The first retry's ceiling.
        base: Duration,
        /// The largest ceiling.
        cap: Duration,
    },
    /// The same wait every time.
    Fixed(Duration),
    /// `step × n`, capped at `cap`.
    Linear {
        /// Added per retry.
        step: Duration,
        /// The largest wait.
        cap: Duration,
    },
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::Exponential {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(300),
        }
    }
}

impl Backoff {
    /// The wait before retry `retry` (1-based), `unit` in `[0, 1)` drawing
    /// the jitter.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        match *self {
            Backoff::Exponential { base, cap } => {
                let doubling = 2u32.saturating_pow(retry.saturating_sub(1).min(31));
                let ceiling = base.saturating_mul(doubling).min(cap);
                ceiling.mul_f64(unit.clamp(0.0, 1.0))
            }
            Backoff::Fixed(wait) => wait,
            Backoff::Linear { step, cap } => step.saturating_mul(retry).min(cap),
        }
    }
}

/// How a job type runs: what `#[async_job]` fixes at compile time, or a
/// caller builds for [`Jobs::enqueue_raw`](super::Jobs::enqueue_raw).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct JobSpec {
    /// The name workers find the handler by.
    pub name: &'static str,
    /// The queue it goes to.
    pub queue: &'static str,
    /// Its priority.
    pub priority: Priority,
    /// Retries after the first attempt before the job is dead.
    pub max_retries: u32,
    /// The wait between attempts.
    pub backoff: Backoff,
    /// One attempt's time limit.
    pub timeout: Duration,
    /// How long after enqueueing the job may first run.
    pub delay: Duration,
}

impl JobSpec {
    /// Used by the expansion of `#[async_job]`.
    #[doc(hidden)]
    #[allow(clippy::too_many_arguments)]
    pub const fn __from_attribute(
        name: &'static str,
        queue: &'static str,
        priority: Priority,
        max_retries: u32,
        backoff: Backoff,
        timeout: Duration,
        delay: Duration,
    ) -> Self {
        JobSpec {
            name,
            queue,
            priority,
            max_retries,
            backoff,
            timeout,
            delay,
        }
    }

    /// A spec with the defaults: queue `default`, priority normal, 3
    /// retries, exponential backoff from 1 s to 5 min, 30 s timeout.
    pub const fn new(name: &'static str) -> Self {
        JobSpec {
            name,
            queue: "default",
            priority: Priority::NORMAL,
            max_retries: 3,
            backoff: Backoff::Exponential {
                base: Duration::from_secs(1),
                cap: Duration::from_secs(300),
            },
            timeout: Duration::from_secs(30),
            delay: Duration::ZERO,
        }
    }
}

/// A job as handed to a store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewJob {
    /// The handler's name (borrowed from the `#[async_job]`'s spec when
    /// enqueued through it: no copy per job).
    pub name: Cow<'static, str>,
    /// The queue (borrowed as the name is).
    pub queue: Cow<'static, str>,
    /// The priority.
    pub priority: Priority,
    /// The arguments, MessagePack-encoded.
    pub payload: Vec<u8>,
    /// Not before this time.
    pub run_at: SystemTime,
    /// Attempts allowed in all (retries + 1).
    pub max_attempts: u32,
    /// The wait between attempts.
    pub backoff: Backoff,
    /// One attempt's time limit.
    pub timeout: Duration,
    /// While a job with this key is pending (queued, scheduled, running or
    /// waiting to retry), enqueueing another returns the pending one's id.
    pub unique_key: Option<String>,
}

impl NewJob {
    /// A job of `spec` with these encoded arguments, due at `run_at`.
    pub fn from_spec(
        spec: &JobSpec,
        payload: Vec<u8>,
        run_at: SystemTime,
        unique_key: Option<String>,
    ) -> Self {
        NewJob {
            name: Cow::Borrowed(spec.name),
            queue: Cow::Borrowed(spec.queue),
            priority: spec.priority,
            payload,
            run_at,
            max_attempts: spec.max_retries.saturating_add(1),
            backoff: spec.backoff,
            timeout: spec.timeout,
            unique_key,
        }
    }
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum JobState {
    /// Waiting for a worker (its time has come).
    Available,
    /// Waiting for its time (delayed, retrying after a backoff, snoozed).
    Scheduled,
    /// Leased to a worker.
    Running,
    /// Done.
    Completed,
    /// Out of attempts, or not runnable: in the dead-letter queue.
    Dead,
}

impl JobState {
    /// Not yet done or dead.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            JobState::Available | JobState::Scheduled | JobState::Running
        )
    }

    /// Its lowercase name (metrics, SQL).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Available => "available",
            JobState::Scheduled => "scheduled",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Dead => "dead",
        }
    }
}

/// What a store knows of a job.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// Its id.
    pub id: JobId,
    /// As enqueued.
    pub job: NewJob,
    /// Its state.
    pub state: JobState,
    /// Attempts started (a rescue after a lost worker counts as one).
    pub attempts: u32,
    /// Times a lease ran out (the worker died or stalled) and the job was
    /// taken back.
    pub rescues: u32,
    /// The last attempt's error, or why the job is dead.
    pub last_error: Option<String>,
    /// When it was enqueued.
    pub enqueued_at: SystemTime,
    /// When it completed or died.
    pub finished_at: Option<SystemTime>,
}

/// A worker's right to run a job until `lease_until`: the fencing token
/// every later call about the job must show.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The job.
    pub id: JobId,
    /// Unique per claim: a worker whose lease was taken over holds an old
    /// token, and the store refuses it.
    pub token: u64,
}

/// A job a worker has claimed.
#[derive(Clone, Debug)]
pub struct Claimed {
    /// The job as stored (its `attempts` includes this one).
    pub record: JobRecord,
    /// The lease to show on heartbeat, completion and failure.
    pub lease: Lease,
}

/// A worker: unique per process start, so a restarted process never takes
/// over leases as if it were its predecessor.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WorkerId(pub String);

impl WorkerId {
    /// `host:pid:random`, fresh for this process start.
    pub fn fresh() -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".to_owned());
        WorkerId(format!("{host}:{}:{:016x}", std::process::id(), rand_u64()))
    }
}

impl fmt::Display for WorkerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A random u64 from the standard library's randomly seeded hasher (no
/// extra dependency for a worker id and lease tokens).
pub(crate) fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_backoff_doubles_up_to_its_cap_under_full_jitter() {
        let backoff = Backoff::Exponential {
            base: Duration::from_millis(100),
            cap: Duration::from_secs(1),
        };
        assert_eq!(backoff.delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(backoff.delay(3, 1.0), Duration::from_millis(400));
        assert_eq!(backoff.delay(30, 1.0), Duration::from_secs(1));
        assert_eq!(backoff.delay(3, 0.5), Duration::from_millis(200));
        assert_eq!(backoff.delay(3, 0.0), Duration::ZERO);
        let linear = Backoff::Linear {
            step: Duration::from_secs(2),
            cap: Duration::from_secs(5),
        };
        assert_eq!(linear.delay(2, 0.3), Duration::from_secs(4));
        assert_eq!(linear.delay(9, 0.3), Duration::from_secs(5));
    }

    #[test]
    fn worker_ids_differ_per_start() {
        assert_ne!(WorkerId::fresh(), WorkerId::fresh());
    }
}
