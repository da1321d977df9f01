//! Enqueueing: what calling an `#[async_job]` function returns, and the
//! handle to a stored job.

use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use futures_util::future::BoxFuture;
use serde::Serialize;

use super::Jobs;
use super::model::{JobId, JobRecord, JobSpec, JobState, NewJob};
use super::registry::{self, JobOutcome};
use super::store::StoreError;

/// Why a job could not be enqueued (or waited for).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The store did not take the job: it does not exist.
    #[error("job `{name}` was not enqueued: {source}")]
    NotStored {
        /// The job's name.
        name: &'static str,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The arguments could not be encoded.
    #[error("job `{name}` arguments do not encode: {reason}")]
    Encode {
        /// The job's name.
        name: &'static str,
        /// The encoder's message.
        reason: String,
    },
    /// A unique key format names something the arguments do not have.
    #[error("job `{name}`: unique key: {reason}")]
    UniqueKey {
        /// The job's name.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Asking the store about the job failed.
    #[error("job {id}: status unavailable: {source}")]
    Status {
        /// The job.
        id: JobId,
        /// The store's error.
        #[source]
        source: StoreError,
    },
    /// The store no longer has the job (finished long ago, or purged).
    #[error("job {id} is unknown to the store (finished long ago, or purged)")]
    Unknown {
        /// The job.
        id: JobId,
    },
    /// The job ended in the dead-letter queue.
    #[error("job {id} is dead: {reason}")]
    Dead {
        /// The job.
        id: JobId,
        /// Its last error.
        reason: String,
    },
    /// Two or more linked `#[async_job]` functions go by this job's name:
    /// a worker could not tell which body to run.
    #[error(
        "job `{name}` was not enqueued: several #[async_job] functions go by this name; give each a distinct `name = \"…\"`"
    )]
    SharedName {
        /// The job's name.
        name: &'static str,
    },
    /// [`JobHandle::wait_for`] gave up: the job had not finished.
    #[error(
        "job {id} still {state} after waiting {waited:?} (is a worker serving its queue `{queue}`?)"
    )]
    WaitTimedOut {
        /// The job.
        id: JobId,
        /// How long it was waited for.
        waited: Duration,
        /// Its state when the wait ended (`available`, `scheduled`, `running`).
        state: &'static str,
        /// Its queue.
        queue: String,
    },
    /// An inline run failed.
    #[error("job `{name}` failed inline: {reason}")]
    Inline {
        /// The job's name.
        name: &'static str,
        /// How it ended.
        reason: String,
    },
}

/// A stored job: its id, and a way to wait for it.
#[derive(Clone, Debug)]
pub struct JobHandle {
    id: JobId,
    duplicate: bool,
    jobs: Jobs,
}

impl JobHandle {
    pub(super) fn new(id: JobId, duplicate: bool, jobs: Jobs) -> Self {
        JobHandle {
            id,
            duplicate,
            jobs,
        }
    }

    /// The job's id.
    pub fn id(&self) -> JobId {
        self.id
    }

    /// True when a pending job with the same unique key was found: this
    /// handle is that job's.
    pub fn is_duplicate(&self) -> bool {
        self.duplicate
    }

    /// The job's record as the store has it now.
    ///
    /// # Errors
    ///
    /// [`JobError::Status`] if the store cannot be asked.
    pub async fn status(&self) -> Result<Option<JobRecord>, JobError> {
        self.jobs
            .store()
            .get(self.id)
            .await
            .map_err(|source| JobError::Status {
                id: self.id,
                source,
            })
    }

    /// Waits until the job completes (`Ok`) or dies (`Err(Dead)`), asking
    /// the store every 5 ms at first, backing off to every 500 ms. It waits
    /// as long as that takes: forever if no worker serves the job's queue
    /// (a process that only enqueues). [`wait_for`](Self::wait_for) bounds
    /// the wait.
    ///
    /// # Errors
    ///
    /// [`JobError::Dead`] with its last error, [`JobError::Unknown`],
    /// [`JobError::Status`].
    pub async fn wait(&self) -> Result<JobRecord, JobError> {
        let mut every = Duration::from_millis(5);
        loop {
            match self.status().await? {
                Some(record) if record.state == JobState::Completed => return Ok(record),
                Some(record) if record.state == JobState::Dead => {
                    return Err(JobError::Dead {
                        id: self.id,
                        reason: record.last_error.unwrap_or_default(),
                    });
                }
                Some(_) => {}
                None => return Err(JobError::Unknown { id: self.id }),
            }
            tokio::time::sleep(every).await;
            every = (every * 2).min(Duration::from_millis(500));
        }
    }

    /// As [`wait`](Self::wait), giving up after `limit`.
    ///
    /// # Errors
    ///
    /// Those of [`wait`](Self::wait), and [`JobError::WaitTimedOut`] with
    /// the job's state and queue when `limit` passed first.
    pub async fn wait_for(&self, limit: Duration) -> Result<JobRecord, JobError> {
        if let Ok(finished) = tokio::time::timeout(limit, self.wait()).await {
            return finished;
        }
        let record = self
            .status()
            .await?
            .ok_or(JobError::Unknown { id: self.id })?;
        Err(JobError::WaitTimedOut {
            id: self.id,
            waited: limit,
            state: record.state.as_str(),
            queue: record.job.queue.into_owned(),
        })
    }
}

/// A job about to be enqueued: what calling an `#[async_job]` function
/// returns. `.await` it to store the job; set a time or a delay first, or
/// run it here instead:
///
/// ```ignore
/// let handle = send_welcome(user_id).await?;                    // enqueue
/// send_welcome(user_id).delay(Duration::from_secs(60)).await?;  // later
/// send_welcome(user_id).inline().await?;                        // run now, here
/// ```
#[must_use = "a job is enqueued only when this is awaited"]
pub struct Enqueue<A> {
    spec: &'static JobSpec,
    args: A,
    run: fn(A) -> BoxFuture<'static, JobOutcome>,
    unique_key: Option<String>,
    run_at: Option<SystemTime>,
    jobs: Option<Jobs>,
}

impl<A> std::fmt::Debug for Enqueue<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enqueue")
            .field("job", &self.spec.name)
            .field("run_at", &self.run_at)
            .finish_non_exhaustive()
    }
}

impl<A: Serialize + Send + 'static> Enqueue<A> {
    /// Used by the expansion of `#[async_job]`.
    #[doc(hidden)]
    pub fn new(
        spec: &'static JobSpec,
        args: A,
        run: fn(A) -> BoxFuture<'static, JobOutcome>,
        unique_key: Option<String>,
    ) -> Self {
        Enqueue {
            spec,
            args,
            run,
            unique_key,
            run_at: None,
            jobs: None,
        }
    }

    /// Runs no earlier than `at`.
    pub fn at(mut self, at: SystemTime) -> Self {
        self.run_at = Some(at);
        self
    }

    /// Runs no earlier than `delay` from now (instead of the attribute's
    /// `delay`).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.run_at = Some(SystemTime::now() + delay);
        self
    }

    /// Enqueues into `jobs` instead of the process's job system.
    pub fn on(mut self, jobs: &Jobs) -> Self {
        self.jobs = Some(jobs.clone());
        self
    }

    /// Runs the body here and now, without a store or a worker (tests,
    /// scripts). No retries, no timeout.
    ///
    /// # Errors
    ///
    /// [`JobError::Inline`] with the body's error.
    pub async fn inline(self) -> Result<(), JobError> {
        match (self.run)(self.args).await {
            JobOutcome::Done => Ok(()),
            JobOutcome::Snooze(wait) => Err(JobError::Inline {
                name: self.spec.name,
                reason: format!("asked to be run again in {wait:?}"),
            }),
            JobOutcome::Failed(reason) | JobOutcome::Malformed(reason) => Err(JobError::Inline {
                name: self.spec.name,
                reason,
            }),
        }
    }

    /// The job's name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The job as the store will get it.
    pub(super) fn to_job(&self) -> Result<NewJob, JobError> {
        if registry::is_shared(self.spec.name) {
            return Err(JobError::SharedName {
                name: self.spec.name,
            });
        }
        let payload = registry::encode(&self.args).map_err(|reason| JobError::Encode {
            name: self.spec.name,
            reason,
        })?;
        let run_at = self
            .run_at
            .unwrap_or_else(|| SystemTime::now() + self.spec.delay);
        Ok(NewJob::from_spec(
            self.spec,
            payload,
            run_at,
            self.unique_key.clone(),
        ))
    }
}

impl<A: Serialize + Send + 'static> IntoFuture for Enqueue<A> {
    type Output = Result<JobHandle, JobError>;
    type IntoFuture = Pin<Box<dyn Future<Output = Self::Output> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        let job = self.to_job();
        let jobs = self.jobs.unwrap_or_else(super::global);
        let name = self.spec.name;
        Box::pin(async move { jobs.enqueue_job(name, job?).await })
    }
}

/// Renders a unique key format: `{arg}` is replaced by that argument's
/// value (its `Display`), `{{` and `}}` are literal braces. The expansion
/// checks the names at compile time; this only substitutes.
#[doc(hidden)]
pub fn unique_key(job: &str, parts: &[(&str, &dyn std::fmt::Display)], format: &str) -> String {
    let mut key = String::with_capacity(job.len() + format.len() + 16);
    key.push_str(job);
    key.push(':');
    let mut rest = format;
    while let Some(open) = rest.find(['{', '}']) {
        key.push_str(&rest[..open]);
        let tail = &rest[open..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            key.push_str(&tail[..1]);
            rest = &tail[2..];
        } else if let (true, Some(close)) = (tail.starts_with('{'), tail.find('}')) {
            let name = &tail[1..close];
            if let Some((_, value)) = parts.iter().find(|(part, _)| *part == name) {
                key.push_str(&value.to_string());
            }
            rest = &tail[close + 1..];
        } else {
            key.push_str(&tail[..1]);
            rest = &tail[1..];
        }
    }
    key.push_str(rest);
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_keys_substitute_arguments_and_escape_braces() {
        let user = 42;
        let kind = "welcome";
        let key = unique_key(
            "send_email",
            &[("user", &user), ("kind", &kind)],
            "{user}/{kind}/{{x}}",
        );
        assert_eq!(key, "send_email:42/welcome/{x}");
    }
}
