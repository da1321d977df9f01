//! How the limit moves: AIMD and gradient, after Netflix's
//! concurrency-limits (`AIMDLimit`, `Gradient2Limit`).
//!
//! Both see one [`Sample`] per released permit and return the new limit as a
//! float (the published limit is its floor), so small steps such as the
//! gradient's smoothed growth add up instead of rounding away.

use std::time::Duration;

use super::Outcome;

/// How a [`ConcurrencyLimit`](super::ConcurrencyLimit) adapts its limit.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Algorithm {
    /// Additive increase, multiplicative decrease against a fixed latency
    /// threshold: simple and predictable when the healthy latency is known.
    Aimd(Aimd),
    /// Compares short-term latency with a learned long-term baseline: needs
    /// no threshold, shrinks as soon as latency rises above what was normal.
    Gradient(Gradient),
}

impl Default for Algorithm {
    fn default() -> Self {
        Algorithm::Gradient(Gradient::default())
    }
}

/// AIMD settings.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Aimd {
    /// Added to the limit after a success that was fast enough (default 1).
    pub increase_by: f64,
    /// Multiplies the limit after a drop or a slow success (default 0.9).
    pub backoff_ratio: f64,
    /// A success slower than this counts as a sign of overload (default 1 s).
    pub latency_threshold: Duration,
}

impl Default for Aimd {
    fn default() -> Self {
        Aimd {
            increase_by: 1.0,
            backoff_ratio: 0.9,
            latency_threshold: Duration::from_secs(1),
        }
    }
}

/// Gradient settings (Netflix's Gradient2 defaults).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Gradient {
    /// How much slower than the baseline latency may get before the limit
    /// shrinks (default 1.5: up to 50% slower is still healthy).
    pub tolerance: f64,
    /// Share of each new estimate blended into the limit (default 0.2).
    pub smoothing: f64,
    /// Samples the long-term baseline averages over (default 600).
    pub baseline_window: u32,
    /// Headroom added on every update so the limit can probe upwards
    /// (default 4).
    pub queue_size: f64,
    /// Multiplies the limit on a dropped outcome (default 0.9).
    pub backoff_ratio: f64,
}

impl Default for Gradient {
    fn default() -> Self {
        Gradient {
            tolerance: 1.5,
            smoothing: 0.2,
            baseline_window: 600,
            queue_size: 4.0,
            backoff_ratio: 0.9,
        }
    }
}

/// One finished call, as the algorithm sees it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    pub(crate) latency: Duration,
    /// Calls in flight when this one started, itself included.
    pub(crate) in_flight: usize,
    pub(crate) outcome: Outcome,
}

/// An algorithm together with what it has learned so far.
#[derive(Debug)]
pub(crate) struct Estimator {
    algorithm: Algorithm,
    /// Exponential average of latency in seconds (gradient only).
    baseline: Option<f64>,
    samples: u64,
}

impl Estimator {
    pub(crate) fn new(algorithm: Algorithm) -> Self {
        Estimator {
            algorithm,
            baseline: None,
            samples: 0,
        }
    }

    /// The limit after `sample`, unclamped; `limit` is the current one.
    pub(crate) fn update(&mut self, limit: f64, sample: Sample) -> f64 {
        if sample.outcome == Outcome::Ignored {
            return limit;
        }
        match &self.algorithm {
            Algorithm::Aimd(aimd) => aimd_update(aimd, limit, sample),
            Algorithm::Gradient(gradient) => {
                let gradient = gradient.clone();
                self.gradient_update(&gradient, limit, sample)
            }
        }
    }

    fn gradient_update(&mut self, settings: &Gradient, limit: f64, sample: Sample) -> f64 {
        if sample.outcome == Outcome::Dropped {
            return limit * settings.backoff_ratio;
        }
        let latency = sample.latency.as_secs_f64().max(1e-6);
        self.samples += 1;
        // A plain mean over the first samples, then an exponential average:
        // the baseline settles quickly, then moves slowly.
        let window = f64::from(settings.baseline_window.max(1));
        let weight = 1.0 / (self.samples as f64).min(window);
        let mut baseline = match self.baseline {
            None => latency,
            Some(baseline) => baseline + (latency - baseline) * weight,
        };
        // After a long slow spell the baseline has crept up; once latency
        // recovers, let it come back down fast rather than over 600 samples.
        if baseline / latency > 2.0 {
            baseline *= 0.95;
        }
        self.baseline = Some(baseline);
        // Limit not reached: latency says nothing about the limit, and
        // growing it would only let a later burst through unchecked.
        if (sample.in_flight as f64) < limit / 2.0 {
            return limit;
        }
        let gradient = (settings.tolerance * baseline / latency).clamp(0.5, 1.0);
        let estimate = limit * gradient + settings.queue_size;
        limit * (1.0 - settings.smoothing) + estimate * settings.smoothing
    }
}

fn aimd_update(aimd: &Aimd, limit: f64, sample: Sample) -> f64 {
    let overloaded = sample.outcome == Outcome::Dropped || sample.latency > aimd.latency_threshold;
    if overloaded {
        limit * aimd.backoff_ratio
    } else if (sample.in_flight as f64) * 2.0 >= limit {
        // Grow only while the limit is actually being used.
        limit + aimd.increase_by
    } else {
        limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(millis: u64, in_flight: usize, outcome: Outcome) -> Sample {
        Sample {
            latency: Duration::from_millis(millis),
            in_flight,
            outcome,
        }
    }

    #[test]
    fn aimd_grows_by_one_per_fast_success_and_backs_off_on_slow_or_dropped() {
        let aimd = Aimd {
            latency_threshold: Duration::from_millis(100),
            ..Aimd::default()
        };
        let mut estimator = Estimator::new(Algorithm::Aimd(aimd));
        let grown = estimator.update(10.0, sample(20, 10, Outcome::Success));
        assert_eq!(grown, 11.0);
        let slow = estimator.update(10.0, sample(150, 10, Outcome::Success));
        assert!((slow - 9.0).abs() < 1e-9, "{slow}");
        let dropped = estimator.update(10.0, sample(1, 10, Outcome::Dropped));
        assert!((dropped - 9.0).abs() < 1e-9, "{dropped}");
        let idle = estimator.update(10.0, sample(20, 2, Outcome::Success));
        assert_eq!(idle, 10.0, "an unused limit does not grow");
        let ignored = estimator.update(10.0, sample(900, 10, Outcome::Ignored));
        assert_eq!(ignored, 10.0);
    }

    #[test]
    fn gradient_grows_while_latency_holds_and_shrinks_when_it_rises() {
        let mut estimator = Estimator::new(Algorithm::Gradient(Gradient::default()));
        let mut limit = 10.0;
        for _ in 0..50 {
            limit = estimator.update(limit, sample(50, limit as usize, Outcome::Success));
        }
        assert!(limit > 40.0, "steady latency grows the limit: {limit}");
        let before = limit;
        for _ in 0..10 {
            limit = estimator.update(limit, sample(200, limit as usize, Outcome::Success));
        }
        assert!(
            limit < before * 0.75,
            "4x latency shrinks the limit: {before} -> {limit}"
        );
    }
}
