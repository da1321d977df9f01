//! The open model's schedule: when request number `k` of the run is due.
//!
//! At a constant `rate`, request `k` is due at `k / rate`. With a ramp-up of
//! `T`, the rate rises linearly from 0 over `T`, so the number of requests
//! due by `t` is `rate·t²/(2T)`, and request `k` is due at `√(2Tk/rate)`;
//! after `T` the rate is constant. Users take the next request in order
//! when they are free, so a request is sent at its due time or, when every
//! user is busy, later: its latency is still counted from the due time.

use std::time::Duration;

/// Due times of an open-model run.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Schedule {
    rate: f64,
    ramp: f64,
}

impl Schedule {
    /// `rate` requests per second (finite, above 0) after a linear ramp-up
    /// over `ramp`.
    pub(crate) fn new(rate: f64, ramp: Duration) -> Schedule {
        Schedule {
            rate,
            ramp: ramp.as_secs_f64(),
        }
    }

    /// When request `k` (from 0) is due, from the run's start.
    pub(crate) fn due(&self, k: u64) -> Duration {
        let k = k as f64;
        let during_ramp = self.rate * self.ramp / 2.0;
        let seconds = if k < during_ramp {
            (2.0 * self.ramp * k / self.rate).sqrt()
        } else {
            self.ramp + (k - during_ramp) / self.rate
        };
        Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX)
    }

    /// How many requests are due in `[from, to)`: exactly those a user
    /// compares with the same bounds, since both use [`due`](Self::due).
    pub(crate) fn due_between(&self, from: Duration, to: Duration) -> u64 {
        self.first_due_at_or_after(to) - self.first_due_at_or_after(from)
    }

    /// The smallest `k` due at or after `at` (`due` never decreases).
    fn first_due_at_or_after(&self, at: Duration) -> u64 {
        let mut high = 1u64;
        while self.due(high) < at {
            high = high.saturating_mul(2);
        }
        let mut low = 0u64;
        while low < high {
            let middle = low + (high - low) / 2;
            if self.due(middle) < at {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        low
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_rate_is_evenly_spaced() {
        let schedule = Schedule::new(100.0, Duration::ZERO);
        assert_eq!(schedule.due(0), Duration::ZERO);
        assert_eq!(schedule.due(1), Duration::from_millis(10));
        assert_eq!(schedule.due(150), Duration::from_millis(1500));
        let second = Duration::from_secs(1);
        assert_eq!(schedule.due_between(Duration::ZERO, second), 100);
        assert_eq!(schedule.due_between(second, second * 3), 200);
    }

    #[test]
    fn a_ramp_rises_linearly_then_holds_the_rate() {
        let schedule = Schedule::new(100.0, Duration::from_secs(2));
        // Half the full rate's requests are due during a linear ramp.
        let ramp = Duration::from_secs(2);
        assert_eq!(schedule.due_between(Duration::ZERO, ramp), 100);
        assert_eq!(schedule.due(100), ramp);
        // The first second of the ramp holds a quarter of its requests.
        assert_eq!(
            schedule.due_between(Duration::ZERO, Duration::from_secs(1)),
            25
        );
        // After it, the full rate.
        assert_eq!(
            schedule.due_between(ramp, ramp + Duration::from_secs(3)),
            300
        );
        let mut previous = Duration::ZERO;
        for k in 0..1000 {
            let due = schedule.due(k);
            assert!(due >= previous, "due times never go back");
            previous = due;
        }
    }
}
