//! Latency histograms (`hdrhistogram`, microseconds, 3 significant digits)
//! and [`LatencySummary`], the percentiles a report shows.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// A latency histogram in microseconds. It grows to the largest value
/// recorded, so a short run of fast requests stays small in memory.
pub(crate) type Latencies = Histogram<u64>;

/// An empty histogram: 3 significant digits (0.1 % error), auto-resizing.
pub(crate) fn new_latencies() -> Latencies {
    // Cannot fail: 3 significant digits is within hdrhistogram's 0..=5.
    Histogram::new(3).expect("3 significant digits is a valid precision")
}

/// The largest latency kept as is: an hour. Longer ones are recorded as an
/// hour, so one absurd value cannot grow every histogram it is merged into.
const MAX_MICROS: u64 = 3_600_000_000;

/// Records `latency` in microseconds (at least 1: zero is not a latency).
pub(crate) fn record(histogram: &mut Latencies, latency: Duration) {
    let micros = u64::try_from(latency.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_MICROS);
    // `record` grows the histogram (`saturating_record` would clamp to its
    // current range instead); it only fails if growing overflows `usize`.
    if histogram.record(micros).is_err() {
        histogram.saturating_record(micros);
    }
}

/// Adds `source` into `into`. Both auto-resize, so this cannot overflow
/// their range; a count overflow (2^64 requests) is not reachable.
pub(crate) fn merge(into: &mut Latencies, source: &Latencies) {
    if let Err(error) = into.add(source) {
        tracing::warn!(%error, "latency histogram merge failed; figures may be low");
    }
}

/// The latency percentiles of a set of requests, in microseconds.
///
/// Percentiles are upper bounds within 0.1 %: `p99_us` is a value that at
/// least 99 % of the requests did not exceed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LatencySummary {
    /// Requests whose latency was measured.
    pub count: u64,
    /// The fastest.
    pub min_us: u64,
    /// The arithmetic mean.
    pub mean_us: f64,
    /// The standard deviation.
    pub stdev_us: f64,
    /// The median.
    pub p50_us: u64,
    /// The 90th percentile.
    pub p90_us: u64,
    /// The 95th percentile.
    pub p95_us: u64,
    /// The 99th percentile.
    pub p99_us: u64,
    /// The 99.9th percentile.
    pub p999_us: u64,
    /// The slowest (within 0.1 %).
    pub max_us: u64,
}

impl LatencySummary {
    /// Summarises `histogram`; all zeros when it is empty.
    pub(crate) fn of(histogram: &Latencies) -> LatencySummary {
        if histogram.is_empty() {
            return LatencySummary::default();
        }
        let at = |quantile: f64| histogram.value_at_quantile(quantile);
        LatencySummary {
            count: histogram.len(),
            min_us: histogram.min(),
            mean_us: histogram.mean(),
            stdev_us: histogram.stdev(),
            p50_us: at(0.50),
            p90_us: at(0.90),
            p95_us: at(0.95),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: histogram.max(),
        }
    }

    /// The fastest as a [`Duration`].
    pub fn min(&self) -> Duration {
        Duration::from_micros(self.min_us)
    }

    /// The mean as a [`Duration`].
    pub fn mean(&self) -> Duration {
        Duration::from_secs_f64(self.mean_us / 1e6)
    }

    /// The median as a [`Duration`].
    pub fn p50(&self) -> Duration {
        Duration::from_micros(self.p50_us)
    }

    /// The 90th percentile as a [`Duration`].
    pub fn p90(&self) -> Duration {
        Duration::from_micros(self.p90_us)
    }

    /// The 95th percentile as a [`Duration`].
    pub fn p95(&self) -> Duration {
        Duration::from_micros(self.p95_us)
    }

    /// The 99th percentile as a [`Duration`].
    pub fn p99(&self) -> Duration {
        Duration::from_micros(self.p99_us)
    }

    /// The 99.9th percentile as a [`Duration`].
    pub fn p999(&self) -> Duration {
        Duration::from_micros(self.p999_us)
    }

    /// The slowest as a [`Duration`].
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(range: std::ops::RangeInclusive<u64>) -> Latencies {
        let mut histogram = new_latencies();
        for ms in range {
            record(&mut histogram, Duration::from_millis(ms));
        }
        histogram
    }

    #[test]
    fn merged_user_histograms_equal_one_histogram_of_everything() {
        // Two users, one fast and one slow: the merge must hold both.
        let mut merged = new_latencies();
        merge(&mut merged, &filled(1..=50));
        merge(&mut merged, &filled(51..=100));
        let all = LatencySummary::of(&filled(1..=100));
        let summary = LatencySummary::of(&merged);
        assert_eq!(summary, all);
        assert_eq!(summary.count, 100);
        // Within hdrhistogram's 0.1 %.
        let close = |value: u64, ms: u64| value.abs_diff(ms * 1000) <= ms;
        assert!(close(summary.p50_us, 50), "{summary:?}");
        assert!(close(summary.p90_us, 90), "{summary:?}");
        assert!(close(summary.p99_us, 99), "{summary:?}");
        assert!(close(summary.max_us, 100), "{summary:?}");
        assert!(close(summary.min_us, 1), "{summary:?}");
    }

    #[test]
    fn a_merge_grows_to_the_largest_value() {
        let mut small = filled(1..=2);
        let mut large = new_latencies();
        record(&mut large, Duration::from_secs(600));
        merge(&mut small, &large);
        assert!(LatencySummary::of(&small).max() >= Duration::from_secs(600));
    }

    #[test]
    fn an_empty_histogram_summarises_to_zeros() {
        assert_eq!(
            LatencySummary::of(&new_latencies()),
            LatencySummary::default()
        );
    }
}
