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

/// One bucket of a latency distribution: the answers whose latency was
/// above the previous bucket's `upper_us` and at most this one's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LatencyBucket {
    /// The bucket's upper bound, microseconds.
    pub upper_us: u64,
    /// Answers in the bucket.
    pub count: u64,
}

/// Ten bounds per power of ten (the R10 preferred numbers): buckets of
/// equal width on a log axis, the shape a latency histogram is read in.
const R10: [f64; 10] = [1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0, 6.3, 8.0];

/// The upper bounds from 10 µs up to the first that holds `max` (anything
/// faster than 10 µs falls in the first bucket).
fn bucket_bounds(max: u64) -> Vec<u64> {
    let mut bounds = Vec::new();
    let mut decade = 10.0_f64;
    loop {
        for step in R10 {
            // Rounded to whole microseconds: exact from 10 µs up.
            let bound = (step * decade).round() as u64;
            bounds.push(bound);
            if bound >= max {
                return bounds;
            }
        }
        decade *= 10.0;
    }
}

/// `histogram` in log-spaced buckets, from the fastest answer's bucket to
/// the slowest's (empty ones between included, so a gap shows); empty for
/// an empty histogram.
pub(crate) fn distribution(histogram: &Latencies) -> Vec<LatencyBucket> {
    if histogram.is_empty() {
        return Vec::new();
    }
    let bounds = bucket_bounds(histogram.max());
    let mut counts = vec![0_u64; bounds.len()];
    for value in histogram.iter_recorded() {
        // Each recorded value stands for a range of equivalent values
        // (0.1 % wide); its lowest one decides the bucket, so a latency
        // recorded exactly on a bound stays in that bound's bucket.
        let lowest = histogram.lowest_equivalent(value.value_iterated_to());
        let index = bounds.partition_point(|&bound| bound < lowest);
        counts[index.min(bounds.len() - 1)] += value.count_at_value();
    }
    let first = counts.iter().position(|&count| count > 0).unwrap_or(0);
    // `max()` is the top of its equivalent range, which may reach past a
    // bound that its lowest value sits under: drop a trailing empty bucket.
    let last = counts.iter().rposition(|&count| count > 0).unwrap_or(0);
    bounds
        .into_iter()
        .zip(counts)
        .take(last + 1)
        .skip(first)
        .map(|(upper_us, count)| LatencyBucket { upper_us, count })
        .collect()
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

    #[test]
    fn the_distribution_puts_each_answer_in_its_log_bucket_and_adds_up() {
        let mut histogram = new_latencies();
        for (ms, times) in [(1, 10), (2, 5), (100, 1)] {
            for _ in 0..times {
                record(&mut histogram, Duration::from_millis(ms));
            }
        }
        let buckets = distribution(&histogram);
        assert_eq!(buckets.iter().map(|b| b.count).sum::<u64>(), 16);
        // 1 ms lands at or just under its bound (1000 µs, within 0.1 %),
        // 2 ms in the 2000 µs bucket, 100 ms in the last.
        let count_at = |upper: u64| {
            buckets
                .iter()
                .find(|b| b.upper_us == upper)
                .map(|b| b.count)
        };
        assert_eq!(buckets.first().map(|b| b.upper_us), Some(1000));
        assert_eq!(count_at(1000), Some(10));
        assert_eq!(count_at(2000), Some(5));
        assert_eq!(
            buckets.last(),
            Some(&LatencyBucket {
                upper_us: 100_000,
                count: 1
            })
        );
        // The empty buckets between are there: ten per power of ten.
        assert_eq!(buckets.len(), 21);
        assert!(distribution(&new_latencies()).is_empty());
    }
}
