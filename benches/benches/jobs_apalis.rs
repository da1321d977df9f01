//! Our job stores against `apalis` 1.0 on the same backend, in the same run:
//! 10,000 no-op jobs, 8 jobs at once, per backend (Redis, PostgreSQL).
//!
//! - `backlog`, one by one: 10,000 enqueue calls, timed; the backlog is
//!   then thrown away with its namespace or database (it is the batch
//!   case's backlog, processed there).
//! - `backlog`, batch: one batch call with all 10,000 (ours
//!   `enqueue_batch`, apalis `push_bulk`), then the workers start; enqueue
//!   and processing (workers' start to the last job run) timed apart.
//! - `arriving`: the workers run while the jobs are enqueued one by one;
//!   end-to-end rate from the first enqueue to the last job run.
//!
//! Ours runs through `Jobs` and a `WorkerPool` of concurrency 8, as in
//! `benches/jobs.rs`; apalis through one `WorkerBuilder` worker with
//! `.concurrency(8)`, its storage's defaults otherwise (see
//! `docs/PERFORMANCE.md` for what differs). A job counts as run when its
//! body has run, for both.
//!
//! Every case gets a fresh Redis namespace / apalis queue, and on
//! PostgreSQL a fresh database (dropped after), so neither side sees the
//! other's rows or an earlier run's. A case that errors or takes more than
//! [`LIMIT`] is reported as failed instead of ending the bench (one that ran
//! out of time is not tried again in later rounds). Every round's figures
//! go to stderr, with any stretch of a second or more in which no job ran.
//!
//! Needs `REDIS_URL` and `DATABASE_URL` (`eval "$(scripts/services.sh start)"`);
//! a backend whose variable is unset is skipped. Each figure is the median
//! of [`ROUNDS`] rounds.
//!
//! Run with: `SQLX_OFFLINE=true cargo bench -p perf-benches --bench jobs_apalis`
//! (`SQLX_OFFLINE` makes apalis-postgres's query macros use the query data it
//! ships instead of checking its queries against `DATABASE_URL`'s database,
//! which has no `apalis` schema).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apalis::prelude::{
    BackendExt, BoxDynError, Event, EventListenerExt, TaskSink, WorkerBuilder, WorkerBuilderExt,
    WorkerError,
};
use fred::interfaces::{ClientLike, KeysInterface};
use perf_runtime::async_job;
use perf_runtime::jobs::{JobStore, Jobs, PostgresStore, RedisStore, WorkerConfig};

const JOBS: u64 = 10_000;
const WORKERS: usize = 8;
const ROUNDS: usize = 3;
/// Longest a case may take, enqueue and processing together, before it is
/// reported as failed: a stuck side must not stall the whole bench.
const LIMIT: Duration = Duration::from_secs(120);
/// apalis-redis's idle poll. Without a poll strategy an apalis worker whose
/// fetch came back empty waits for its next heartbeat (30 s by default),
/// and apalis-redis stores every push in its scheduled set, so the pub/sub
/// wake-up of `RedisStorageFactory` (sent only for jobs pushed straight to
/// the active list) never fires. 10 ms keeps it from idling in the
/// `arriving` case; ours is woken by its own enqueues in the same process.
const APALIS_REDIS_POLL: Duration = Duration::from_millis(10);

/// Jobs run by our workers (the body of [`noop`]).
static DONE: AtomicU64 = AtomicU64::new(0);
/// Jobs run by apalis workers (the body of [`apalis_noop`]).
static APALIS_DONE: AtomicU64 = AtomicU64::new(0);

#[async_job(queue = "bench_noop", max_retries = 0)]
async fn noop(i: u64) {
    std::hint::black_box(i);
    DONE.fetch_add(1, Ordering::Relaxed);
}

async fn apalis_noop(i: u64) -> Result<(), BoxDynError> {
    std::hint::black_box(i);
    APALIS_DONE.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Case {
    /// Enqueued one by one, no workers: the enqueue rate only.
    BacklogSingle,
    /// Enqueued in one batch call, then the workers start.
    BacklogBatch,
    /// Workers running while jobs are enqueued one by one.
    Arriving,
}

const CASES: [Case; 3] = [Case::BacklogSingle, Case::BacklogBatch, Case::Arriving];

/// One round of one case: jobs/s of each phase it got through, and why it
/// stopped short if it did.
#[derive(Default)]
struct Sample {
    enqueue: Option<f64>,
    process: Option<f64>,
    end_to_end: Option<f64>,
    failed: Option<String>,
    /// It failed by taking longer than [`LIMIT`]: not tried again.
    timed_out: bool,
    /// The longest time no job ran while the side waited for its jobs.
    stall: Duration,
}

/// Every round of one case on one side.
type Series = Vec<Sample>;

fn per_second(jobs: u64, took: Duration) -> f64 {
    jobs as f64 / took.as_secs_f64()
}

/// Waits until `counter` reaches `target`, or `failed` says why it never
/// will; gives the longest time without a job run while waiting (a worker
/// that stalls shows here rather than only in a lower rate).
async fn wait_for(
    counter: &AtomicU64,
    target: u64,
    stall: &mut Duration,
    mut failed: impl FnMut() -> Option<String>,
) -> Result<(), String> {
    let mut seen = counter.load(Ordering::Relaxed);
    let mut since = Instant::now();
    while seen < target {
        if let Some(reason) = failed() {
            return Err(reason);
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
        let now = counter.load(Ordering::Relaxed);
        if now == seen {
            *stall = (*stall).max(since.elapsed());
        } else {
            (seen, since) = (now, Instant::now());
        }
    }
    Ok(())
}

fn gave_up(counter: &AtomicU64, base: u64) -> String {
    let ran = counter.load(Ordering::Relaxed).saturating_sub(base);
    format!(
        "gave up after {} s with {ran} of {JOBS} jobs run",
        LIMIT.as_secs()
    )
}

// ---------------------------------------------------------------- ours

fn start_ours(jobs: &Jobs) -> Result<(), String> {
    let mut config = WorkerConfig::default();
    config.concurrency = WORKERS;
    config.queues = vec!["bench_noop".to_owned()];
    jobs.start_workers(config)
        .map_err(|error| error.to_string())
}

async fn ours(store: Arc<dyn JobStore>, case: Case) -> Sample {
    let jobs = Jobs::new(store);
    let base = DONE.load(Ordering::Relaxed);
    let mut sample = Sample::default();
    let run = async {
        if case == Case::Arriving {
            start_ours(&jobs)?;
        }
        let started = Instant::now();
        if case == Case::BacklogBatch {
            jobs.enqueue_batch((0..JOBS).map(noop))
                .await
                .map_err(|error| error.to_string())?;
        } else {
            for i in 0..JOBS {
                noop(i).on(&jobs).await.map_err(|error| error.to_string())?;
            }
        }
        sample.enqueue = Some(per_second(JOBS, started.elapsed()));
        if case == Case::BacklogSingle {
            // Its backlog is the batch case's; processed there.
            return Ok(());
        }
        let processing = Instant::now();
        if case == Case::BacklogBatch {
            start_ours(&jobs)?;
        }
        wait_for(&DONE, base + JOBS, &mut sample.stall, || None).await?;
        if case == Case::Arriving {
            sample.end_to_end = Some(per_second(JOBS, started.elapsed()));
        } else {
            sample.process = Some(per_second(JOBS, processing.elapsed()));
        }
        Ok::<(), String>(())
    };
    let result = tokio::time::timeout(LIMIT, run).await;
    // Not timed; bounded in case a store call hangs.
    let stopped = tokio::time::timeout(
        Duration::from_secs(10),
        jobs.stop_workers(Duration::from_secs(1)),
    )
    .await;
    match (result, stopped) {
        (Ok(Ok(())), Ok(())) => {}
        (Ok(Ok(())), Err(_)) => sample.failed = Some("workers did not stop within 10 s".to_owned()),
        (Ok(Err(reason)), _) => sample.failed = Some(reason),
        (Err(_), _) => {
            sample.failed = Some(gave_up(&DONE, base));
            sample.timed_out = true;
        }
    }
    sample
}

// -------------------------------------------------------------- apalis

/// A running apalis worker.
struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), WorkerError>>,
    error: ErrorSlot,
    /// Why the worker task ended, once it has (a `JoinHandle` gives its
    /// output once).
    ended: Option<String>,
}

impl Running {
    /// Why the worker stopped early, if it did.
    fn failed(&mut self) -> Option<String> {
        if let Some(error) = self.error.lock().expect("error slot").clone() {
            return Some(error);
        }
        if self.ended.is_none() && self.task.is_finished() {
            let joined = futures_util::FutureExt::now_or_never(&mut self.task);
            self.ended = Some(match joined {
                Some(Ok(Err(error))) => error.to_string(),
                Some(Ok(Ok(()))) | None => "worker exited".to_owned(),
                Some(Err(error)) => format!("worker task: {error}"),
            });
        }
        self.ended.clone()
    }

    /// Stops the worker, letting it finish its running jobs and write their
    /// results (not timed); bounded, then aborted.
    async fn stop(mut self) -> Result<(), String> {
        let _ = self.stop.send(());
        if self.ended.is_some() {
            return Ok(());
        }
        match tokio::time::timeout(Duration::from_secs(10), &mut self.task).await {
            Ok(_) => Ok(()),
            Err(_) => {
                self.task.abort();
                Err("apalis worker did not stop within 10 s".to_owned())
            }
        }
    }
}

/// The first error event of a worker (a job that failed).
type ErrorSlot = Arc<Mutex<Option<String>>>;

/// An event listener recording the first error event into `slot`.
fn error_listener(
    slot: &ErrorSlot,
) -> impl Fn(&apalis::prelude::WorkerContext, &Event) + Send + Sync + 'static {
    let slot = Arc::clone(slot);
    move |_: &apalis::prelude::WorkerContext, event: &Event| {
        if let Event::Error(error) = event {
            slot.lock()
                .expect("error slot")
                .get_or_insert_with(|| format!("job error: {error}"));
        }
    }
}

async fn stop_signal(receiver: tokio::sync::oneshot::Receiver<()>) -> Result<(), std::io::Error> {
    let _ = receiver.await;
    Ok(())
}

/// The apalis side of one backend.
trait Apalis {
    async fn push(&mut self, i: u64) -> Result<(), String>;
    async fn push_bulk(&mut self, items: Vec<u64>) -> Result<(), String>;
    fn start(&self, name: String) -> Running;
}

struct ApalisRedis {
    storage: apalis_redis::RedisStorage<u64>,
}

impl Apalis for ApalisRedis {
    async fn push(&mut self, i: u64) -> Result<(), String> {
        self.storage
            .push(i)
            .await
            .map_err(|error| error.to_string())
    }

    async fn push_bulk(&mut self, items: Vec<u64>) -> Result<(), String> {
        self.storage
            .push_bulk(items)
            .await
            .map_err(|error| error.to_string())
    }

    fn start(&self, name: String) -> Running {
        let error = ErrorSlot::default();
        let listener = error_listener(&error);
        let (stop, receiver) = tokio::sync::oneshot::channel();
        let backend = self.storage.clone().poll_with_interval(APALIS_REDIS_POLL);
        let worker = WorkerBuilder::new(name)
            .backend(backend)
            .concurrency(WORKERS)
            .on_event(listener)
            .build(apalis_noop);
        let task = tokio::spawn(worker.run_until(stop_signal(receiver)));
        Running {
            stop,
            task,
            error,
            ended: None,
        }
    }
}

struct ApalisPostgres {
    storage: apalis_postgres::PostgresStorage<u64>,
}

impl Apalis for ApalisPostgres {
    async fn push(&mut self, i: u64) -> Result<(), String> {
        self.storage
            .push(i)
            .await
            .map_err(|error| error.to_string())
    }

    async fn push_bulk(&mut self, items: Vec<u64>) -> Result<(), String> {
        self.storage
            .push_bulk(items)
            .await
            .map_err(|error| error.to_string())
    }

    fn start(&self, name: String) -> Running {
        let error = ErrorSlot::default();
        let listener = error_listener(&error);
        let (stop, receiver) = tokio::sync::oneshot::channel();
        // LISTEN/NOTIFY wake-ups, as ours has on PostgreSQL.
        let backend = self.storage.clone().with_pubsub();
        let worker = WorkerBuilder::new(name)
            .backend(backend)
            .concurrency(WORKERS)
            .on_event(listener)
            .build(apalis_noop);
        let task = tokio::spawn(worker.run_until(stop_signal(receiver)));
        Running {
            stop,
            task,
            error,
            ended: None,
        }
    }
}

async fn apalis<A: Apalis>(side: &mut A, case: Case, worker: String) -> Sample {
    let base = APALIS_DONE.load(Ordering::Relaxed);
    let mut sample = Sample::default();
    let mut running = None;
    let run = async {
        if case == Case::Arriving {
            running = Some(side.start(worker.clone()));
        }
        let started = Instant::now();
        if case == Case::BacklogBatch {
            side.push_bulk((0..JOBS).collect()).await?;
        } else {
            for i in 0..JOBS {
                side.push(i).await?;
                if let Some(reason) = running.as_mut().and_then(Running::failed) {
                    return Err(reason);
                }
            }
        }
        sample.enqueue = Some(per_second(JOBS, started.elapsed()));
        if case == Case::BacklogSingle {
            return Ok(());
        }
        let processing = Instant::now();
        let running = running.get_or_insert_with(|| side.start(worker));
        wait_for(&APALIS_DONE, base + JOBS, &mut sample.stall, || {
            running.failed()
        })
        .await?;
        if case == Case::Arriving {
            sample.end_to_end = Some(per_second(JOBS, started.elapsed()));
        } else {
            sample.process = Some(per_second(JOBS, processing.elapsed()));
        }
        Ok(())
    };
    let result = tokio::time::timeout(LIMIT, run).await;
    let stopped = match running {
        Some(running) => running.stop().await,
        None => Ok(()),
    };
    match (result, stopped) {
        (Ok(Ok(())), Ok(())) => {}
        (Ok(Ok(())), Err(reason)) | (Ok(Err(reason)), _) => sample.failed = Some(reason),
        (Err(_), _) => {
            sample.failed = Some(gave_up(&APALIS_DONE, base));
            sample.timed_out = true;
        }
    }
    sample
}

// ------------------------------------------------------------- servers

/// Names unique to this run (process id and start time).
fn run_id() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    format!("{}_{millis}", std::process::id())
}

fn case_name(case: Case) -> &'static str {
    match case {
        Case::BacklogSingle => "single",
        Case::BacklogBatch => "batch",
        Case::Arriving => "arriving",
    }
}

/// Deletes the keys matching `pattern` (a case's namespace), page by page.
async fn delete_keys(client: &fred::prelude::Client, pattern: &str) -> Result<(), String> {
    let mut cursor = "0".to_owned();
    loop {
        let (next, keys): (String, Vec<String>) = client
            .scan_page(cursor, pattern, Some(1_000), None)
            .await
            .map_err(|error| error.to_string())?;
        if !keys.is_empty() {
            let _: u64 = client
                .unlink(keys)
                .await
                .map_err(|error| error.to_string())?;
        }
        if next == "0" {
            return Ok(());
        }
        cursor = next;
    }
}

struct RedisServer {
    url: String,
    perf: perf_runtime::Perf,
    apalis: apalis_redis::ConnectionManager,
    /// For deleting each case's keys afterwards.
    cleaner: fred::prelude::Client,
}

impl RedisServer {
    async fn connect(url: String) -> Result<Self, String> {
        let config = perf_runtime::PerfConfig::builder()
            .redis_url(url.clone())
            .enable_monitoring(false)
            .enable_prometheus(false)
            .build()
            .map_err(|error| error.to_string())?;
        let perf = perf_runtime::Perf::start(config)
            .await
            .map_err(|error| error.to_string())?;
        let apalis = apalis_redis::connect(url.as_str())
            .await
            .map_err(|error| error.to_string())?;
        let cleaner = fred::prelude::Builder::from_config(
            fred::prelude::Config::from_url(&url).map_err(|error| error.to_string())?,
        )
        .build()
        .map_err(|error| error.to_string())?;
        cleaner.init().await.map_err(|error| error.to_string())?;
        Ok(RedisServer {
            url,
            perf,
            apalis,
            cleaner,
        })
    }

    async fn ours(&self, run: &str, round: usize, case: Case) -> Result<Sample, String> {
        let namespace = format!("perf-bench-apalis-{run}-{round}-{}", case_name(case));
        let store = RedisStore::from_perf(&self.perf, namespace.as_str())
            .ok_or_else(|| format!("Redis not configured from {}", self.url))?;
        let sample = ours(Arc::new(store), case).await;
        let cleaned = bounded(delete_keys(&self.cleaner, &format!("{{{namespace}}}:*"))).await;
        Ok(settle(sample, cleaned))
    }

    async fn apalis(&self, run: &str, round: usize, case: Case) -> Result<Sample, String> {
        let queue = format!("apalis-bench-{run}-{round}-{}", case_name(case));
        let config = apalis_redis::Config::default().queue(&queue);
        let mut side = ApalisRedis {
            storage: apalis_redis::RedisStorage::new(self.apalis.clone()).with_config(config),
        };
        let sample = apalis(&mut side, case, format!("{queue}-worker")).await;
        let cleaned = bounded(delete_keys(&self.cleaner, &format!("{queue}:*"))).await;
        Ok(settle(sample, cleaned))
    }

    async fn close(self) {
        self.perf.shutdown().await;
        let _ = self.cleaner.quit().await;
    }
}

/// `sample`, failed if its clean-up did (and it had not already).
fn settle(mut sample: Sample, cleanup: Result<(), String>) -> Sample {
    if let Err(reason) = cleanup {
        sample.failed.get_or_insert(format!("clean-up: {reason}"));
    }
    sample
}

/// Bounds an untimed set-up or clean-up step.
async fn bounded<T>(step: impl Future<Output = Result<T, String>>) -> Result<T, String> {
    tokio::time::timeout(Duration::from_secs(60), step)
        .await
        .unwrap_or_else(|_| Err("set-up or clean-up took over 60 s".to_owned()))
}

/// The PostgreSQL server: each case runs in a database of its own, created
/// for it and dropped after.
struct PostgresServer {
    url: String,
    admin: sqlx::PgPool,
}

/// `url` with its database name replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (head, query) = url
        .split_once('?')
        .map_or((url, None), |(head, query)| (head, Some(query)));
    let prefix = match head.rsplit_once('/') {
        // `postgres://host` has no database part: `rsplit` found `//`.
        Some((prefix, _)) if !prefix.ends_with('/') => prefix,
        _ => head,
    };
    match query {
        Some(query) => format!("{prefix}/{database}?{query}"),
        None => format!("{prefix}/{database}"),
    }
}

const DATABASE_PREFIX: &str = "perf_bench_apalis_";

impl PostgresServer {
    async fn connect(url: String) -> Result<Self, String> {
        let admin = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&url)
            .await
            .map_err(|error| error.to_string())?;
        let server = PostgresServer { url, admin };
        // Databases left by an earlier run that was killed. Runs do not
        // overlap: the documented command holds the cargo lock throughout.
        let stale: Vec<(String,)> =
            sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE $1")
                .bind(format!("{DATABASE_PREFIX}%"))
                .fetch_all(&server.admin)
                .await
                .map_err(|error| error.to_string())?;
        for (name,) in stale {
            server.drop_database(&name).await?;
        }
        Ok(server)
    }

    async fn create_database(&self, name: &str) -> Result<String, String> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&self.admin)
            .await
            .map_err(|error| error.to_string())?;
        Ok(with_database(&self.url, name))
    }

    async fn drop_database(&self, name: &str) -> Result<(), String> {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
        )))
        .execute(&self.admin)
        .await
        .map(drop)
        .map_err(|error| error.to_string())
    }

    async fn ours(&self, run: &str, round: usize, case: Case) -> Result<Sample, String> {
        let name = format!("{DATABASE_PREFIX}{run}_{round}_ours_{}", case_name(case));
        let url = bounded(self.create_database(&name)).await?;
        let result = async {
            let config = perf_runtime::PerfConfig::builder()
                .database_url(url)
                .db_max_connections(16)
                .enable_monitoring(false)
                .enable_prometheus(false)
                .build()
                .map_err(|error| error.to_string())?;
            let perf = bounded(async {
                perf_runtime::Perf::start(config)
                    .await
                    .map_err(|error| error.to_string())
            })
            .await?;
            let result = async {
                let db = perf.db().ok_or("no PostgreSQL pool")?;
                let store = bounded(async {
                    PostgresStore::connect(db)
                        .await
                        .map_err(|error| error.to_string())
                })
                .await?;
                Ok(ours(Arc::new(store), case).await)
            }
            .await;
            perf.shutdown().await;
            result
        }
        .await;
        let dropped = bounded(self.drop_database(&name)).await;
        result.map(|sample| settle(sample, dropped))
    }

    async fn apalis(&self, run: &str, round: usize, case: Case) -> Result<Sample, String> {
        let name = format!("{DATABASE_PREFIX}{run}_{round}_apalis_{}", case_name(case));
        let url = bounded(self.create_database(&name)).await?;
        let result = async {
            let pool = bounded(async {
                // Our store's pool size (`db_max_connections(16)`).
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(16)
                    .connect(&url)
                    .await
                    .map_err(|error| error.to_string())?;
                apalis_postgres::PostgresStorage::setup(&pool)
                    .await
                    .map_err(|error| error.to_string())?;
                Ok(pool)
            })
            .await?;
            let queue = format!("apalis_bench_{}", case_name(case));
            let config = apalis_postgres::Config::default().queue(&queue);
            let mut side = ApalisPostgres {
                storage: apalis_postgres::PostgresStorage::new(&pool).with_config(config),
            };
            let sample = apalis(&mut side, case, format!("{name}-worker")).await;
            pool.close().await;
            Ok(sample)
        }
        .await;
        let dropped = bounded(self.drop_database(&name)).await;
        result.map(|sample| settle(sample, dropped))
    }
}

// ------------------------------------------------------------- report

fn median(values: impl Iterator<Item = f64>) -> Option<f64> {
    let mut sorted: Vec<f64> = values.collect();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

/// `1234567.8` as `1,234,568`.
fn thousands(value: f64) -> String {
    let digits = format!("{value:.0}");
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// One field of a sample.
type Field = fn(&Sample) -> Option<f64>;

/// Results by (side, case): side 0 is ours, 1 apalis.
type Results = BTreeMap<(usize, Case), Series>;

/// The median of `field` over the rounds of `cases`, and the first reason
/// a round gave none.
fn cell(results: &Results, side: usize, cases: &[Case], field: Field) -> String {
    let mut failed = None;
    let mut values = Vec::new();
    for sample in cases
        .iter()
        .filter_map(|case| results.get(&(side, *case)))
        .flatten()
    {
        match (field(sample), &sample.failed) {
            (Some(value), _) => values.push(value),
            (None, Some(reason)) => {
                failed.get_or_insert_with(|| short(reason));
            }
            (None, None) => {}
        }
    }
    let rounds = values.len();
    match (median(values.into_iter()), failed) {
        (Some(value), None) => thousands(value),
        (Some(value), Some(reason)) => {
            format!(
                "{} ({rounds} rounds; others failed: {reason})",
                thousands(value)
            )
        }
        (None, Some(reason)) => format!("failed: {reason}"),
        (None, None) => "–".to_owned(),
    }
}

/// A failure's first line, without the Redis script hash that follows
/// apalis's Lua errors.
fn short(reason: &str) -> String {
    let line = reason.lines().next().unwrap_or_default();
    line.split(" script: ")
        .next()
        .unwrap_or(line)
        .trim_end_matches('.')
        .to_owned()
}

/// The ratio of two cells, when both are figures.
fn ratio(ours: &str, theirs: &str) -> String {
    let number = |cell: &str| cell.split(' ').next()?.replace(',', "").parse::<f64>().ok();
    match (number(ours), number(theirs)) {
        (Some(ours), Some(theirs)) => format!("{:.2}×", ours / theirs),
        _ => "–".to_owned(),
    }
}

fn table(backend: &str, results: &Results) {
    println!(
        "\n{backend}: {JOBS} no-op jobs, {WORKERS} at once; jobs/s, median of {ROUNDS} rounds\n"
    );
    println!("| case | ours | apalis | ours / apalis |");
    println!("|---|---:|---:|---:|");
    let rows: [(&str, &[Case], Field); 4] = [
        ("enqueue one by one", &[Case::BacklogSingle], |s| s.enqueue),
        ("enqueue in one batch call", &[Case::BacklogBatch], |s| {
            s.enqueue
        }),
        (
            "process the batch-enqueued backlog (workers start after)",
            &[Case::BacklogBatch],
            |s| s.process,
        ),
        (
            "end to end, workers running while jobs arrive one by one",
            &[Case::Arriving],
            |s| s.end_to_end,
        ),
    ];
    for (name, cases, field) in rows {
        let ours = cell(results, 0, cases, field);
        let theirs = cell(results, 1, cases, field);
        let ratio = ratio(&ours, &theirs);
        println!("| {name} | {ours} | {theirs} | {ratio} |");
    }
    // Every round's figures, to show the spread behind the medians.
    for ((side, case), series) in results {
        let who = if *side == 0 { "ours" } else { "apalis" };
        let figures: Vec<String> = series
            .iter()
            .map(|sample| {
                let phases = [
                    ("enqueue", sample.enqueue),
                    ("process", sample.process),
                    ("end to end", sample.end_to_end),
                ];
                let mut shown: Vec<String> = phases
                    .iter()
                    .filter_map(|(phase, value)| Some(format!("{phase} {}", thousands((*value)?))))
                    .collect();
                if sample.stall >= Duration::from_secs(1) {
                    shown.push(format!(
                        "no job ran for {:.1} s at one point",
                        sample.stall.as_secs_f64()
                    ));
                }
                match &sample.failed {
                    Some(reason) => format!("{} failed: {}", shown.join(", "), short(reason)),
                    None => shown.join(", "),
                }
            })
            .collect();
        eprintln!("{backend}, {who}, {case:?}: {}", figures.join(" | "));
    }
}

fn record(results: &mut Results, key: (usize, Case), outcome: Result<Sample, String>) {
    let sample = outcome.unwrap_or_else(|reason| Sample {
        failed: Some(format!("set-up: {reason}")),
        ..Sample::default()
    });
    results.entry(key).or_default().push(sample);
}

/// Whether a case still runs: one that ran out of time is reported once,
/// not waited for in every round.
fn runs(results: &Results, key: (usize, Case)) -> bool {
    results
        .get(&key)
        .is_none_or(|series| !series.iter().any(|sample| sample.timed_out))
}

fn main() {
    let runtime = perf_benches::runtime(2);
    runtime.block_on(async {
        let run = run_id();
        let started = Instant::now();

        match std::env::var("REDIS_URL") {
            Ok(url) => match bounded(RedisServer::connect(url)).await {
                Ok(server) => {
                    let mut results = Results::new();
                    for round in 0..ROUNDS {
                        // Alternated, so drift during the run hits both sides.
                        for case in CASES {
                            if runs(&results, (0, case)) {
                                let outcome = server.ours(&run, round, case).await;
                                record(&mut results, (0, case), outcome);
                            }
                            if runs(&results, (1, case)) {
                                let outcome = server.apalis(&run, round, case).await;
                                record(&mut results, (1, case), outcome);
                            }
                        }
                    }
                    table("Redis", &results);
                    server.close().await;
                }
                Err(error) => eprintln!("Redis: could not connect: {error}"),
            },
            Err(_) => eprintln!("REDIS_URL not set: Redis not measured"),
        }

        match std::env::var("DATABASE_URL") {
            Ok(url) => match bounded(PostgresServer::connect(url)).await {
                Ok(server) => {
                    let mut results = Results::new();
                    for round in 0..ROUNDS {
                        for case in CASES {
                            if runs(&results, (0, case)) {
                                let outcome = server.ours(&run, round, case).await;
                                record(&mut results, (0, case), outcome);
                            }
                            if runs(&results, (1, case)) {
                                let outcome = server.apalis(&run, round, case).await;
                                record(&mut results, (1, case), outcome);
                            }
                        }
                    }
                    table("PostgreSQL", &results);
                    server.admin.close().await;
                }
                Err(error) => eprintln!("PostgreSQL: could not connect: {error}"),
            },
            Err(_) => eprintln!("DATABASE_URL not set: PostgreSQL not measured"),
        }
        eprintln!(
            "\njobs_apalis took {:.0} s",
            started.elapsed().as_secs_f64()
        );
    });
}
