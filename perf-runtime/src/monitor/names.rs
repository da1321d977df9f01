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
/// Counter: cache lookups by `function`, `tier` (`l1`, `l2`) and `outcome`
/// (`hit`, `miss`, `stale`, `error`, `skipped`).
pub const CACHE_REQUESTS: &str = "perf_cache_requests_total";
/// Histogram: L2 lookup duration in seconds, by `function`.
pub const CACHE_L2_LOOKUP_DURATION: &str = "perf_cache_l2_lookup_duration_seconds";
/// Histogram: L1 lookup duration in seconds, by `function`, sampled (one
/// lookup in 256 per thread: timing every ~100 ns hit would cost a third of it).
pub const CACHE_L1_LOOKUP_DURATION: &str = "perf_cache_l1_lookup_duration_seconds";
/// Counter: L1 entries removed by `function` and `cause` (`expired`, `size`, `explicit`, `replaced`).
pub const CACHE_EVICTIONS: &str = "perf_cache_evictions_total";
/// Gauge: L1 entries by `function`.
pub const CACHE_ENTRIES: &str = "perf_cache_entries";
/// Gauge: estimated bytes of the L1 values by `function` (each value's
/// encoded size where the function has an L2 codec, else its shallow size).
pub const CACHE_BYTES: &str = "perf_cache_bytes";
/// Counter: cold misses of `lock`-ed functions by `function` and `outcome`
/// (`acquired`: computed under the Redis lock; `waited`: served by another
/// instance's value; `timeout`: computed after waiting the whole `lock`).
pub const CACHE_LOCKS: &str = "perf_cache_lock_total";
/// Counter: calls of a cached function whose body ran, by `function`.
pub const CACHE_ORIGIN_CALLS: &str = "perf_cache_origin_calls_total";
/// Counter: L2 values that failed to decode (and were deleted), by `function`.
pub const CACHE_DECODE_ERRORS: &str = "perf_cache_decode_errors_total";
/// Counter: L2 backend failures (timeouts, connection errors), by `function`.
pub const CACHE_BACKEND_ERRORS: &str = "perf_cache_backend_errors_total";
/// Gauge: the current limit of an adaptive concurrency limit, by `limiter`.
pub const CONCURRENCY_LIMIT: &str = "perf_concurrency_limit";
/// Gauge: calls holding a permit of a concurrency limit, by `limiter`.
pub const CONCURRENCY_IN_FLIGHT: &str = "perf_concurrency_in_flight";
/// Counter: calls a concurrency limit refused (full, or waited too long), by `limiter`.
pub const CONCURRENCY_REJECTED: &str = "perf_concurrency_rejected_total";
/// Counter: outbound HTTP attempts (retries included), by `host` and
/// `status_class` (`2xx` … `5xx`, `error`, `timeout`).
pub const HTTP_CLIENT_REQUESTS: &str = "perf_http_client_requests_total";
/// Histogram: outbound HTTP attempt duration to the response headers, in
/// seconds, by `host` and `status_class`.
pub const HTTP_CLIENT_REQUEST_DURATION: &str = "perf_http_client_request_duration_seconds";
/// Counter: outbound HTTP retries made, by `host`.
pub const HTTP_CLIENT_RETRIES: &str = "perf_http_client_retries_total";
/// Counter: retries not made although the failure was transient, by `host`
/// and `reason` (`attempts`, `budget`, `deadline`, `retry_after`).
pub const HTTP_CLIENT_RETRIES_DENIED: &str = "perf_http_client_retries_denied_total";
/// Counter: outbound HTTP calls refused before sending, by `host` and
/// `reason` (`circuit_open`, `rate_limited`, `concurrency_limited`, `deadline`).
pub const HTTP_CLIENT_REJECTED: &str = "perf_http_client_rejected_total";
/// Gauge: circuit breaker state by `host`: 0 closed, 1 half-open, 2 open.
pub const HTTP_CLIENT_BREAKER_STATE: &str = "perf_http_client_breaker_state";
/// Gauge: connections of the Redis pool by `state` (`connected`,
/// `disconnected`).
pub const REDIS_CONNECTIONS: &str = "perf_redis_connections";
/// Gauge: open connections of the PostgreSQL pool.
pub const DB_POOL_CONNECTIONS: &str = "perf_db_pool_connections";
/// Gauge: idle connections of the PostgreSQL pool.
pub const DB_POOL_IDLE: &str = "perf_db_pool_idle_connections";
/// Gauge: PostgreSQL connections lent to a query right now.
pub const DB_POOL_IN_USE: &str = "perf_db_pool_in_use_connections";
/// Gauge: the PostgreSQL pool's cap (`DB_MAX_CONNECTIONS`).
pub const DB_POOL_MAX: &str = "perf_db_pool_max_connections";
/// Histogram: seconds a query waited for a pooled PostgreSQL connection.
pub const DB_POOL_ACQUIRE_DURATION: &str = "perf_db_pool_acquire_duration_seconds";
/// Counter: queries that got no PostgreSQL connection within `DB_ACQUIRE_TIMEOUT`.
pub const DB_POOL_ACQUIRE_TIMEOUTS: &str = "perf_db_pool_acquire_timeouts_total";
/// Counter: cached queries by `query` (its name) and `outcome` (`miss`: this
/// call asked the database; `hit`: it did not, the result came from the
/// cache or from a concurrent call of the same key).
pub const DB_QUERY_CACHE_REQUESTS: &str = "perf_db_query_cache_requests_total";
/// Counter: jobs stored, by `queue` and `priority`.
pub const JOBS_ENQUEUED: &str = "perf_jobs_enqueued_total";
/// Counter: job attempts started, by `queue` and `priority`.
pub const JOBS_STARTED: &str = "perf_jobs_started_total";
/// Counter: attempts that ended, by `queue`, `priority` and `outcome`
/// (`succeeded`, `retried`, `dead`, `snoozed`, `lease_lost`).
pub const JOBS_FINISHED: &str = "perf_jobs_finished_total";
/// Counter: jobs taken back from a worker whose lease ran out, by `outcome`
/// (`rescued`, `dead`).
pub const JOBS_RESCUED: &str = "perf_jobs_rescued_total";
/// Gauge: jobs per `queue` and `state` (`available`, `scheduled`,
/// `running`, `dead`).
pub const JOBS_QUEUE_DEPTH: &str = "perf_jobs_queue_depth";
/// Histogram: from the time a job could run to its start, by `queue`.
pub const JOBS_WAIT: &str = "perf_jobs_wait_seconds";
/// Histogram: one attempt's run time, by `queue`.
pub const JOBS_RUN: &str = "perf_jobs_run_seconds";
/// Gauge: jobs running in this process.
pub const JOBS_WORKERS_BUSY: &str = "perf_jobs_workers_busy";
/// Gauge: jobs this process may run at once (between `MIN_ASYNC_WORKERS`
/// and `MAX_ASYNC_WORKERS` when scaling).
pub const JOBS_WORKERS_LIMIT: &str = "perf_jobs_workers_limit";
/// Counter: runs of recurring jobs, by schedule and outcome (`enqueued`,
/// `taken` when another process stored the run first, `failed`).
pub const JOBS_RECURRING: &str = "perf_jobs_recurring_total";
/// Gauge: latency of the last self-benchmark run (`ENABLE_BENCHMARKING`),
/// in seconds, by `endpoint` and `percentile` (`p50`, `p95`, `p99`; not
/// `quantile`, which Prometheus keeps for summaries); NaN when the last run
/// got no answer.
pub const SELF_BENCHMARK_LATENCY: &str = "perf_self_benchmark_latency_seconds";
/// Gauge: failed requests over requests sent in the last self-benchmark
/// run, by `endpoint`; 1 when the run could not start.
pub const SELF_BENCHMARK_ERROR_RATIO: &str = "perf_self_benchmark_error_ratio";
/// Gauge: requests per second sent in the last self-benchmark run, by
/// `endpoint`; 0 when it could not start.
pub const SELF_BENCHMARK_REQUESTS_PER_SECOND: &str = "perf_self_benchmark_requests_per_second";
/// Counter: self-benchmark runs by `endpoint` and `outcome` (`ok`: the run
/// went through; `failed`: it could not start, e.g. connection refused).
pub const SELF_BENCHMARK_RUNS: &str = "perf_self_benchmark_runs_total";
