//! Health checks: components register a check; [`crate::Perf::quick_health_check`]
//! runs them all at once, each under a timeout, and reports which failed and why.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::{BoxFuture, join_all};

use super::names;

/// A component that can tell whether it works: a Redis `PING`, a database
/// `SELECT 1`, a queue that is draining.
///
/// ```
/// use perf_runtime::monitor::health;
///
/// let check = health::check_fn("disk", || async {
///     let free_gib = 12; // measure something real here
///     if free_gib > 1 { Ok(()) } else { Err(format!("{free_gib} GiB free")) }
/// });
/// # let _ = check;
/// ```
pub trait HealthCheck: Send + Sync + 'static {
    /// The component's name: a short, stable label (`redis`, `postgres`).
    fn name(&self) -> &str;

    /// `Ok` when healthy, else the reason, worded for an operator
    /// (`connection refused by 127.0.0.1:6379`). Never include secrets.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// A health check from a name and an async closure; see [`HealthCheck`].
pub fn check_fn<F, Fut>(name: impl Into<String>, check: F) -> impl HealthCheck
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    FnCheck {
        name: name.into(),
        check,
    }
}

struct FnCheck<F> {
    name: String,
    check: F,
}

impl<F, Fut> HealthCheck for FnCheck<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin((self.check)())
    }
}

/// Up or down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HealthStatus {
    /// The last check passed.
    Up,
    /// The last check failed or timed out.
    Down,
}

/// One component's result.
#[derive(Clone, Debug, serde::Serialize)]
#[non_exhaustive]
pub struct ComponentHealth {
    /// The component's name.
    pub name: String,
    /// Up or down.
    pub status: HealthStatus,
    /// How long the check took, in milliseconds.
    pub latency_ms: f64,
    /// Why it is down; `None` when up.
    pub reason: Option<String>,
}

/// The result of every registered check.
#[derive(Clone, Debug, serde::Serialize)]
#[non_exhaustive]
pub struct HealthReport {
    /// True when every component is up (and when there is none to check).
    pub healthy: bool,
    /// `healthy`, or the failing components with their reasons, on one line.
    pub summary: String,
    /// Each component, in registration order.
    pub components: Vec<ComponentHealth>,
}

impl HealthReport {
    /// The components that are down.
    pub fn failing(&self) -> impl Iterator<Item = &ComponentHealth> {
        self.components
            .iter()
            .filter(|c| c.status == HealthStatus::Down)
    }

    fn new(components: Vec<ComponentHealth>) -> Self {
        let failing: Vec<String> = components
            .iter()
            .filter(|c| c.status == HealthStatus::Down)
            .map(|c| format!("{}: {}", c.name, c.reason.as_deref().unwrap_or("down")))
            .collect();
        let summary = if failing.is_empty() {
            "healthy".to_owned()
        } else {
            format!("unhealthy: {}", failing.join("; "))
        };
        HealthReport {
            healthy: failing.is_empty(),
            summary,
            components,
        }
    }
}

/// Runs every check concurrently, each bounded by `timeout`, and records
/// `perf_health_up` and `perf_health_check_duration_seconds`.
pub(crate) async fn run(checks: &[Arc<dyn HealthCheck>], timeout: Duration) -> HealthReport {
    let components = join_all(checks.iter().map(|check| run_one(check.as_ref(), timeout))).await;
    HealthReport::new(components)
}

async fn run_one(check: &dyn HealthCheck, timeout: Duration) -> ComponentHealth {
    let started = quanta::Instant::now();
    let result = match tokio::time::timeout(timeout, check.check()).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    };
    let elapsed = started.elapsed();
    let name = check.name().to_owned();
    metrics::histogram!(names::HEALTH_CHECK_DURATION, "component" => name.clone())
        .record(elapsed.as_secs_f64());
    metrics::gauge!(names::HEALTH_UP, "component" => name.clone()).set(if result.is_ok() {
        1.0
    } else {
        0.0
    });
    if let Err(reason) = &result {
        tracing::warn!(component = %name, %reason, "health check failed");
    }
    ComponentHealth {
        name,
        status: if result.is_ok() {
            HealthStatus::Up
        } else {
            HealthStatus::Down
        },
        latency_ms: elapsed.as_secs_f64() * 1000.0,
        reason: result.err(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reports_failures_and_timeouts_by_name() {
        let checks: Vec<Arc<dyn HealthCheck>> = vec![
            Arc::new(check_fn("fine", || async { Ok(()) })),
            Arc::new(check_fn("broken", || async { Err("disk full".to_owned()) })),
            Arc::new(check_fn("stuck", || async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(())
            })),
        ];
        let report = run(&checks, Duration::from_millis(50)).await;
        assert!(!report.healthy);
        let status: Vec<_> = report
            .components
            .iter()
            .map(|c| (c.name.as_str(), c.status))
            .collect();
        assert_eq!(
            status,
            [
                ("fine", HealthStatus::Up),
                ("broken", HealthStatus::Down),
                ("stuck", HealthStatus::Down)
            ]
        );
        assert_eq!(
            report.summary,
            "unhealthy: broken: disk full; stuck: no answer within 50 ms"
        );
    }

    #[tokio::test]
    async fn no_checks_is_healthy() {
        let report = run(&[], Duration::from_millis(50)).await;
        assert!(report.healthy);
        assert_eq!(report.summary, "healthy");
    }
}
