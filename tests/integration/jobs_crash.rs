//! Workers killed with SIGKILL lose no job (PostgreSQL store).
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
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use perf_runtime::async_job;
use perf_runtime::db::{Db, Params};
use perf_runtime::jobs::{Jobs, PostgresStore, WorkerConfig};

const JOBS: u64 = 10_000;
const WORKERS: usize = 2;
const CONCURRENCY: usize = 8;
const KILLS: usize = 3;

static DB: OnceLock<Db> = OnceLock::new();

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
    tokio::time::sleep(Duration::from_millis(2 + (key % 7) as u64)).await;
    record("INSERT INTO perf_test_crash_done (run, key, pid) VALUES ($1, $2, $3)")
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS perf_test_crash_attempts (run BIGINT, key BIGINT, pid BIGINT)",
    "CREATE TABLE IF NOT EXISTS perf_test_crash_done (run BIGINT, key BIGINT, pid BIGINT)",
];

async fn connect(url: &str) -> (perf_runtime::Perf, Db) {
    let config = perf_runtime::PerfConfig::builder()
        .database_url(url)
        .db_max_connections(12)
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    support::pg_pool::start_pool(config).await
}

/// A worker process: works the queue until killed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_worker() {
    let Ok(url) = std::env::var("PERF_CRASH_DB") else {
        return; // Only runs when spawned by the parent test.
    };
    let (_perf, db) = connect(&url).await;
    DB.set(db.clone()).expect("once");
    let store = PostgresStore::connect(db).await.expect("store");
    let jobs = Jobs::new(Arc::new(store));
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

fn spawn_worker(url: &str) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["crash_worker", "--exact", "--nocapture", "--test-threads=1"])
        .env("PERF_CRASH_DB", url)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn a worker process")
}

async fn count(db: &Db, sql: &'static str, run: i64) -> i64 {
    let row: Option<(i64,)> = db
        .fetch_optional(sql, Params::new().bind(run))
        .await
        .expect("count");
    row.map_or(0, |(n,)| n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_with_sigkill_lose_no_job() {
    let Some(url) = support::service_url("DATABASE_URL") else {
        return;
    };
    let (perf, db) = connect(&url).await;
    for statement in SCHEMA {
        db.execute(statement, Params::new()).await.expect("schema");
    }
    let store = PostgresStore::connect(db.clone()).await.expect("store");
    let jobs = Jobs::new(Arc::new(store));
    let run = support::run_id() as i64;
    for chunk in (0..JOBS as i64).collect::<Vec<_>>().chunks(2_000) {
        let batch = chunk.iter().map(|&key| crash_job(run, key));
        jobs.enqueue_batch(batch).await.expect("enqueue");
    }

    let mut workers: Vec<Child> = (0..WORKERS).map(|_| spawn_worker(&url)).collect();
    let done_sql = "SELECT count(DISTINCT key) FROM perf_test_crash_done WHERE run = $1";
    for kill in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let victim = kill % WORKERS;
        workers[victim].kill().expect("SIGKILL");
        let _ = workers[victim].wait();
        let done = count(&db, done_sql, run).await;
        println!(
            "kill {}: worker {victim} killed with {done} jobs done",
            kill + 1
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        workers[victim] = spawn_worker(&url);
    }
    let last_kill = Instant::now();
    while count(&db, done_sql, run).await < JOBS as i64
        && last_kill.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drained_in = last_kill.elapsed();
    for worker in &mut workers {
        let _ = worker.kill();
        let _ = worker.wait();
    }

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
        "jobs {JOBS}: ok {ok}, recovered {recovered}, duplicated {duplicated}, lost {lost}, \
         unexpected {unexpected}; all done {drained_in:?} after the last kill"
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
    perf.shutdown().await;
}
