//! Workers killed with SIGKILL lose no job, on the PostgreSQL store and on
//! the Redis store (the logs of attempts stay in PostgreSQL for both).
//!
//! 10,000 jobs; two worker processes (this test binary re-run as
//! `crash_worker`), 8 jobs at a time each; one of them `kill -9`ed three
//! times mid-run and restarted. Every attempt and every completed body is
//! appended to a table, and each job is classified afterwards as the Jepsen
//! queue checker does: ok (run once), recovered (an attempt was cut off by a
//! kill and the job ran again), duplicated (its body completed more than
//! once: the worker died between the body and marking it done), lost (never
//! completed), unexpected (a completion of a job never enqueued).

mod support;

use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use perf_runtime::async_job;
use perf_runtime::db::{Db, Params};
use perf_runtime::jobs::{Jobs, WorkerConfig};
use support::job_stores::{StoreKind, connect};

const JOBS: u64 = 10_000;
const WORKERS: usize = 2;
const CONCURRENCY: usize = 8;
const KILLS: usize = 3;

static DB: OnceLock<Db> = OnceLock::new();

/// The two runs share the machine's two cores: one at a time, so that
/// neither starves the other's workers.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[async_job(
    queue = "it_crash",
    max_retries = 10,
    backoff = "fixed",
    backoff_base = "50ms"
)]
async fn crash_job(run: i64, key: i64) -> Result<(), String> {
    let db = DB.get().ok_or("no database in this process")?;
    let pid = i64::from(std::process::id());
    let record = |sql: &'static str| db.execute(sql, Params::new().bind(run).bind(key).bind(pid));
    record("INSERT INTO perf_test_crash_attempts (run, key, pid) VALUES ($1, $2, $3)")
        .await
        .map_err(|e| e.to_string())?;
    // 5 to 50 ms, as the fault plan has it: 16 slots get through the jobs
    // in about 20 s, so every kill lands mid-run.
    tokio::time::sleep(Duration::from_millis(5 + (key % 46) as u64)).await;
    record("INSERT INTO perf_test_crash_done (run, key, pid) VALUES ($1, $2, $3)")
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

const SCHEMA: [&str; 4] = [
    "CREATE TABLE IF NOT EXISTS perf_test_crash_attempts (run BIGINT, key BIGINT, pid BIGINT)",
    "CREATE TABLE IF NOT EXISTS perf_test_crash_done (run BIGINT, key BIGINT, pid BIGINT)",
    // The progress queries run every few ms while the workers write.
    "CREATE INDEX IF NOT EXISTS perf_test_crash_attempts_run ON perf_test_crash_attempts (run, pid, key)",
    "CREATE INDEX IF NOT EXISTS perf_test_crash_done_run ON perf_test_crash_done (run, key, pid)",
];

/// Worker processes, SIGKILLed when dropped: a failing test must leave none
/// behind (they would work the shared queue of the next run, and hold the
/// file descriptors the test binary was started with).
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for worker in &mut self.0 {
            let _ = worker.kill();
            let _ = worker.wait();
        }
    }
}

/// A worker process: works the queue until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_worker() {
    let Ok(url) = std::env::var("PERF_CRASH_DB") else {
        return; // Only runs when spawned by the parent test.
    };
    let kind = StoreKind::from_env("PERF_CRASH_STORE");
    let (_perf, db, store) = connect(&url, &kind, 12).await;
    DB.set(db).expect("once");
    let jobs = Jobs::new(store);
    let mut config = WorkerConfig::default();
    config.concurrency = CONCURRENCY;
    config.queues = vec!["it_crash".to_owned()];
    config.lease = Duration::from_secs(3);
    config.heartbeat = Duration::from_secs(1);
    config.sweep = Duration::from_millis(500);
    config.max_rescues = 5;
    jobs.start_workers(config).expect("workers");
    println!("CRASH-WORKER ready");
    tokio::time::sleep(Duration::from_secs(600)).await;
}

fn spawn_worker(url: &str, kind: &StoreKind) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["crash_worker", "--exact", "--nocapture", "--test-threads=1"])
        .env("PERF_CRASH_DB", url)
        .env("PERF_CRASH_STORE", kind.to_env())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn a worker process")
}

/// Waits until worker `pid` is inside at least one job's body (an attempt
/// logged, its completion not), so that killing it cuts attempts off: a
/// worker still starting or between jobs would make the kill prove nothing.
async fn wait_until_running_jobs(db: &Db, run: i64, pid: u32) {
    let sql = "SELECT count(*) FROM perf_test_crash_attempts a WHERE a.run = $1 AND a.pid = $2 \
               AND NOT EXISTS (SELECT 1 FROM perf_test_crash_done d \
                               WHERE d.run = a.run AND d.key = a.key AND d.pid = a.pid)";
    // Bounded by looks, not by a clock: 500 looks 20 ms apart.
    for _ in 0..500 {
        let row: Option<(i64,)> = db
            .fetch_optional(sql, Params::new().bind(run).bind(i64::from(pid)))
            .await
            .expect("count running attempts");
        if row.is_some_and(|(n,)| n > 0) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("worker {pid} never started a job");
}

/// Waits until `at_least` jobs of `run` are done.
async fn wait_until_done(db: &Db, run: i64, at_least: i64) {
    let sql = "SELECT count(DISTINCT key) FROM perf_test_crash_done WHERE run = $1";
    // Bounded by looks, not by a clock: 3,000 looks 50 ms apart.
    for _ in 0..3_000 {
        if count(db, sql, run).await >= at_least {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {at_least} jobs done: the workers stopped making progress");
}

async fn count(db: &Db, sql: &'static str, run: i64) -> i64 {
    let row: Option<(i64,)> = db
        .fetch_optional(sql, Params::new().bind(run))
        .await
        .expect("count");
    row.map_or(0, |(n,)| n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_with_sigkill_lose_no_job_on_postgres() {
    let Some(url) = support::service_url("DATABASE_URL") else {
        return;
    };
    kill_workers_and_count(&url, StoreKind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_with_sigkill_lose_no_job_on_redis() {
    let (Some(url), Some(redis)) = (
        support::service_url("DATABASE_URL"),
        support::service_url("REDIS_URL"),
    ) else {
        return;
    };
    let namespace = format!("perf-test-crash-{}", support::run_id());
    kill_workers_and_count(
        &url,
        StoreKind::Redis {
            url: redis,
            namespace,
        },
    )
    .await;
}

/// Enqueues the jobs, runs two worker processes on `kind`, kills one three
/// times, then classifies every job.
async fn kill_workers_and_count(url: &str, kind: StoreKind) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let (perf, db, store) = connect(url, &kind, 12).await;
    for statement in SCHEMA {
        db.execute(statement, Params::new()).await.expect("schema");
    }
    let jobs = Jobs::new(store);
    let run = support::run_id() as i64;
    for chunk in (0..JOBS as i64).collect::<Vec<_>>().chunks(2_000) {
        let batch = chunk.iter().map(|&key| crash_job(run, key));
        jobs.enqueue_batch(batch).await.expect("enqueue");
    }

    let mut workers = Workers((0..WORKERS).map(|_| spawn_worker(url, &kind)).collect());
    let done_sql = "SELECT count(DISTINCT key) FROM perf_test_crash_done WHERE run = $1";
    for kill in 0..KILLS {
        // Kills follow progress, not a clock: at a fifth, two fifths and
        // three fifths of the jobs done, whatever the machine's speed.
        let due = JOBS as usize * (kill + 1) / (KILLS + 2);
        wait_until_done(&db, run, due as i64).await;
        let victim = kill % WORKERS;
        let victim_process = &mut workers.0[victim];
        wait_until_running_jobs(&db, run, victim_process.id()).await;
        victim_process.kill().expect("SIGKILL");
        let _ = victim_process.wait();
        let done = count(&db, done_sql, run).await;
        println!(
            "kill {}: worker {victim} killed with {done} jobs done",
            kill + 1
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        workers.0[victim] = spawn_worker(url, &kind);
    }
    let last_kill = Instant::now();
    while count(&db, done_sql, run).await < JOBS as i64
        && last_kill.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained_in = last_kill.elapsed();
    drop(workers);

    let classes: Vec<(i64, i64)> = db
        .fetch_all(
            "SELECT coalesce(a.attempts, 0), coalesce(d.done, 0) FROM generate_series(0, $2 - 1) AS k(key) \
             LEFT JOIN (SELECT key, count(*) AS attempts FROM perf_test_crash_attempts WHERE run = $1 GROUP BY key) a USING (key) \
             LEFT JOIN (SELECT key, count(*) AS done FROM perf_test_crash_done WHERE run = $1 GROUP BY key) d USING (key)",
            Params::new().bind(run).bind(JOBS as i64),
        )
        .await
        .expect("classify");
    let ok = classes.iter().filter(|(a, d)| *a == 1 && *d == 1).count();
    let recovered = classes.iter().filter(|(a, d)| *a > 1 && *d == 1).count();
    let duplicated = classes.iter().filter(|(_, d)| *d > 1).count();
    let lost = classes.iter().filter(|(_, d)| *d == 0).count();
    let unexpected = count(
        &db,
        "SELECT count(*) FROM perf_test_crash_done WHERE run = $1 AND (key < 0 OR key >= 10000)",
        run,
    )
    .await;
    println!(
        "{} jobs {JOBS}: ok {ok}, recovered {recovered}, duplicated {duplicated}, lost {lost}, \
         unexpected {unexpected}; all done {drained_in:?} after the last kill",
        kind.name()
    );
    assert_eq!(lost, 0, "no job lost");
    assert_eq!(unexpected, 0, "no completion of a job never enqueued");
    assert!(
        duplicated <= KILLS * CONCURRENCY,
        "duplicates bounded by the jobs in flight at the kills: {duplicated}"
    );
    assert!(
        recovered >= 1,
        "the kills cut attempts off (else the test proved nothing)"
    );
    assert_eq!(ok + recovered + duplicated, JOBS as usize);
    // The logs of a passing run are not needed again: keep the tables small.
    for delete in [
        "DELETE FROM perf_test_crash_attempts WHERE run = $1",
        "DELETE FROM perf_test_crash_done WHERE run = $1",
    ] {
        let _ = db.execute(delete, Params::new().bind(run)).await;
    }
    perf.shutdown().await;
}
