//! Health checks against the real Redis and PostgreSQL that
//! `scripts/test.sh` starts, and against ports where nothing listens.

mod support;

use perf_runtime::monitor::{HealthStatus, health};
use perf_runtime::{Perf, PerfConfig};

fn config(redis: &str, database: &str) -> PerfConfig {
    PerfConfig::builder()
        .redis_url(redis)
        .database_url(database)
        .enable_monitoring(false)
        .enable_prometheus(false)
        .build()
        .expect("valid config")
}

#[tokio::test]
async fn redis_and_postgres_up_report_healthy_with_latency() {
    let (Some(redis), Some(database)) = (
        support::service_url("REDIS_URL"),
        support::service_url("DATABASE_URL"),
    ) else {
        return;
    };
    let perf = Perf::start(config(&redis, &database)).await.expect("start");
    // The Redis client connects in the background; give it a moment.
    let mut report = perf.quick_health_check().await;
    for _ in 0..50 {
        if report.healthy {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        report = perf.quick_health_check().await;
    }
    assert!(report.healthy, "{}", report.summary);
    let names: Vec<_> = report.components.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["redis", "postgres"]);
    for component in &report.components {
        assert_eq!(component.status, HealthStatus::Up);
        assert!(component.latency_ms > 0.0, "{component:?}");
        assert!(component.reason.is_none());
    }
    let status = perf.get_status().await;
    let enabled: Vec<_> = status
        .components
        .iter()
        .filter(|c| c.enabled)
        .map(|c| c.name)
        .collect();
    assert!(
        enabled.contains(&"redis") && enabled.contains(&"postgres"),
        "{enabled:?}"
    );
    perf.shutdown().await;
}

#[tokio::test]
async fn postgres_through_pgbouncer_is_healthy() {
    let (Some(redis), Some(bouncer)) = (
        support::service_url("REDIS_URL"),
        support::service_url("PGBOUNCER_URL"),
    ) else {
        return;
    };
    let perf = Perf::start(config(&redis, &bouncer)).await.expect("start");
    // Repeated checks: each must work in transaction pooling mode.
    for _ in 0..5 {
        let report = perf.quick_health_check().await;
        let postgres = report
            .components
            .iter()
            .find(|c| c.name == "postgres")
            .expect("postgres component");
        assert_eq!(postgres.status, HealthStatus::Up, "{:?}", postgres.reason);
    }
    perf.shutdown().await;
}

#[tokio::test]
async fn wrong_ports_name_the_component_and_the_reason() {
    let (Some(redis), Some(database)) = (
        support::service_url("REDIS_URL"),
        support::service_url("DATABASE_URL"),
    ) else {
        return;
    };
    let dead_redis = support::with_dead_port(&redis);
    let dead_database = support::with_dead_port(&database);
    let perf = Perf::start(config(&dead_redis, &dead_database))
        .await
        .expect("start never waits on a dead backend");
    let report = perf.quick_health_check().await;
    assert!(!report.healthy);
    let redis_health = &report.components[0];
    assert_eq!(
        (redis_health.name.as_str(), redis_health.status),
        ("redis", HealthStatus::Down)
    );
    let reason = redis_health.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("not connected to redis://127.0.0.1:"),
        "{reason}"
    );
    let postgres_health = &report.components[1];
    assert_eq!(
        (postgres_health.name.as_str(), postgres_health.status),
        ("postgres", HealthStatus::Down)
    );
    let reason = postgres_health.reason.as_deref().unwrap_or_default();
    assert!(reason.starts_with("SELECT 1 on postgres://"), "{reason}");
    assert!(reason.to_lowercase().contains("refused"), "{reason}");
    assert!(
        report.summary.starts_with("unhealthy: redis: "),
        "{}",
        report.summary
    );
    assert!(
        report.summary.contains("; postgres: "),
        "{}",
        report.summary
    );

    // The test database's password never shows: not in the report, not in the status.
    let password = "perf_test_pw";
    let status = serde_json::to_string(&perf.get_status().await).expect("json");
    let shown = format!("{}{status}", report.summary);
    assert!(!shown.contains(password), "{shown}");
    assert!(
        database.contains(password),
        "the harness URL carries the password"
    );

    // Over HTTP: 503, the failing components named.
    let app: axum::Router = perf_runtime::axum::routes_for(perf.clone());
    let (code, body) = support::call(&app, "GET", "/health", None).await;
    assert_eq!(code, 503);
    assert!(
        body.contains("\"name\":\"redis\"") && body.contains("\"status\":\"down\""),
        "{body}"
    );
    assert!(!body.contains(password));
    perf.shutdown().await;
}

#[tokio::test]
async fn a_registered_check_takes_part_in_the_report() {
    let perf = Perf::start(
        PerfConfig::builder()
            .enable_monitoring(false)
            .enable_prometheus(false)
            .build()
            .expect("valid config"),
    )
    .await
    .expect("start");
    perf.register_health_check(health::check_fn("queue", || async {
        Err("3 jobs stuck for 600 s".to_owned())
    }));
    let report = perf.quick_health_check().await;
    assert_eq!(report.summary, "unhealthy: queue: 3 jobs stuck for 600 s");
    perf.shutdown().await;
}
