//! Idle workers on the Redis store wake when another process makes work:
//! jobs enqueued through a store on another connection (as another process
//! would), due now or later. The pool looks again on its own only after an
//! hour here (`idle_poll`), so the jobs run only if the wake-ups (the
//! `wake` channel, and a claim's answer of when the next job is due) reach
//! it; without them both waits below give up.

mod support;

use std::sync::Arc;
use std::time::Duration;

use fred::interfaces::PubsubInterface;
use perf_runtime::async_job;
use perf_runtime::jobs::{JobState, Jobs, RedisStore, WorkerConfig};

const QUEUE: &str = "it_wake";

#[async_job(queue = "it_wake", max_retries = 0)]
async fn woken(n: u64) {
    std::hint::black_box(n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_workers_wake_for_jobs_made_by_another_process() {
    let Some(client) = support::redis_client().await else {
        return;
    };
    let namespace = format!("perf-test-wake-{}", support::run_id());
    let workers = Jobs::new(Arc::new(RedisStore::new(client.clone(), namespace.clone())));
    let mut config = WorkerConfig::default();
    config.queues = vec![QUEUE.to_owned()];
    config.concurrency = 2;
    config.idle_poll = Duration::from_secs(3600);
    workers.start_workers(config).expect("workers start");

    // The pool subscribes when it first goes idle: a wake-up published
    // before that would reach no one.
    let channel = format!("{{{namespace}}}:wake");
    let mut subscribed = false;
    for _ in 0..500 {
        let counts: Vec<(String, i64)> = client
            .pubsub_numsub(channel.as_str())
            .await
            .expect("PUBSUB NUMSUB");
        if counts.iter().any(|(_, n)| *n > 0) {
            subscribed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(subscribed, "the idle pool never subscribed to {channel}");

    let other_client = support::redis_client().await.expect("a second connection");
    let other = Jobs::new(Arc::new(RedisStore::new(other_client, namespace)));
    let now = woken(1).on(&other).await.expect("enqueued");
    let record = now
        .wait_for(Duration::from_secs(30))
        .await
        .expect("a job due now ran: the idle pool was woken");
    assert_eq!(record.state, JobState::Completed);

    let later = woken(2)
        .delay(Duration::from_millis(800))
        .on(&other)
        .await
        .expect("enqueued");
    let record = later
        .wait_for(Duration::from_secs(30))
        .await
        .expect("a job due later ran: the pool waited for its time, not for idle_poll");
    assert_eq!(record.state, JobState::Completed);
    workers.stop_workers(Duration::from_secs(5)).await;
}
