//! Monitoring: metric names, the Prometheus recorder, health checks and the
//! typed reports of the status API.

pub mod health;
pub mod names;
pub(crate) mod recorder;
mod report;
pub(crate) mod throttle;

#[cfg(feature = "prometheus")]
mod exposition;

pub use health::{ComponentHealth, HealthCheck, HealthReport, HealthStatus};
#[cfg(feature = "prometheus")]
pub(crate) use report::metrics_from_exposition;
pub use report::{
    ComponentStatus, FunctionMetrics, LatencySummary, MetricsReport, ProcessMetrics,
    SelfBenchmarkOutcome, SelfBenchmarkResult, StatusReport,
};
