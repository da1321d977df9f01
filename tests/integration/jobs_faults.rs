//! The job stores under faults, against real servers.
//!
//! - A worker process paused (SIGSTOP) while it runs jobs and holds as many
//!   claimed ahead, and kept paused past its lease: a second worker process
//!   takes the jobs over; when the first resumes (SIGCONT) and finishes the
//!   bodies, the store refuses every one of its completions (fencing
//!   tokens), it starts none of the jobs it had claimed ahead, and each job
//!   is completed once, by the second worker. On PostgreSQL and on Redis.
//! - The store's server killed mid-run (redis-server with SIGKILL, its
//!   append-only file fsynced on every write; PostgreSQL stopped in
//!   immediate mode) and started again 2 s later, while jobs are enqueued
//!   one by one and in-process workers run them: every job whose enqueue
//!   returned `Ok` completes, and jobs enqueued after the restart complete
//!   too (the workers came back without a restart of their own).
//!
//! Waits are bounded by a number of looks, never asserted on a clock;
//! durations are printed as figures.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use perf_runtime::async_job;
use perf_runtime::db::{Db, Params};
use perf_runtime::jobs::{
    JobHandle, JobId, JobRecord, JobState, JobStore, Jobs, PostgresStore, RedisStore, WorkerConfig,
};
use perf_runtime::{Perf, PerfConfig};
use support::job_stores::{StoreKind, connect};
use support::pg_server::PgServer;
use support::redis_server::RedisServer;

/// Every test here stops servers or processes and counts on timing (a
/// lease running out while a body sleeps): on two cores, one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How often the waits below look again.
const LOOK_EVERY: Duration = Duration::from_millis(20);
/// Looks before a wait gives up: 30 s at [`LOOK_EVERY`], far more than any
/// step needs (a lease of 3 s running out, a 2 s body).
const LOOKS: u32 = 1_500;

/// Looks at `ready` until it holds; panics naming `what` once the looks
/// run out (a bound on the wait, not an assertion on its duration).
async fn wait_until(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    for _ in 0..LOOKS {
        if ready().await {
            return;
        }
        tokio::time::sleep(LOOK_EVERY).await;
    }
    panic!("{what}: still not so after {LOOKS} looks {LOOK_EVERY:?} apart");
}

/// Short leases, so a stalled or cut-off worker loses its jobs within
/// seconds: a lease of 3 s kept by a heartbeat every second, expired leases
/// looked for every second.
fn worker_config(concurrency: usize, queue: &str) -> WorkerConfig {
    let mut config = WorkerConfig::default();
    config.concurrency = concurrency;
    config.queues = vec![queue.to_owned()];
    config.lease = Duration::from_secs(3);
    config.heartbeat = Duration::from_secs(1);
    config.sweep = Duration::from_secs(1);
    config.max_rescues = 5;
    config
}

// ---------------------------------------------------------------------------
// A worker paused past its lease.
// ---------------------------------------------------------------------------

/// Jobs a worker process runs at once.
const WORKER_SLOTS: i64 = 6;
/// Twice [`WORKER_SLOTS`]: the paused worker holds half of them inside
/// their bodies and half claimed ahead, waiting for a slot. Neither half
/// may complete, and the second must not even start after the resume.
const PAUSED_JOBS: i64 = 2 * WORKER_SLOTS;
/// `pause_job`'s queue (the attribute takes only a literal).
const PAUSE_QUEUE: &str = "it_faults_pause";
/// A body's length: long enough for the pause to catch every job inside it.
const BODY: Duration = Duration::from_secs(2);

/// The logs' database, in the worker processes (where the bodies run).
static DB: OnceLock<Db> = OnceLock::new();

/// Logs an attempt when the body starts and an effect when it ends (before
/// the worker reports the outcome to the store): append-only, so a body
/// that ran twice shows twice.
#[async_job(
    queue = "it_faults_pause",
    max_retries = 3,
    backoff = "fixed",
    backoff_base = "50ms"
)]
async fn pause_job(run: i64, key: i64) -> Result<(), String> {
    let db = DB.get().ok_or("no database in this process")?;
    let pid = i64::from(std::process::id());
    let log = |sql: &'static str| db.execute(sql, Params::new().bind(run).bind(key).bind(pid));
    log("INSERT INTO perf_test_faults_attempts (run, key, pid) VALUES ($1, $2, $3)")
        .await
        .map_err(|e| e.to_string())?;
    tokio::time::sleep(BODY).await;
    log("INSERT INTO perf_test_faults_effects (run, key, pid) VALUES ($1, $2, $3)")
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

const PAUSE_SCHEMA: [&str; 3] = [
    "CREATE TABLE IF NOT EXISTS perf_test_faults_attempts (run BIGINT, key BIGINT, pid BIGINT)",
    "CREATE TABLE IF NOT EXISTS perf_test_faults_effects (run BIGINT, key BIGINT, pid BIGINT)",
    // Each worker process's job outcomes, as its own metrics count them.
    "CREATE TABLE IF NOT EXISTS perf_test_faults_outcomes (run BIGINT, pid BIGINT, \
     succeeded BIGINT, lease_lost BIGINT, other BIGINT, PRIMARY KEY (run, pid))",
];

/// Bodies of worker `$2` started (run `$1`).
const ATTEMPTS_BY: &str =
    "SELECT count(*) FROM perf_test_faults_attempts WHERE run = $1 AND pid = $2";
/// Bodies of worker `$2` ended.
const EFFECTS_BY: &str =
    "SELECT count(*) FROM perf_test_faults_effects WHERE run = $1 AND pid = $2";
/// Bodies of worker `$2` started and not ended.
const RUNNING_IN: &str = "SELECT count(*) FROM perf_test_faults_attempts a \
     WHERE a.run = $1 AND a.pid = $2 AND NOT EXISTS (SELECT 1 FROM perf_test_faults_effects e \
     WHERE e.run = a.run AND e.key = a.key AND e.pid = a.pid)";
/// Jobs whose body ended at least once.
const JOBS_WITH_EFFECT: &str =
    "SELECT count(DISTINCT key) FROM perf_test_faults_effects WHERE run = $1";

/// A worker process: works [`PAUSE_QUEUE`] and writes its outcome counts
/// to the logs' database every 50 ms, for two minutes at most (the parent
/// kills it long before).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_worker() {
    let Ok(url) = std::env::var("PERF_FAULTS_DB") else {
        return; // Only runs when spawned by a test below.
    };
    let kind = StoreKind::from_env("PERF_FAULTS_STORE");
    let run: i64 = std::env::var("PERF_FAULTS_RUN")
        .expect("set with the db")
        .parse()
        .expect("a run id");
    let (perf, db, store) = connect(&url, &kind, 6).await;
    DB.set(db.clone()).expect("once");
    let jobs = Jobs::new(store);
    jobs.start_workers(worker_config(WORKER_SLOTS as usize, PAUSE_QUEUE))
        .expect("workers");
    let pid = i64::from(std::process::id());
    for _ in 0..2_400 {
        report_outcomes(&perf, &db, run, pid).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Copies this process's `perf_jobs_finished_total` of [`PAUSE_QUEUE`]
/// (what the worker pool counted for each answer of the store) to the
/// outcomes table.
async fn report_outcomes(perf: &Perf, db: &Db, run: i64, pid: i64) {
    let text = perf.render_prometheus().expect("the Prometheus recorder");
    let finished = |outcome: &str| {
        let labels = [("queue", PAUSE_QUEUE), ("outcome", outcome)];
        support::sample(&text, "perf_jobs_finished_total", &labels).unwrap_or(0.0) as i64
    };
    let other: i64 = ["store_error", "retried", "dead", "snoozed"]
        .map(finished)
        .iter()
        .sum();
    let params = Params::new()
        .bind(run)
        .bind(pid)
        .bind(finished("succeeded"))
        .bind(finished("lease_lost"))
        .bind(other);
    // A failed write is retried by the next round.
    let _ = db
        .execute(
            "INSERT INTO perf_test_faults_outcomes (run, pid, succeeded, lease_lost, other) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run, pid) DO UPDATE SET \
             succeeded = EXCLUDED.succeeded, lease_lost = EXCLUDED.lease_lost, other = EXCLUDED.other",
            params,
        )
        .await;
}

/// A worker process's job outcomes: completions the store accepted, ones
/// it refused because the lease was no longer the worker's, and the rest.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Outcomes {
    succeeded: i64,
    lease_lost: i64,
    other: i64,
}

impl Outcomes {
    fn total(self) -> i64 {
        self.succeeded + self.lease_lost + self.other
    }
}

/// A worker process (this binary re-run as `fault_worker`); SIGKILLed when
/// dropped, so a failing test leaves none behind (a paused one too).
struct WorkerProcess(Child);

impl WorkerProcess {
    fn spawn(url: &str, kind: &StoreKind, run: i64) -> WorkerProcess {
        let child = Command::new(std::env::current_exe().expect("test binary"))
            .args(["fault_worker", "--exact", "--nocapture", "--test-threads=1"])
            .env("PERF_FAULTS_DB", url)
            .env("PERF_FAULTS_STORE", kind.to_env())
            .env("PERF_FAULTS_RUN", run.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn a worker process");
        WorkerProcess(child)
    }

    fn pid(&self) -> i64 {
        i64::from(self.0.id())
    }

    /// Sends `signal` (`STOP`, `CONT`) through kill(1): the tests depend on
    /// neither libc nor nix.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.0.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {} failed", self.0.id());
    }

    async fn outcomes(&self, db: &Db, run: i64) -> Outcomes {
        let row: Option<(i64, i64, i64)> = db
            .fetch_optional(
                "SELECT succeeded, lease_lost, other FROM perf_test_faults_outcomes \
                 WHERE run = $1 AND pid = $2",
                Params::new().bind(run).bind(self.pid()),
            )
            .await
            .expect("read outcomes");
        row.map(|(succeeded, lease_lost, other)| Outcomes {
            succeeded,
            lease_lost,
            other,
        })
        .unwrap_or_default()
    }

    /// `sql` (one of the counts above) for this worker.
    async fn count(&self, db: &Db, sql: &'static str, run: i64) -> i64 {
        count(db, sql, Params::new().bind(run).bind(self.pid())).await
    }

    /// It has reported an outcome for each of the `jobs` it claimed: a
    /// body that ended (its effect logged first), a body stopped because
    /// its lease was found taken over (no effect), or a job claimed ahead
    /// and never started. The asserts tell which.
    async fn is_quiet(&self, db: &Db, run: i64, jobs: i64) -> bool {
        self.outcomes(db, run).await.total() >= jobs
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn count(db: &Db, sql: &'static str, params: Params) -> i64 {
    let row: Option<(i64,)> = db.fetch_optional(sql, params).await.expect("count");
    row.map_or(0, |(n,)| n)
}

/// The records of `ids`, each of which the store must still have.
async fn records(store: &dyn JobStore, ids: &[JobId]) -> Vec<JobRecord> {
    let mut records = Vec::with_capacity(ids.len());
    for &id in ids {
        let record = store.get(id).await.expect("get a job");
        records.push(record.unwrap_or_else(|| panic!("job {id} is unknown to the store")));
    }
    records
}

/// `id state attempts/rescues` per job, for messages.
fn summary(records: &[JobRecord]) -> String {
    records
        .iter()
        .map(|r| format!("{} {} {}/{}", r.id, r.state.as_str(), r.attempts, r.rescues))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_paused_past_its_lease_cannot_complete_its_jobs_on_postgres() {
    if support::service_url("DATABASE_URL").is_none() {
        return; // The harness's PostgreSQL binaries come with it.
    }
    let _alone = ONE_AT_A_TIME.lock().await;
    // A server of its own: no job left in the queue by another run can
    // reach these workers and blur their counts.
    let Some(server) = PgServer::start() else {
        return;
    };
    pause_past_the_lease(&server.url(), StoreKind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_paused_past_its_lease_cannot_complete_its_jobs_on_redis() {
    let (Some(url), Some(redis)) = (
        support::service_url("DATABASE_URL"),
        support::service_url("REDIS_URL"),
    ) else {
        return;
    };
    let _alone = ONE_AT_A_TIME.lock().await;
    let namespace = format!("perf-test-faults-{}", support::run_id());
    pause_past_the_lease(
        &url,
        StoreKind::Redis {
            url: redis,
            namespace,
        },
    )
    .await;
}

/// Enqueues [`PAUSED_JOBS`], lets one worker process start them all,
/// pauses it, lets a second take them over once the leases ran out,
/// resumes the first while the second still runs them, then checks who
/// completed what.
async fn pause_past_the_lease(url: &str, kind: StoreKind) {
    let (perf, db, store) = connect(url, &kind, 6).await;
    for statement in PAUSE_SCHEMA {
        db.execute(statement, Params::new()).await.expect("schema");
    }
    let run = support::run_id() as i64;
    let jobs = Jobs::new(Arc::clone(&store));
    let ids: Vec<JobId> = jobs
        .enqueue_batch((0..PAUSED_JOBS).map(|key| pause_job(run, key)))
        .await
        .expect("enqueue")
        .iter()
        .map(JobHandle::id)
        .collect();

    let paused = WorkerProcess::spawn(url, &kind, run);
    wait_until("the first worker fills its slots", async || {
        paused.count(&db, RUNNING_IN, run).await == WORKER_SLOTS
    })
    .await;
    paused.signal("STOP");
    // A log write already on its way lands before the count.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stalled = paused.count(&db, RUNNING_IN, run).await;
    let stopped_at = Instant::now();

    let rescuer = WorkerProcess::spawn(url, &kind, run);
    wait_until(
        "the second worker takes the jobs over once the leases ran out",
        async || rescuer.count(&db, ATTEMPTS_BY, run).await == WORKER_SLOTS,
    )
    .await;
    let paused_for = stopped_at.elapsed();
    // The second worker is inside the bodies (2 s): the first worker's
    // completions now race its run, and must lose on the fencing token.
    paused.signal("CONT");
    wait_until(
        "every job completed and both workers answered for every body they ran",
        async || {
            let completed = records(&*store, &ids)
                .await
                .iter()
                .all(|r| r.state == JobState::Completed);
            completed
                && paused.is_quiet(&db, run, PAUSED_JOBS).await
                && rescuer.is_quiet(&db, run, PAUSED_JOBS).await
        },
    )
    .await;

    let records = records(&*store, &ids).await;
    let first = paused.outcomes(&db, run).await;
    let second = rescuer.outcomes(&db, run).await;
    let late_bodies = paused.count(&db, EFFECTS_BY, run).await;
    let started_by_first = paused.count(&db, ATTEMPTS_BY, run).await;
    let with_effect = count(&db, JOBS_WITH_EFFECT, Params::new().bind(run)).await;
    drop((paused, rescuer));
    println!(
        "{}: {PAUSED_JOBS} jobs, {stalled} inside their bodies in the worker paused for \
         {paused_for:?}, the rest claimed ahead; after SIGCONT it ended {late_bodies} bodies \
         ({started_by_first} started in all) and the store refused {} of its jobs (accepted \
         {}, other {}); the second worker's completions: {} accepted, {} refused; jobs (id \
         state attempts/rescues): {}",
        kind.name(),
        first.lease_lost,
        first.succeeded,
        first.other,
        second.succeeded,
        second.lease_lost,
        summary(&records)
    );
    assert_eq!(
        stalled, WORKER_SLOTS,
        "the pause caught a full set of jobs inside their bodies"
    );
    assert_eq!(
        started_by_first, WORKER_SLOTS,
        "after the resume, the jobs it had claimed ahead were found taken over and not run"
    );
    assert!(
        records.iter().all(|r| r.state == JobState::Completed),
        "every job completed: {}",
        summary(&records)
    );
    assert_eq!(with_effect, PAUSED_JOBS, "no job lost");
    assert_eq!(
        first,
        Outcomes {
            succeeded: 0,
            lease_lost: PAUSED_JOBS,
            other: 0
        },
        "every job of the resumed worker refused as stale (completions and claims ahead)"
    );
    assert_eq!(
        second,
        Outcomes {
            succeeded: PAUSED_JOBS,
            lease_lost: 0,
            other: 0
        },
        "the second worker's completions accepted, one per job"
    );
    assert!(
        records.iter().all(|r| r.rescues == 1 && r.attempts == 2),
        "each job changed hands once (rescued once, claimed twice): {}",
        summary(&records)
    );
    perf.shutdown().await;
}

// ---------------------------------------------------------------------------
// The store's server restarted mid-run.
// ---------------------------------------------------------------------------

/// `restart_job`'s queue (the attribute takes only a literal).
const RESTART_QUEUE: &str = "it_faults_restart";
/// Enqueues at least this many in all...
const ENQUEUES: usize = 2_000;
/// ...the kill coming after this many...
const BEFORE_KILL: usize = 600;
/// ...and at least this many issued after the restart.
const AFTER_RESTART: usize = 500;
/// A bound on the loop, should enqueues never come back.
const MAX_ENQUEUES: usize = 50_000;
/// How long the server stays down.
const OUTAGE: Duration = Duration::from_secs(2);

/// Phases of a restart run.
const UP: u8 = 0;
const DOWN: u8 = 1;
const RESTARTED: u8 = 2;

/// `(run, n)` of every body that ran, in every test of this process.
static RAN: Mutex<Vec<(u64, u64)>> = Mutex::new(Vec::new());

#[async_job(
    queue = "it_faults_restart",
    max_retries = 10,
    backoff = "fixed",
    backoff_base = "50ms"
)]
async fn restart_job(run: u64, n: u64) -> Result<(), String> {
    // With 4 at a time, slower than the enqueue loop: a backlog builds, so
    // the kill finds jobs waiting and running, not an idle pool.
    tokio::time::sleep(Duration::from_millis(20)).await;
    RAN.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((run, n));
    Ok(())
}

/// The `n` of every body of `run` that ran, once per run of the body.
fn ran(run: u64) -> Vec<u64> {
    RAN.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter(|(r, _)| *r == run)
        .map(|(_, n)| *n)
        .collect()
}

/// A store's server of the test's own.
enum Server {
    Redis(RedisServer),
    Postgres(PgServer),
}

impl Server {
    /// SIGKILL for Redis; `pg_ctl stop -m immediate` for PostgreSQL.
    fn kill(&mut self) {
        match self {
            Server::Redis(server) => server.kill(),
            Server::Postgres(server) => server.crash(),
        }
    }

    /// Starts it again on the same port, with its data.
    fn restart(&mut self) {
        match self {
            Server::Redis(server) => server.restart(),
            Server::Postgres(server) => server.resume(),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_redis_restart_mid_run() {
    if support::service_url("REDIS_URL").is_none() {
        return; // The harness installs redis-server; without it, skip (or fail under CI).
    }
    let _alone = ONE_AT_A_TIME.lock().await;
    let Some(server) = RedisServer::start_with_aof() else {
        return;
    };
    let config = PerfConfig::builder()
        .redis_url(server.url())
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    let perf = Perf::start(config).await.expect("start");
    let namespace = format!("perf-test-faults-{}", support::run_id());
    let store = RedisStore::from_perf(&perf, namespace).expect("Redis is configured");
    restart_mid_run("redis", Arc::new(store), Server::Redis(server)).await;
    perf.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_postgres_restart_mid_run() {
    if support::service_url("DATABASE_URL").is_none() {
        return; // The harness's PostgreSQL binaries come with it.
    }
    let _alone = ONE_AT_A_TIME.lock().await;
    let Some(server) = PgServer::start() else {
        return;
    };
    let config = PerfConfig::builder()
        .database_url(server.url())
        .db_max_connections(12)
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    let (perf, db) = support::pg_pool::start_pool(config).await;
    let store = PostgresStore::connect(db).await.expect("store");
    restart_mid_run("postgres", Arc::new(store), Server::Postgres(server)).await;
    perf.shutdown().await;
}

/// One enqueue of the loop: its `n`, the phase it was issued in, and the
/// id it returned (`None`: it returned an error).
struct Issued {
    n: u64,
    phase: u8,
    id: Option<JobId>,
}

/// Enqueues jobs one by one while workers run them, the server killed and
/// restarted in the middle; then waits for every job whose enqueue
/// returned `Ok` to complete.
async fn restart_mid_run(store_name: &str, store: Arc<dyn JobStore>, server: Server) {
    let run = support::run_id();
    let jobs = Jobs::new(Arc::clone(&store));
    jobs.start_workers(worker_config(4, RESTART_QUEUE))
        .expect("workers");
    let progress = AtomicUsize::new(0);
    let phase = AtomicU8::new(UP);
    let (issued, (server, ran_at_kill, restarted_at)) = tokio::join!(
        enqueue_through_the_outage(&jobs, run, &progress, &phase),
        kill_and_restart(server, &progress, &phase, run),
    );

    let ok: Vec<JobId> = issued.iter().filter_map(|i| i.id).collect();
    let looks = wait_all_completed(&*store, &ok).await;
    let drained_in = restarted_at.elapsed();
    jobs.stop_workers(Duration::from_secs(1)).await;
    drop(server);

    let bodies = ran(run);
    let mut distinct = bodies.clone();
    distinct.sort_unstable();
    distinct.dedup();
    let has_run = |i: &Issued| distinct.binary_search(&i.n).is_ok();
    let tally = |phase: u8| {
        let of_phase = issued.iter().filter(|i| i.phase == phase);
        let ok = of_phase.clone().filter(|i| i.id.is_some()).count();
        format!("{ok}/{}", of_phase.count())
    };
    let refused_yet_ran = issued
        .iter()
        .filter(|i| i.id.is_none() && has_run(i))
        .count();
    println!(
        "{store_name}: {} enqueues, {} Ok (Ok/issued before the kill {}, while down {}, after \
         the restart {}); of the {} Err, {refused_yet_ran} stored anyway and run; at the kill \
         {ran_at_kill} bodies had run of {BEFORE_KILL} enqueued; {} bodies run for {} jobs; \
         every Ok job completed {drained_in:?} after the restart ({looks} looks)",
        issued.len(),
        ok.len(),
        tally(UP),
        tally(DOWN),
        tally(RESTARTED),
        issued.len() - ok.len(),
        bodies.len(),
        distinct.len()
    );
    assert!(
        issued[..BEFORE_KILL].iter().all(|i| i.id.is_some()),
        "every enqueue before the kill returned Ok"
    );
    // A store that lost its data hands the ids out again: an old id would
    // then read completed through the new job that got it.
    let mut unique_ids = ok.clone();
    unique_ids.sort_unstable();
    unique_ids.dedup();
    assert_eq!(unique_ids.len(), ok.len(), "no id given to two jobs");
    let never_ran: Vec<u64> = issued
        .iter()
        .filter(|i| i.id.is_some() && !has_run(i))
        .map(|i| i.n)
        .collect();
    assert!(
        never_ran.is_empty(),
        "{} jobs whose enqueue returned Ok never ran, though their ids read completed: {:?}",
        never_ran.len(),
        &never_ran[..never_ran.len().min(20)]
    );
    assert!(
        issued
            .iter()
            .any(|i| i.phase == RESTARTED && i.id.is_some()),
        "enqueues work again after the restart (and those jobs completed, above)"
    );
}

/// Enqueues jobs of `run` one by one, at least [`ENQUEUES`] and until
/// [`AFTER_RESTART`] were issued after the restart, counting them in
/// `progress`.
async fn enqueue_through_the_outage(
    jobs: &Jobs,
    run: u64,
    progress: &AtomicUsize,
    phase: &AtomicU8,
) -> Vec<Issued> {
    let mut issued = Vec::new();
    let mut after_restart = 0;
    while issued.len() < ENQUEUES || after_restart < AFTER_RESTART {
        assert!(
            issued.len() < MAX_ENQUEUES,
            "{MAX_ENQUEUES} enqueues and still not {AFTER_RESTART} after the restart"
        );
        let n = issued.len() as u64;
        let in_phase = phase.load(Ordering::SeqCst);
        let result = restart_job(run, n).on(jobs).await;
        issued.push(Issued {
            n,
            phase: in_phase,
            id: result.ok().map(|handle| handle.id()),
        });
        after_restart += usize::from(in_phase == RESTARTED);
        progress.store(issued.len(), Ordering::SeqCst);
        // Paced, so the run spans the outage: the workers are busy when
        // the server dies and when it comes back.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    issued
}

/// Waits for the kill point of the enqueue loop, kills `server`, restarts
/// it [`OUTAGE`] later; gives it back with the bodies run before the kill
/// and when it was back.
async fn kill_and_restart(
    server: Server,
    progress: &AtomicUsize,
    phase: &AtomicU8,
    run: u64,
) -> (Server, usize, Instant) {
    wait_until("the enqueue loop reaches the kill", async || {
        progress.load(Ordering::SeqCst) >= BEFORE_KILL
    })
    .await;
    let ran_at_kill = ran(run).len();
    let blocking = |mut server: Server, step: fn(&mut Server)| {
        tokio::task::spawn_blocking(move || {
            step(&mut server);
            server
        })
    };
    let server = blocking(server, Server::kill).await.expect("kill");
    phase.store(DOWN, Ordering::SeqCst);
    tokio::time::sleep(OUTAGE).await;
    let server = blocking(server, Server::restart).await.expect("restart");
    phase.store(RESTARTED, Ordering::SeqCst);
    (server, ran_at_kill, Instant::now())
}

/// Looks until every job of `ids` is completed, every 250 ms, 240 times at
/// most (a look at 2,000 jobs takes a while); returns the looks taken.
/// Panics at once on a job the store lost or buried, and when the looks
/// run out with jobs still pending.
async fn wait_all_completed(store: &dyn JobStore, ids: &[JobId]) -> u32 {
    const DRAIN_LOOKS: u32 = 240;
    let mut pending = ids.to_vec();
    for look in 1..=DRAIN_LOOKS {
        let mut still = Vec::new();
        for chunk in pending.chunks(100) {
            let answers =
                futures_util::future::join_all(chunk.iter().map(|&id| store.get(id))).await;
            for (&id, answer) in chunk.iter().zip(answers) {
                match answer {
                    Ok(Some(record)) if record.state == JobState::Completed => {}
                    Ok(Some(record)) if record.state == JobState::Dead => panic!(
                        "job {id} (enqueue returned Ok) is dead: {:?}",
                        record.last_error
                    ),
                    Ok(None) => panic!("job {id} (enqueue returned Ok) is unknown to the store"),
                    // Pending, or the store not answering yet: look again.
                    Ok(Some(_)) | Err(_) => still.push(id),
                }
            }
        }
        pending = still;
        if pending.is_empty() {
            return look;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let stuck = records(store, &pending[..pending.len().min(10)]).await;
    panic!(
        "{} jobs whose enqueue returned Ok never completed; the first (id state \
         attempts/rescues): {}",
        pending.len(),
        summary(&stuck)
    );
}
