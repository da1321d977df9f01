//! The job store contract, one suite for every store (memory, Redis,
//! PostgreSQL): each check takes a fresh queue name, so stores may be
//! shared between checks and test runs.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use perf_runtime::jobs::{
    AfterFailure, Backoff, Fenced, JobState, JobStore, NewJob, Priority, WorkerId,
};

/// Runs every check of the contract against `store`.
pub async fn run_all(store: Arc<dyn JobStore>) {
    priority_then_fifo(&*store).await;
    delayed_jobs_wait_for_their_time(&*store).await;
    an_expired_lease_is_rescued_and_the_old_token_is_fenced(&*store).await;
    heartbeats_keep_a_lease(&*store).await;
    completions_in_one_call_are_fenced_each(&*store).await;
    a_completion_takes_the_next_job_with_it(&*store).await;
    a_job_that_keeps_losing_its_worker_dies(&*store).await;
    failures_retry_then_die_and_dead_letters_are_managed(&*store).await;
    unique_keys_hold_under_concurrent_enqueues(Arc::clone(&store)).await;
    snooze_and_release_do_not_spend_attempts(&*store).await;
    paused_queues_are_not_claimed(&*store).await;
    batches_are_stored_in_order(&*store).await;
    depths_count_each_state(&*store).await;
    a_recurring_run_is_stored_once(Arc::clone(&store)).await;
}

fn queue(check: &str) -> String {
    format!("contract_{check}_{}", super::run_id())
}

fn job(queue: &str, priority: i16, payload: &[u8]) -> NewJob {
    NewJob {
        name: "contract".into(),
        queue: queue.to_owned().into(),
        priority: Priority(priority),
        payload: payload.to_vec(),
        run_at: SystemTime::now(),
        max_attempts: 3,
        backoff: Backoff::Fixed(Duration::from_millis(10)),
        timeout: Duration::from_secs(30),
        unique_key: None,
    }
}

fn worker() -> WorkerId {
    WorkerId::fresh()
}

async fn claim(
    store: &dyn JobStore,
    queue: &str,
    limit: usize,
    lease: Duration,
) -> Vec<perf_runtime::jobs::Claimed> {
    store
        .claim(&worker(), &[queue.to_owned()], limit, lease)
        .await
        .expect("claim")
}

async fn priority_then_fifo(store: &dyn JobStore) {
    let queue = queue("priority");
    for (priority, tag) in [(10, "n1"), (0, "l1"), (20, "h1"), (10, "n2"), (20, "h2")] {
        store
            .enqueue(job(&queue, priority, tag.as_bytes()))
            .await
            .expect("enqueue");
    }
    let mut order = Vec::new();
    for _ in 0..5 {
        let claimed = claim(store, &queue, 1, Duration::from_secs(30)).await;
        assert_eq!(claimed.len(), 1);
        order.push(String::from_utf8(claimed[0].record.job.payload.clone()).expect("utf8"));
        store.complete(&claimed[0].lease).await.expect("complete");
    }
    assert_eq!(
        order,
        ["h1", "h2", "n1", "n2", "l1"],
        "{}: priority, then FIFO",
        store.kind()
    );
}

async fn delayed_jobs_wait_for_their_time(store: &dyn JobStore) {
    let queue = queue("delayed");
    let mut later = job(&queue, 10, b"later");
    later.run_at = SystemTime::now() + Duration::from_millis(400);
    store.enqueue(later).await.expect("enqueue");
    assert!(
        claim(store, &queue, 10, Duration::from_secs(30))
            .await
            .is_empty(),
        "{}: not before its time",
        store.kind()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let claimed = claim(store, &queue, 10, Duration::from_secs(30)).await;
    assert_eq!(
        claimed.len(),
        1,
        "{}: runnable once its time came",
        store.kind()
    );
    store.complete(&claimed[0].lease).await.expect("complete");
}

async fn an_expired_lease_is_rescued_and_the_old_token_is_fenced(store: &dyn JobStore) {
    let queue = queue("fencing");
    let id = store
        .enqueue(job(&queue, 10, b"x"))
        .await
        .expect("enqueue")
        .id;
    let first = claim(store, &queue, 1, Duration::from_secs(1))
        .await
        .remove(0);
    assert_eq!(first.record.attempts, 1);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let (rescued, _) = store.rescue_expired(5).await.expect("rescue");
    assert!(
        rescued >= 1,
        "{}: the expired lease is taken back",
        store.kind()
    );
    let second = claim(store, &queue, 1, Duration::from_secs(30))
        .await
        .remove(0);
    assert_eq!(second.record.id, id);
    assert_eq!(second.record.attempts, 2, "a rescue counts as an attempt");
    assert_ne!(first.lease.token, second.lease.token);
    assert_eq!(
        store.complete(&first.lease).await.expect("complete"),
        Fenced::Stale,
        "{}: the late worker is refused",
        store.kind()
    );
    assert_eq!(
        store
            .heartbeat(&first.lease, Duration::from_secs(30))
            .await
            .expect("heartbeat"),
        Fenced::Stale
    );
    assert_eq!(
        store.fail(&first.lease, "late", None).await.expect("fail"),
        AfterFailure::Stale
    );
    assert_eq!(
        store.complete(&second.lease).await.expect("complete"),
        Fenced::Accepted
    );
    let record = store.get(id).await.expect("get").expect("kept");
    assert_eq!(record.state, JobState::Completed);
    assert_eq!(record.rescues, 1);
}

async fn completions_in_one_call_are_fenced_each(store: &dyn JobStore) {
    let queue = queue("complete_many");
    for i in 0..3u8 {
        store.enqueue(job(&queue, 10, &[i])).await.expect("enqueue");
    }
    let claimed = claim(store, &queue, 3, Duration::from_secs(30)).await;
    assert_eq!(claimed.len(), 3);
    // The middle one is handed back first: its lease is no longer current.
    assert_eq!(
        store.release(&claimed[1].lease).await.expect("release"),
        Fenced::Accepted
    );
    let leases: Vec<_> = claimed.iter().map(|job| job.lease.clone()).collect();
    assert_eq!(
        store.complete_many(&leases).await.expect("complete_many"),
        [Fenced::Accepted, Fenced::Stale, Fenced::Accepted],
        "{}: one answer per lease, in order",
        store.kind()
    );
    for (job, state) in claimed.iter().zip([
        JobState::Completed,
        JobState::Available,
        JobState::Completed,
    ]) {
        let record = store.get(job.record.id).await.expect("get").expect("kept");
        assert_eq!(record.state, state, "{}", store.kind());
    }
    assert_eq!(
        store.complete_many(&leases[..1]).await.expect("again"),
        [Fenced::Stale],
        "{}: a job is completed once",
        store.kind()
    );
    assert!(store.complete_many(&[]).await.expect("none").is_empty());
    let again = claim(store, &queue, 3, Duration::from_secs(30)).await;
    assert_eq!(again.len(), 1, "the handed-back job runs again");
    store.complete(&again[0].lease).await.expect("complete");
}

async fn a_completion_takes_the_next_job_with_it(store: &dyn JobStore) {
    let queue = queue("complete_and_claim");
    let queues = [queue.clone()];
    for i in 0..2u8 {
        store.enqueue(job(&queue, 10, &[i])).await.expect("enqueue");
    }
    let first = claim(store, &queue, 1, Duration::from_secs(30)).await;
    assert_eq!(first.len(), 1);
    let lease = Duration::from_secs(30);
    let (fenced, next) = store
        .complete_and_claim(&first[0].lease, &worker(), &queues, 1, lease)
        .await
        .expect("complete and claim");
    assert_eq!(fenced, Fenced::Accepted, "{}", store.kind());
    assert_eq!(
        next.len(),
        1,
        "{}: the next job comes with it",
        store.kind()
    );
    assert_eq!(
        next[0].record.job.payload,
        [1],
        "{}: in order",
        store.kind()
    );
    let record = store
        .get(first[0].record.id)
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(record.state, JobState::Completed, "{}", store.kind());

    // Done once: the same lease again is stale, and the queue is empty.
    let (fenced, none) = store
        .complete_and_claim(&first[0].lease, &worker(), &queues, 1, lease)
        .await
        .expect("again");
    assert_eq!(
        fenced,
        Fenced::Stale,
        "{}: a job is completed once",
        store.kind()
    );
    assert!(none.is_empty(), "{}: nothing left", store.kind());
    store.complete(&next[0].lease).await.expect("complete");
}

async fn heartbeats_keep_a_lease(store: &dyn JobStore) {
    let queue = queue("heartbeat");
    store.enqueue(job(&queue, 10, b"x")).await.expect("enqueue");
    let claimed = claim(store, &queue, 1, Duration::from_secs(1))
        .await
        .remove(0);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            store
                .heartbeat(&claimed.lease, Duration::from_secs(1))
                .await
                .expect("heartbeat"),
            Fenced::Accepted
        );
        store.rescue_expired(5).await.expect("rescue");
    }
    assert_eq!(
        store.complete(&claimed.lease).await.expect("complete"),
        Fenced::Accepted,
        "{}: never taken back while it beat",
        store.kind()
    );
}

async fn a_job_that_keeps_losing_its_worker_dies(store: &dyn JobStore) {
    let queue = queue("poison");
    let id = store
        .enqueue(job(&queue, 10, b"x"))
        .await
        .expect("enqueue")
        .id;
    for _ in 0..2 {
        claim(store, &queue, 1, Duration::from_secs(1))
            .await
            .remove(0);
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        store.rescue_expired(1).await.expect("rescue");
    }
    let record = store.get(id).await.expect("get").expect("kept");
    assert_eq!(
        record.state,
        JobState::Dead,
        "{}: dead after more rescues than allowed",
        store.kind()
    );
    assert!(
        record.last_error.unwrap_or_default().contains("lease"),
        "the reason says why"
    );
}

async fn failures_retry_then_die_and_dead_letters_are_managed(store: &dyn JobStore) {
    let queue = queue("retries");
    let mut flaky = job(&queue, 10, b"x");
    flaky.max_attempts = 2;
    let id = store.enqueue(flaky).await.expect("enqueue").id;
    let first = claim(store, &queue, 1, Duration::from_secs(30))
        .await
        .remove(0);
    let retry_at = SystemTime::now() + Duration::from_millis(200);
    let after = store
        .fail(&first.lease, "first", Some(retry_at))
        .await
        .expect("fail");
    assert!(
        matches!(after, AfterFailure::Retry(_)),
        "{}: {after:?}",
        store.kind()
    );
    assert!(
        claim(store, &queue, 1, Duration::from_secs(30))
            .await
            .is_empty(),
        "{}: not before the backoff",
        store.kind()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = claim(store, &queue, 1, Duration::from_secs(30))
        .await
        .remove(0);
    assert_eq!(second.record.attempts, 2);
    assert_eq!(
        store
            .fail(&second.lease, "second", Some(SystemTime::now()))
            .await
            .expect("fail"),
        AfterFailure::Dead,
        "out of attempts"
    );
    let dead = store.list_dead(Some(&queue), 10).await.expect("list");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("second"));
    assert!(store.requeue_dead(id).await.expect("requeue"));
    assert!(
        !store.requeue_dead(id).await.expect("requeue"),
        "no longer dead"
    );
    let again = claim(store, &queue, 1, Duration::from_secs(30))
        .await
        .remove(0);
    assert_eq!(again.record.attempts, 1, "fresh attempts");
    store
        .bury(&again.lease, "buried by hand")
        .await
        .expect("bury");
    assert_eq!(store.purge_dead(Some(&queue)).await.expect("purge"), 1);
    assert!(
        store
            .list_dead(Some(&queue), 10)
            .await
            .expect("list")
            .is_empty()
    );
}

async fn unique_keys_hold_under_concurrent_enqueues(store: Arc<dyn JobStore>) {
    let queue = queue("unique");
    let key = format!("{queue}:account-7");
    let enqueues = (0..50).map(|_| {
        let store = Arc::clone(&store);
        let mut job = job(&queue, 10, b"x");
        job.unique_key = Some(key.clone());
        tokio::spawn(async move { store.enqueue(job).await.expect("enqueue") })
    });
    let mut ids = HashSet::new();
    let mut fresh = 0;
    for enqueue in enqueues {
        let enqueued = enqueue.await.expect("task");
        ids.insert(enqueued.id);
        fresh += usize::from(!enqueued.duplicate);
    }
    assert_eq!(
        (ids.len(), fresh),
        (1, 1),
        "{}: one job per pending key",
        store.kind()
    );
    let claimed = claim(&*store, &queue, 10, Duration::from_secs(30)).await;
    assert_eq!(claimed.len(), 1);
    store.complete(&claimed[0].lease).await.expect("complete");
    let mut after = job(&queue, 10, b"x");
    after.unique_key = Some(key);
    let next = store.enqueue(after).await.expect("enqueue");
    assert!(
        !next.duplicate && !ids.contains(&next.id),
        "a finished job frees its key"
    );
}

async fn snooze_and_release_do_not_spend_attempts(store: &dyn JobStore) {
    let queue = queue("snooze");
    let id = store
        .enqueue(job(&queue, 10, b"x"))
        .await
        .expect("enqueue")
        .id;
    let claimed = claim(store, &queue, 1, Duration::from_secs(30))
        .await
        .remove(0);
    let until = SystemTime::now() + Duration::from_millis(300);
    assert_eq!(
        store.snooze(&claimed.lease, until).await.expect("snooze"),
        Fenced::Accepted
    );
    assert_eq!(
        store.get(id).await.expect("get").expect("kept").state,
        JobState::Scheduled
    );
    assert!(
        claim(store, &queue, 1, Duration::from_secs(30))
            .await
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let claimed = claim(store, &queue, 1, Duration::from_secs(30))
        .await
        .remove(0);
    assert_eq!(
        claimed.record.attempts,
        1,
        "{}: a snooze is not an attempt",
        store.kind()
    );
    assert_eq!(
        store.release(&claimed.lease).await.expect("release"),
        Fenced::Accepted
    );
    let claimed = claim(store, &queue, 1, Duration::from_secs(30))
        .await
        .remove(0);
    assert_eq!(claimed.record.attempts, 1, "a hand-back is not an attempt");
    store.complete(&claimed.lease).await.expect("complete");
}

async fn paused_queues_are_not_claimed(store: &dyn JobStore) {
    let queue = queue("pause");
    store.enqueue(job(&queue, 10, b"x")).await.expect("enqueue");
    store.pause(&queue).await.expect("pause");
    assert!(
        claim(store, &queue, 1, Duration::from_secs(30))
            .await
            .is_empty(),
        "{}: paused",
        store.kind()
    );
    store.resume(&queue).await.expect("resume");
    let claimed = claim(store, &queue, 1, Duration::from_secs(30)).await;
    assert_eq!(claimed.len(), 1, "resumed");
    store.complete(&claimed[0].lease).await.expect("complete");
}

async fn batches_are_stored_in_order(store: &dyn JobStore) {
    let queue = queue("batch");
    let batch: Vec<NewJob> = (0..100u8).map(|i| job(&queue, 10, &[i])).collect();
    let stored = store.enqueue_batch(batch).await.expect("batch");
    assert_eq!(stored.len(), 100);
    for (i, enqueued) in stored.iter().enumerate() {
        let record = store.get(enqueued.id).await.expect("get").expect("stored");
        assert_eq!(
            record.job.payload,
            [i as u8],
            "{}: the id answered for job {i} is that job's",
            store.kind()
        );
    }
    let claimed = claim(store, &queue, 100, Duration::from_secs(30)).await;
    let payloads: Vec<u8> = claimed.iter().map(|c| c.record.job.payload[0]).collect();
    assert_eq!(
        payloads,
        (0..100u8).collect::<Vec<_>>(),
        "{}: FIFO within a batch",
        store.kind()
    );
    for claimed in &claimed {
        store.complete(&claimed.lease).await.expect("complete");
    }
}

async fn depths_count_each_state(store: &dyn JobStore) {
    let queue = queue("depths");
    store.enqueue(job(&queue, 10, b"a")).await.expect("enqueue");
    store.enqueue(job(&queue, 10, b"b")).await.expect("enqueue");
    let mut later = job(&queue, 10, b"c");
    later.run_at = SystemTime::now() + Duration::from_secs(3600);
    store.enqueue(later).await.expect("enqueue");
    let _running = claim(store, &queue, 1, Duration::from_secs(30)).await;
    let depths = store.depths().await.expect("depths");
    let depth = depths
        .iter()
        .find(|d| d.queue == queue)
        .expect("the queue is listed");
    assert_eq!(
        (depth.available, depth.scheduled, depth.running, depth.dead),
        (1, 1, 1, 0),
        "{}",
        store.kind()
    );
}

/// Concurrent callers (as the schedulers of several processes) offer the
/// same run: one stores it. An earlier or equal run is refused afterwards;
/// the next one is stored, due at its time.
async fn a_recurring_run_is_stored_once(store: Arc<dyn JobStore>) {
    let queue = queue("recurring");
    let schedule = format!("{queue}:every-second");
    // Whole seconds, as cron times are, and past, so both runs are due.
    let second = SystemTime::UNIX_EPOCH
        + Duration::from_secs(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("after 1970")
                .as_secs()
                - 10,
        );
    let offers = (0..16).map(|_| {
        let (store, schedule) = (Arc::clone(&store), schedule.clone());
        let mut run = job(&queue, 10, b"tick");
        run.run_at = second;
        tokio::spawn(async move {
            store
                .enqueue_recurring(&schedule, second, run)
                .await
                .expect("enqueue_recurring")
        })
    });
    let mut stored = Vec::new();
    for offer in offers {
        stored.extend(offer.await.expect("task"));
    }
    assert_eq!(
        stored.len(),
        1,
        "{}: one of 16 offers stored the run",
        store.kind()
    );
    for (at, expected) in [
        (second, false),
        (second - Duration::from_secs(1), false),
        (second + Duration::from_secs(1), true),
    ] {
        let mut run = job(&queue, 10, b"tick");
        run.run_at = at;
        let outcome = store
            .enqueue_recurring(&schedule, at, run)
            .await
            .expect("enqueue_recurring");
        assert_eq!(
            outcome.is_some(),
            expected,
            "{}: run at {at:?}",
            store.kind()
        );
    }
    let claimed = claim(&*store, &queue, 10, Duration::from_secs(30)).await;
    let mut due: Vec<SystemTime> = claimed.iter().map(|c| c.record.job.run_at).collect();
    due.sort();
    assert_eq!(
        due,
        [second, second + Duration::from_secs(1)],
        "{}",
        store.kind()
    );
}
