//! Every metric name the runtime records, in one place. Prometheus
//! conventions: `perf_` prefix, base units in the name, `_total` counters.

/// Counter: profiled calls, by `function`, `module`, `outcome`.
pub const FUNCTION_CALLS: &str = "perf_function_calls_total";
/// Gauge: profiled calls in progress, by `function`, `module`.
pub const FUNCTION_IN_FLIGHT: &str = "perf_function_in_flight";
/// Histogram: profiled call duration in seconds, by `function`, `module`.
pub const FUNCTION_DURATION: &str = "perf_function_duration_seconds";
/// Gauge, always 1: the crate `version`, to line metrics up with deploys.
pub const BUILD_INFO: &str = "perf_build_info";
/// Gauge: 1 when a component's last health check passed, else 0; by `component`.
pub const HEALTH_UP: &str = "perf_health_up";
/// Histogram: health check duration in seconds, by `component`.
pub const HEALTH_CHECK_DURATION: &str = "perf_health_check_duration_seconds";
/// Gauge: seconds since the runtime started.
pub const UPTIME: &str = "perf_uptime_seconds";
