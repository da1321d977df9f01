//! The job store contract (`support/job_contract.rs`) against every store:
//! memory always; Redis and PostgreSQL from the harness (`scripts/test.sh`).
//! Then recurring schedules run by three schedulers at once, as three
//! processes would: every run is stored once.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use perf_runtime::async_job;
use perf_runtime::jobs::{
    Backoff, Fenced, JobStore, Jobs, MemoryStore, NewJob, Priority, RedisStore, Schedule, WorkerId,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_keeps_the_contract() {
    let store: Arc<dyn JobStore> = Arc::new(MemoryStore::new());
    support::job_contract::run_all(Arc::clone(&store)).await;
    three_schedulers_store_each_run_once([Arc::clone(&store), Arc::clone(&store), store]).await;
}

async fn postgres_store(
    variable: &str,
    pgbouncer: bool,
) -> Option<(perf_runtime::Perf, Arc<dyn JobStore>)> {
    let url = support::service_url(variable)?;
    let config = perf_runtime::PerfConfig::builder()
        .database_url(&url)
        .db_pgbouncer(pgbouncer)
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    let (perf, db) = support::pg_pool::start_pool(config).await;
    let store = perf_runtime::jobs::PostgresStore::connect(db)
        .await
        .expect("schema created");
    Some((perf, Arc::new(store)))
}

/// Held by each run of the contract suite on PostgreSQL: the runs share one
/// table, and a sweep takes back every expired lease in it, so a run's
/// sweep (with its own `max_rescues`) would take back the leases another
/// run is timing.
static ONE_POSTGRES_SUITE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_keeps_the_contract() {
    let Some((perf, store)) = postgres_store("DATABASE_URL", false).await else {
        return;
    };
    let _alone = ONE_POSTGRES_SUITE_AT_A_TIME.lock().await;
    support::job_contract::run_all(Arc::clone(&store)).await;
    // Each scheduler with a pool of its own, as in another process.
    let (other, second) = postgres_store("DATABASE_URL", false)
        .await
        .expect("started");
    let (third, last) = postgres_store("DATABASE_URL", false)
        .await
        .expect("started");
    three_schedulers_store_each_run_once([store, second, last]).await;
    for perf in [perf, other, third] {
        perf.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_deletes_completed_jobs_after_a_day() {
    use perf_runtime::db::Params;
    use perf_runtime::jobs::{JobState, PostgresStore};
    let Some(url) = support::service_url("DATABASE_URL") else {
        return;
    };
    let config = perf_runtime::PerfConfig::builder()
        .database_url(&url)
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    let (perf, db) = support::pg_pool::start_pool(config).await;
    let store = PostgresStore::connect(db.clone()).await.expect("schema");
    let queue = format!("retention_{}", support::run_id());
    for i in 0..4u8 {
        let job = NewJob {
            name: "retention".into(),
            queue: queue.clone().into(),
            priority: Priority::NORMAL,
            payload: vec![i],
            run_at: SystemTime::now(),
            max_attempts: 1,
            backoff: Backoff::Fixed(Duration::from_millis(10)),
            timeout: Duration::from_secs(30),
            unique_key: None,
        };
        store.enqueue(job).await.expect("enqueue");
    }
    let claimed = store
        .claim(
            &WorkerId::fresh(),
            std::slice::from_ref(&queue),
            4,
            Duration::from_secs(30),
        )
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 4);
    let leases: Vec<_> = claimed.iter().map(|job| job.lease.clone()).collect();
    store.complete_many(&leases[..3]).await.expect("complete");
    store
        .bury(&leases[3], "kept until purged")
        .await
        .expect("bury");
    let ids: Vec<i64> = claimed.iter().map(|job| job.record.id.0 as i64).collect();
    // Finished 25 h ago (the first), 13 h ago (the second), just now (the
    // third); dead 25 h ago (the fourth).
    let hour: i64 = 3_600_000;
    for (id, hours) in [(ids[0], 25), (ids[1], 13), (ids[3], 25)] {
        db.execute(
            "UPDATE perf_jobs SET finished_at = finished_at - $2 WHERE id = $1",
            Params::new().bind(id).bind(hours * hour),
        )
        .await
        .expect("age the row");
    }
    // What the sweep runs once a minute (not called here through
    // `rescue_expired`: that would take back the expired leases other
    // tests on this database are about to take back themselves).
    assert!(
        store
            .purge_completed(PostgresStore::COMPLETED_KEPT)
            .await
            .expect("purge")
            >= 1
    );
    let state = |i: usize| {
        let store = &store;
        let id = claimed[i].record.id;
        async move { store.get(id).await.expect("get").map(|r| r.state) }
    };
    assert_eq!(state(0).await, None, "completed a day ago: deleted");
    assert_eq!(state(1).await, Some(JobState::Completed));
    assert_eq!(state(2).await, Some(JobState::Completed));
    assert_eq!(state(3).await, Some(JobState::Dead), "dead jobs stay");
    // Another retention, asked for.
    assert!(
        store
            .purge_completed(Duration::from_secs(12 * 3600))
            .await
            .expect("purge")
            >= 1
    );
    assert_eq!(state(1).await, None);
    assert_eq!(state(2).await, Some(JobState::Completed));
    perf.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_keeps_the_contract_through_pgbouncer() {
    let Some((perf, store)) = postgres_store("PGBOUNCER_URL", true).await else {
        return;
    };
    let _alone = ONE_POSTGRES_SUITE_AT_A_TIME.lock().await;
    support::job_contract::run_all(store).await;
    perf.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_keeps_the_contract() {
    let Some(client) = support::redis_client().await else {
        return;
    };
    let namespace = format!("perf-test-{}", support::run_id());
    let store: Arc<dyn JobStore> = Arc::new(RedisStore::new(client, namespace.clone()));
    support::job_contract::run_all(Arc::clone(&store)).await;
    // Each scheduler with a client of its own, as in another process.
    let other = || async {
        let client = support::redis_client().await.expect("connects");
        Arc::new(RedisStore::new(client, namespace.clone())) as Arc<dyn JobStore>
    };
    three_schedulers_store_each_run_once([store, other().await, other().await]).await;
}

/// A backlog of 100,000 jobs drains in claims of 1,000: no script builds
/// an unbounded argument list (Lua's `unpack` limit) or times out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_drains_a_backlog_of_100_000_jobs() {
    let Some(client) = support::redis_client().await else {
        return;
    };
    let store = RedisStore::new(client, format!("perf-test-backlog-{}", support::run_id()));
    let queue = "backlog".to_owned();
    let job = |i: u32| NewJob {
        name: "backlog".into(),
        queue: queue.clone().into(),
        priority: Priority((i % 3) as i16 * 10),
        payload: i.to_le_bytes().to_vec(),
        run_at: SystemTime::now(),
        max_attempts: 3,
        backoff: Backoff::Fixed(Duration::from_millis(10)),
        timeout: Duration::from_secs(30),
        unique_key: None,
    };
    for chunk in 0..10 {
        let batch: Vec<NewJob> = (chunk * 10_000..(chunk + 1) * 10_000).map(job).collect();
        let stored = store.enqueue_batch(batch).await.expect("batch stored");
        assert_eq!(stored.len(), 10_000);
    }
    let worker = WorkerId::fresh();
    let mut drained = 0;
    loop {
        let claimed = store
            .claim(
                &worker,
                std::slice::from_ref(&queue),
                1_000,
                Duration::from_secs(60),
            )
            .await
            .expect("claim from a large backlog");
        if claimed.is_empty() {
            break;
        }
        drained += claimed.len();
        let completions = claimed.iter().map(|job| store.complete(&job.lease));
        for fenced in futures_util::future::join_all(completions).await {
            assert_eq!(fenced.expect("complete"), Fenced::Accepted);
        }
    }
    assert_eq!(drained, 100_000, "every job claimed once");
    let depth = store
        .depths()
        .await
        .expect("depths")
        .into_iter()
        .find(|depth| depth.queue == queue)
        .expect("the queue is listed");
    assert_eq!(
        (depth.available, depth.scheduled, depth.running, depth.dead),
        (0, 0, 0, 0)
    );
}

/// The job the recurring schedules store; workers never run here (the
/// check claims the runs itself).
#[async_job(queue = "recurring_check")]
async fn recurring_tick(tag: String) {
    let _ = tag;
}

/// Three job systems (as three processes) run one every-second schedule on
/// `stores` (one store seen through three handles). Claims the stored runs
/// until three distinct run times were seen, then stops the schedulers and
/// claims what is left: every run time was stored exactly once.
async fn three_schedulers_store_each_run_once(stores: [Arc<dyn JobStore>; 3]) {
    let tag = format!("tick-{}", support::run_id());
    let systems: Vec<Jobs> = stores.iter().cloned().map(Jobs::new).collect();
    for jobs in &systems {
        let schedule = Schedule::new(&tag, "* * * * * *", recurring_tick(tag.clone()))
            .expect("a valid schedule");
        jobs.schedule(schedule).expect("scheduled");
    }
    let kind = stores[0].kind();
    let mut runs: BTreeMap<SystemTime, u32> = BTreeMap::new();
    // Bounded by attempts: 100 looks 100 ms apart (about three runs are due
    // within 3 s).
    for _ in 0..100 {
        claim_runs(&*stores[0], &tag, &mut runs).await;
        if runs.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for jobs in &systems {
        jobs.unschedule_all();
    }
    // A run being stored as the schedulers stopped lands within a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    claim_runs(&*stores[0], &tag, &mut runs).await;
    assert!(runs.len() >= 3, "{kind}: runs seen {runs:?}");
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n != 1).collect();
    assert!(
        twice.is_empty(),
        "{kind}: runs stored more than once: {twice:?}"
    );
}

/// Claims and completes every job of the check's queue, counting this
/// check's runs (`tag`) by their run time.
async fn claim_runs(store: &dyn JobStore, tag: &str, runs: &mut BTreeMap<SystemTime, u32>) {
    let queue = ["recurring_check".to_owned()];
    loop {
        let claimed = store
            .claim(&WorkerId::fresh(), &queue, 100, Duration::from_secs(30))
            .await
            .expect("claim");
        if claimed.is_empty() {
            return;
        }
        for job in claimed {
            let (job_tag,): (String,) =
                rmp_serde::from_slice(&job.record.job.payload).expect("a tick payload");
            if job_tag == tag {
                *runs.entry(job.record.job.run_at).or_default() += 1;
            }
            store.complete(&job.lease).await.expect("complete");
        }
    }
}
