//! Configuration: [`PerfConfig`] from the environment or from code.
//!
//! Every variable of the seed guide is read, with these defaults:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `REDIS_URL` | unset | `redis://[user:password@]host:port/db` (or `rediss://`); wins over the three below |
//! | `REDIS_HOST` | unset | Redis host; unset (and no `REDIS_URL`) means no Redis: everything stays in process |
//! | `REDIS_PORT` | `6379` | Redis port, used with `REDIS_HOST` |
//! | `REDIS_DB` | `0` | Redis database index, used with `REDIS_HOST` |
//! | `DATABASE_URL` | unset | `postgres://user:password@host:port/db`; unset means no database |
//! | `DB_MAX_CONNECTIONS` | `50` | PostgreSQL pool size |
//! | `DB_MIN_CONNECTIONS` | `0` | connections the pool keeps open when idle (at most `DB_MAX_CONNECTIONS`) |
//! | `DB_ACQUIRE_TIMEOUT` | `3` | seconds a query waits for a pooled connection before it fails |
//! | `DB_QUERY_TIMEOUT` | `30` | seconds a query may run once it has a connection; past it the call fails and the connection is closed |
//! | `DB_IDLE_TIMEOUT` | `600` | seconds an idle connection above the minimum stays open |
//! | `DB_MAX_LIFETIME` | `1800` | seconds before a connection is replaced |
//! | `DB_PGBOUNCER` | `false` | the database is reached through PgBouncer in transaction mode; also on with `?pgbouncer=true` in `DATABASE_URL` |
//! | `HTTP_MAX_CONNECTIONS` | `200` | cap on outbound HTTP connections |
//! | `REDIS_MAX_CONNECTIONS` | `100` | cap on Redis connections |
//! | `MONITORING_INTERVAL` | `60` | seconds between health checks and process-metric samples |
//! | `ENABLE_PROMETHEUS` | `true` | install the Prometheus recorder and serve `/metrics` |
//! | `MAX_ASYNC_WORKERS` | `100` | background job workers |
//! | `MIN_ASYNC_WORKERS` | `0` | with 1 to `MAX_ASYNC_WORKERS`, the worker count follows the queues' depth between the two; `0` keeps it at `MAX_ASYNC_WORKERS` |
//! | `JOB_STORE` | `memory` | where `#[async_job]` jobs are kept: `memory` (lost on exit), `redis`, `postgres` |
//! | `RESPONSE_TIME_THRESHOLD` | `500.0` | milliseconds; alert and benchmark threshold |
//! | `ERROR_RATE_THRESHOLD` | `1.0` | percent of calls |
//! | `MEMORY_THRESHOLD` | `80.0` | percent of memory |
//! | `CPU_THRESHOLD` | `70.0` | percent of CPU |
//! | `ENABLE_BENCHMARKING` | `false` | periodic self-benchmark of `BENCHMARK_ENDPOINTS` (needs the `bench` feature) |
//! | `AUTO_BENCHMARK_INTERVAL` | `3600` | seconds from the end of one self-benchmark round to the start of the next; the first round starts this long after start-up, at most 30 s |
//! | `BENCHMARK_ENDPOINTS` | unset | comma-separated `http://` URLs benchmarked one after another in each round; required when `ENABLE_BENCHMARKING` is on |
//! | `BENCHMARK_RATE` | `2` | requests per second of the self-benchmark (constant rate, at most 2 in flight) |
//! | `BENCHMARK_DURATION` | `10` | seconds each endpoint is benchmarked per round |
//!
//! Booleans accept `true`/`false`, `1`/`0`, `yes`/`no` and `on`/`off`. A bad
//! value is a [`ConfigError`] naming the variable, the value and the expected
//! form. Passwords in URLs are never printed: see [`SecretUrl`].
//!
//! ```
//! use std::time::Duration;
//! use perf_runtime::config::PerfConfig;
//!
//! let config = PerfConfig::builder()
//!     .max_async_workers(8)
//!     .monitoring_interval(Duration::from_secs(15))
//!     .enable_benchmarking(false)
//!     .build()
//!     .unwrap();
//! assert!(config.redis.is_none()); // the embedded default: everything in process
//! ```

mod builder;
mod env;
mod secret;

use std::time::Duration;

pub use builder::PerfConfigBuilder;
pub use env::VARIABLES;
pub use secret::SecretUrl;
pub(crate) use secret::shown_value;

/// Latency buckets (seconds) for every `*_seconds` histogram unless a metric
/// has its own: from 0.5 ms (an L1 cache hit) to 10 s (a slow model call).
pub const DEFAULT_LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The runtime's configuration. Build it with [`PerfConfig::from_env`],
/// [`PerfConfig::builder`] or [`PerfConfig::default`] (the embedded default:
/// no Redis, no database, everything in process).
///
/// Fields are public to read; build a changed copy with the builder.
#[derive(Clone, Debug, serde::Serialize)]
#[non_exhaustive]
pub struct PerfConfig {
    /// Redis, from `REDIS_URL` or `REDIS_HOST`/`REDIS_PORT`/`REDIS_DB`; `None` keeps everything in process.
    pub redis: Option<SecretUrl>,
    /// PostgreSQL, from `DATABASE_URL`; `None` means no database.
    pub database: Option<SecretUrl>,
    /// `DB_MAX_CONNECTIONS`: PostgreSQL pool size.
    pub db_max_connections: u32,
    /// `DB_MIN_CONNECTIONS`: connections kept open when idle.
    pub db_min_connections: u32,
    /// `DB_ACQUIRE_TIMEOUT`: longest wait for a pooled connection.
    #[serde(rename = "db_acquire_timeout_seconds", serialize_with = "seconds")]
    pub db_acquire_timeout: Duration,
    /// `DB_QUERY_TIMEOUT`: longest a query may run once it has a connection;
    /// past it the call fails and the connection is closed (a network that
    /// drops packets would otherwise hold the call until TCP gives up).
    #[serde(rename = "db_query_timeout_seconds", serialize_with = "seconds")]
    pub db_query_timeout: Duration,
    /// `DB_IDLE_TIMEOUT`: an idle connection above the minimum is closed after this.
    #[serde(rename = "db_idle_timeout_seconds", serialize_with = "seconds")]
    pub db_idle_timeout: Duration,
    /// `DB_MAX_LIFETIME`: a connection is replaced after this.
    #[serde(rename = "db_max_lifetime_seconds", serialize_with = "seconds")]
    pub db_max_lifetime: Duration,
    /// `DB_PGBOUNCER` (or `?pgbouncer=true` in `DATABASE_URL`): PgBouncer in
    /// transaction mode sits in front of the database, so [`crate::db`] runs
    /// every parameterised query in a transaction of its own.
    pub db_pgbouncer: bool,
    /// `HTTP_MAX_CONNECTIONS`: cap on outbound HTTP connections.
    pub http_max_connections: u32,
    /// `REDIS_MAX_CONNECTIONS`: cap on Redis connections (the pool holds at
    /// most two per CPU core below it; each connection is multiplexed).
    pub redis_max_connections: u32,
    /// `MONITORING_INTERVAL`: period of health checks and process-metric samples.
    #[serde(rename = "monitoring_interval_seconds", serialize_with = "seconds")]
    pub monitoring_interval: Duration,
    /// `ENABLE_PROMETHEUS`: install the Prometheus recorder in [`crate::init`].
    pub enable_prometheus: bool,
    /// `MAX_ASYNC_WORKERS`: background job workers.
    pub max_async_workers: u32,
    /// `MIN_ASYNC_WORKERS`: the floor of a worker count that follows the
    /// queues' depth; 0 keeps it at `max_async_workers`.
    pub min_async_workers: u32,
    /// `JOB_STORE`: where `#[async_job]` jobs are kept.
    pub job_store: JobStoreKind,
    /// `RESPONSE_TIME_THRESHOLD` (milliseconds in the environment).
    #[serde(rename = "response_time_threshold_ms", serialize_with = "milliseconds")]
    pub response_time_threshold: Duration,
    /// `ERROR_RATE_THRESHOLD`, percent of calls.
    pub error_rate_threshold: f64,
    /// `MEMORY_THRESHOLD`, percent of memory.
    pub memory_threshold: f64,
    /// `CPU_THRESHOLD`, percent of CPU.
    pub cpu_threshold: f64,
    /// `ENABLE_BENCHMARKING`: periodic self-benchmark.
    pub enable_benchmarking: bool,
    /// `AUTO_BENCHMARK_INTERVAL`: the pause from the end of one
    /// self-benchmark round to the start of the next.
    #[serde(rename = "auto_benchmark_interval_seconds", serialize_with = "seconds")]
    pub auto_benchmark_interval: Duration,
    /// `BENCHMARK_ENDPOINTS`: the `http://` URLs the self-benchmark loads,
    /// one after another; reports show them with `***` for a password.
    pub benchmark_endpoints: Vec<SecretUrl>,
    /// `BENCHMARK_RATE`: requests per second of the self-benchmark.
    #[serde(rename = "benchmark_rate_per_second")]
    pub benchmark_rate: f64,
    /// `BENCHMARK_DURATION`: how long each endpoint is loaded per round.
    #[serde(rename = "benchmark_duration_seconds", serialize_with = "seconds")]
    pub benchmark_duration: Duration,
    /// Multi-level caching (the seed's `enable_advanced_caching`).
    pub enable_advanced_caching: bool,
    /// Connections to Redis and PostgreSQL (the seed's `enable_connection_pooling`);
    /// off, configured URLs are kept but not connected.
    pub enable_connection_pooling: bool,
    /// The monitoring loop: periodic health checks and process metrics.
    pub enable_monitoring: bool,
    /// Background jobs (the seed's `enable_async_processing`).
    pub enable_async_processing: bool,
    /// Buckets (seconds) of every `*_seconds` histogram without its own.
    pub latency_buckets: Vec<f64>,
    /// Buckets for named histograms, overriding [`Self::latency_buckets`].
    pub metric_buckets: Vec<(String, Vec<f64>)>,
    /// How long one health check may take before it counts as down.
    #[serde(rename = "health_check_timeout_seconds", serialize_with = "seconds")]
    pub health_check_timeout: Duration,
}

impl Default for PerfConfig {
    fn default() -> Self {
        PerfConfig {
            redis: None,
            database: None,
            db_max_connections: 50,
            db_min_connections: 0,
            db_acquire_timeout: Duration::from_secs(3),
            db_query_timeout: Duration::from_secs(30),
            db_idle_timeout: Duration::from_secs(600),
            db_max_lifetime: Duration::from_secs(1800),
            db_pgbouncer: false,
            http_max_connections: 200,
            redis_max_connections: 100,
            monitoring_interval: Duration::from_secs(60),
            enable_prometheus: true,
            max_async_workers: 100,
            min_async_workers: 0,
            job_store: JobStoreKind::Memory,
            response_time_threshold: Duration::from_millis(500),
            error_rate_threshold: 1.0,
            memory_threshold: 80.0,
            cpu_threshold: 70.0,
            enable_benchmarking: false,
            auto_benchmark_interval: Duration::from_secs(3600),
            benchmark_endpoints: Vec::new(),
            benchmark_rate: 2.0,
            benchmark_duration: Duration::from_secs(10),
            enable_advanced_caching: true,
            enable_connection_pooling: true,
            enable_monitoring: true,
            enable_async_processing: true,
            latency_buckets: DEFAULT_LATENCY_BUCKETS.to_vec(),
            metric_buckets: Vec::new(),
            health_check_timeout: Duration::from_secs(2),
        }
    }
}

impl PerfConfig {
    /// Starts from the defaults; see [`PerfConfigBuilder`].
    pub fn builder() -> PerfConfigBuilder {
        PerfConfigBuilder::default()
    }

    /// Reads every variable of the table above from the process environment.
    ///
    /// # Errors
    /// The first variable whose value is malformed or out of range, as
    /// `MAX_ASYNC_WORKERS="ten": expected a positive integer`.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Self::from_env`], reading variables through `lookup` (tests,
    /// or a configuration source of your own).
    ///
    /// # Errors
    /// As [`Self::from_env`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        env::read(&lookup)?.build()
    }
}

/// Durations in reports: a number with the unit in the field's name.
fn seconds<S: serde::Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(value.as_secs_f64())
}

fn milliseconds<S: serde::Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_f64(value.as_secs_f64() * 1000.0)
}

/// A configuration value that is malformed or out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `variable` holds `value`, which is not of the `expected` form. A value
    /// that may hold a password is shown redacted.
    #[error("{variable}=\"{value}\": expected {expected}")]
    Invalid {
        /// The environment variable (also used for the builder setting of the same name).
        variable: &'static str,
        /// The value as given, with any password replaced by `***`.
        value: String,
        /// The accepted form, with an example.
        expected: &'static str,
    },
}

impl ConfigError {
    pub(crate) fn invalid(variable: &'static str, raw: &str, expected: &'static str) -> Self {
        ConfigError::Invalid {
            variable,
            value: shown_value(raw),
            expected,
        }
    }
}

/// `JOB_STORE`: where background jobs are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum JobStoreKind {
    /// In this process (the embedded default): queued and running jobs are
    /// lost when it exits.
    #[default]
    Memory,
    /// In Redis (`REDIS_URL` or `REDIS_HOST`), shared by every instance.
    Redis,
    /// In PostgreSQL (`DATABASE_URL`), durable and shared.
    Postgres,
}

impl std::str::FromStr for JobStoreKind {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, ()> {
        match text.trim().to_ascii_lowercase().as_str() {
            "memory" => Ok(JobStoreKind::Memory),
            "redis" => Ok(JobStoreKind::Redis),
            "postgres" | "postgresql" => Ok(JobStoreKind::Postgres),
            _ => Err(()),
        }
    }
}
