//! The job store contract (`support/job_contract.rs`) against every store:
//! memory always; Redis and PostgreSQL from the harness (`scripts/test.sh`).

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use perf_runtime::jobs::{
    Backoff, Fenced, JobStore, MemoryStore, NewJob, Priority, RedisStore, WorkerId,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_keeps_the_contract() {
    support::job_contract::run_all(Arc::new(MemoryStore::new())).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_keeps_the_contract() {
    let Some((perf, store)) = postgres_store("DATABASE_URL", false).await else {
        return;
    };
    support::job_contract::run_all(store).await;
    perf.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_keeps_the_contract_through_pgbouncer() {
    let Some((perf, store)) = postgres_store("PGBOUNCER_URL", true).await else {
        return;
    };
    support::job_contract::run_all(store).await;
    perf.shutdown().await;
}

/// A client of its own on `REDIS_URL`, connected, or `None` when the
/// harness started no Redis.
async fn redis_client() -> Option<fred::prelude::Client> {
    use fred::prelude::{Builder, ClientLike, Config};
    let url = support::service_url("REDIS_URL")?;
    let config = Config::from_url(&url).expect("REDIS_URL parses");
    let client = Builder::from_config(config).build().expect("redis client");
    client.init().await.expect("redis connects");
    Some(client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_keeps_the_contract() {
    let Some(client) = redis_client().await else {
        return;
    };
    let store = RedisStore::new(client, format!("perf-test-{}", support::run_id()));
    support::job_contract::run_all(Arc::new(store)).await;
}

/// A backlog of 100,000 jobs drains in claims of 1,000: no script builds
/// an unbounded argument list (Lua's `unpack` limit) or times out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_redis_store_drains_a_backlog_of_100_000_jobs() {
    let Some(client) = redis_client().await else {
        return;
    };
    let store = RedisStore::new(client, format!("perf-test-backlog-{}", support::run_id()));
    let queue = "backlog".to_owned();
    let job = |i: u32| NewJob {
        name: "backlog".to_owned(),
        queue: queue.clone(),
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
