//! Reading [`PerfConfig`](super::PerfConfig) from environment variables.
//! Text is parsed here; ranges are checked once, by the builder.

use std::str::FromStr;
use std::time::Duration;

use super::ConfigError;
use super::builder::{PerfConfigBuilder, expected};

/// The variables read, in the order they are checked.
pub const VARIABLES: &[&str] = &[
    "REDIS_URL",
    "REDIS_HOST",
    "REDIS_PORT",
    "REDIS_DB",
    "DATABASE_URL",
    "DB_MAX_CONNECTIONS",
    "DB_MIN_CONNECTIONS",
    "DB_ACQUIRE_TIMEOUT",
    "DB_QUERY_TIMEOUT",
    "DB_IDLE_TIMEOUT",
    "DB_MAX_LIFETIME",
    "DB_PGBOUNCER",
    "HTTP_MAX_CONNECTIONS",
    "REDIS_MAX_CONNECTIONS",
    "MONITORING_INTERVAL",
    "ENABLE_PROMETHEUS",
    "MAX_ASYNC_WORKERS",
    "MIN_ASYNC_WORKERS",
    "JOB_STORE",
    "RESPONSE_TIME_THRESHOLD",
    "ERROR_RATE_THRESHOLD",
    "MEMORY_THRESHOLD",
    "CPU_THRESHOLD",
    "ENABLE_BENCHMARKING",
    "AUTO_BENCHMARK_INTERVAL",
    "BENCHMARK_ENDPOINTS",
    "BENCHMARK_RATE",
    "BENCHMARK_DURATION",
];

pub(super) fn read(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<PerfConfigBuilder, ConfigError> {
    let env = Env(lookup);
    let mut builder = PerfConfigBuilder::default();
    if let Some(url) = env.text("REDIS_URL") {
        builder = builder.redis_url(url);
    }
    if let Some(host) = env.text("REDIS_HOST") {
        builder = builder.redis_host(host);
    }
    if let Some(port) = env.number::<u16>("REDIS_PORT", expected::PORT)? {
        builder = builder.redis_port(port);
    }
    if let Some(db) = env.number::<u16>("REDIS_DB", expected::REDIS_DB)? {
        builder = builder.redis_db(db);
    }
    if let Some(url) = env.text("DATABASE_URL") {
        builder = builder.database_url(url);
    }
    if let Some(n) = env.number("DB_MAX_CONNECTIONS", expected::POSITIVE_INTEGER)? {
        builder = builder.db_max_connections(n);
    }
    if let Some(n) = env.number("DB_MIN_CONNECTIONS", expected::MIN_CONNECTIONS)? {
        builder = builder.db_min_connections(n);
    }
    if let Some(limit) = env.seconds("DB_ACQUIRE_TIMEOUT")? {
        builder = builder.db_acquire_timeout(limit);
    }
    if let Some(limit) = env.seconds("DB_QUERY_TIMEOUT")? {
        builder = builder.db_query_timeout(limit);
    }
    if let Some(limit) = env.seconds("DB_IDLE_TIMEOUT")? {
        builder = builder.db_idle_timeout(limit);
    }
    if let Some(limit) = env.seconds("DB_MAX_LIFETIME")? {
        builder = builder.db_max_lifetime(limit);
    }
    if let Some(on) = env.boolean("DB_PGBOUNCER")? {
        builder = builder.db_pgbouncer(on);
    }
    if let Some(n) = env.number("HTTP_MAX_CONNECTIONS", expected::POSITIVE_INTEGER)? {
        builder = builder.http_max_connections(n);
    }
    if let Some(n) = env.number("REDIS_MAX_CONNECTIONS", expected::POSITIVE_INTEGER)? {
        builder = builder.redis_max_connections(n);
    }
    if let Some(period) = env.seconds("MONITORING_INTERVAL")? {
        builder = builder.monitoring_interval(period);
    }
    if let Some(on) = env.boolean("ENABLE_PROMETHEUS")? {
        builder = builder.enable_prometheus(on);
    }
    if let Some(n) = env.number("MAX_ASYNC_WORKERS", expected::POSITIVE_INTEGER)? {
        builder = builder.max_async_workers(n);
    }
    if let Some(n) = env.number("MIN_ASYNC_WORKERS", expected::MIN_WORKERS)? {
        builder = builder.min_async_workers(n);
    }
    if let Some(kind) = env.number("JOB_STORE", expected::JOB_STORE)? {
        builder = builder.job_store(kind);
    }
    if let Some(limit) = env.milliseconds("RESPONSE_TIME_THRESHOLD")? {
        builder = builder.response_time_threshold(limit);
    }
    if let Some(percent) = env.percent("ERROR_RATE_THRESHOLD")? {
        builder = builder.error_rate_threshold(percent);
    }
    if let Some(percent) = env.percent("MEMORY_THRESHOLD")? {
        builder = builder.memory_threshold(percent);
    }
    if let Some(percent) = env.percent("CPU_THRESHOLD")? {
        builder = builder.cpu_threshold(percent);
    }
    if let Some(on) = env.boolean("ENABLE_BENCHMARKING")? {
        builder = builder.enable_benchmarking(on);
    }
    if let Some(period) = env.seconds("AUTO_BENCHMARK_INTERVAL")? {
        builder = builder.auto_benchmark_interval(period);
    }
    if let Some(list) = env.text("BENCHMARK_ENDPOINTS") {
        // Checked by the builder, entry by entry; empty entries (a trailing
        // comma) are skipped.
        builder = builder.benchmark_endpoints(
            list.split(',')
                .map(str::trim)
                .filter(|entry| !entry.is_empty()),
        );
    }
    if let Some(rate) = env.number::<f64>("BENCHMARK_RATE", expected::RATE)? {
        builder = builder.benchmark_rate(rate);
    }
    if let Some(period) = env.seconds("BENCHMARK_DURATION")? {
        builder = builder.benchmark_duration(period);
    }
    Ok(builder)
}

struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    /// The value with surrounding whitespace removed; an empty value counts
    /// as unset, as shells often export `VAR=` to mean "not configured".
    fn text(&self, variable: &str) -> Option<String> {
        (self.0)(variable)
            .map(|raw| raw.trim().to_owned())
            .filter(|raw| !raw.is_empty())
    }

    fn number<T: FromStr>(
        &self,
        variable: &'static str,
        expected: &'static str,
    ) -> Result<Option<T>, ConfigError> {
        self.text(variable)
            .map(|raw| {
                raw.parse()
                    .map_err(|_| ConfigError::invalid(variable, &raw, expected))
            })
            .transpose()
    }

    fn seconds(&self, variable: &'static str) -> Result<Option<Duration>, ConfigError> {
        Ok(self
            .number::<u64>(variable, expected::SECONDS)?
            .map(Duration::from_secs))
    }

    fn milliseconds(&self, variable: &'static str) -> Result<Option<Duration>, ConfigError> {
        let Some(raw) = self.text(variable) else {
            return Ok(None);
        };
        match raw.parse::<f64>() {
            Ok(ms) if ms.is_finite() && ms > 0.0 && ms < 1e12 => {
                Ok(Some(Duration::from_secs_f64(ms / 1000.0)))
            }
            _ => Err(ConfigError::invalid(variable, &raw, expected::MILLISECONDS)),
        }
    }

    fn percent(&self, variable: &'static str) -> Result<Option<f64>, ConfigError> {
        let Some(raw) = self.text(variable) else {
            return Ok(None);
        };
        match raw.parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(Some(p)),
            _ => Err(ConfigError::invalid(variable, &raw, expected::PERCENT)),
        }
    }

    fn boolean(&self, variable: &'static str) -> Result<Option<bool>, ConfigError> {
        let Some(raw) = self.text(variable) else {
            return Ok(None);
        };
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(Some(true)),
            "false" | "0" | "no" | "off" => Ok(Some(false)),
            _ => Err(ConfigError::invalid(variable, &raw, expected::BOOLEAN)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use crate::config::PerfConfig;

    fn from(vars: &[(&str, &str)]) -> Result<PerfConfig, String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        PerfConfig::from_lookup(|name| map.get(name).cloned()).map_err(|e| e.to_string())
    }

    fn error(variable: &str, value: &str) -> String {
        from(&[(variable, value)]).expect_err(&format!("{variable}={value} should be refused"))
    }

    #[test]
    fn empty_environment_is_the_embedded_default() {
        let config = from(&[]).unwrap();
        assert!(config.redis.is_none());
        assert!(config.database.is_none());
        assert_eq!(config.db_max_connections, 50);
        assert_eq!(config.db_min_connections, 0);
        assert_eq!(config.db_acquire_timeout, Duration::from_secs(3));
        assert_eq!(config.db_idle_timeout, Duration::from_secs(600));
        assert_eq!(config.db_max_lifetime, Duration::from_secs(1800));
        assert!(!config.db_pgbouncer);
        assert_eq!(config.http_max_connections, 200);
        assert_eq!(config.redis_max_connections, 100);
        assert_eq!(config.monitoring_interval, Duration::from_secs(60));
        assert!(config.enable_prometheus);
        assert_eq!(config.max_async_workers, 100);
        assert_eq!(config.response_time_threshold, Duration::from_millis(500));
        assert_eq!(config.error_rate_threshold, 1.0);
        assert_eq!(config.memory_threshold, 80.0);
        assert_eq!(config.cpu_threshold, 70.0);
        assert!(!config.enable_benchmarking);
        assert_eq!(config.auto_benchmark_interval, Duration::from_secs(3600));
        assert!(config.benchmark_endpoints.is_empty());
        assert_eq!(config.benchmark_rate, 2.0);
        assert_eq!(config.benchmark_duration, Duration::from_secs(10));
    }

    #[test]
    fn every_variable_is_read() {
        let config = from(&[
            ("REDIS_HOST", "cache.internal"),
            ("REDIS_PORT", "6380"),
            ("REDIS_DB", "3"),
            ("DATABASE_URL", "postgres://app:pw@db:5432/chat"),
            ("DB_MAX_CONNECTIONS", "10"),
            ("DB_MIN_CONNECTIONS", "2"),
            ("DB_ACQUIRE_TIMEOUT", "5"),
            ("DB_IDLE_TIMEOUT", "120"),
            ("DB_MAX_LIFETIME", "900"),
            ("DB_PGBOUNCER", "on"),
            ("HTTP_MAX_CONNECTIONS", "20"),
            ("REDIS_MAX_CONNECTIONS", "30"),
            ("MONITORING_INTERVAL", "15"),
            ("ENABLE_PROMETHEUS", "false"),
            ("MAX_ASYNC_WORKERS", "4"),
            ("JOB_STORE", "Postgres"),
            ("RESPONSE_TIME_THRESHOLD", "250.5"),
            ("ERROR_RATE_THRESHOLD", "0.5"),
            ("MEMORY_THRESHOLD", "90"),
            ("CPU_THRESHOLD", "60.0"),
            ("ENABLE_BENCHMARKING", "yes"),
            ("AUTO_BENCHMARK_INTERVAL", "600"),
            (
                "BENCHMARK_ENDPOINTS",
                " http://127.0.0.1:8000/health , http://app:8000/api/chat?key=k,",
            ),
            ("BENCHMARK_RATE", "0.5"),
            ("BENCHMARK_DURATION", "30"),
        ])
        .unwrap();
        assert_eq!(
            config.redis.unwrap().expose(),
            "redis://cache.internal:6380/3"
        );
        assert_eq!(
            config.database.unwrap().expose(),
            "postgres://app:pw@db:5432/chat"
        );
        assert_eq!(config.db_max_connections, 10);
        assert_eq!(config.db_min_connections, 2);
        assert_eq!(config.db_acquire_timeout, Duration::from_secs(5));
        assert_eq!(config.db_idle_timeout, Duration::from_secs(120));
        assert_eq!(config.db_max_lifetime, Duration::from_secs(900));
        assert!(config.db_pgbouncer);
        assert_eq!(config.http_max_connections, 20);
        assert_eq!(config.redis_max_connections, 30);
        assert_eq!(config.monitoring_interval, Duration::from_secs(15));
        assert!(!config.enable_prometheus);
        assert_eq!(config.max_async_workers, 4);
        assert_eq!(config.job_store, super::super::JobStoreKind::Postgres);
        assert_eq!(
            config.response_time_threshold,
            Duration::from_micros(250_500)
        );
        assert_eq!(config.error_rate_threshold, 0.5);
        assert_eq!(config.memory_threshold, 90.0);
        assert_eq!(config.cpu_threshold, 60.0);
        assert!(config.enable_benchmarking);
        assert_eq!(config.auto_benchmark_interval, Duration::from_secs(600));
        let endpoints: Vec<&str> = config
            .benchmark_endpoints
            .iter()
            .map(|url| url.expose())
            .collect();
        assert_eq!(
            endpoints,
            [
                "http://127.0.0.1:8000/health",
                "http://app:8000/api/chat?key=k"
            ]
        );
        assert_eq!(config.benchmark_rate, 0.5);
        assert_eq!(config.benchmark_duration, Duration::from_secs(30));
    }

    #[test]
    fn redis_url_wins_over_host() {
        let config = from(&[
            ("REDIS_URL", "rediss://u:pw@secure:6390/1"),
            ("REDIS_HOST", "ignored"),
        ])
        .unwrap();
        assert_eq!(
            config.redis.unwrap().expose(),
            "rediss://u:pw@secure:6390/1"
        );
        let config = from(&[("REDIS_HOST", "10.0.0.5")]).unwrap();
        assert_eq!(config.redis.unwrap().expose(), "redis://10.0.0.5:6379/0");
    }

    #[test]
    fn blank_values_count_as_unset() {
        let config = from(&[("REDIS_HOST", "  "), ("MAX_ASYNC_WORKERS", "")]).unwrap();
        assert!(config.redis.is_none());
        assert_eq!(config.max_async_workers, 100);
    }

    #[test]
    fn bad_values_name_variable_value_and_form() {
        let cases: &[(&str, &str, &str)] = &[
            ("MAX_ASYNC_WORKERS", "ten", "expected a positive integer"),
            ("MAX_ASYNC_WORKERS", "0", "expected a positive integer"),
            ("MAX_ASYNC_WORKERS", "-3", "expected a positive integer"),
            ("DB_MAX_CONNECTIONS", "many", "expected a positive integer"),
            ("DB_MAX_CONNECTIONS", "0", "expected a positive integer"),
            ("HTTP_MAX_CONNECTIONS", "1.5", "expected a positive integer"),
            (
                "DB_MIN_CONNECTIONS",
                "few",
                "expected a number of connections no larger than DB_MAX_CONNECTIONS",
            ),
            (
                "DB_MIN_CONNECTIONS",
                "51",
                "expected a number of connections no larger than DB_MAX_CONNECTIONS",
            ),
            (
                "DB_ACQUIRE_TIMEOUT",
                "3s",
                "expected a positive whole number of seconds",
            ),
            (
                "DB_ACQUIRE_TIMEOUT",
                "0",
                "expected a positive whole number of seconds",
            ),
            (
                "DB_IDLE_TIMEOUT",
                "-1",
                "expected a positive whole number of seconds",
            ),
            (
                "DB_MAX_LIFETIME",
                "0",
                "expected a positive whole number of seconds",
            ),
            ("DB_PGBOUNCER", "maybe", "expected true or false"),
            ("JOB_STORE", "mongodb", "expected memory, redis or postgres"),
            ("REDIS_MAX_CONNECTIONS", "0", "expected a positive integer"),
            (
                "REDIS_PORT",
                "70000",
                "expected a port number from 1 to 65535",
            ),
            ("REDIS_PORT", "0", "expected a port number from 1 to 65535"),
            ("REDIS_DB", "x", "expected a database index from 0 to 65535"),
            (
                "REDIS_HOST",
                "bad host",
                "expected a host name or IP address",
            ),
            (
                "REDIS_URL",
                "http://cache:6379",
                "expected a redis:// or rediss:// URL",
            ),
            (
                "REDIS_URL",
                "localhost:6379",
                "expected a redis:// or rediss:// URL",
            ),
            (
                "DATABASE_URL",
                "mysql://db/app",
                "expected a postgres:// URL",
            ),
            (
                "MONITORING_INTERVAL",
                "1m",
                "expected a positive whole number of seconds",
            ),
            (
                "MONITORING_INTERVAL",
                "0",
                "expected a positive whole number of seconds",
            ),
            (
                "AUTO_BENCHMARK_INTERVAL",
                "soon",
                "expected a positive whole number of seconds",
            ),
            ("ENABLE_PROMETHEUS", "maybe", "expected true or false"),
            ("ENABLE_BENCHMARKING", "2", "expected true or false"),
            (
                "RESPONSE_TIME_THRESHOLD",
                "fast",
                "expected a positive number of milliseconds",
            ),
            (
                "RESPONSE_TIME_THRESHOLD",
                "0",
                "expected a positive number of milliseconds",
            ),
            (
                "ERROR_RATE_THRESHOLD",
                "101",
                "expected a percentage from 0 to 100",
            ),
            (
                "MEMORY_THRESHOLD",
                "eighty",
                "expected a percentage from 0 to 100",
            ),
            ("CPU_THRESHOLD", "-1", "expected a percentage from 0 to 100"),
            (
                "BENCHMARK_RATE",
                "fast",
                "expected a positive number of requests per second",
            ),
            (
                "BENCHMARK_RATE",
                "0",
                "expected a positive number of requests per second",
            ),
            (
                "BENCHMARK_RATE",
                "inf",
                "expected a positive number of requests per second",
            ),
            (
                "BENCHMARK_DURATION",
                "10s",
                "expected a positive whole number of seconds",
            ),
            (
                "BENCHMARK_DURATION",
                "0",
                "expected a positive whole number of seconds",
            ),
            (
                "BENCHMARK_ENDPOINTS",
                "localhost:8000/health",
                "expected a comma-separated list of absolute http:// URLs",
            ),
            (
                "BENCHMARK_ENDPOINTS",
                "ftp://files/x",
                "expected a comma-separated list of absolute http:// URLs",
            ),
            (
                "BENCHMARK_ENDPOINTS",
                "https://app/health",
                "expected an http:// URL (the load generator does not speak https yet)",
            ),
        ];
        for (variable, value, form) in cases {
            let message = error(variable, value);
            assert_eq!(
                message,
                format!("{variable}=\"{value}\": {form}{}", rest_of(&message, form)),
                "for {variable}={value}"
            );
        }
        assert_eq!(
            error("MAX_ASYNC_WORKERS", "ten"),
            "MAX_ASYNC_WORKERS=\"ten\": expected a positive integer"
        );
    }

    #[test]
    fn a_bad_benchmark_endpoint_is_named_alone_with_its_password_masked() {
        let message = from(&[(
            "BENCHMARK_ENDPOINTS",
            "http://app.internal:9000/ok, ftp://ops:hunter2@files/x",
        )])
        .unwrap_err();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(
            !message.contains("app.internal"),
            "only the bad entry: {message}"
        );
        assert!(
            message.starts_with("BENCHMARK_ENDPOINTS=\"ftp://ops:***@files/x\""),
            "{message}"
        );
        assert!(
            message
                .contains("expected a comma-separated list of absolute http:// URLs, e.g. http://")
        );
        let message = from(&[("BENCHMARK_ENDPOINTS", "http://u:hunter2@/x")]).unwrap_err();
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.starts_with("BENCHMARK_ENDPOINTS="), "{message}");
    }

    #[test]
    fn benchmarking_on_needs_endpoints() {
        let message = from(&[("ENABLE_BENCHMARKING", "true")]).unwrap_err();
        assert_eq!(
            message,
            "BENCHMARK_ENDPOINTS=\"\": expected at least one http:// URL to benchmark when \
             ENABLE_BENCHMARKING is on, e.g. http://127.0.0.1:8000/health"
        );
        // A trailing comma alone is still no endpoint.
        let message = from(&[
            ("ENABLE_BENCHMARKING", "true"),
            ("BENCHMARK_ENDPOINTS", " , "),
        ])
        .unwrap_err();
        assert!(message.starts_with("BENCHMARK_ENDPOINTS=\"\""), "{message}");
        // Endpoints without ENABLE_BENCHMARKING are kept, and nothing runs.
        let config = from(&[("BENCHMARK_ENDPOINTS", "http://127.0.0.1:8000/")]).unwrap();
        assert!(!config.enable_benchmarking);
        assert_eq!(config.benchmark_endpoints.len(), 1);
    }

    #[test]
    fn benchmark_settings_in_code_are_checked_like_the_environment() {
        let error = PerfConfig::builder()
            .benchmark_rate(f64::NAN)
            .build()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "BENCHMARK_RATE=\"NaN\": expected a positive number of requests per second, e.g. 2"
        );
        let error = PerfConfig::builder()
            .benchmark_duration(Duration::from_millis(500))
            .build()
            .unwrap_err();
        assert!(
            error.to_string().starts_with("BENCHMARK_DURATION=\"0.5\""),
            "{error}"
        );
        let config = PerfConfig::builder()
            .enable_benchmarking(true)
            .benchmark_endpoint("http://127.0.0.1:1/a")
            .benchmark_endpoint("http://127.0.0.1:2/b")
            .build()
            .unwrap();
        assert_eq!(config.benchmark_endpoints.len(), 2);
    }

    #[test]
    fn pool_minimum_is_checked_against_the_maximum() {
        let config = from(&[("DB_MAX_CONNECTIONS", "4"), ("DB_MIN_CONNECTIONS", "4")]).unwrap();
        assert_eq!(config.db_min_connections, 4);
        let message =
            from(&[("DB_MAX_CONNECTIONS", "4"), ("DB_MIN_CONNECTIONS", "5")]).unwrap_err();
        assert_eq!(
            message,
            "DB_MIN_CONNECTIONS=\"5\": expected a number of connections no larger than DB_MAX_CONNECTIONS"
        );
    }

    #[test]
    fn worker_floor_is_checked_against_the_maximum() {
        let config = from(&[("MAX_ASYNC_WORKERS", "8"), ("MIN_ASYNC_WORKERS", "2")]).unwrap();
        assert_eq!((config.min_async_workers, config.max_async_workers), (2, 8));
        let message = from(&[("MAX_ASYNC_WORKERS", "8"), ("MIN_ASYNC_WORKERS", "9")]).unwrap_err();
        assert_eq!(
            message,
            "MIN_ASYNC_WORKERS=\"9\": expected a number of workers no larger than MAX_ASYNC_WORKERS (0: always MAX_ASYNC_WORKERS)"
        );
    }

    #[test]
    fn pgbouncer_is_detected_from_the_url() {
        let config = from(&[(
            "DATABASE_URL",
            "postgres://app:pw@bouncer:6432/chat?pgbouncer=true",
        )])
        .unwrap();
        assert!(config.db_pgbouncer);
        let config = from(&[(
            "DATABASE_URL",
            "postgres://app:pw@db:5432/chat?pgbouncer=false",
        )])
        .unwrap();
        assert!(!config.db_pgbouncer);
        let config = from(&[("DATABASE_URL", "postgres://app:pw@db:5432/chat")]).unwrap();
        assert!(!config.db_pgbouncer);
    }

    /// The example that follows the expected form (", e.g. ...") if any.
    fn rest_of<'a>(message: &'a str, form: &str) -> &'a str {
        message.split_once(form).map_or("", |(_, rest)| rest)
    }

    #[test]
    fn passwords_never_show_in_errors() {
        let message = error("DATABASE_URL", "mysql://app:hunter2@db/app");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("app:***@db"), "{message}");
        let message = error("REDIS_URL", "redis//app:hunter2@cache");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn reports_show_durations_with_their_unit() {
        let json =
            serde_json::to_value(from(&[("RESPONSE_TIME_THRESHOLD", "250")]).unwrap()).unwrap();
        assert_eq!(json["monitoring_interval_seconds"], 60.0);
        assert_eq!(json["auto_benchmark_interval_seconds"], 3600.0);
        assert_eq!(json["response_time_threshold_ms"], 250.0);
        assert_eq!(json["health_check_timeout_seconds"], 2.0);
        assert_eq!(json["benchmark_duration_seconds"], 10.0);
        assert_eq!(json["benchmark_rate_per_second"], 2.0);
    }

    #[test]
    fn passwords_never_show_in_debug() {
        let config = from(&[
            ("REDIS_URL", "redis://:hunter2@cache:6379/0"),
            ("DATABASE_URL", "postgres://app:hunter3@db/app"),
            (
                "BENCHMARK_ENDPOINTS",
                "http://bench:hunter4@app:8000/health",
            ),
        ])
        .unwrap();
        let debug = format!("{config:?}");
        for secret in ["hunter2", "hunter3", "hunter4"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        let json = serde_json::to_string(&config).unwrap();
        for secret in ["hunter2", "hunter3", "hunter4"] {
            assert!(!json.contains(secret), "{json}");
        }
        assert!(json.contains("http://bench:***@app:8000/health"), "{json}");
    }
}
