//! `#[async_job]` end to end on the memory store: enqueue, run on a worker,
//! retries with backoff, dead letters, unique keys, priorities, inline
//! runs, snooze, pause, shutdown, `cron` jobs started by `init`, worker
//! counts that follow the queue's depth, and
//! streams stored or processed in chunks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use perf_runtime::async_job;
use perf_runtime::jobs::{
    JobError, JobOutcome, JobState, Jobs, MemoryStore, WorkerConfig, WorkerConfigError,
};

static WELCOMES: AtomicU32 = AtomicU32::new(0);
static FLAKY_RUNS: AtomicU32 = AtomicU32::new(0);
static SNOOZES: AtomicU32 = AtomicU32::new(0);
static TICKS: AtomicU32 = AtomicU32::new(0);
static SCALED_RUNNING: AtomicU32 = AtomicU32::new(0);
static SCALED_PEAK: AtomicU32 = AtomicU32::new(0);

#[async_job(queue = "it_welcome")]
async fn welcome(user_id: u64, email: String) {
    assert!(!email.is_empty(), "user {user_id}");
    WELCOMES.fetch_add(1, Ordering::SeqCst);
}

#[async_job(
    queue = "it_flaky",
    max_retries = 3,
    backoff = "fixed",
    backoff_base = "10ms"
)]
async fn flaky(fail_times: u32) -> Result<(), String> {
    let run = FLAKY_RUNS.fetch_add(1, Ordering::SeqCst);
    if run < fail_times {
        Err(format!("run {run} failed on purpose"))
    } else {
        Ok(())
    }
}

#[async_job(
    queue = "it_poison",
    max_retries = 2,
    backoff = "fixed",
    backoff_base = "5ms"
)]
async fn poison() -> Result<(), String> {
    Err("always fails".to_owned())
}

#[async_job(queue = "it_panic", max_retries = 0)]
async fn panics() {
    panic!("boom");
}

#[async_job(queue = "it_unique", unique = "{account}", delay = "1h")]
async fn recount(account: u64) {
    let _ = account;
}

#[async_job(queue = "it_snooze", max_retries = 0)]
async fn snoozing() -> JobOutcome {
    if SNOOZES.fetch_add(1, Ordering::SeqCst) < 2 {
        JobOutcome::Snooze(Duration::from_millis(10))
    } else {
        JobOutcome::Done
    }
}

#[async_job(queue = "it_slow", timeout = "1s")]
async fn slow(millis: u64) {
    tokio::time::sleep(Duration::from_millis(millis)).await;
}

#[async_job(cron = "* * * * * *", queue = "it_recurring")]
async fn every_second() {
    TICKS.fetch_add(1, Ordering::SeqCst);
}

#[async_job(queue = "it_scaled")]
async fn scaled(millis: u64) {
    let now = SCALED_RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    SCALED_PEAK.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(millis)).await;
    SCALED_RUNNING.fetch_sub(1, Ordering::SeqCst);
}

static STALL_RUNS: AtomicU32 = AtomicU32::new(0);
/// Set by the first run of `stalls` just before it blocks its thread.
static STALLING: AtomicBool = AtomicBool::new(false);
/// Set when the first run's body is dropped before it finished.
static STALL_STOPPED: AtomicBool = AtomicBool::new(false);
/// Set if the first run's body ever finished.
static STALL_FINISHED: AtomicBool = AtomicBool::new(false);

/// The first run blocks its thread past its lease (as a process frozen by
/// a pause would), then would go on for 20 s, well within its timeout (so
/// only the lost lease can stop it early); later runs end at once.
#[async_job(queue = "it_stall", max_retries = 3, timeout = "60s")]
async fn stalls() {
    if STALL_RUNS.fetch_add(1, Ordering::SeqCst) > 0 {
        return;
    }
    struct Stopped;
    impl Drop for Stopped {
        fn drop(&mut self) {
            if !STALL_FINISHED.load(Ordering::SeqCst) {
                STALL_STOPPED.store(true, Ordering::SeqCst);
            }
        }
    }
    let _stopped = Stopped;
    STALLING.store(true, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(1_800));
    tokio::time::sleep(Duration::from_secs(20)).await;
    STALL_FINISHED.store(true, Ordering::SeqCst);
}

fn jobs_with_workers(queues: &[&str], concurrency: usize) -> Jobs {
    let jobs = Jobs::new(Arc::new(MemoryStore::new()));
    let mut config = WorkerConfig::default();
    config.concurrency = concurrency;
    config.queues = queues.iter().map(|q| (*q).to_owned()).collect();
    config.lease = Duration::from_secs(3);
    config.heartbeat = Duration::from_secs(1);
    config.sweep = Duration::from_millis(100);
    jobs.start_workers(config).expect("worker config");
    jobs
}

/// A job written as a foreign or broken producer would write it.
fn raw_job(name: &str, queue: &str, payload: Vec<u8>) -> perf_runtime::jobs::NewJob {
    perf_runtime::jobs::NewJob {
        name: name.to_owned().into(),
        queue: queue.to_owned().into(),
        priority: perf_runtime::jobs::Priority::NORMAL,
        payload,
        run_at: std::time::SystemTime::now(),
        max_attempts: 3,
        backoff: perf_runtime::jobs::Backoff::default(),
        timeout: Duration::from_secs(5),
        unique_key: None,
    }
}

#[tokio::test]
async fn a_called_job_runs_on_a_worker_and_completes() {
    let jobs = jobs_with_workers(&["it_welcome"], 4);
    let before = WELCOMES.load(Ordering::SeqCst);
    let handle = welcome(1, "a@example.com".to_owned())
        .on(&jobs)
        .await
        .expect("stored");
    let record = handle.wait().await.expect("completes");
    assert_eq!(record.state, JobState::Completed);
    assert_eq!(record.attempts, 1);
    assert_eq!(WELCOMES.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn failures_are_retried_with_backoff_until_success() {
    let jobs = jobs_with_workers(&["it_flaky"], 2);
    FLAKY_RUNS.store(0, Ordering::SeqCst);
    let handle = flaky(2).on(&jobs).await.expect("stored");
    let record = handle.wait().await.expect("succeeds on the third attempt");
    assert_eq!(record.attempts, 3);
    assert_eq!(
        record.last_error.as_deref(),
        Some("run 1 failed on purpose"),
        "the last failure is kept"
    );
}

#[tokio::test]
async fn a_job_out_of_retries_is_dead_with_its_error_and_can_be_requeued() {
    let jobs = jobs_with_workers(&["it_poison"], 2);
    let handle = poison().on(&jobs).await.expect("stored");
    match handle.wait().await {
        Err(JobError::Dead { reason, .. }) => assert_eq!(reason, "always fails"),
        other => panic!("expected a dead job, got {other:?}"),
    }
    let record = handle.status().await.expect("status").expect("kept");
    assert_eq!(record.attempts, 3, "first attempt and max_retries = 2");
    let dead = jobs
        .store()
        .list_dead(Some("it_poison"), 10)
        .await
        .expect("list");
    assert!(dead.iter().any(|job| job.id == handle.id()));
    assert!(
        jobs.store()
            .requeue_dead(handle.id())
            .await
            .expect("requeue")
    );
    assert!(matches!(handle.wait().await, Err(JobError::Dead { .. })));
    assert!(
        jobs.store()
            .purge_dead(Some("it_poison"))
            .await
            .expect("purge")
            >= 1
    );
}

#[tokio::test]
async fn a_panic_is_a_failure_and_the_worker_goes_on() {
    let jobs = jobs_with_workers(&["it_panic", "it_welcome"], 2);
    let handle = panics().on(&jobs).await.expect("stored");
    match handle.wait().await {
        Err(JobError::Dead { reason, .. }) => assert!(reason.contains("boom"), "{reason}"),
        other => panic!("expected a dead job, got {other:?}"),
    }
    let after = welcome(2, "b@example.com".to_owned())
        .on(&jobs)
        .await
        .expect("stored");
    after.wait().await.expect("the worker still runs jobs");
}

#[tokio::test]
async fn a_timed_out_attempt_fails_with_the_timeout() {
    let jobs = jobs_with_workers(&["it_slow"], 1);
    let handle = slow(5_000).on(&jobs).await.expect("stored");
    let record = loop {
        let record = handle.status().await.expect("status").expect("kept");
        if record.last_error.is_some() {
            break record;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        record
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("timed out after 1s"),
        "{record:?}"
    );
}

#[tokio::test]
async fn without_heartbeats_a_pool_refuses_a_job_that_may_outlive_its_lease() {
    let jobs = Jobs::new(Arc::new(MemoryStore::new()));
    let mut config = WorkerConfig::default();
    config.queues = vec!["it_slow".to_owned(), "it_stall".to_owned()];
    config.heartbeats = false;
    config.lease = Duration::from_secs(30);
    config.heartbeat = Duration::from_secs(10);
    // `stalls` may run 60 s; the pool could hold it 20 s.
    let error = jobs.start_workers(config.clone()).unwrap_err();
    assert_eq!(
        error,
        WorkerConfigError::LeaseShorterThanTimeout {
            job: "stalls",
            timeout: Duration::from_secs(60),
            lease: Duration::from_secs(30),
            limit: Duration::from_secs(20),
        }
    );
    let message = error.to_string();
    assert!(
        message.contains("`stalls`") && message.contains("keep `heartbeats` on"),
        "{message}"
    );
    assert!(!jobs.has_workers());
    // A lease that covers the timeout and a heartbeat's wait is taken, and
    // so is any lease with heartbeats on (they keep it alive).
    config.lease = Duration::from_secs(70);
    jobs.start_workers(config.clone())
        .expect("60 s + 10 s fit in 70 s");
    jobs.stop_workers(Duration::from_secs(1)).await;
    config.heartbeats = true;
    config.lease = Duration::from_secs(30);
    jobs.start_workers(config)
        .expect("heartbeats keep the lease");
    jobs.stop_workers(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn without_heartbeats_a_job_stored_with_a_longer_timeout_is_stopped_within_its_lease() {
    let jobs = Jobs::new(Arc::new(MemoryStore::new()));
    let mut config = WorkerConfig::default();
    config.concurrency = 1;
    config.queues = vec!["it_slow".to_owned()];
    config.heartbeats = false;
    config.lease = Duration::from_secs(3);
    config.heartbeat = Duration::from_secs(1);
    jobs.start_workers(config)
        .expect("`slow`'s 1 s fits in 3 s");
    // Stored by hand with a timeout the pool cannot hold.
    let mut job = raw_job(
        "slow",
        "it_slow",
        rmp_serde::to_vec(&(60_000u64,)).expect("encodes"),
    );
    job.timeout = Duration::from_secs(60);
    job.max_attempts = 1;
    let handle = jobs.enqueue_raw(job).await.expect("stored");
    match handle.wait().await {
        Err(JobError::Dead { reason, .. }) => {
            assert!(reason.contains("timed out after 2s"), "{reason}");
        }
        other => panic!("expected a dead job, got {other:?}"),
    }
    jobs.stop_workers(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_duplicate_unique_key_returns_the_pending_job() {
    let jobs = Jobs::new(Arc::new(MemoryStore::new()));
    let first = recount(7).on(&jobs).await.expect("stored");
    let again = recount(7).on(&jobs).await.expect("stored");
    let other = recount(8).on(&jobs).await.expect("stored");
    assert_eq!(first.id(), again.id());
    assert!(again.is_duplicate() && !first.is_duplicate());
    assert_ne!(first.id(), other.id());
    let record = first.status().await.expect("status").expect("kept");
    assert_eq!(record.state, JobState::Scheduled, "delay = 1h");
}

#[tokio::test]
async fn a_snoozed_job_runs_again_without_spending_attempts() {
    let jobs = jobs_with_workers(&["it_snooze"], 1);
    SNOOZES.store(0, Ordering::SeqCst);
    let handle = snoozing().on(&jobs).await.expect("stored");
    let record = handle.wait().await.expect("done after two snoozes");
    assert_eq!(SNOOZES.load(Ordering::SeqCst), 3);
    assert_eq!(
        record.attempts, 1,
        "snoozes are not attempts (max_retries = 0)"
    );
}

#[tokio::test]
async fn inline_runs_the_body_here() {
    let before = WELCOMES.load(Ordering::SeqCst);
    welcome(3, "c@example.com".to_owned())
        .inline()
        .await
        .expect("ran");
    assert_eq!(WELCOMES.load(Ordering::SeqCst), before + 1);
    let error = poison().inline().await.expect_err("fails");
    assert!(error.to_string().contains("always fails"), "{error}");
}

#[tokio::test]
async fn an_unknown_job_name_goes_to_the_dead_letter_queue_with_a_reason() {
    let jobs = jobs_with_workers(&["it_unknown"], 1);
    let handle = jobs
        .enqueue_raw(raw_job("no_such_job", "it_unknown", Vec::new()))
        .await
        .expect("stored");
    match handle.wait().await {
        Err(JobError::Dead { reason, .. }) => {
            assert!(
                reason.contains("no #[async_job] named `no_such_job`"),
                "{reason}"
            );
        }
        other => panic!("expected a dead job, got {other:?}"),
    }
}

#[tokio::test]
async fn a_malformed_payload_goes_to_the_dead_letter_queue_and_the_worker_goes_on() {
    let jobs = jobs_with_workers(&["it_welcome"], 1);
    let handle = jobs
        .enqueue_raw(raw_job("welcome", "it_welcome", vec![0xc1, 0xff, 0x00]))
        .await
        .expect("stored");
    match handle.wait().await {
        Err(JobError::Dead { reason, .. }) => {
            assert!(reason.contains("payload does not decode"), "{reason}");
        }
        other => panic!("expected a dead job, got {other:?}"),
    }
    let record = handle.status().await.expect("status").expect("kept");
    assert_eq!(
        record.attempts, 1,
        "not retried: it would fail the same way"
    );
    welcome(4, "d@example.com".to_owned())
        .on(&jobs)
        .await
        .expect("stored")
        .wait()
        .await
        .expect("the worker goes on");
}

#[tokio::test]
async fn shutdown_hands_unfinished_jobs_back_unrun() {
    let jobs = jobs_with_workers(&["it_slow"], 1);
    let handle = slow(900).on(&jobs).await.expect("stored");
    while handle.status().await.expect("status").expect("kept").state != JobState::Running {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    jobs.stop_workers(Duration::from_millis(50)).await;
    let record = handle.status().await.expect("status").expect("kept");
    assert_eq!(record.state, JobState::Available, "handed back");
    assert_eq!(record.attempts, 0, "the interrupted attempt is not counted");
}

/// The pool's runtime is frozen past a running job's lease (one thread,
/// blocked by the job), and meanwhile another party takes the job back.
/// When the runtime runs again, the heartbeat finds the lease taken over
/// and the body is stopped there, instead of running on beside the new
/// attempt.
#[tokio::test]
async fn a_body_whose_lease_was_taken_over_is_stopped() {
    let store = Arc::new(MemoryStore::new());
    let jobs = Jobs::new(Arc::clone(&store) as Arc<dyn perf_runtime::jobs::JobStore>);
    let mut config = WorkerConfig::default();
    config.concurrency = 1;
    config.queues = vec!["it_stall".to_owned()];
    config.lease = Duration::from_secs(1);
    config.heartbeat = Duration::from_millis(300);
    // The pool's own sweep stays out of the way: the other party takes the
    // job back.
    config.sweep = Duration::from_secs(600);
    jobs.start_workers(config).expect("worker config");
    // The other party: a thread with a runtime of its own, which takes the
    // job back once its lease has run out while the pool is frozen.
    let other = {
        let store = Arc::clone(&store);
        std::thread::spawn(move || {
            while !STALLING.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(5));
            }
            std::thread::sleep(Duration::from_millis(1_300));
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime")
                .block_on(perf_runtime::jobs::JobStore::rescue_expired(&*store, 3))
                .expect("rescue")
        })
    };
    let handle = stalls().on(&jobs).await.expect("stored");
    let record = handle.wait().await.expect("completes");
    assert_eq!(other.join().expect("other party").0, 1, "taken back once");
    assert_eq!(record.state, JobState::Completed);
    assert_eq!(record.attempts, 2, "the second attempt completed it");
    assert!(
        STALL_STOPPED.load(Ordering::SeqCst),
        "the first body was stopped when its lease was found taken over"
    );
    assert!(!STALL_FINISHED.load(Ordering::SeqCst));
    jobs.stop_workers(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn a_paused_queue_is_not_claimed_until_resumed() {
    let jobs = jobs_with_workers(&["it_welcome"], 1);
    jobs.store().pause("it_welcome").await.expect("pause");
    let handle = welcome(5, "e@example.com".to_owned())
        .on(&jobs)
        .await
        .expect("stored");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let record = handle.status().await.expect("status").expect("kept");
    assert_eq!(record.state, JobState::Available, "paused: not claimed");
    jobs.store().resume("it_welcome").await.expect("resume");
    handle.wait().await.expect("runs once resumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_runs_the_linked_cron_jobs_on_their_schedule() {
    let config = perf_runtime::PerfConfig::builder()
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    perf_runtime::init(config).await.expect("init");
    assert_eq!(perf_runtime::jobs::global().schedules(), ["every_second"]);
    // Bounded by attempts: 50 looks 100 ms apart (two runs are due within 2 s).
    for _ in 0..50 {
        if TICKS.load(Ordering::SeqCst) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        TICKS.load(Ordering::SeqCst) >= 2,
        "the cron job ran on workers"
    );
    perf_runtime::shutdown().await;
}

#[tokio::test]
async fn a_stream_is_stored_in_batches_and_a_refused_batch_says_what_was_stored() {
    use futures_util::{StreamExt, stream};
    use perf_runtime::jobs::JobStore;
    let store = Arc::new(MemoryStore::with_capacity(2_500));
    let jobs = Jobs::new(store.clone());
    let summary = jobs
        .enqueue_stream(stream::iter(0..2_000u64).map(recount), 1_000)
        .await
        .expect("stored");
    assert_eq!((summary.items, summary.chunks), (2_000, 2));
    // 500 places left: the next batch of 1,000 is refused whole.
    let error = jobs
        .enqueue_stream(stream::iter(0..1_500u64).map(recount), 1_000)
        .await
        .expect_err("past the capacity");
    assert_eq!((error.chunk, error.items, error.done.items), (0, 1_000, 0));
    assert!(
        matches!(error.source, JobError::NotStored { .. }),
        "{error}"
    );
    let depth: u64 = store
        .depths()
        .await
        .expect("depths")
        .iter()
        .map(|depth| depth.available + depth.scheduled)
        .sum();
    assert_eq!(depth, 2_000, "all or none per batch");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunks_run_at_most_concurrency_at_once_and_the_first_failure_stops_the_run() {
    use futures_util::stream;
    use perf_runtime::jobs::process_in_chunks;
    use std::sync::atomic::AtomicUsize;
    let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let summary = process_in_chunks(stream::iter(0..1_050u32), 100, 3, |chunk| {
        let (running, peak) = (Arc::clone(&running), Arc::clone(&peak));
        async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            running.fetch_sub(1, Ordering::SeqCst);
            assert!(chunk.len() == 100 || chunk.len() == 50);
            Ok::<_, String>(())
        }
    })
    .await
    .expect("every chunk succeeded");
    assert_eq!((summary.items, summary.chunks), (1_050, 11));
    assert_eq!(peak.load(Ordering::SeqCst), 3);

    let error = process_in_chunks(stream::iter(0..1_000u32), 100, 1, |chunk| async move {
        if chunk[0] == 300 {
            Err(format!("item {} refused", chunk[0]))
        } else {
            Ok(())
        }
    })
    .await
    .expect_err("chunk 3 fails");
    assert_eq!(
        (error.chunk, error.done.items, error.done.chunks),
        (3, 300, 3)
    );
    assert_eq!(
        error.to_string(),
        "chunk 3 (100 items) failed: item 300 refused; 300 items in 3 other chunks had succeeded"
    );
}

/// A pool scaling from 1 to 16 workers: a backlog of 300 jobs takes it to
/// 16 (and never past), the drained queue brings it back to 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_scale_up_with_a_backlog_and_back_down_when_it_drains() {
    use perf_runtime::jobs::{JobStore, WorkerPool};
    let store: Arc<dyn JobStore> = Arc::new(MemoryStore::new());
    let jobs = Jobs::new(Arc::clone(&store));
    let mut config = WorkerConfig::default();
    config.concurrency = 16;
    config.min_concurrency = Some(1);
    config.scale_interval = Duration::from_millis(20);
    config.queues = vec!["it_scaled".to_owned()];
    let pool = WorkerPool::start(Arc::clone(&store), config).expect("worker config");
    assert_eq!(pool.limit(), 1, "starts at the floor");
    jobs.enqueue_batch((0..300).map(|_| scaled(20)))
        .await
        .expect("stored");
    let mut highest = 1;
    // Bounded by attempts: 1,000 looks 10 ms apart.
    for _ in 0..1_000 {
        highest = highest.max(pool.limit());
        let pending: u64 = store
            .depths()
            .await
            .expect("depths")
            .iter()
            .map(|depth| depth.available + depth.scheduled + depth.running)
            .sum();
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(highest, 16, "grew to the ceiling with 300 jobs waiting");
    let peak = SCALED_PEAK.load(Ordering::SeqCst);
    assert!((2..=16).contains(&peak), "ran {peak} at once");
    for _ in 0..500 {
        if pool.limit() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(pool.limit(), 1, "back to the floor once drained");
    pool.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn waiting_on_a_queue_no_worker_serves_gives_up_with_the_reason() {
    // No worker pool: the job is stored and stays pending.
    let jobs = Jobs::new(Arc::new(MemoryStore::new()));
    let handle = jobs
        .enqueue_raw(raw_job("welcome", "it_unserved", Vec::new()))
        .await
        .expect("stored");
    let error = handle
        .wait_for(Duration::from_millis(50))
        .await
        .expect_err("no worker runs it");
    let JobError::WaitTimedOut { state, queue, .. } = &error else {
        panic!("expected WaitTimedOut, got {error}");
    };
    assert!(matches!(*state, "available" | "scheduled"), "{state}");
    assert_eq!(queue, "it_unserved");
    assert!(
        error
            .to_string()
            .contains("is a worker serving its queue `it_unserved`?"),
        "{error}"
    );
}
