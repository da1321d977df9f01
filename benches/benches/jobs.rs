//! Enqueue and process 10,000 no-op jobs with 8 concurrent workers, per
//! store, in the same run as the baselines: `tokio::spawn` per job and an
//! mpsc channel feeding 8 tasks.
//!
//! - `backlog`: every job enqueued first (one `enqueue` each, or one
//!   `enqueue_batch`), then the workers start; enqueue and processing rates
//!   are measured apart.
//! - `arriving`: the workers run while the jobs are enqueued one by one;
//!   end-to-end rate from the first enqueue to the last completion.
//!
//! The PostgreSQL store runs when `DATABASE_URL` is set (`eval "$(scripts/services.sh start)"`).
//! Each figure is the median of 5 rounds. The runtime is initialised
//! (Prometheus recorder installed) as in a service.
//!
//! Run with: `cargo bench -p perf-benches --bench jobs`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use perf_runtime::async_job;
use perf_runtime::jobs::{JobStore, Jobs, MemoryStore, WorkerConfig};
use tokio::sync::Notify;

const JOBS: u64 = 10_000;
const WORKERS: usize = 8;
const ROUNDS: usize = 5;

static DONE: AtomicU64 = AtomicU64::new(0);
/// The count of body runs a round waits for.
static TARGET: AtomicU64 = AtomicU64::new(u64::MAX);
/// Woken by the body run that reaches `TARGET`.
static REACHED: Notify = Notify::const_new();

#[async_job(queue = "bench_noop", max_retries = 0)]
async fn noop(i: u64) {
    std::hint::black_box(i);
    if DONE.fetch_add(1, Ordering::Relaxed) + 1 == TARGET.load(Ordering::Relaxed) {
        REACHED.notify_one();
    }
}

/// Sets the count of body runs the round waits for; before its first job.
fn expect_done(target: u64) {
    TARGET.store(target, Ordering::Relaxed);
}

/// Waits for the count set by [`expect_done`]. Woken by the job that
/// reaches it (a 200 µs sleep loop would round up to tokio's 1 ms timer
/// and add up to a millisecond to rounds of a few milliseconds).
async fn wait_done(target: u64) {
    while DONE.load(Ordering::Relaxed) < target {
        let _ = tokio::time::timeout(Duration::from_millis(50), REACHED.notified()).await;
    }
}

fn workers(jobs: &Jobs) {
    let mut config = WorkerConfig::default();
    config.concurrency = WORKERS;
    config.queues = vec!["bench_noop".to_owned()];
    jobs.start_workers(config).expect("workers");
}

/// Jobs per second of each phase of one round.
#[derive(Default)]
struct Rates {
    enqueue: Vec<f64>,
    process: Vec<f64>,
    end_to_end: Vec<f64>,
}

fn per_second(jobs: u64, took: Duration) -> f64 {
    jobs as f64 / took.as_secs_f64()
}

async fn backlog(store: Arc<dyn JobStore>, batch: bool, count: u64, rates: &mut Rates) {
    let jobs = Jobs::new(store);
    let base = DONE.load(Ordering::Relaxed);
    expect_done(base + count);
    let started = Instant::now();
    if batch {
        let all: Vec<u64> = (0..count).collect();
        for chunk in all.chunks(10_000) {
            jobs.enqueue_batch(chunk.iter().map(|&i| noop(i)))
                .await
                .expect("batch");
        }
    } else {
        for i in 0..count {
            noop(i).on(&jobs).await.expect("enqueue");
        }
    }
    let enqueued = started.elapsed();
    let processing = Instant::now();
    workers(&jobs);
    wait_done(base + count).await;
    let processed = processing.elapsed();
    jobs.stop_workers(Duration::from_secs(1)).await;
    rates.enqueue.push(per_second(count, enqueued));
    rates.process.push(per_second(count, processed));
    rates.end_to_end.push(per_second(count, started.elapsed()));
}

async fn arriving(store: Arc<dyn JobStore>, rates: &mut Rates) {
    let jobs = Jobs::new(store);
    workers(&jobs);
    let base = DONE.load(Ordering::Relaxed);
    expect_done(base + JOBS);
    let started = Instant::now();
    for i in 0..JOBS {
        noop(i).on(&jobs).await.expect("enqueue");
    }
    let enqueued = started.elapsed();
    wait_done(base + JOBS).await;
    jobs.stop_workers(Duration::from_secs(1)).await;
    rates.enqueue.push(per_second(JOBS, enqueued));
    rates.end_to_end.push(per_second(JOBS, started.elapsed()));
}

async fn spawn_per_job(rates: &mut Rates) {
    let started = Instant::now();
    let handles: Vec<_> = (0..JOBS)
        .map(|i| tokio::spawn(async move { std::hint::black_box(i) }))
        .collect();
    for handle in handles {
        handle.await.expect("task");
    }
    rates.end_to_end.push(per_second(JOBS, started.elapsed()));
}

async fn mpsc_eight_tasks(rates: &mut Rates) {
    let started = Instant::now();
    let (sender, receiver) = tokio::sync::mpsc::channel::<u64>(1024);
    let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
    let tasks: Vec<_> = (0..WORKERS)
        .map(|_| {
            let receiver = Arc::clone(&receiver);
            tokio::spawn(async move {
                while let Some(i) = receiver.lock().await.recv().await {
                    std::hint::black_box(i);
                }
            })
        })
        .collect();
    for i in 0..JOBS {
        sender.send(i).await.expect("send");
    }
    drop(sender);
    for task in tasks {
        task.await.expect("task");
    }
    rates.end_to_end.push(per_second(JOBS, started.elapsed()));
}

fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

fn row(name: &str, rates: &Rates) {
    let cell = |values: &[f64]| median(values).map_or("–".to_owned(), |v| format!("{v:.0}"));
    println!(
        "| {name} | {} | {} | {} |",
        cell(&rates.enqueue),
        cell(&rates.process),
        cell(&rates.end_to_end)
    );
}

async fn postgres_store() -> Option<(perf_runtime::Perf, Arc<dyn JobStore>)> {
    let url = std::env::var("DATABASE_URL").ok()?;
    let config = perf_runtime::PerfConfig::builder()
        .database_url(url)
        .db_max_connections(16)
        .enable_monitoring(false)
        .enable_prometheus(false)
        .build()
        .expect("valid config");
    let perf = perf_runtime::Perf::start(config).await.expect("start");
    let db = perf.db().expect("pool");
    let store = perf_runtime::jobs::PostgresStore::connect(db)
        .await
        .expect("schema");
    Some((perf, Arc::new(store)))
}

fn main() {
    let (runtime, _perf) = perf_benches::service_runtime(2);
    runtime.block_on(async {
        let mut spawn = Rates::default();
        let mut mpsc = Rates::default();
        let mut memory_single = Rates::default();
        let mut memory_batch = Rates::default();
        let mut memory_arriving = Rates::default();
        for _ in 0..ROUNDS {
            spawn_per_job(&mut spawn).await;
            mpsc_eight_tasks(&mut mpsc).await;
            backlog(
                Arc::new(MemoryStore::new()),
                false,
                JOBS,
                &mut memory_single,
            )
            .await;
            backlog(Arc::new(MemoryStore::new()), true, JOBS, &mut memory_batch).await;
            arriving(Arc::new(MemoryStore::new()), &mut memory_arriving).await;
        }
        println!("\n{JOBS} no-op jobs, {WORKERS} workers; jobs/s, median of {ROUNDS} rounds\n");
        println!("| case | enqueue | process (backlog) | end to end |");
        println!("|---|---:|---:|---:|");
        row("tokio::spawn per job", &spawn);
        row("mpsc + 8 tasks", &mpsc);
        row("memory store, backlog, enqueue one by one", &memory_single);
        row("memory store, backlog, enqueue_batch", &memory_batch);
        row(
            "memory store, workers running while jobs arrive",
            &memory_arriving,
        );

        if let Some((perf, store)) = postgres_store().await {
            let mut pg_single = Rates::default();
            let mut pg_batch = Rates::default();
            let mut pg_arriving = Rates::default();
            for _ in 0..3 {
                backlog(Arc::clone(&store), false, JOBS, &mut pg_single).await;
                backlog(Arc::clone(&store), true, JOBS, &mut pg_batch).await;
                arriving(Arc::clone(&store), &mut pg_arriving).await;
            }
            let mut pg_large = Rates::default();
            backlog(Arc::clone(&store), true, 100_000, &mut pg_large).await;
            row("PostgreSQL, backlog, enqueue one by one", &pg_single);
            row("PostgreSQL, backlog, enqueue_batch", &pg_batch);
            row(
                "PostgreSQL, workers running while jobs arrive",
                &pg_arriving,
            );
            row("PostgreSQL, 100,000-job backlog (batch)", &pg_large);
            perf.shutdown().await;
        } else {
            eprintln!("DATABASE_URL not set: PostgreSQL store not measured");
        }
    });
}
