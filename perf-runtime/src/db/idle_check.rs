//! Which idle connections are pinged before they are lent.
//!
//! sqlx can ping every connection it lends (`test_before_acquire`), which
//! puts a round trip in front of every query: on loopback, about as long
//! as a short insert itself (a job enqueued one at a time took 480 µs with
//! it, 220 µs of which were the ping). It is not needed for most
//! connections: sqlx pings each connection when it is handed back, so one
//! in the idle set answered at that moment. Such a connection is pinged
//! again before it is lent only when something may have broken it since:
//! a query on this pool failed after it was handed back (a restart or an
//! outage shows first as such a failure, and then every connection older
//! than it is checked once), or it has been idle for [`IDLE_CHECK`] or
//! more (a proxy or a firewall may have dropped it without a word).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Idle this long, a connection is pinged before it is lent.
pub(crate) const IDLE_CHECK: Duration = Duration::from_secs(10);

/// The pool's last failure, shared by its [`Db`](super::Db) (which records
/// failures) and its `before_acquire` hook (which asks).
#[derive(Debug)]
pub(crate) struct IdleCheck {
    origin: Instant,
    /// Microseconds from `origin` to the last failure, plus one; 0 for none.
    last_failure: AtomicU64,
}

impl IdleCheck {
    pub(crate) fn new() -> Self {
        IdleCheck {
            origin: Instant::now(),
            last_failure: AtomicU64::new(0),
        }
    }

    fn micros_since_origin(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_micros()).unwrap_or(u64::MAX)
    }

    /// A query or a connection attempt on the pool failed now.
    pub(crate) fn failed(&self) {
        let now = self.micros_since_origin(Instant::now()).saturating_add(1);
        self.last_failure.fetch_max(now, Ordering::Relaxed);
    }

    /// Whether a connection idle for `idle_for` is to be pinged before it
    /// is lent.
    pub(crate) fn needs_ping(&self, idle_for: Duration) -> bool {
        if idle_for >= IDLE_CHECK {
            return true;
        }
        let last_failure = self.last_failure.load(Ordering::Relaxed);
        if last_failure == 0 {
            return false;
        }
        let now = Instant::now();
        let handed_back = now.checked_sub(idle_for).unwrap_or(self.origin);
        // Handed back before (or at) the failure: not known to be alive
        // since.
        self.micros_since_origin(handed_back) < last_failure
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_connections_idle_since_before_a_failure_or_for_long_are_pinged() {
        let check = IdleCheck::new();
        assert!(!check.needs_ping(Duration::ZERO), "no failure yet");
        assert!(
            !check.needs_ping(Duration::from_millis(1)),
            "no failure yet"
        );
        assert!(check.needs_ping(IDLE_CHECK), "idle for long");

        std::thread::sleep(Duration::from_millis(5));
        check.failed();
        assert!(
            check.needs_ping(Duration::from_millis(4)),
            "handed back before the failure"
        );
        std::thread::sleep(Duration::from_millis(5));
        assert!(
            !check.needs_ping(Duration::from_millis(1)),
            "handed back after the failure"
        );
    }
}
