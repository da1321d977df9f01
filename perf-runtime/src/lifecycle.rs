//! The runtime's lifecycle: [`init`], [`global`], [`shutdown`] and the
//! [`Perf`] handle with the status API.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backends::Backends;
use crate::config::PerfConfig;
use crate::monitor::{
    ComponentStatus, HealthCheck, HealthReport, MetricsReport, SelfBenchmarkResult, StatusReport,
    health, names, recorder,
};

/// The crate version, as shown in `perf_build_info` and status reports.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How often the Prometheus recorder drains histogram samples into buckets.
/// The exporter keeps every raw sample (8 bytes) until then, so this bounds
/// that memory to one second of calls.
#[cfg(feature = "prometheus")]
const UPKEEP_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// How long shutdown waits for each background task before aborting it.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

static GLOBAL: RwLock<Option<Perf>> = RwLock::new(None);
static EMBEDDED: std::sync::OnceLock<Perf> = std::sync::OnceLock::new();

/// Starts the runtime from `config` and makes it the global one (the seed's
/// `initialize_performance_systems`). Call it once, early in `main`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let perf = perf_runtime::init(perf_runtime::PerfConfig::from_env()?).await?;
/// println!("{}", perf.quick_health_check().await.summary);
/// perf_runtime::shutdown().await;
/// # Ok(())
/// # }
/// ```
///
/// # Errors
/// [`InitError`]: already initialised, another metrics recorder installed,
/// a configured backend whose feature is off, or no Tokio runtime.
pub async fn init(config: PerfConfig) -> Result<Perf, InitError> {
    if GLOBAL
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .is_some()
    {
        return Err(InitError::AlreadyInitialized);
    }
    let perf = Perf::start(config).await?;
    let jobs = match crate::jobs::start_for(&perf).await {
        Ok(jobs) => jobs,
        Err(error) => {
            perf.shutdown().await;
            return Err(error);
        }
    };
    // Another task may have won the race while this one was starting.
    let lost_race = {
        let mut slot = GLOBAL.write().unwrap_or_else(PoisonError::into_inner);
        let taken = slot.is_some();
        if !taken {
            *slot = Some(perf.clone());
        }
        taken
    };
    if lost_race {
        jobs.stop_workers(std::time::Duration::ZERO).await;
        perf.shutdown().await;
        return Err(InitError::AlreadyInitialized);
    }
    crate::jobs::install(jobs);
    Ok(perf)
}

/// The global runtime: the one [`init`] started, or else the embedded
/// default (everything in process, nothing connected), so annotated code
/// called before `init` works and never panics.
pub fn global() -> Perf {
    if let Some(perf) = GLOBAL
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
    {
        return perf.clone();
    }
    EMBEDDED.get_or_init(Perf::embedded).clone()
}

/// Stops the global runtime (the seed's `shutdown_performance_systems`):
/// background tasks end, connections close, metrics are flushed. Later
/// calls see the embedded default again; `init` may be called anew.
pub async fn shutdown() {
    let perf = GLOBAL
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(jobs) = crate::jobs::uninstall() {
        jobs.unschedule_all();
        jobs.stop_workers(JOBS_SHUTDOWN_GRACE).await;
    }
    if let Some(perf) = perf {
        perf.shutdown().await;
    }
}

/// How long running jobs may take to finish at shutdown before they are
/// handed back to the store.
const JOBS_SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// `init` was called while a runtime is running.
    #[error(
        "perf_runtime::init was called twice; call perf_runtime::shutdown() first, or use Perf::start for a second, non-global instance"
    )]
    AlreadyInitialized,
    /// Another metrics recorder owns the process.
    #[error(
        "another metrics recorder is already installed; set ENABLE_PROMETHEUS=false to keep it, or remove it to use perf's Prometheus exporter"
    )]
    RecorderTaken,
    /// The Prometheus exporter refused its settings.
    #[error("the Prometheus exporter refused its settings: {0}")]
    Metrics(String),
    /// A setting needs a cargo feature that is off.
    #[error(
        "{setting} is set but perf-runtime was built without its `{feature}` feature; enable it in Cargo.toml or unset {setting}"
    )]
    FeatureMissing {
        /// The environment variable that asks for the backend.
        setting: &'static str,
        /// The feature to enable.
        feature: &'static str,
    },
    /// The Redis client could not be built from its URL.
    #[error("cannot use Redis at {url}: {reason}")]
    Redis {
        /// The URL, password redacted.
        url: String,
        /// What the client said.
        reason: String,
    },
    /// The PostgreSQL pool could not be built from its URL.
    #[error("cannot use PostgreSQL at {url}: {reason}")]
    Postgres {
        /// The URL, password redacted.
        url: String,
        /// What the driver said.
        reason: String,
    },
    /// The job store asked for by `JOB_STORE` could not be used.
    #[error("JOB_STORE={store}: {reason}")]
    Jobs {
        /// The store asked for.
        store: &'static str,
        /// Why it could not be used.
        reason: String,
    },
    /// `init` was awaited outside a Tokio runtime.
    #[error(
        "perf_runtime::init needs a Tokio runtime (it spawns its monitoring tasks); call it from #[tokio::main]"
    )]
    NoTokioRuntime,
}

/// A handle to a running runtime; cheap to clone. [`init`] makes the global
/// one; [`Perf::start`] makes independent instances (two services in one
/// test process, say).
#[derive(Clone)]
pub struct Perf {
    inner: Arc<Inner>,
}

struct Inner {
    config: PerfConfig,
    embedded: bool,
    started: quanta::Instant,
    checks: RwLock<Vec<Arc<dyn HealthCheck>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
    stopped: AtomicBool,
    #[cfg(feature = "prometheus")]
    prometheus: Option<metrics_exporter_prometheus::PrometheusHandle>,
    #[cfg(feature = "prometheus")]
    process: metrics_process::Collector,
    backends: Backends,
    /// The last self-benchmark result per `BENCHMARK_ENDPOINTS` entry, by
    /// position; written by the self-benchmark thread (feature `bench`).
    self_benchmarks: Arc<RwLock<Vec<Option<SelfBenchmarkResult>>>>,
}

impl Perf {
    /// Starts a runtime from `config` without making it the global one.
    ///
    /// # Errors
    /// As [`init`], except `AlreadyInitialized`.
    pub async fn start(config: PerfConfig) -> Result<Perf, InitError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(InitError::NoTokioRuntime);
        }
        #[cfg(feature = "prometheus")]
        let prometheus = if config.enable_prometheus {
            Some(recorder::install(&config)?)
        } else {
            None
        };
        recorder::settle();
        describe_metrics();
        metrics::gauge!(names::BUILD_INFO, "version" => VERSION).set(1.0);

        let backends = Backends::connect(&config)?;
        // Give fresh connections a moment, so a health check right after
        // start-up reports the service rather than "not connected yet".
        backends.wait_connected(config.health_check_timeout).await;
        let checks = backends.health_checks();

        let (stop, _) = watch::channel(false);
        let perf = Perf {
            inner: Arc::new(Inner {
                embedded: false,
                started: quanta::Instant::now(),
                checks: RwLock::new(checks),
                tasks: Mutex::new(Vec::new()),
                stop,
                stopped: AtomicBool::new(false),
                #[cfg(feature = "prometheus")]
                prometheus,
                #[cfg(feature = "prometheus")]
                process: process_collector(),
                backends,
                self_benchmarks: Arc::default(),
                config,
            }),
        };
        perf.spawn_background_tasks();
        Ok(perf)
    }

    /// The embedded default: no connections, no tasks, no recorder of its own.
    fn embedded() -> Perf {
        let (stop, _) = watch::channel(false);
        Perf {
            inner: Arc::new(Inner {
                config: PerfConfig::default(),
                embedded: true,
                started: quanta::Instant::now(),
                checks: RwLock::new(Vec::new()),
                tasks: Mutex::new(Vec::new()),
                stop,
                stopped: AtomicBool::new(false),
                #[cfg(feature = "prometheus")]
                prometheus: recorder::installed().cloned(),
                #[cfg(feature = "prometheus")]
                process: process_collector(),
                backends: Backends::default(),
                self_benchmarks: Arc::default(),
            }),
        }
    }

    fn spawn_background_tasks(&self) {
        let mut tasks = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        #[cfg(feature = "prometheus")]
        if let Some(handle) = self.inner.prometheus.clone() {
            let mut stop = self.inner.stop.subscribe();
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
                loop {
                    tokio::select! {
                        _ = tick.tick() => handle.run_upkeep(),
                        _ = stop.changed() => break,
                    }
                }
            }));
        }
        #[cfg(feature = "redis")]
        if self.inner.config.enable_advanced_caching
            && let Some(redis) = self.inner.backends.redis()
        {
            match redis.subscriber() {
                Ok(subscriber) => {
                    let stop = self.inner.stop.subscribe();
                    tasks.push(tokio::spawn(crate::cache::bus::listen(subscriber, stop)));
                }
                Err(error) => tracing::warn!(%error, "cache invalidation bus not started"),
            }
        }
        #[cfg(feature = "bench")]
        if self.inner.config.enable_benchmarking
            && !self.inner.config.benchmark_endpoints.is_empty()
        {
            tasks.push(crate::bench::spawn_self_benchmark(
                &self.inner.config,
                Arc::clone(&self.inner.self_benchmarks),
                self.inner.stop.subscribe(),
            ));
        }
        #[cfg(not(feature = "bench"))]
        if self.inner.config.enable_benchmarking {
            tracing::warn!(
                "ENABLE_BENCHMARKING is on, but perf-runtime was built without its `bench` feature: no self-benchmark runs"
            );
        }
        if self.inner.config.enable_monitoring {
            // A weak handle: the loop must not keep a dropped runtime alive.
            let weak = Arc::downgrade(&self.inner);
            let mut stop = self.inner.stop.subscribe();
            let period = self.inner.config.monitoring_interval;
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval(period);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {
                            let Some(inner) = weak.upgrade() else { break };
                            Perf { inner }.sample().await;
                        }
                        _ = stop.changed() => break,
                    }
                }
            }));
        }
    }

    /// One monitoring round: health checks (which record `perf_health_up`)
    /// and process figures.
    async fn sample(&self) {
        let _ = self.quick_health_check().await;
        self.record_process_metrics();
    }

    fn record_process_metrics(&self) {
        crate::profile::publish_in_flight();
        crate::cache::publish_entries();
        self.inner.backends.publish_metrics();
        metrics::gauge!(names::UPTIME).set(self.inner.started.elapsed().as_secs_f64());
        #[cfg(feature = "prometheus")]
        self.inner.process.collect();
    }

    /// The shared Redis client, when Redis is configured and connected.
    #[cfg(feature = "redis")]
    pub(crate) fn redis_client(&self) -> Option<fred::prelude::Client> {
        self.inner
            .backends
            .redis()
            .map(|redis| redis.client().clone())
    }

    /// The PostgreSQL query API, when `DATABASE_URL` is set (and connection
    /// pooling on).
    #[cfg(feature = "postgres")]
    pub fn db(&self) -> Option<crate::db::Db> {
        self.inner.backends.db().cloned()
    }

    /// The configuration this runtime runs with.
    pub fn config(&self) -> &PerfConfig {
        &self.inner.config
    }

    /// Whether this is the embedded default (no `init` yet).
    pub fn is_embedded_default(&self) -> bool {
        self.inner.embedded
    }

    /// Adds a component's health check to [`Self::quick_health_check`] and `/health`.
    pub fn register_health_check(&self, check: impl HealthCheck) {
        self.inner
            .checks
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(check));
    }

    /// Runs every health check now, concurrently, each bounded by the
    /// configured `health_check_timeout`.
    pub async fn quick_health_check(&self) -> HealthReport {
        let checks = self
            .inner
            .checks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        health::run(&checks, self.inner.config.health_check_timeout).await
    }

    /// What runs, how it is configured (passwords redacted) and its health.
    pub async fn get_status(&self) -> StatusReport {
        StatusReport {
            version: VERSION,
            uptime_seconds: self.inner.started.elapsed().as_secs_f64(),
            embedded_default: self.inner.embedded,
            components: self.components(),
            config: self.inner.config.clone(),
            health: self.quick_health_check().await,
            self_benchmark: self.last_self_benchmarks(),
        }
    }

    /// The last self-benchmark of each `BENCHMARK_ENDPOINTS` entry that has
    /// had one, in the configured order (`ENABLE_BENCHMARKING`, feature
    /// `bench`). Empty until the first round ran.
    pub fn last_self_benchmarks(&self) -> Vec<SelfBenchmarkResult> {
        self.inner
            .self_benchmarks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .flatten()
            .cloned()
            .collect()
    }

    fn components(&self) -> Vec<ComponentStatus> {
        let config = &self.inner.config;
        let mut components = Vec::new();
        #[cfg(feature = "prometheus")]
        components.push(match (&self.inner.prometheus, config.enable_prometheus) {
            (Some(_), _) => ComponentStatus::new("prometheus", true, "recorder installed"),
            (None, true) => {
                ComponentStatus::new("prometheus", false, "not started: call perf_runtime::init")
            }
            (None, false) => ComponentStatus::new("prometheus", false, "ENABLE_PROMETHEUS=false"),
        });
        #[cfg(not(feature = "prometheus"))]
        components.push(ComponentStatus::new(
            "prometheus",
            false,
            "built without the `prometheus` feature",
        ));
        components.extend(self.inner.backends.components(config));
        components.push(ComponentStatus::new(
            "monitoring",
            config.enable_monitoring && !self.inner.embedded,
            format!("every {} s", config.monitoring_interval.as_secs()),
        ));
        components.push(self.benchmarking_component());
        components
    }

    /// The self-benchmark: what it loads, or why it is off.
    fn benchmarking_component(&self) -> ComponentStatus {
        let config = &self.inner.config;
        if !config.enable_benchmarking {
            return ComponentStatus::new("benchmarking", false, "ENABLE_BENCHMARKING=false");
        }
        if cfg!(not(feature = "bench")) {
            return ComponentStatus::new(
                "benchmarking",
                false,
                "built without the `bench` feature",
            );
        }
        // The builder refuses this; a configuration edited field by field
        // may still get here.
        if config.benchmark_endpoints.is_empty() {
            return ComponentStatus::new("benchmarking", false, "no BENCHMARK_ENDPOINTS");
        }
        let count = config.benchmark_endpoints.len();
        ComponentStatus::new(
            "benchmarking",
            !self.inner.embedded,
            format!(
                "{count} endpoint{} at {} req/s for {} s each, every {} s",
                if count == 1 { "" } else { "s" },
                config.benchmark_rate,
                config.benchmark_duration.as_secs(),
                config.auto_benchmark_interval.as_secs(),
            ),
        )
    }

    /// The figures behind `/metrics`, typed: calls by outcome, in-flight
    /// calls and latency quantiles per profiled function, process memory.
    pub fn get_metrics(&self) -> MetricsReport {
        #[cfg(feature = "prometheus")]
        if let Some(text) = self.render_prometheus() {
            return crate::monitor::metrics_from_exposition(&text);
        }
        MetricsReport::default()
    }

    /// The Prometheus text exposition (what `/metrics` serves), or `None`
    /// when the recorder is not installed.
    pub fn render_prometheus(&self) -> Option<String> {
        #[cfg(feature = "prometheus")]
        if let Some(handle) = &self.inner.prometheus {
            self.record_process_metrics();
            return Some(handle.render());
        }
        None
    }

    /// Stops this runtime: background tasks end, connections close, the
    /// recorder drains. Calls after the first do nothing.
    pub async fn shutdown(&self) {
        if self.inner.stopped.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.inner.stop.send(true);
        let tasks = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for mut task in tasks {
            // Tasks watch the stop signal; one that does not end in time
            // (stuck on a dead connection) is aborted rather than awaited forever.
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        self.inner.backends.close().await;
        #[cfg(feature = "prometheus")]
        if let Some(handle) = &self.inner.prometheus {
            handle.run_upkeep();
        }
    }
}

impl std::fmt::Debug for Perf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Perf")
            .field("embedded_default", &self.inner.embedded)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "prometheus")]
fn process_collector() -> metrics_process::Collector {
    metrics_process::Collector::default()
}

/// Help texts of the PostgreSQL pool and query-cache series.
fn describe_pool_metrics() {
    metrics::describe_gauge!(
        names::DB_POOL_CONNECTIONS,
        "Open PostgreSQL pool connections."
    );
    metrics::describe_gauge!(names::DB_POOL_IDLE, "Idle PostgreSQL pool connections.");
    metrics::describe_gauge!(
        names::DB_POOL_IN_USE,
        "PostgreSQL pool connections lent to a query."
    );
    metrics::describe_gauge!(names::DB_POOL_MAX, "The PostgreSQL pool's cap.");
    metrics::describe_histogram!(
        names::DB_POOL_ACQUIRE_DURATION,
        metrics::Unit::Seconds,
        "Wait for a pooled PostgreSQL connection."
    );
    metrics::describe_counter!(
        names::DB_POOL_ACQUIRE_TIMEOUTS,
        "Queries that got no PostgreSQL connection within DB_ACQUIRE_TIMEOUT."
    );
    metrics::describe_counter!(
        names::DB_QUERY_CACHE_REQUESTS,
        "Cached queries by name and outcome (hit, miss)."
    );
}

/// Help texts of the self-benchmark series (`ENABLE_BENCHMARKING`).
fn describe_self_benchmark_metrics() {
    metrics::describe_gauge!(
        names::SELF_BENCHMARK_LATENCY,
        metrics::Unit::Seconds,
        "Latency of the last self-benchmark run, by endpoint and percentile (p50, p95, p99); NaN without an answer."
    );
    metrics::describe_gauge!(
        names::SELF_BENCHMARK_ERROR_RATIO,
        "Failed over sent requests of the last self-benchmark run, by endpoint; 1 when it could not start."
    );
    metrics::describe_gauge!(
        names::SELF_BENCHMARK_REQUESTS_PER_SECOND,
        "Requests per second sent by the last self-benchmark run, by endpoint."
    );
    metrics::describe_counter!(
        names::SELF_BENCHMARK_RUNS,
        "Self-benchmark runs by endpoint and outcome (ok, failed)."
    );
}

/// Help texts for `/metrics`, registered once per process.
fn describe_metrics() {
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    DESCRIBED.call_once(|| {
        metrics::describe_counter!(names::FUNCTION_CALLS, "Profiled calls by outcome.");
        metrics::describe_gauge!(names::FUNCTION_IN_FLIGHT, "Profiled calls in progress.");
        metrics::describe_histogram!(
            names::FUNCTION_DURATION,
            metrics::Unit::Seconds,
            "Duration of profiled calls."
        );
        metrics::describe_gauge!(names::BUILD_INFO, "Always 1; the perf-runtime version.");
        metrics::describe_gauge!(
            names::HEALTH_UP,
            "1 when the component's last health check passed."
        );
        metrics::describe_histogram!(
            names::HEALTH_CHECK_DURATION,
            metrics::Unit::Seconds,
            "Duration of health checks."
        );
        metrics::describe_gauge!(
            names::UPTIME,
            metrics::Unit::Seconds,
            "Seconds since the runtime started."
        );
        metrics::describe_gauge!(
            names::REDIS_CONNECTIONS,
            "Connections of the Redis pool, by state."
        );
        metrics::describe_counter!(names::CACHE_REQUESTS, "Cache lookups by tier and outcome.");
        metrics::describe_counter!(
            names::CACHE_ORIGIN_CALLS,
            "Cached functions whose body ran."
        );
        metrics::describe_histogram!(
            names::CACHE_L1_LOOKUP_DURATION,
            metrics::Unit::Seconds,
            "Duration of L1 (in-process) lookups, one in 256 sampled."
        );
        metrics::describe_histogram!(
            names::CACHE_L2_LOOKUP_DURATION,
            metrics::Unit::Seconds,
            "Duration of L2 (Redis) lookups."
        );
        metrics::describe_counter!(names::CACHE_EVICTIONS, "L1 entries removed, by cause.");
        metrics::describe_gauge!(names::CACHE_ENTRIES, "L1 entries.");
        metrics::describe_counter!(
            names::CACHE_LOCKS,
            "Cold misses of lock-ed functions, by how the cross-instance lock ended."
        );
        metrics::describe_gauge!(
            names::CACHE_BYTES,
            "Estimated bytes of the L1 values (encoded size where known)."
        );
        metrics::describe_counter!(
            names::CACHE_DECODE_ERRORS,
            "L2 values that did not decode (deleted)."
        );
        metrics::describe_counter!(
            names::CACHE_BACKEND_ERRORS,
            "L2 backend failures (timeouts, connection errors)."
        );
        describe_pool_metrics();
        describe_self_benchmark_metrics();
        #[cfg(feature = "prometheus")]
        process_collector().describe();
    });
}
