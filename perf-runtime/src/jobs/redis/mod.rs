//! [`RedisStore`]: jobs kept in Redis, surviving restarts of the workers.
//!
//! Layout, every key under the prefix `{namespace}:` (the braces are a hash
//! tag: a Redis Cluster keeps the whole store in one slot, so the scripts
//! below may touch any of its keys):
//!
//! | key                | type | holds                                          |
//! |--------------------|------|------------------------------------------------|
//! | `job:<id>`         | hash | one job's record                               |
//! | `ready:<queue>`    | zset | runnable ids, by `-priority · 2³⁷ + sequence`  |
//! | `scheduled`        | zset | ids waiting for their time, by `run_at` (ms)   |
//! | `running`          | zset | leased ids, by lease deadline (ms)             |
//! | `dead`, `dead:<q>` | zset | dead ids, by order of death (all, per queue)   |
//! | `unique`           | hash | unique key → pending id                        |
//! | `n:scheduled`, `n:running` | hash | queue → count (for `depths`)          |
//! | `queues`, `paused` | set  | queue names seen, paused queue names           |
//! | `seq:*`            | int  | ids, tokens, ready and death sequences         |
//!
//! Every change touching more than one key is one Lua script, so a crash or
//! a concurrent caller never sees a job half moved (in two sets, or none).
//! Lease deadlines and "now" come from the Redis server's clock, so workers
//! with skewed clocks agree on when a lease ran out.
//!
//! A script that makes a job runnable, or schedules one, publishes once on
//! the channel `wake` (under the prefix): idle workers of every process
//! subscribe to it and claim at once, as PostgreSQL's `LISTEN` does for
//! that store. Jobs that come due later wake their workers by time: a claim
//! that finds too few jobs answers when the next scheduled one is due. Pub/sub delivers at
//! most once, so a worker still looks again after `idle_poll` (a wake-up
//! lost in a reconnect costs at most that).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use fred::bytes::Bytes;
use fred::interfaces::{HashesInterface, SetsInterface};
use fred::prelude::Client;
use fred::types::Value;
use tokio::sync::{Notify, watch};

use super::model::{Claimed, JobId, JobRecord, JobState, Lease, NewJob, WorkerId, rand_u64};
use super::store::{AfterFailure, Enqueued, Fenced, JobStore, QueueDepth, StoreError};
use crate::backends::redis_subscribe::{Delivery, follow};

/// Expired leases taken back per script run: one run blocks Redis for its
/// duration, so a large backlog is handled in several short runs.
const RESCUE_BATCH: usize = 1_000;
/// Dead jobs deleted per script run (same reason).
const PURGE_BATCH: usize = 1_000;
/// Largest millisecond value handed to Lua, whose numbers are doubles.
const MAX_MS: u64 = 1 << 52;
/// Arguments per job of the enqueue script.
const ENQUEUE_WIDTH: usize = 9;

mod scripts;
use scripts::{
    BURY, CLAIM, COMPLETE, COMPLETE_MANY, DEPTHS, ENQUEUE, ENQUEUE_RECURRING, FAIL, GIVE_BACK,
    HEARTBEAT, LIST_DEAD, PURGE_DEAD, REQUEUE_DEAD, RESCUE, RESUME,
};

/// Jobs kept in Redis: they survive a restart of the process (or of every
/// worker), and any number of processes may enqueue and work them.
///
/// Keeps the [`JobStore`] contract with the same semantics as
/// [`MemoryStore`](super::MemoryStore). Completed records are kept for 24
/// hours (without their payload); dead ones until purged.
///
/// Commands go through the client given: with the runtime's client (see
/// [`from_perf`](Self::from_perf)) they share its command timeout, so a
/// script that timed out on the client side may still have run (a claim
/// whose answer was lost comes back once its lease runs out).
pub struct RedisStore {
    client: Client,
    prefix: String,
    /// Wakes this process's waiting workers: on its own enqueues, and on
    /// the `wake` messages of every process.
    work: Arc<Notify>,
    /// When the next scheduled job is due, as the last claim found it
    /// (measured from the claim's answer, so clock skew between this host
    /// and Redis does not matter).
    next_due: Mutex<Option<Instant>>,
    /// Started by the first wait for work; dropping it stops the
    /// subscription.
    wake_subscription: OnceLock<watch::Sender<bool>>,
    /// This store's mark on the wake-ups its enqueues publish: it wakes its
    /// own workers at once, so their echo is ignored (it would send each
    /// idle pool a claim that finds nothing, a round trip per job when jobs
    /// arrive one at a time).
    origin: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on `client` (connected, or connecting: calls fail with
    /// [`StoreError::Unavailable`] until it is) keeping every key under
    /// `{namespace}:`. Stores with different namespaces are independent; an
    /// empty namespace means `perf:jobs`.
    pub fn new(client: Client, namespace: impl Into<String>) -> RedisStore {
        let mut namespace = namespace.into();
        if namespace.is_empty() {
            // `{}` is no hash tag: the keys would spread over cluster slots.
            namespace = "perf:jobs".to_owned();
        }
        RedisStore {
            client,
            prefix: format!("{{{namespace}}}:"),
            work: Arc::new(Notify::new()),
            next_due: Mutex::new(None),
            wake_subscription: OnceLock::new(),
            origin: format!("{:016x}", rand_u64()),
        }
    }

    /// A store on the runtime's Redis connection (`REDIS_URL`), or `None`
    /// when Redis is not configured.
    pub fn from_perf(perf: &crate::Perf, namespace: impl Into<String>) -> Option<RedisStore> {
        perf.redis_client()
            .map(|client| RedisStore::new(client, namespace))
    }

    async fn run(&self, script: &'static str, args: Vec<Value>) -> Result<Value, StoreError> {
        crate::backends::redis_script::run(&self.client, script, self.prefix.as_str(), args)
            .await
            .map_err(unavailable)
    }

    /// Follows the `wake` channel on a connection of its own, once per
    /// store: each message, or a gap in them, wakes a waiting worker.
    fn follow_wakes(&self) {
        self.wake_subscription.get_or_init(|| {
            let (stop, stopped) = watch::channel(false);
            let work = Arc::clone(&self.work);
            let origin = self.origin.clone();
            let wake = move |delivery: Delivery| {
                let echo = matches!(&delivery, Delivery::Message(Some(from)) if *from == origin);
                if !echo {
                    work.notify_one();
                }
                std::future::ready(())
            };
            tokio::spawn(follow(
                self.client.clone_new(),
                self.wake_channel(),
                "job store wake-ups",
                stopped,
                wake,
            ));
            stop
        });
    }

    fn wake_channel(&self) -> String {
        format!("{}wake", self.prefix)
    }

    /// How long an idle worker may wait: `within`, cut to when the next
    /// scheduled job is due.
    fn idle_wait(&self, within: Duration) -> Duration {
        match *self.next_due.lock().unwrap_or_else(PoisonError::into_inner) {
            Some(due) => within.min(due.saturating_duration_since(Instant::now())),
            None => within,
        }
    }

    /// A script about a claimed job answering 1 (done) or 0 (stale).
    async fn fenced(&self, script: &'static str, args: Vec<Value>) -> Result<Fenced, StoreError> {
        Ok(match integer(&self.run(script, args).await?)? {
            0 => Fenced::Stale,
            _ => Fenced::Accepted,
        })
    }
}

fn unavailable(error: fred::error::Error) -> StoreError {
    // The kind and the server's words; fred's errors for commands carry no
    // URL or password.
    StoreError::Unavailable {
        store: "redis",
        message: format!("{}: {}", error.kind().to_str(), error.details()),
    }
}

fn corrupt(message: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        store: "redis",
        message: message.into(),
    }
}

/// Milliseconds since the epoch, rounded up: a job never runs before its
/// time.
fn ms(at: SystemTime) -> u64 {
    let nanos = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    u64::try_from(nanos.div_ceil(1_000_000))
        .unwrap_or(MAX_MS)
        .min(MAX_MS)
}

fn duration_ms(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos().div_ceil(1_000_000))
        .unwrap_or(MAX_MS)
        .min(MAX_MS)
}

fn time(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn text(value: impl ToString) -> Value {
    Value::from(value.to_string())
}

fn integer(value: &Value) -> Result<i64, StoreError> {
    value
        .as_i64()
        .ok_or_else(|| corrupt(format!("expected an integer reply, got {value:?}")))
}

fn lease_args(lease: &Lease) -> Vec<Value> {
    vec![text(lease.id.0), text(lease.token)]
}

/// A job hash's fields, as `HGETALL` (or a script) returned them.
struct Fields(HashMap<String, Value>);

impl Fields {
    fn from_reply(reply: Value) -> Result<Fields, StoreError> {
        if reply.is_null() {
            return Ok(Fields(HashMap::new()));
        }
        let mut items = reply.into_array().into_iter();
        let mut fields = HashMap::new();
        while let Some(name) = items.next() {
            let name = name
                .as_string()
                .ok_or_else(|| corrupt("a job field without a name"))?;
            let value = items
                .next()
                .ok_or_else(|| corrupt(format!("job field {name} without a value")))?;
            fields.insert(name, value);
        }
        Ok(Fields(fields))
    }

    fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.0.get(name).and_then(Value::as_bytes)
    }

    fn optional_number(&self, name: &str) -> Result<Option<u64>, StoreError> {
        self.bytes(name)
            .map(|bytes| {
                std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .ok_or_else(|| corrupt(format!("job field {name} is not a number")))
            })
            .transpose()
    }

    fn number(&self, name: &str) -> Result<u64, StoreError> {
        self.optional_number(name)?
            .ok_or_else(|| corrupt(format!("job field {name} is missing")))
    }

    fn small(&self, name: &str) -> Result<u32, StoreError> {
        u32::try_from(self.number(name)?)
            .map_err(|_| corrupt(format!("job field {name} is out of range")))
    }

    fn record(&self) -> Result<JobRecord, StoreError> {
        let id = JobId(self.number("id")?);
        let mut job: NewJob = rmp_serde::from_slice(
            self.bytes("job")
                .ok_or_else(|| corrupt(format!("job {id} has no spec")))?,
        )
        .map_err(|e| corrupt(format!("job {id}: {e}")))?;
        job.payload = self
            .bytes("payload")
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        job.run_at = time(self.number("run_at")?);
        let state = match self.bytes("state") {
            Some(b"available") => JobState::Available,
            Some(b"scheduled") => JobState::Scheduled,
            Some(b"running") => JobState::Running,
            Some(b"completed") => JobState::Completed,
            Some(b"dead") => JobState::Dead,
            other => {
                return Err(corrupt(format!(
                    "job {id} has the unknown state {:?}",
                    other.map(String::from_utf8_lossy)
                )));
            }
        };
        Ok(JobRecord {
            id,
            job,
            state,
            attempts: self.small("attempts")?,
            rescues: self.small("rescues")?,
            last_error: self
                .bytes("last_error")
                .map(|bytes| String::from_utf8_lossy(bytes).into_owned()),
            enqueued_at: time(self.number("enqueued_at")?),
            finished_at: self.optional_number("finished_at")?.map(time),
        })
    }
}

/// A job as the enqueue scripts take it ([`ENQUEUE_WIDTH`] values).
fn job_arguments(mut job: NewJob, now: SystemTime) -> Result<[Value; ENQUEUE_WIDTH], StoreError> {
    let payload = std::mem::take(&mut job.payload);
    let spec = rmp_serde::to_vec(&job)
        .map_err(|e| corrupt(format!("cannot encode job {}: {e}", job.name)))?;
    // A job due on the local clock is marked due: the server's clock may be
    // a little behind (and `ms` rounds up), which would leave it waiting.
    let due = job.run_at <= now;
    Ok([
        Value::from(job.queue.into_owned()),
        text(job.priority.0),
        text(ms(job.run_at)),
        text(job.max_attempts),
        Value::from(if job.unique_key.is_some() { "1" } else { "0" }),
        Value::from(job.unique_key.unwrap_or_default()),
        Value::Bytes(Bytes::from(spec)),
        Value::Bytes(Bytes::from(payload)),
        Value::from(if due { "1" } else { "0" }),
    ])
}

/// An `id, duplicate` pair of an enqueue script's reply.
fn enqueued(pair: &[Value]) -> Result<Enqueued, StoreError> {
    Ok(Enqueued {
        id: JobId(integer(&pair[0])? as u64),
        duplicate: integer(&pair[1])? == 1,
    })
}

fn record(reply: Value) -> Result<JobRecord, StoreError> {
    Fields::from_reply(reply)?.record()
}

#[async_trait]
impl JobStore for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, StoreError> {
        self.enqueue_batch(vec![job])
            .await?
            .pop()
            .ok_or_else(|| corrupt("enqueue answered nothing"))
    }

    async fn enqueue_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, StoreError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let expected = jobs.len();
        let now = SystemTime::now();
        // Everything is encoded before anything is sent: all or none.
        let mut args = Vec::with_capacity(1 + expected * ENQUEUE_WIDTH);
        args.push(Value::from(self.origin.as_str()));
        for job in jobs {
            args.extend(job_arguments(job, now)?);
        }
        let reply = self.run(ENQUEUE, args).await?.into_array();
        if reply.len() != 2 * expected {
            return Err(corrupt(format!(
                "enqueue of {expected} jobs answered {} values",
                reply.len()
            )));
        }
        let stored = reply
            .chunks(2)
            .map(enqueued)
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.work.notify_one();
        Ok(stored)
    }

    async fn enqueue_recurring(
        &self,
        schedule: &str,
        fire_at: SystemTime,
        job: NewJob,
    ) -> Result<Option<Enqueued>, StoreError> {
        let mut args = vec![Value::from(schedule), text(ms(fire_at))];
        args.extend(job_arguments(job, SystemTime::now())?);
        let reply = self.run(ENQUEUE_RECURRING, args).await?.into_array();
        match reply.len() {
            0 => Ok(None),
            2 => {
                self.work.notify_one();
                enqueued(&reply).map(Some)
            }
            n => Err(corrupt(format!("a recurring enqueue answered {n} values"))),
        }
    }

    async fn claim(
        &self,
        worker: &WorkerId,
        queues: &[String],
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        if limit == 0 || queues.is_empty() {
            return Ok(Vec::new());
        }
        let mut args = vec![
            text(limit.min(i64::MAX as usize)),
            text(duration_ms(lease)),
            Value::from(worker.0.as_str()),
        ];
        args.extend(queues.iter().map(|queue| Value::from(queue.as_str())));
        let reply = self.run(CLAIM, args).await?.into_array();
        let mut claimed = Vec::with_capacity(reply.len() / 2);
        let mut items = reply.into_iter();
        let until_due = items
            .next()
            .and_then(|due| due.as_string()?.parse::<i64>().ok())
            .ok_or_else(|| corrupt("a claim without its wait for the next due job"))?;
        *self.next_due.lock().unwrap_or_else(PoisonError::into_inner) = u64::try_from(until_due)
            .ok()
            .map(|ms| Instant::now() + Duration::from_millis(ms));
        while let (Some(token), Some(fields)) = (items.next(), items.next()) {
            let token = token
                .as_string()
                .and_then(|token| token.parse().ok())
                .ok_or_else(|| corrupt("a claim without a token"))?;
            let record = record(fields)?;
            claimed.push(Claimed {
                lease: Lease {
                    id: record.id,
                    token,
                },
                record,
            });
        }
        Ok(claimed)
    }

    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Fenced, StoreError> {
        let mut args = lease_args(lease);
        args.push(text(duration_ms(extend)));
        self.fenced(HEARTBEAT, args).await
    }

    async fn complete(&self, lease: &Lease) -> Result<Fenced, StoreError> {
        self.fenced(COMPLETE, lease_args(lease)).await
    }

    async fn complete_many(&self, leases: &[Lease]) -> Result<Vec<Fenced>, StoreError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let args = leases.iter().flat_map(lease_args).collect();
        let reply = self.run(COMPLETE_MANY, args).await?;
        let answers: Vec<Fenced> = reply
            .into_array()
            .iter()
            .map(|answer| match answer.as_i64() {
                Some(0) => Fenced::Stale,
                _ => Fenced::Accepted,
            })
            .collect();
        if answers.len() != leases.len() {
            return Err(StoreError::Unavailable {
                store: "redis",
                message: format!(
                    "the completion script answered {} of {} jobs",
                    answers.len(),
                    leases.len()
                ),
            });
        }
        Ok(answers)
    }

    async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry_at: Option<SystemTime>,
    ) -> Result<AfterFailure, StoreError> {
        let mut args = lease_args(lease);
        args.push(Value::from(error));
        args.push(retry_at.map_or_else(|| Value::from(""), |at| text(ms(at))));
        let after = match integer(&self.run(FAIL, args).await?)? {
            0 => return Ok(AfterFailure::Stale),
            1 => AfterFailure::Retry(retry_at.unwrap_or_else(SystemTime::now)),
            _ => AfterFailure::Dead,
        };
        self.work.notify_one();
        Ok(after)
    }

    async fn snooze(&self, lease: &Lease, until: SystemTime) -> Result<Fenced, StoreError> {
        let mut args = lease_args(lease);
        args.push(text(ms(until)));
        self.fenced(GIVE_BACK, args).await
    }

    async fn release(&self, lease: &Lease) -> Result<Fenced, StoreError> {
        let mut args = lease_args(lease);
        args.push(Value::from(""));
        let fenced = self.fenced(GIVE_BACK, args).await?;
        self.work.notify_one();
        Ok(fenced)
    }

    async fn bury(&self, lease: &Lease, reason: &str) -> Result<Fenced, StoreError> {
        let mut args = lease_args(lease);
        args.push(Value::from(reason));
        self.fenced(BURY, args).await
    }

    async fn rescue_expired(&self, max_rescues: u32) -> Result<(u64, u64), StoreError> {
        let (mut rescued, mut buried) = (0, 0);
        loop {
            let reply = self
                .run(RESCUE, vec![text(max_rescues), text(RESCUE_BATCH)])
                .await?
                .into_array();
            let [done, dead, seen] = reply.as_slice() else {
                return Err(corrupt(format!("rescue answered {reply:?}")));
            };
            rescued += integer(done)? as u64;
            buried += integer(dead)? as u64;
            if integer(seen)? < RESCUE_BATCH as i64 {
                break;
            }
        }
        if rescued > 0 {
            self.work.notify_one();
        }
        Ok((rescued, buried))
    }

    async fn get(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        let reply: Value = self
            .client
            .hgetall(format!("{}job:{id}", self.prefix))
            .await
            .map_err(unavailable)?;
        let fields = Fields::from_reply(reply)?;
        if fields.0.is_empty() {
            return Ok(None);
        }
        fields.record().map(Some)
    }

    async fn list_dead(
        &self,
        queue: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let args = vec![
            Value::from(if queue.is_some() { "1" } else { "0" }),
            Value::from(queue.unwrap_or_default()),
            text(limit.min(i64::MAX as usize)),
        ];
        self.run(LIST_DEAD, args)
            .await?
            .into_array()
            .into_iter()
            .map(record)
            .collect()
    }

    async fn requeue_dead(&self, id: JobId) -> Result<bool, StoreError> {
        let requeued = integer(&self.run(REQUEUE_DEAD, vec![text(id.0)]).await?)? == 1;
        if requeued {
            self.work.notify_one();
        }
        Ok(requeued)
    }

    async fn purge_dead(&self, queue: Option<&str>) -> Result<u64, StoreError> {
        let mut purged = 0;
        loop {
            let args = vec![
                Value::from(if queue.is_some() { "1" } else { "0" }),
                Value::from(queue.unwrap_or_default()),
                text(PURGE_BATCH),
            ];
            let deleted = integer(&self.run(PURGE_DEAD, args).await?)?;
            purged += deleted as u64;
            if deleted < PURGE_BATCH as i64 {
                return Ok(purged);
            }
        }
    }

    async fn pause(&self, queue: &str) -> Result<(), StoreError> {
        self.client
            .sadd::<(), _, _>(format!("{}paused", self.prefix), queue)
            .await
            .map_err(unavailable)
    }

    async fn resume(&self, queue: &str) -> Result<(), StoreError> {
        self.run(RESUME, vec![Value::from(queue)]).await?;
        self.work.notify_one();
        Ok(())
    }

    async fn depths(&self) -> Result<Vec<QueueDepth>, StoreError> {
        let reply = self.run(DEPTHS, Vec::new()).await?.into_array();
        let count = |value: &Value| integer(value).map(|n| n.max(0) as u64);
        let mut depths = reply
            .chunks(5)
            .map(|row| {
                let [queue, available, scheduled, running, dead] = row else {
                    return Err(corrupt("a short depths row"));
                };
                Ok(QueueDepth {
                    queue: queue
                        .as_string()
                        .ok_or_else(|| corrupt("a queue without a name"))?,
                    available: count(available)?,
                    scheduled: count(scheduled)?,
                    running: count(running)?,
                    dead: count(dead)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        depths.sort_by(|a, b| a.queue.cmp(&b.queue));
        Ok(depths)
    }

    async fn wait_for_work(&self, within: Duration) {
        self.follow_wakes();
        let _ = tokio::time::timeout(self.idle_wait(within), self.work.notified()).await;
    }
}
