//! Health under network faults, through the test fault proxy: Redis and
//! PostgreSQL slowed, blackholed, reset, and back. The reports must say
//! what is wrong, and the clients must come back by themselves.

mod support;

use std::time::Duration;

use perf_runtime::monitor::{HealthReport, HealthStatus};
use perf_runtime::{Perf, PerfConfig};
use support::fault_proxy::{Fault, FaultProxy};

fn port_of(url: &str) -> u16 {
    let authority = url.split("://").nth(1).expect("scheme");
    let host_port = authority.rsplit('@').next().expect("authority");
    let port = host_port.split(['/', '?']).next().expect("host:port");
    port.rsplit(':')
        .next()
        .expect("port")
        .parse()
        .expect("numeric port")
}

fn through(url: &str, proxy: &FaultProxy) -> String {
    url.replacen(
        &format!(":{}", port_of(url)),
        &format!(":{}", proxy.addr().port()),
        1,
    )
}

fn component<'a>(
    report: &'a HealthReport,
    name: &str,
) -> &'a perf_runtime::monitor::ComponentHealth {
    report
        .components
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("{name} is not in the report"))
}

/// Checks until `name` has `status`, at most `attempts` times, 200 ms apart.
async fn until(perf: &Perf, name: &str, status: HealthStatus, attempts: u32) -> HealthReport {
    let mut report = perf.quick_health_check().await;
    for _ in 1..attempts {
        if component(&report, name).status == status {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        report = perf.quick_health_check().await;
    }
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_slow_blackholed_reset_and_back() {
    let Some(redis) = support::service_url("REDIS_URL") else {
        return;
    };
    let proxy = FaultProxy::start(([127, 0, 0, 1], port_of(&redis)).into()).await;
    let config = PerfConfig::builder()
        .redis_url(through(&redis, &proxy))
        .enable_monitoring(false)
        .enable_prometheus(false)
        .health_check_timeout(Duration::from_secs(3))
        .build()
        .expect("valid config");
    let perf = Perf::start(config).await.expect("start");
    let report = until(&perf, "redis", HealthStatus::Up, 25).await;
    assert_eq!(
        component(&report, "redis").status,
        HealthStatus::Up,
        "{}",
        report.summary
    );

    // Slower than the command timeout (1 s): the PING fails with a timeout.
    proxy.set(Fault::Latency {
        base: Duration::from_millis(1500),
        jitter: Duration::from_millis(100),
    });
    let report = perf.quick_health_check().await;
    let redis_health = component(&report, "redis");
    assert_eq!(redis_health.status, HealthStatus::Down);
    let reason = redis_health.reason.clone().unwrap_or_default();
    assert!(
        reason.to_lowercase().contains("timeout") || reason.contains("not connected"),
        "{reason}"
    );

    // Blackholed: same, nothing answers.
    proxy.set(Fault::Blackhole);
    let report = perf.quick_health_check().await;
    assert_eq!(
        component(&report, "redis").status,
        HealthStatus::Down,
        "{}",
        report.summary
    );

    // Reset: the connection drops; the report says it is not connected.
    proxy.set(Fault::Reset);
    let report = until(&perf, "redis", HealthStatus::Down, 10).await;
    assert_eq!(component(&report, "redis").status, HealthStatus::Down);

    // Back to normal: the client reconnects by itself.
    let opened_before = proxy.connections_opened();
    proxy.set(Fault::None);
    let report = until(&perf, "redis", HealthStatus::Up, 50).await;
    assert_eq!(
        component(&report, "redis").status,
        HealthStatus::Up,
        "{}",
        report.summary
    );
    assert!(
        proxy.connections_opened() > opened_before,
        "the client opened a new connection"
    );
    perf.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_blackholed_then_back() {
    let Some(database) = support::service_url("DATABASE_URL") else {
        return;
    };
    let proxy = FaultProxy::start(([127, 0, 0, 1], port_of(&database)).into()).await;
    let config = PerfConfig::builder()
        .database_url(through(&database, &proxy))
        .enable_monitoring(false)
        .enable_prometheus(false)
        .build()
        .expect("valid config");
    let perf = Perf::start(config).await.expect("start");
    let report = until(&perf, "postgres", HealthStatus::Up, 25).await;
    assert_eq!(
        component(&report, "postgres").status,
        HealthStatus::Up,
        "{}",
        report.summary
    );

    proxy.set(Fault::Blackhole);
    let report = perf.quick_health_check().await;
    let postgres = component(&report, "postgres");
    assert_eq!(postgres.status, HealthStatus::Down);
    let reason = postgres.reason.clone().unwrap_or_default();
    assert!(reason.starts_with("SELECT 1 on postgres://"), "{reason}");
    assert!(!reason.contains("perf_test_pw"), "{reason}");

    // Reset what the blackhole left half-open, then let traffic through.
    proxy.set(Fault::Reset);
    tokio::time::sleep(Duration::from_millis(100)).await;
    proxy.set(Fault::None);
    let report = until(&perf, "postgres", HealthStatus::Up, 50).await;
    assert_eq!(
        component(&report, "postgres").status,
        HealthStatus::Up,
        "{}",
        report.summary
    );
    perf.shutdown().await;
}
