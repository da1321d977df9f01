//! [`Throttle`]: a warning logged at most once every 10 s, with how many
//! were left out since, so that a backend outage does not flood the logs.

use std::sync::atomic::{AtomicU64, Ordering};

/// How often a throttled warning may be logged.
const EVERY_MS: u64 = 10_000;

/// One warning's throttle: keep it in a `static` at the place that logs.
pub(crate) struct Throttle {
    last_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl Throttle {
    pub(crate) const fn new() -> Self {
        Throttle {
            last_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(left out since the last one)` when this call may log; `None`
    /// (and counted) when one was logged less than 10 s ago.
    pub(crate) fn admit(&self) -> Option<u64> {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        let last = self.last_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) >= EVERY_MS
            && self
                .last_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_warning_then_counted_silence() {
        let throttle = Throttle::new();
        assert_eq!(throttle.admit(), Some(0));
        assert_eq!(throttle.admit(), None);
        assert_eq!(throttle.admit(), None);
        assert_eq!(throttle.suppressed.load(Ordering::Relaxed), 2);
    }
}
