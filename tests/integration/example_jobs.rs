//! The example backend's sign-up: `POST /api/signup` answers 202 with a job
//! id, a worker runs `process_user_signup`, which enqueues
//! `send_notification`, whose result shows on `GET /api/notifications`.
//! First on the embedded default (memory store), then with
//! `JOB_STORE=postgres`, where the jobs are rows of `perf_jobs`, and with
//! `JOB_STORE=redis`, where they are hashes under `{perf:jobs}:`.

mod support;

use std::time::Duration;

use perf_runtime::PerfConfig;
use perf_runtime::config::JobStoreKind;
use perf_runtime::db::Params;
use perf_runtime::jobs::JobId;

async fn sign_up_and_wait_for_the_welcome(user_id: u64) -> u64 {
    let app = perf_examples::chat::app(Default::default());
    let email = format!("user{user_id}@example.com");
    let (status, body) = support::call(
        &app,
        "POST",
        "/api/signup",
        Some(serde_json::json!({ "user_id": user_id, "email": email })),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let accepted: serde_json::Value = serde_json::from_str(&body).expect("json");
    let job_id = accepted["job_id"].as_u64().expect("a job id");
    // Bounded by attempts, not by a clock: 500 looks 10 ms apart.
    for _ in 0..500 {
        let (_, outbox) = support::call(&app, "GET", "/api/notifications", None).await;
        if outbox.contains(&email) {
            return job_id;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no welcome notification for user {user_id}");
}

/// `POST /api/broadcast` to 1,200 users: stored in three batches, every
/// notification delivered.
async fn broadcast_reaches_every_user(first_user: u64) {
    let app = perf_examples::chat::app(Default::default());
    let message = format!("maintenance tonight ({first_user})");
    let users: Vec<u64> = (first_user..first_user + 1_200).collect();
    let (status, body) = support::call(
        &app,
        "POST",
        "/api/broadcast",
        Some(serde_json::json!({ "user_ids": users, "message": message })),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let accepted: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(accepted["stored"], 1_200);
    let store = perf_runtime::jobs::global().store().clone();
    // Bounded by attempts: 500 looks 10 ms apart.
    for _ in 0..500 {
        let pending: u64 = store
            .depths()
            .await
            .expect("depths")
            .iter()
            .filter(|depth| depth.queue == "notifications")
            .map(|depth| depth.available + depth.scheduled + depth.running)
            .sum();
        if pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the broadcast's notifications were not all sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signup_runs_in_the_background_on_memory_postgres_and_redis() {
    let config = PerfConfig::builder()
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    perf_runtime::init(config).await.expect("init");
    let user = 500_000 + support::run_id() % 100_000;
    sign_up_and_wait_for_the_welcome(user).await;
    let (status, _) = support::call(
        &perf_examples::chat::app(Default::default()),
        "POST",
        "/api/signup",
        Some(serde_json::json!({ "user_id": 1, "email": "not-an-address" })),
    )
    .await;
    assert_eq!(status, 202, "accepted; the job itself fails and retries");
    broadcast_reaches_every_user(user).await;
    perf_runtime::shutdown().await;

    let Some(url) = support::service_url("DATABASE_URL") else {
        return;
    };
    let config = PerfConfig::builder()
        .database_url(&url)
        .job_store(JobStoreKind::Postgres)
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    let perf = perf_runtime::init(config)
        .await
        .expect("init with JOB_STORE=postgres");
    let job_id = sign_up_and_wait_for_the_welcome(user + 1).await;
    let db = perf.db().expect("pool");
    let row: Option<(String, String)> = db
        .fetch_optional(
            "SELECT name, state FROM perf_jobs WHERE id = $1",
            Params::new().bind(job_id as i64),
        )
        .await
        .expect("query");
    let (name, state) = row.expect("the job is a row of perf_jobs");
    assert_eq!(name, "process_user_signup");
    assert!(state == "completed" || state == "running", "{state}");
    perf_runtime::shutdown().await;

    let Some(url) = support::service_url("REDIS_URL") else {
        return;
    };
    let config = PerfConfig::builder()
        .redis_url(&url)
        .job_store(JobStoreKind::Redis)
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    perf_runtime::init(config)
        .await
        .expect("init with JOB_STORE=redis");
    let job_id = sign_up_and_wait_for_the_welcome(user + 2).await;
    let store = perf_runtime::jobs::global().store().clone();
    assert_eq!(store.kind(), "redis");
    let record = store
        .get(JobId(job_id))
        .await
        .expect("read from Redis")
        .expect("the job is kept in Redis");
    assert_eq!(record.job.name, "process_user_signup");
    perf_runtime::shutdown().await;
}
