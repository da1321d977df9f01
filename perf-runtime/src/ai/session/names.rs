//! Metric names of the session store, and their descriptions. Labels are
//! bounded: `tier` (l1, l2), `outcome` (hit, miss), `form` (raw,
//! compressed), `kind` (read, write, remove); never a session id.

pub(super) const READS: &str = "perf_ai_session_reads_total";
pub(super) const MESSAGES: &str = "perf_ai_session_messages";
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(super) const BYTES: &str = "perf_ai_session_bytes";
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(super) const COMPRESSION_RATIO: &str = "perf_ai_session_compression_ratio";
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(super) const BACKEND_ERRORS: &str = "perf_ai_session_backend_errors_total";
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(super) const CONFLICTS: &str = "perf_ai_session_conflicts_total";
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(super) const DECODE_ERRORS: &str = "perf_ai_session_decode_errors_total";

/// Describes the metrics once per process.
pub(super) fn describe() {
    static DESCRIBED: std::sync::Once = std::sync::Once::new();
    DESCRIBED.call_once(|| {
        metrics::describe_counter!(
            READS,
            "Session reads by tier (l1, l2) and outcome (hit, miss)."
        );
        metrics::describe_histogram!(
            MESSAGES,
            "Messages a session holds after a write (an append)."
        );
        metrics::describe_histogram!(
            BYTES,
            metrics::Unit::Bytes,
            "Size of each session written to Redis, by form: raw (postcard) or compressed (LZ4, as stored)."
        );
        metrics::describe_histogram!(
            COMPRESSION_RATIO,
            "Raw over stored size of each session written to Redis."
        );
        metrics::describe_counter!(
            BACKEND_ERRORS,
            "Redis commands of the session store that failed or timed out, by kind (read, write, remove); the store went on in process."
        );
        metrics::describe_counter!(
            CONFLICTS,
            "Session writes that found another writer's version in Redis and merged with it."
        );
        metrics::describe_counter!(
            DECODE_ERRORS,
            "Sessions in Redis that could not be read (corrupt or of another format) and were deleted."
        );
    });
}
