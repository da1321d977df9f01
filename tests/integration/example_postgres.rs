//! The example chat backend reads user profiles from PostgreSQL through the
//! runtime's pool when DATABASE_URL is set.

mod support;

use perf_runtime::PerfConfig;
use perf_runtime::db::Params;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_profiles_come_from_postgres_when_configured() {
    let Some(database) = support::service_url("DATABASE_URL") else {
        return;
    };
    let config = PerfConfig::builder()
        .database_url(&database)
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    let perf = perf_runtime::init(config).await.expect("init");
    let db = perf.db().expect("DATABASE_URL is set");
    perf_examples::chat::users::prepare(&db)
        .await
        .expect("prepare");
    // Twice: preparing is idempotent (every instance does it at start).
    perf_examples::chat::users::prepare(&db)
        .await
        .expect("prepare again");

    // A user only the database knows (the stand-in stops at 1000).
    let id = 1_000_000 + (support::run_id() % 1_000_000) as i64;
    db.execute(
        "INSERT INTO chat_users (id, name, plan) VALUES ($1, $2, 'pro')",
        Params::new().bind(id).bind("from-postgres"),
    )
    .await
    .expect("insert");

    let app = perf_examples::chat::app(Default::default());
    let (status, body) = support::call(&app, "GET", &format!("/api/users/{id}"), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("from-postgres"), "{body}");
    let (status, body) = support::call(&app, "GET", "/api/users/7", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("user-7"), "seeded: {body}");
    let (status, _) = support::call(&app, "GET", "/api/users/99999999", None).await;
    assert_eq!(status, 404);
    perf_runtime::shutdown().await;
}
