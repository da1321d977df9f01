//! [`PerfConfigBuilder`]: the configuration in code (the seed's
//! `PerformanceIntegrationConfig`), validated once in [`PerfConfigBuilder::build`].

use std::time::Duration;

use super::secret::shown_value;
use super::{ConfigError, PerfConfig, SecretUrl};

/// Expected forms, shared by the environment reader and the builder so both
/// report the same text.
pub(crate) mod expected {
    pub(crate) const POSITIVE_INTEGER: &str = "a positive integer";
    pub(crate) const JOB_STORE: &str = "memory, redis or postgres";
    pub(crate) const SECONDS: &str = "a positive whole number of seconds, e.g. 60";
    pub(crate) const MILLISECONDS: &str = "a positive number of milliseconds, e.g. 500.0";
    pub(crate) const PERCENT: &str = "a percentage from 0 to 100, e.g. 1.0";
    pub(crate) const BOOLEAN: &str = "true or false (also 1/0, yes/no, on/off)";
    pub(crate) const PORT: &str = "a port number from 1 to 65535";
    pub(crate) const REDIS_DB: &str = "a database index from 0 to 65535";
    pub(crate) const HOST: &str = "a host name or IP address, e.g. 127.0.0.1";
    pub(crate) const REDIS_URL: &str = "a redis:// or rediss:// URL, e.g. redis://127.0.0.1:6379/0";
    pub(crate) const DATABASE_URL: &str =
        "a postgres:// URL, e.g. postgres://app:password@127.0.0.1:5432/app";
    pub(crate) const BUCKETS: &str = "a non-empty list of increasing, positive bucket bounds";
    pub(crate) const TIMEOUT: &str = "a positive duration";
    pub(crate) const MIN_WORKERS: &str =
        "a number of workers no larger than MAX_ASYNC_WORKERS (0: always MAX_ASYNC_WORKERS)";
    pub(crate) const MIN_CONNECTIONS: &str =
        "a number of connections no larger than DB_MAX_CONNECTIONS";
    pub(crate) const RATE: &str = "a positive number of requests per second, e.g. 2";
    pub(crate) const ENDPOINT: &str = "a comma-separated list of absolute http:// URLs, \
         e.g. http://127.0.0.1:8000/health,http://127.0.0.1:8000/api/chat";
    pub(crate) const ENDPOINT_HTTPS: &str = "an http:// URL (the load generator does not speak \
         https yet), e.g. http://127.0.0.1:8000/health";
    pub(crate) const ENDPOINTS_NEEDED: &str = "at least one http:// URL to benchmark when \
         ENABLE_BENCHMARKING is on, e.g. http://127.0.0.1:8000/health";
}

/// Builds a [`PerfConfig`] in code. Setters take typed values; everything
/// is checked in [`build`](Self::build), which names the setting by its
/// environment variable.
///
/// ```
/// use perf_runtime::config::PerfConfig;
///
/// let err = PerfConfig::builder().max_async_workers(0).build().unwrap_err();
/// assert_eq!(err.to_string(), "MAX_ASYNC_WORKERS=\"0\": expected a positive integer");
///
/// let err = PerfConfig::builder().redis_url("http://cache:6379").build().unwrap_err();
/// assert!(err.to_string().starts_with("REDIS_URL=\"http://cache:6379\": expected a redis://"));
/// ```
#[derive(Clone, Default)]
#[must_use]
pub struct PerfConfigBuilder {
    config: PerfConfig,
    redis_url: Option<String>,
    redis_host: Option<String>,
    redis_port: Option<u16>,
    redis_db: Option<u16>,
    database_url: Option<String>,
    benchmark_endpoints: Vec<String>,
}

impl std::fmt::Debug for PerfConfigBuilder {
    /// The raw URLs are kept unchecked until `build`: each is shown as an
    /// error would show it, with its password masked (or hidden whole when
    /// it does not parse), so a debug log of a builder leaks nothing.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |raw: &Option<String>| raw.as_deref().map(shown_value);
        f.debug_struct("PerfConfigBuilder")
            .field("config", &self.config)
            .field("redis_url", &shown(&self.redis_url))
            .field("redis_host", &self.redis_host)
            .field("redis_port", &self.redis_port)
            .field("redis_db", &self.redis_db)
            .field("database_url", &shown(&self.database_url))
            .field(
                "benchmark_endpoints",
                &self
                    .benchmark_endpoints
                    .iter()
                    .map(|raw| shown_value(raw))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty;)*) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: $ty) -> Self {
                self.config.$name = value;
                self
            }
        )*
    };
}

impl PerfConfigBuilder {
    /// `REDIS_URL`: `redis://[user:password@]host:port/db` or `rediss://`. Wins over `redis_host`.
    pub fn redis_url(mut self, url: impl Into<String>) -> Self {
        self.redis_url = Some(url.into());
        self
    }

    /// `REDIS_HOST`: connect to Redis on this host (with `redis_port` and `redis_db`).
    pub fn redis_host(mut self, host: impl Into<String>) -> Self {
        self.redis_host = Some(host.into());
        self
    }

    /// `REDIS_PORT` (default 6379), used with `redis_host`.
    pub fn redis_port(mut self, port: u16) -> Self {
        self.redis_port = Some(port);
        self
    }

    /// `REDIS_DB` (default 0), used with `redis_host`.
    pub fn redis_db(mut self, db: u16) -> Self {
        self.redis_db = Some(db);
        self
    }

    /// `DATABASE_URL`: `postgres://user:password@host:port/db`.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.database_url = Some(url.into());
        self
    }

    /// `BENCHMARK_ENDPOINTS`: the `http://` URLs the self-benchmark loads,
    /// replacing any given before; checked in `build`.
    pub fn benchmark_endpoints<I>(mut self, urls: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.benchmark_endpoints = urls.into_iter().map(Into::into).collect();
        self
    }

    /// Adds one URL to `BENCHMARK_ENDPOINTS`.
    pub fn benchmark_endpoint(mut self, url: impl Into<String>) -> Self {
        self.benchmark_endpoints.push(url.into());
        self
    }

    setters! {
        /// `DB_MAX_CONNECTIONS`: PostgreSQL pool size (positive).
        db_max_connections: u32;
        /// `DB_MIN_CONNECTIONS`: connections kept open when idle (at most `db_max_connections`).
        db_min_connections: u32;
        /// `DB_ACQUIRE_TIMEOUT`: longest wait for a pooled connection (positive).
        db_acquire_timeout: Duration;
        /// `DB_QUERY_TIMEOUT`: longest a query may run once it has a connection (positive).
        db_query_timeout: Duration;
        /// `DB_IDLE_TIMEOUT`: an idle connection above the minimum is closed after this (positive).
        db_idle_timeout: Duration;
        /// `DB_MAX_LIFETIME`: a connection is replaced after this (positive).
        db_max_lifetime: Duration;
        /// `DB_PGBOUNCER`: PgBouncer in transaction mode sits in front of the
        /// database (also switched on by `?pgbouncer=true` in the URL).
        db_pgbouncer: bool;
        /// `HTTP_MAX_CONNECTIONS`: cap on outbound HTTP connections (positive).
        http_max_connections: u32;
        /// `REDIS_MAX_CONNECTIONS`: cap on Redis connections (positive).
        redis_max_connections: u32;
        /// `MONITORING_INTERVAL`: period of health checks and process metrics (at least a second).
        monitoring_interval: Duration;
        /// `ENABLE_PROMETHEUS`: install the Prometheus recorder in `init`.
        enable_prometheus: bool;
        /// `MAX_ASYNC_WORKERS`: background job workers (positive).
        max_async_workers: u32;
        /// `MIN_ASYNC_WORKERS`: with a value from 1 to `max_async_workers`,
        /// the worker count follows the queues' depth between the two; 0
        /// (the default) keeps it at `max_async_workers`.
        min_async_workers: u32;
        /// `JOB_STORE`: `memory` (default), `redis` or `postgres`.
        job_store: super::JobStoreKind;
        /// `RESPONSE_TIME_THRESHOLD`: slowest acceptable response.
        response_time_threshold: Duration;
        /// `ERROR_RATE_THRESHOLD`: percent of calls (0–100).
        error_rate_threshold: f64;
        /// `MEMORY_THRESHOLD`: percent of memory (0–100).
        memory_threshold: f64;
        /// `CPU_THRESHOLD`: percent of CPU (0–100).
        cpu_threshold: f64;
        /// `ENABLE_BENCHMARKING`: periodic self-benchmark.
        enable_benchmarking: bool;
        /// `AUTO_BENCHMARK_INTERVAL`: pause between self-benchmark rounds (at least a second).
        auto_benchmark_interval: Duration;
        /// `BENCHMARK_RATE`: requests per second of the self-benchmark (finite, above 0).
        benchmark_rate: f64;
        /// `BENCHMARK_DURATION`: how long each endpoint is loaded per round (at least a second).
        benchmark_duration: Duration;
        /// Multi-level caching on or off.
        enable_advanced_caching: bool;
        /// Connections to Redis and PostgreSQL on or off.
        enable_connection_pooling: bool;
        /// The monitoring loop on or off.
        enable_monitoring: bool;
        /// Background jobs on or off.
        enable_async_processing: bool;
        /// Buckets (seconds) of every `*_seconds` histogram without its own.
        latency_buckets: Vec<f64>;
        /// How long one health check may take before it counts as down.
        health_check_timeout: Duration;
    }

    /// Buckets for one histogram by its full name (e.g.
    /// `perf_function_duration_seconds`), overriding `latency_buckets`.
    pub fn metric_buckets(mut self, metric: impl Into<String>, buckets: Vec<f64>) -> Self {
        self.config.metric_buckets.push((metric.into(), buckets));
        self
    }

    /// Checks every setting and returns the configuration.
    ///
    /// # Errors
    /// The first setting out of range, named by its environment variable.
    pub fn build(self) -> Result<PerfConfig, ConfigError> {
        let mut config = self.config;
        config.redis = redis_target(
            self.redis_url,
            self.redis_host,
            self.redis_port,
            self.redis_db,
        )?;
        config.database = match self.database_url {
            Some(raw) => Some(parse_url(
                "DATABASE_URL",
                &raw,
                &["postgres", "postgresql"],
                expected::DATABASE_URL,
            )?),
            None => None,
        };
        if config
            .database
            .as_ref()
            .is_some_and(|url| url.query_flag("pgbouncer"))
        {
            config.db_pgbouncer = true;
        }
        for (variable, value) in [
            ("DB_MAX_CONNECTIONS", config.db_max_connections),
            ("HTTP_MAX_CONNECTIONS", config.http_max_connections),
            ("REDIS_MAX_CONNECTIONS", config.redis_max_connections),
            ("MAX_ASYNC_WORKERS", config.max_async_workers),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(
                    variable,
                    "0",
                    expected::POSITIVE_INTEGER,
                ));
            }
        }
        for (variable, value) in [
            ("MONITORING_INTERVAL", config.monitoring_interval),
            ("AUTO_BENCHMARK_INTERVAL", config.auto_benchmark_interval),
            ("BENCHMARK_DURATION", config.benchmark_duration),
        ] {
            if value < Duration::from_secs(1) {
                let shown = value.as_secs_f64().to_string();
                return Err(ConfigError::invalid(variable, &shown, expected::SECONDS));
            }
        }
        if config.min_async_workers > config.max_async_workers {
            return Err(ConfigError::invalid(
                "MIN_ASYNC_WORKERS",
                &config.min_async_workers.to_string(),
                expected::MIN_WORKERS,
            ));
        }
        if config.db_min_connections > config.db_max_connections {
            return Err(ConfigError::invalid(
                "DB_MIN_CONNECTIONS",
                &config.db_min_connections.to_string(),
                expected::MIN_CONNECTIONS,
            ));
        }
        for (variable, value) in [
            ("DB_ACQUIRE_TIMEOUT", config.db_acquire_timeout),
            ("DB_QUERY_TIMEOUT", config.db_query_timeout),
            ("DB_IDLE_TIMEOUT", config.db_idle_timeout),
            ("DB_MAX_LIFETIME", config.db_max_lifetime),
        ] {
            if value.is_zero() {
                return Err(ConfigError::invalid(variable, "0", expected::SECONDS));
            }
        }
        if config.response_time_threshold.is_zero() {
            return Err(ConfigError::invalid(
                "RESPONSE_TIME_THRESHOLD",
                "0",
                expected::MILLISECONDS,
            ));
        }
        for (variable, value) in [
            ("ERROR_RATE_THRESHOLD", config.error_rate_threshold),
            ("MEMORY_THRESHOLD", config.memory_threshold),
            ("CPU_THRESHOLD", config.cpu_threshold),
        ] {
            if !(0.0..=100.0).contains(&value) {
                return Err(ConfigError::invalid(
                    variable,
                    &value.to_string(),
                    expected::PERCENT,
                ));
            }
        }
        config.benchmark_endpoints = self
            .benchmark_endpoints
            .iter()
            .map(|raw| benchmark_endpoint(raw))
            .collect::<Result<_, _>>()?;
        if config.enable_benchmarking && config.benchmark_endpoints.is_empty() {
            // Switched on with nothing to load: a mistake, not a quiet no-op.
            return Err(ConfigError::invalid(
                "BENCHMARK_ENDPOINTS",
                "",
                expected::ENDPOINTS_NEEDED,
            ));
        }
        if !(config.benchmark_rate.is_finite() && config.benchmark_rate > 0.0) {
            return Err(ConfigError::invalid(
                "BENCHMARK_RATE",
                &config.benchmark_rate.to_string(),
                expected::RATE,
            ));
        }
        if config.health_check_timeout.is_zero() {
            return Err(ConfigError::invalid(
                "health_check_timeout",
                "0s",
                expected::TIMEOUT,
            ));
        }
        check_buckets("latency_buckets", &config.latency_buckets)?;
        for (_, buckets) in &config.metric_buckets {
            check_buckets("metric_buckets", buckets)?;
        }
        Ok(config)
    }
}

/// `REDIS_URL` wins; otherwise `REDIS_HOST` with its port and database;
/// otherwise no Redis.
fn redis_target(
    url: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    db: Option<u16>,
) -> Result<Option<SecretUrl>, ConfigError> {
    if port == Some(0) {
        return Err(ConfigError::invalid("REDIS_PORT", "0", expected::PORT));
    }
    if let Some(raw) = url {
        return parse_url("REDIS_URL", &raw, &["redis", "rediss"], expected::REDIS_URL).map(Some);
    }
    let Some(host) = host else { return Ok(None) };
    let host_is_valid = !host.is_empty()
        && !host
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '/' | '@' | '?' | '#'));
    if !host_is_valid {
        return Err(ConfigError::invalid("REDIS_HOST", &host, expected::HOST));
    }
    let raw = format!(
        "redis://{host}:{}/{}",
        port.unwrap_or(6379),
        db.unwrap_or(0)
    );
    parse_url("REDIS_HOST", &raw, &["redis"], expected::HOST).map(Some)
}

fn parse_url(
    variable: &'static str,
    raw: &str,
    schemes: &[&str],
    expected: &'static str,
) -> Result<SecretUrl, ConfigError> {
    let url: SecretUrl = raw
        .parse()
        .map_err(|_| ConfigError::invalid(variable, raw, expected))?;
    if !schemes.contains(&url.scheme()) || url.host().is_none() {
        return Err(ConfigError::invalid(variable, raw, expected));
    }
    Ok(url)
}

/// One entry of `BENCHMARK_ENDPOINTS`: an absolute `http://` URL with a
/// host, as the load generator accepts it. The error shows the entry, not
/// the whole list, with any password masked.
fn benchmark_endpoint(raw: &str) -> Result<SecretUrl, ConfigError> {
    let raw = raw.trim();
    let url: SecretUrl = raw
        .parse()
        .map_err(|_| ConfigError::invalid("BENCHMARK_ENDPOINTS", raw, expected::ENDPOINT))?;
    match url.scheme() {
        "http" if url.host().is_some_and(|host| !host.is_empty()) => Ok(url),
        "https" => Err(ConfigError::invalid(
            "BENCHMARK_ENDPOINTS",
            raw,
            expected::ENDPOINT_HTTPS,
        )),
        _ => Err(ConfigError::invalid(
            "BENCHMARK_ENDPOINTS",
            raw,
            expected::ENDPOINT,
        )),
    }
}

fn check_buckets(setting: &'static str, buckets: &[f64]) -> Result<(), ConfigError> {
    let increasing = buckets.windows(2).all(|pair| pair[0] < pair[1]);
    let positive = buckets.iter().all(|b| b.is_finite() && *b > 0.0);
    if buckets.is_empty() || !increasing || !positive {
        return Err(ConfigError::invalid(
            setting,
            &format!("{buckets:?}"),
            expected::BUCKETS,
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_debug_print_of_the_builder_masks_every_password() {
        let builder = PerfConfig::builder()
            .redis_url("redis://app:redis-secret@cache:6379/0")
            .database_url("postgres://app:pg-secret@db/chat")
            .benchmark_endpoint("http://ops:bench-secret@127.0.0.1:8000/health");
        let shown = format!("{builder:?}");
        for secret in ["redis-secret", "pg-secret", "bench-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("redis://app:***@cache:6379/0"), "{shown}");
    }
}
