//! The pool's figures: how long queries wait for a connection, how often
//! they give up, and (at each render or monitoring tick) how many
//! connections are open, idle and in use.

use std::time::Duration;

use sqlx::PgPool;

use crate::monitor::names;

/// Records one wait for a connection; `timed_out` also counts a timeout.
pub(super) fn record_acquire(waited: Duration, timed_out: bool) {
    metrics::histogram!(names::DB_POOL_ACQUIRE_DURATION).record(waited.as_secs_f64());
    if timed_out {
        metrics::counter!(names::DB_POOL_ACQUIRE_TIMEOUTS).increment(1);
    }
}

/// The pool's connections at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct PoolStatus {
    /// Open connections.
    pub size: u32,
    /// Open connections no query holds.
    pub idle: u32,
    /// Connections lent to a query.
    pub in_use: u32,
    /// The cap (`DB_MAX_CONNECTIONS`).
    pub max: u32,
}

impl PoolStatus {
    pub(super) fn of(pool: &PgPool, max: u32) -> Self {
        let size = pool.size();
        // Read after `size`: a connection opened in between shows as idle
        // rather than as a negative in-use count.
        let idle = u32::try_from(pool.num_idle()).unwrap_or(u32::MAX).min(size);
        PoolStatus {
            size,
            idle,
            in_use: size - idle,
            max,
        }
    }

    /// Sets the size, idle, in-use and cap gauges.
    pub(super) fn publish(self) {
        metrics::gauge!(names::DB_POOL_CONNECTIONS).set(f64::from(self.size));
        metrics::gauge!(names::DB_POOL_IDLE).set(f64::from(self.idle));
        metrics::gauge!(names::DB_POOL_IN_USE).set(f64::from(self.in_use));
        metrics::gauge!(names::DB_POOL_MAX).set(f64::from(self.max));
    }
}
