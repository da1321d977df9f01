//! Recurring jobs: a job stored at every time of a cron expression, once
//! per time however many processes run the same schedule.
//!
//! Every process computes the same run times from the expression (UTC,
//! second precision). When one is due, it asks the store to store the run
//! *and* move the schedule's "last run" forward in one atomic step
//! ([`JobStore::enqueue_recurring`]); a process that comes second finds
//! the run taken and stores nothing. Clocks that differ by a little only
//! change which process stores a run, not how many times it is stored.
//!
//! Runs whose time passed while no scheduler ran are not caught up. When
//! the store cannot be reached, the scheduler keeps trying the due run
//! every second; several runs missed meanwhile collapse into the latest.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use croner::Cron;

use super::enqueue::{Enqueue, JobError};
use super::model::{JobSpec, NewJob};
use super::registry;
use super::store::JobStore;
use crate::monitor::names;

/// How long a scheduler sleeps at most between looks at the clock, so a
/// clock set forward or back is noticed.
const MAX_SLEEP: Duration = Duration::from_secs(60);
/// The wait before trying a due run again after the store refused it.
const RETRY_AFTER_ERROR: Duration = Duration::from_secs(1);

/// A named cron schedule and the job stored at each of its times.
#[derive(Clone)]
pub struct Schedule {
    name: String,
    expression: String,
    cron: Arc<Cron>,
    job: NewJob,
}

impl std::fmt::Debug for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schedule")
            .field("name", &self.name)
            .field("expression", &self.expression)
            .field("job", &self.job.name)
            .finish()
    }
}

/// Why a schedule could not be made or added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleError {
    /// The expression does not parse.
    #[error(
        "schedule `{name}`: `{expression}` is not a cron expression ({reason}); expected 5 \
         fields (minute hour day-of-month month day-of-week) or 6 with seconds first, \
         e.g. \"0 */5 * * * *\" for every five minutes"
    )]
    Expression {
        /// The schedule.
        name: String,
        /// What was given.
        expression: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The expression parses but names no time that ever comes.
    #[error("schedule `{name}`: `{expression}` never runs (no time after now matches it)")]
    Never {
        /// The schedule.
        name: String,
        /// What was given.
        expression: String,
    },
    /// Its job could not be encoded.
    #[error("schedule `{name}`: {source}")]
    Job {
        /// The schedule.
        name: String,
        /// Why.
        source: JobError,
    },
    /// A schedule of that name runs already in this job system.
    #[error("a schedule named `{0}` runs already; remove it first or pick another name")]
    Duplicate(String),
}

impl Schedule {
    /// `job` (its arguments fixed now) stored at every time of
    /// `expression`: 5 fields (`min hour dom month dow`) or 6 with
    /// seconds first, in UTC. `name` identifies the schedule across
    /// processes: processes running a schedule of the same name store each
    /// run once between them.
    ///
    /// # Errors
    ///
    /// [`ScheduleError::Expression`] or [`ScheduleError::Never`] for the
    /// expression, [`ScheduleError::Job`] when the arguments do not encode.
    pub fn new<A>(
        name: impl Into<String>,
        expression: &str,
        job: Enqueue<A>,
    ) -> Result<Self, ScheduleError>
    where
        A: serde::Serialize + Send + 'static,
    {
        let name = name.into();
        match job.to_job() {
            Ok(job) => Self::from_job(name, expression, job),
            Err(source) => Err(ScheduleError::Job { name, source }),
        }
    }

    /// The schedule of an `#[async_job(cron = "…")]` function (no
    /// arguments), named after the job.
    pub(super) fn for_spec(
        spec: &'static JobSpec,
        expression: &str,
    ) -> Result<Self, ScheduleError> {
        let payload = registry::encode(&()).map_err(|reason| ScheduleError::Job {
            name: spec.name.to_owned(),
            source: JobError::Encode {
                name: spec.name,
                reason,
            },
        })?;
        let job = NewJob::from_spec(spec, payload, SystemTime::now(), None);
        Self::from_job(spec.name.to_owned(), expression, job)
    }

    fn from_job(name: String, expression: &str, job: NewJob) -> Result<Self, ScheduleError> {
        let cron: Cron = expression
            .parse()
            .map_err(
                |error: croner::errors::CronError| ScheduleError::Expression {
                    name: name.clone(),
                    expression: expression.to_owned(),
                    reason: error.to_string(),
                },
            )?;
        let schedule = Schedule {
            name,
            expression: expression.to_owned(),
            cron: Arc::new(cron),
            job,
        };
        if schedule.next_after(Utc::now()).is_none() {
            return Err(ScheduleError::Never {
                name: schedule.name,
                expression: schedule.expression,
            });
        }
        Ok(schedule)
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its cron expression, as given.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    /// The name of the job it stores.
    pub fn job_name(&self) -> &str {
        &self.job.name
    }

    /// The first run time after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&after, false).ok()
    }

    /// The latest run time in `(after, now]`, if any.
    fn latest_due(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&now, true)
            .ok()
            .filter(|&due| due > after)
    }

    /// Runs the schedule on `store` until the task is aborted.
    pub(super) async fn run(self, store: Arc<dyn JobStore>) {
        let mut after = Utc::now();
        loop {
            let now = Utc::now();
            let mut retry = false;
            if let Some(due) = self.latest_due(after, now) {
                if self.store_run(&*store, due).await {
                    after = due;
                } else {
                    retry = true;
                }
            }
            let wake = if retry {
                now + RETRY_AFTER_ERROR
            } else {
                self.next_after(after).unwrap_or(now + MAX_SLEEP)
            };
            let sleep = (wake - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            tokio::time::sleep(sleep.min(MAX_SLEEP)).await;
        }
    }

    /// Stores the run due at `due` unless another process did; false when
    /// the store could not be asked.
    async fn store_run(&self, store: &dyn JobStore, due: DateTime<Utc>) -> bool {
        let fire_at = SystemTime::from(due);
        let mut job = self.job.clone();
        job.run_at = fire_at;
        let (outcome, stored) = match store.enqueue_recurring(&self.name, fire_at, job).await {
            Ok(Some(_)) => ("enqueued", true),
            Ok(None) => ("taken", true),
            Err(error) => {
                tracing::warn!(
                    schedule = %self.name,
                    run = %due,
                    %error,
                    "a recurring job's run could not be stored; trying again in 1 s"
                );
                ("failed", false)
            }
        };
        metrics::counter!(
            names::JOBS_RECURRING,
            "schedule" => self.name.clone(),
            "outcome" => outcome
        )
        .increment(1);
        stored
    }
}

/// The schedules of every linked `#[async_job(cron = "…")]` function.
pub(super) fn linked() -> Result<Vec<Schedule>, ScheduleError> {
    registry::recurring()
        .into_iter()
        .filter_map(|handler| {
            handler
                .cron
                .map(|cron| Schedule::for_spec(handler.spec, cron))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn schedule(expression: &str) -> Result<Schedule, ScheduleError> {
        let spec: &'static JobSpec = Box::leak(Box::new(JobSpec::new("report")));
        let job = NewJob::from_spec(spec, Vec::new(), SystemTime::now(), None);
        Schedule::from_job("nightly".to_owned(), expression, job)
    }

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 29, h, m, s).unwrap()
    }

    #[test]
    fn a_bad_expression_names_the_schedule_the_text_and_the_expected_form() {
        let error = schedule("every night").unwrap_err().to_string();
        assert!(error.contains("schedule `nightly`"), "{error}");
        assert!(error.contains("`every night`"), "{error}");
        assert!(error.contains("6 with seconds first"), "{error}");
    }

    #[test]
    fn an_expression_no_date_matches_is_refused() {
        let error = schedule("0 0 0 30 2 *").unwrap_err();
        assert!(matches!(error, ScheduleError::Never { .. }), "{error}");
    }

    #[test]
    fn five_fields_run_on_the_minute_and_six_on_the_second() {
        let minutes = schedule("*/5 * * * *").unwrap();
        assert_eq!(minutes.next_after(at(3, 1, 30)), Some(at(3, 5, 0)));
        let seconds = schedule("*/10 * * * * *").unwrap();
        assert_eq!(seconds.next_after(at(3, 1, 30)), Some(at(3, 1, 40)));
    }

    #[test]
    fn missed_runs_collapse_into_the_latest_and_none_is_due_twice() {
        let every_minute = schedule("0 * * * * *").unwrap();
        // Three runs passed since 03:00:30: only the latest is due.
        assert_eq!(
            every_minute.latest_due(at(3, 0, 30), at(3, 3, 10)),
            Some(at(3, 3, 0))
        );
        // Once handled, it is not due again before the next.
        assert_eq!(every_minute.latest_due(at(3, 3, 0), at(3, 3, 59)), None);
        assert_eq!(
            every_minute.latest_due(at(3, 3, 0), at(3, 4, 0)),
            Some(at(3, 4, 0))
        );
    }
}
