//! [`MemoryStore`]: the embedded default job store.

mod ready;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use tokio::sync::Notify;

use super::model::{Claimed, JobId, JobRecord, JobState, Lease, NewJob, WorkerId};
use super::store::{AfterFailure, Enqueued, Fenced, JobStore, QueueDepth, StoreError};
use ready::{ReadyKey, ReadyQueue};

/// Pending jobs a memory store holds by default.
pub const DEFAULT_CAPACITY: usize = 1_000_000;
/// Finished jobs whose record is kept for status queries and `wait()`.
const FINISHED_KEPT: usize = 10_000;
/// Records the job map is sized for at creation: the finished ones kept
/// and a few thousand pending (16,384 slots). A service that runs more
/// jobs than that reaches this size anyway, and growing to it moves every
/// record (~300 bytes) at each doubling: a third of an enqueue's time in a
/// new store. The slots' memory is reserved, not touched, until used.
const JOBS_PRESIZED: usize = 14_000;

/// Jobs kept in this process's memory.
///
/// **Queued and running jobs are lost when the process exits** (a crash, a
/// deploy, a restart): use the Redis or PostgreSQL store for jobs that must
/// survive one. Within the process it keeps the same contract as the
/// durable stores (priorities, leases, retries, dead letters, unique keys),
/// so code and tests move between stores unchanged. It is bounded: past
/// its capacity of pending jobs, enqueueing fails with an error.
pub struct MemoryStore {
    state: Mutex<State>,
    work: Notify,
    capacity: usize,
}

/// The store's maps are hashed on every enqueue, claim and completion:
/// foldhash, not SipHash (the keys are our own ids and queue names, not
/// an attacker's).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = HashSet<K, foldhash::fast::RandomState>;

#[derive(Default)]
struct State {
    next_id: u64,
    next_token: u64,
    jobs: FastMap<JobId, Entry>,
    /// Where jobs wait to run: apart from `jobs`, so an entry of `jobs`
    /// can be placed in them without being looked up twice.
    waiting: Waiting,
    running: FastSet<JobId>,
    unique: FastMap<String, JobId>,
    /// Dead jobs in the order they died.
    dead: BTreeSet<(u64, JobId)>,
    next_dead_seq: u64,
    /// Completed jobs, oldest first, kept for status queries.
    finished: VecDeque<JobId>,
    paused: FastSet<String>,
    /// The latest run stored per recurring schedule.
    recurring: HashMap<String, SystemTime>,
}

/// Jobs waiting to run, by their ids.
#[derive(Default)]
struct Waiting {
    /// Orders jobs made runnable at the same priority.
    next_ready_seq: u64,
    /// Runnable jobs per queue, highest priority then oldest first.
    ready: FastMap<String, ReadyQueue>,
    /// Jobs waiting for their time, soonest first.
    scheduled: BTreeSet<(SystemTime, JobId)>,
}

impl Waiting {
    /// Puts the job of `record` in its ready queue if `at` has come by
    /// `now`, else among the scheduled jobs, and sets its state to match.
    fn place(&mut self, record: &mut JobRecord, at: SystemTime, now: SystemTime) {
        if at <= now {
            self.next_ready_seq += 1;
            record.state = JobState::Available;
            let queue = &*record.job.queue;
            // The queue's name is copied only for its first ready job.
            let ready = match self.ready.get_mut(queue) {
                Some(ready) => ready,
                None => self.ready.entry(queue.to_owned()).or_default(),
            };
            ready.push(record.job.priority, self.next_ready_seq, record.id);
        } else {
            record.state = JobState::Scheduled;
            record.job.run_at = at;
            self.scheduled.insert((at, record.id));
        }
    }
}

struct Entry {
    record: JobRecord,
    /// Set while running: the token and until when.
    lease: Option<(u64, Instant)>,
    dead_seq: Option<u64>,
}

impl MemoryStore {
    /// A store holding up to [`DEFAULT_CAPACITY`] pending jobs.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A store holding up to `capacity` pending jobs.
    pub fn with_capacity(capacity: usize) -> Self {
        let presized = JOBS_PRESIZED.min(capacity.saturating_add(FINISHED_KEPT));
        let state = State {
            jobs: FastMap::with_capacity_and_hasher(presized, Default::default()),
            ..State::default()
        };
        MemoryStore {
            state: Mutex::new(state),
            work: Notify::new(),
            capacity,
        }
    }

    /// After a claim that left runnable jobs: wakes the next idle worker
    /// for them (an enqueue woke one worker, and each claim passes the
    /// wake-up on while work is left).
    fn wake_if(&self, more: bool) {
        if more {
            self.work.notify_one();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.lock();
        f.debug_struct("MemoryStore")
            .field("jobs", &state.jobs.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl State {
    fn pending(&self) -> usize {
        self.jobs.len() - self.dead.len() - self.finished.len()
    }

    fn insert(&mut self, job: NewJob, now: SystemTime) -> Enqueued {
        if let Some(key) = &job.unique_key
            && let Some(&id) = self.unique.get(key)
        {
            return Enqueued {
                id,
                duplicate: true,
            };
        }
        self.next_id += 1;
        let id = JobId(self.next_id);
        if let Some(key) = &job.unique_key {
            self.unique.insert(key.clone(), id);
        }
        let run_at = job.run_at;
        let mut record = JobRecord {
            id,
            job,
            state: JobState::Scheduled,
            attempts: 0,
            rescues: 0,
            last_error: None,
            enqueued_at: now,
            finished_at: None,
        };
        // Placed before it is moved into the map: no second lookup.
        self.waiting.place(&mut record, run_at, now);
        self.jobs.insert(
            id,
            Entry {
                record,
                lease: None,
                dead_seq: None,
            },
        );
        Enqueued {
            id,
            duplicate: false,
        }
    }

    /// Makes the stored job `id` runnable at `at` (now, or later).
    fn schedule(&mut self, id: JobId, at: SystemTime, now: SystemTime) {
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        entry.lease = None;
        self.running.remove(&id);
        self.waiting.place(&mut entry.record, at, now);
    }

    /// Leases up to `limit` of the best runnable jobs of `queues` for
    /// `lease`, scheduled jobs due by `now` (read here if `None`) included;
    /// and whether runnable jobs remain after them.
    fn claim(
        &mut self,
        queues: &[String],
        limit: usize,
        lease: Duration,
        now: Option<SystemTime>,
    ) -> (Vec<Claimed>, bool) {
        let until = Instant::now() + lease;
        if !self.waiting.scheduled.is_empty() {
            self.promote(now.unwrap_or_else(SystemTime::now));
        }
        let mut claimed = Vec::new();
        while claimed.len() < limit {
            let Some((_, queue)) = self.best_ready(queues) else {
                break;
            };
            let Some(id) = self.waiting.ready.get_mut(queue).and_then(ReadyQueue::pop) else {
                break;
            };
            self.next_token += 1;
            let token = self.next_token;
            self.running.insert(id);
            let Some(entry) = self.jobs.get_mut(&id) else {
                continue;
            };
            entry.lease = Some((token, until));
            entry.record.state = JobState::Running;
            entry.record.attempts += 1;
            claimed.push(Claimed {
                record: entry.record.clone(),
                lease: Lease { id, token },
            });
        }
        let more = claimed.len() == limit && self.best_ready(queues).is_some();
        (claimed, more)
    }

    /// The key and queue of the best runnable job at the head of any
    /// unpaused queue of `queues`.
    fn best_ready<'q>(&self, queues: &'q [String]) -> Option<(ReadyKey, &'q String)> {
        queues
            .iter()
            .filter(|queue| self.paused.is_empty() || !self.paused.contains(*queue))
            .filter_map(|queue| {
                let head = self.waiting.ready.get(queue)?.head()?;
                Some((head, queue))
            })
            .min_by_key(|(head, _)| *head)
    }

    /// Moves scheduled jobs whose time has come to their ready queues.
    fn promote(&mut self, now: SystemTime) {
        while let Some(&(at, id)) = self.waiting.scheduled.first() {
            if at > now {
                break;
            }
            self.waiting.scheduled.pop_first();
            self.schedule(id, now, now);
        }
    }

    /// The entry if `lease` is still its current lease.
    fn leased(&mut self, lease: &Lease) -> Option<&mut Entry> {
        self.jobs
            .get_mut(&lease.id)
            .filter(|entry| entry.lease.is_some_and(|(token, _)| token == lease.token))
    }

    fn complete(&mut self, lease: &Lease, now: SystemTime) -> Fenced {
        if self.leased(lease).is_none() {
            return Fenced::Stale;
        }
        self.finish(lease.id, JobState::Completed, None, now);
        Fenced::Accepted
    }

    fn finish(&mut self, id: JobId, state: JobState, error: Option<String>, now: SystemTime) {
        self.running.remove(&id);
        let Some(entry) = self.jobs.get_mut(&id) else {
            return;
        };
        entry.lease = None;
        entry.record.state = state;
        entry.record.finished_at = Some(now);
        if error.is_some() {
            entry.record.last_error = error;
        }
        if let Some(key) = &entry.record.job.unique_key {
            self.unique.remove(key);
        }
        if state == JobState::Dead {
            self.next_dead_seq += 1;
            entry.dead_seq = Some(self.next_dead_seq);
            self.dead.insert((self.next_dead_seq, id));
        } else {
            // A finished job's arguments are no longer needed.
            entry.record.job.payload = Vec::new();
            self.finished.push_back(id);
            while self.finished.len() > FINISHED_KEPT {
                if let Some(old) = self.finished.pop_front() {
                    self.jobs.remove(&old);
                }
            }
        }
    }
}

#[async_trait]
impl JobStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, StoreError> {
        let enqueued = {
            let mut state = self.lock();
            if state.pending() >= self.capacity {
                return Err(StoreError::Full {
                    capacity: self.capacity,
                });
            }
            state.insert(job, SystemTime::now())
        };
        self.work.notify_one();
        Ok(enqueued)
    }

    async fn enqueue_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, StoreError> {
        let enqueued = {
            let mut state = self.lock();
            if state.pending() + jobs.len() > self.capacity {
                return Err(StoreError::Full {
                    capacity: self.capacity,
                });
            }
            let now = SystemTime::now();
            jobs.into_iter().map(|job| state.insert(job, now)).collect()
        };
        self.work.notify_one();
        Ok(enqueued)
    }

    async fn enqueue_recurring(
        &self,
        schedule: &str,
        fire_at: SystemTime,
        job: NewJob,
    ) -> Result<Option<Enqueued>, StoreError> {
        let enqueued = {
            let mut state = self.lock();
            if state
                .recurring
                .get(schedule)
                .is_some_and(|&last| last >= fire_at)
            {
                return Ok(None);
            }
            if state.pending() >= self.capacity {
                return Err(StoreError::Full {
                    capacity: self.capacity,
                });
            }
            state.recurring.insert(schedule.to_owned(), fire_at);
            state.insert(job, SystemTime::now())
        };
        self.work.notify_one();
        Ok(Some(enqueued))
    }

    async fn claim(
        &self,
        _worker: &WorkerId,
        queues: &[String],
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        // The wall clock is read (under the lock) only if scheduled jobs
        // may be due.
        let mut state = self.lock();
        let (claimed, more) = state.claim(queues, limit, lease, None);
        drop(state);
        self.wake_if(more);
        Ok(claimed)
    }

    async fn complete_and_claim(
        &self,
        done: &Lease,
        _worker: &WorkerId,
        queues: &[String],
        limit: usize,
        lease: Duration,
    ) -> Result<(Fenced, Vec<Claimed>), StoreError> {
        let now = SystemTime::now();
        let mut state = self.lock();
        let fenced = state.complete(done, now);
        let (claimed, more) = state.claim(queues, limit, lease, Some(now));
        drop(state);
        self.wake_if(more);
        Ok((fenced, claimed))
    }

    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<Fenced, StoreError> {
        let mut state = self.lock();
        Ok(match state.leased(lease) {
            Some(entry) => {
                entry.lease = Some((lease.token, Instant::now() + extend));
                Fenced::Accepted
            }
            None => Fenced::Stale,
        })
    }

    fn in_process(&self) -> bool {
        true
    }

    async fn complete(&self, lease: &Lease) -> Result<Fenced, StoreError> {
        Ok(self.lock().complete(lease, SystemTime::now()))
    }

    async fn complete_many(&self, leases: &[Lease]) -> Result<Vec<Fenced>, StoreError> {
        let now = SystemTime::now();
        let mut state = self.lock();
        Ok(leases
            .iter()
            .map(|lease| state.complete(lease, now))
            .collect())
    }

    async fn fail(
        &self,
        lease: &Lease,
        error: &str,
        retry_at: Option<SystemTime>,
    ) -> Result<AfterFailure, StoreError> {
        let now = SystemTime::now();
        let after = {
            let mut state = self.lock();
            let Some(entry) = state.leased(lease) else {
                return Ok(AfterFailure::Stale);
            };
            entry.record.last_error = Some(error.to_owned());
            let attempts_left = entry.record.attempts < entry.record.job.max_attempts;
            match retry_at.filter(|_| attempts_left) {
                Some(at) => {
                    state.schedule(lease.id, at, now);
                    AfterFailure::Retry(at)
                }
                None => {
                    state.finish(lease.id, JobState::Dead, None, now);
                    AfterFailure::Dead
                }
            }
        };
        self.work.notify_one();
        Ok(after)
    }

    async fn snooze(&self, lease: &Lease, until: SystemTime) -> Result<Fenced, StoreError> {
        let mut state = self.lock();
        let Some(entry) = state.leased(lease) else {
            return Ok(Fenced::Stale);
        };
        // Not an attempt: give back the one the claim counted.
        entry.record.attempts = entry.record.attempts.saturating_sub(1);
        state.schedule(lease.id, until, SystemTime::now());
        Ok(Fenced::Accepted)
    }

    async fn release(&self, lease: &Lease) -> Result<Fenced, StoreError> {
        let fenced = {
            let mut state = self.lock();
            let Some(entry) = state.leased(lease) else {
                return Ok(Fenced::Stale);
            };
            entry.record.attempts = entry.record.attempts.saturating_sub(1);
            let now = SystemTime::now();
            state.schedule(lease.id, now, now);
            Fenced::Accepted
        };
        self.work.notify_one();
        Ok(fenced)
    }

    async fn bury(&self, lease: &Lease, reason: &str) -> Result<Fenced, StoreError> {
        let mut state = self.lock();
        if state.leased(lease).is_none() {
            return Ok(Fenced::Stale);
        }
        state.finish(
            lease.id,
            JobState::Dead,
            Some(reason.to_owned()),
            SystemTime::now(),
        );
        Ok(Fenced::Accepted)
    }

    async fn rescue_expired(&self, max_rescues: u32) -> Result<(u64, u64), StoreError> {
        let now = Instant::now();
        let wall = SystemTime::now();
        let (mut rescued, mut buried) = (0, 0);
        {
            let mut state = self.lock();
            let expired: Vec<JobId> = state
                .running
                .iter()
                .copied()
                .filter(|id| state.jobs[id].lease.is_some_and(|(_, until)| until <= now))
                .collect();
            for id in expired {
                let Some(entry) = state.jobs.get_mut(&id) else {
                    continue;
                };
                entry.record.rescues += 1;
                if entry.record.rescues > max_rescues {
                    let reason = format!(
                        "its worker stopped answering {} times (lease ran out); not run again",
                        entry.record.rescues
                    );
                    state.finish(id, JobState::Dead, Some(reason), wall);
                    buried += 1;
                } else {
                    state.schedule(id, wall, wall);
                    rescued += 1;
                }
            }
        }
        if rescued > 0 {
            self.work.notify_one();
        }
        Ok((rescued, buried))
    }

    async fn get(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        Ok(self.lock().jobs.get(&id).map(|entry| entry.record.clone()))
    }

    async fn list_dead(
        &self,
        queue: Option<&str>,
        limit: usize,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let state = self.lock();
        Ok(state
            .dead
            .iter()
            .map(|(_, id)| &state.jobs[id].record)
            .filter(|record| queue.is_none_or(|queue| record.job.queue == queue))
            .take(limit)
            .cloned()
            .collect())
    }

    async fn requeue_dead(&self, id: JobId) -> Result<bool, StoreError> {
        {
            let mut state = self.lock();
            let Some(entry) = state.jobs.get_mut(&id) else {
                return Ok(false);
            };
            let Some(seq) = entry.dead_seq.take() else {
                return Ok(false);
            };
            entry.record.attempts = 0;
            entry.record.rescues = 0;
            entry.record.finished_at = None;
            let key = entry.record.job.unique_key.clone();
            state.dead.remove(&(seq, id));
            if let Some(key) = key {
                state.unique.insert(key, id);
            }
            let now = SystemTime::now();
            state.schedule(id, now, now);
        }
        self.work.notify_one();
        Ok(true)
    }

    async fn purge_dead(&self, queue: Option<&str>) -> Result<u64, StoreError> {
        let mut state = self.lock();
        let doomed: Vec<(u64, JobId)> = state
            .dead
            .iter()
            .copied()
            .filter(|(_, id)| queue.is_none_or(|queue| state.jobs[id].record.job.queue == queue))
            .collect();
        for key in &doomed {
            state.dead.remove(key);
            state.jobs.remove(&key.1);
        }
        Ok(doomed.len() as u64)
    }

    async fn pause(&self, queue: &str) -> Result<(), StoreError> {
        self.lock().paused.insert(queue.to_owned());
        Ok(())
    }

    async fn resume(&self, queue: &str) -> Result<(), StoreError> {
        self.lock().paused.remove(queue);
        self.work.notify_one();
        Ok(())
    }

    async fn depths(&self) -> Result<Vec<QueueDepth>, StoreError> {
        let state = self.lock();
        let mut depths: HashMap<&str, QueueDepth> = HashMap::new();
        for entry in state.jobs.values() {
            let record = &entry.record;
            let depth = depths
                .entry(record.job.queue.as_ref())
                .or_insert_with(|| QueueDepth {
                    queue: record.job.queue.to_string(),
                    ..QueueDepth::default()
                });
            match record.state {
                JobState::Available => depth.available += 1,
                JobState::Scheduled => depth.scheduled += 1,
                JobState::Running => depth.running += 1,
                JobState::Dead => depth.dead += 1,
                JobState::Completed => {}
            }
        }
        let mut depths: Vec<QueueDepth> = depths.into_values().collect();
        depths.sort_by(|a, b| a.queue.cmp(&b.queue));
        Ok(depths)
    }

    async fn wait_for_work(&self, within: Duration) {
        let _ = tokio::time::timeout(within, self.work.notified()).await;
    }
}
