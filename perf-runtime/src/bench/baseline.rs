//! Comparison of a run against a saved baseline run, for CI: did p95 get
//! worse by more than the tolerance since the last release?
//!
//! [`compare_with_baseline`] compares p50, p95, p99, max, the error rate and
//! requests per second. Latencies and errors are worse when higher,
//! requests per second when lower. Runs of another target, model or load
//! are still compared (a renamed route should not break CI), with a
//! warning saying what differs.

use serde::{Deserialize, Serialize};

use super::report::BenchmarkReport;
use super::threshold::{human_latency, human_percent};

/// One figure of the baseline next to the same figure of the current run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MetricChange {
    /// `p50`, `p95`, `p99`, `max`, `error_rate` or `requests_per_second`.
    pub metric: String,
    /// The baseline's figure, in `unit`.
    pub baseline: f64,
    /// The current run's figure, in `unit`.
    pub current: f64,
    /// `(current - baseline) / baseline`: 0.25 is 25 % higher. From a
    /// baseline of 0 (no errors before) the relative change is undefined:
    /// it is 0 when the current figure is 0 too, else 1 (counted as +100 %).
    pub change: f64,
    /// Worse than the baseline by more than the tolerance (for the error
    /// rate, also any error where the baseline had none).
    pub regressed: bool,
    /// `ms` for latencies, `%` for the error rate, `req/s` for throughput.
    pub unit: String,
    /// Whether a higher figure is better (only requests per second).
    pub higher_is_better: bool,
}

/// A run compared with a baseline run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BaselineComparison {
    /// One entry per compared figure, in a fixed order.
    pub changes: Vec<MetricChange>,
    /// How many of `changes` regressed.
    pub regressions: usize,
    /// The tolerance used, a fraction (0.1: 10 % worse is still fine).
    pub tolerance: f64,
    /// The baseline run's name and start time, to say what was compared.
    pub baseline_name: String,
    /// When the baseline ran, RFC 3339.
    pub baseline_started_at: String,
    /// What makes the two runs hard to compare: another target, model,
    /// load, or a run without answers.
    pub warnings: Vec<String>,
}

impl BaselineComparison {
    /// The changes that regressed.
    pub fn regressed(&self) -> impl Iterator<Item = &MetricChange> {
        self.changes.iter().filter(|change| change.regressed)
    }
}

impl MetricChange {
    /// `p95 20.1ms -> 31.0ms (+54.2%)`, for a summary line.
    pub fn describe(&self) -> String {
        let show = |value: f64| match self.unit.as_str() {
            "ms" => human_latency(value * 1e3),
            "%" => human_percent(value),
            _ => format!("{value:.1} {}", self.unit),
        };
        format!(
            "{} {} -> {} ({:+.1}%)",
            self.metric,
            show(self.baseline),
            show(self.current),
            self.change * 100.0
        )
    }
}

/// Compares `current` with `baseline`. `tolerance` is a fraction: with 0.1
/// a figure may get 10 % worse before it counts as regressed (a negative or
/// NaN tolerance counts as 0).
pub fn compare_with_baseline(
    baseline: &BenchmarkReport,
    current: &BenchmarkReport,
    tolerance: f64,
) -> BaselineComparison {
    let tolerance = if tolerance.is_nan() {
        0.0
    } else {
        tolerance.max(0.0)
    };
    let mut warnings = differences(baseline, current);
    let baseline_answered = baseline.latency.count > 0;
    let current_answered = current.latency.count > 0;
    if !baseline_answered {
        warnings.push(
            "the baseline run measured no latency (no request got an answer): \
             latencies are not compared"
                .to_owned(),
        );
    } else if !current_answered {
        warnings.push(
            "this run measured no latency (no request got an answer): \
             every latency counts as regressed"
                .to_owned(),
        );
    }

    let latencies = [
        ("p50", baseline.latency.p50_us, current.latency.p50_us),
        ("p95", baseline.latency.p95_us, current.latency.p95_us),
        ("p99", baseline.latency.p99_us, current.latency.p99_us),
        ("max", baseline.latency.max_us, current.latency.max_us),
    ];
    let mut changes: Vec<MetricChange> = latencies
        .into_iter()
        .map(|(metric, before, now)| {
            let (before, now) = (before as f64 / 1e3, now as f64 / 1e3);
            let change = relative(before, now);
            let regressed = baseline_answered && (!current_answered || change > tolerance);
            MetricChange {
                metric: metric.to_owned(),
                baseline: before,
                current: now,
                change,
                regressed,
                unit: "ms".to_owned(),
                higher_is_better: false,
            }
        })
        .collect();

    let (before, now) = (baseline.error_rate() * 100.0, current.error_rate() * 100.0);
    let change = relative(before, now);
    changes.push(MetricChange {
        metric: "error_rate".to_owned(),
        baseline: before,
        current: now,
        change,
        regressed: (before == 0.0 && now > 0.0) || change > tolerance,
        unit: "%".to_owned(),
        higher_is_better: false,
    });

    let (before, now) = (baseline.requests_per_second, current.requests_per_second);
    let change = relative(before, now);
    changes.push(MetricChange {
        metric: "requests_per_second".to_owned(),
        baseline: before,
        current: now,
        change,
        regressed: change < -tolerance,
        unit: "req/s".to_owned(),
        higher_is_better: true,
    });

    BaselineComparison {
        regressions: changes.iter().filter(|change| change.regressed).count(),
        changes,
        tolerance,
        baseline_name: baseline.name.clone(),
        baseline_started_at: baseline.started_at.clone(),
        warnings,
    }
}

/// `(now - before) / before`, defined from 0 (see [`MetricChange::change`]).
fn relative(before: f64, now: f64) -> f64 {
    if before == 0.0 {
        if now == 0.0 { 0.0 } else { now.signum() }
    } else {
        (now - before) / before
    }
}

/// What differs between the two runs besides their figures.
fn differences(baseline: &BenchmarkReport, current: &BenchmarkReport) -> Vec<String> {
    let mut warnings = Vec::new();
    if baseline.target != current.target {
        warnings.push(format!(
            "the baseline ran against {}, this run against {}",
            baseline.target, current.target
        ));
    }
    if baseline.kind != current.kind {
        warnings.push(format!(
            "the baseline loaded {:?}, this run {:?}",
            baseline.kind, current.kind
        ));
    }
    if baseline.model != current.model {
        warnings.push(format!(
            "the baseline used the {} model, this run the {} model: latencies are measured \
             differently (the open model counts from when a request was due)",
            model_name(baseline),
            model_name(current)
        ));
    }
    let (before, now) = (&baseline.settings, &current.settings);
    if before.users != now.users {
        warnings.push(format!(
            "the baseline ran {} users, this run {}",
            before.users, now.users
        ));
    }
    if before.rate_per_second != now.rate_per_second {
        let rate = |rate: Option<f64>| rate.map_or("no rate".to_owned(), |r| format!("{r}/s"));
        warnings.push(format!(
            "the baseline's rate was {}, this run's {}",
            rate(before.rate_per_second),
            rate(now.rate_per_second)
        ));
    }
    if before.method != now.method {
        warnings.push(format!(
            "the baseline sent {}, this run {}",
            before.method.as_deref().unwrap_or("no method"),
            now.method.as_deref().unwrap_or("no method")
        ));
    }
    if before.think_time_ms != now.think_time_ms {
        warnings.push(format!(
            "the baseline's think time was {} ms, this run's {} ms",
            before.think_time_ms, now.think_time_ms
        ));
    }
    warnings
}

fn model_name(report: &BenchmarkReport) -> &'static str {
    match report.model {
        super::report::LoadModel::Open => "open",
        _ => "closed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::analysis::fixtures::report;
    use crate::bench::report::LoadModel;

    fn run(p50_ms: u64, p95_ms: u64, errors: u64, rps: f64) -> BenchmarkReport {
        let mut report = report();
        report.requests = 1000;
        report.successes = 1000 - errors;
        report.errors.http_status = errors;
        report.requests_per_second = rps;
        report.latency.count = 1000 - errors;
        report.latency.p50_us = p50_ms * 1000;
        report.latency.p95_us = p95_ms * 1000;
        report.latency.p99_us = p95_ms * 1500;
        report.latency.max_us = p95_ms * 2000;
        report
    }

    fn change<'a>(comparison: &'a BaselineComparison, metric: &str) -> &'a MetricChange {
        comparison
            .changes
            .iter()
            .find(|change| change.metric == metric)
            .unwrap_or_else(|| panic!("no {metric} in {comparison:?}"))
    }

    #[test]
    fn a_slower_run_regresses_beyond_the_tolerance_only() {
        let baseline = run(10, 100, 0, 500.0);
        // p95 +15 %, p50 +5 %, rps -5 %: with 10 % tolerance only p95
        // (and p99, max, which follow it) regress.
        let current = run(10, 115, 0, 475.0);
        let mut current = current;
        current.latency.p50_us = 10_500;
        let comparison = compare_with_baseline(&baseline, &current, 0.1);
        let metrics: Vec<&str> = comparison
            .changes
            .iter()
            .map(|c| c.metric.as_str())
            .collect();
        assert_eq!(
            metrics,
            [
                "p50",
                "p95",
                "p99",
                "max",
                "error_rate",
                "requests_per_second"
            ]
        );
        let p95 = change(&comparison, "p95");
        assert_eq!((p95.baseline, p95.current), (100.0, 115.0));
        assert!((p95.change - 0.15).abs() < 1e-12, "{p95:?}");
        assert!(p95.regressed);
        assert_eq!(p95.describe(), "p95 100.0ms -> 115.0ms (+15.0%)");
        let p50 = change(&comparison, "p50");
        assert!((p50.change - 0.05).abs() < 1e-12 && !p50.regressed);
        let rps = change(&comparison, "requests_per_second");
        assert!((rps.change + 0.05).abs() < 1e-12 && !rps.regressed);
        assert!(rps.higher_is_better);
        assert_eq!(comparison.regressions, 3);
        assert_eq!(
            comparison
                .regressed()
                .map(|c| c.metric.as_str())
                .collect::<Vec<_>>(),
            ["p95", "p99", "max"]
        );
        assert!(comparison.warnings.is_empty(), "{:?}", comparison.warnings);

        // A looser tolerance lets the same run pass; a faster run never regresses.
        assert_eq!(
            compare_with_baseline(&baseline, &current, 0.2).regressions,
            0
        );
        assert_eq!(
            compare_with_baseline(&current, &baseline, 0.0).regressions,
            0
        );
    }

    #[test]
    fn throughput_regresses_when_it_falls() {
        let baseline = run(10, 100, 0, 500.0);
        let comparison = compare_with_baseline(&baseline, &run(10, 100, 0, 400.0), 0.1);
        let rps = change(&comparison, "requests_per_second");
        assert!((rps.change + 0.2).abs() < 1e-12);
        assert!(rps.regressed);
        assert_eq!(comparison.regressions, 1);
        // A rise is no regression, however large.
        let faster = compare_with_baseline(&baseline, &run(10, 100, 0, 5000.0), 0.1);
        assert_eq!(faster.regressions, 0);
    }

    #[test]
    fn errors_appearing_from_none_regress_whatever_the_tolerance() {
        let baseline = run(10, 100, 0, 500.0);
        let comparison = compare_with_baseline(&baseline, &run(10, 100, 1, 500.0), 10.0);
        let errors = change(&comparison, "error_rate");
        assert_eq!((errors.baseline, errors.current), (0.0, 0.1));
        assert_eq!(errors.change, 1.0);
        assert!(errors.regressed);
        assert_eq!(comparison.regressions, 1);
        // None before, none now: no change at all.
        let clean = compare_with_baseline(&baseline, &baseline, 0.0);
        assert_eq!(change(&clean, "error_rate").change, 0.0);
        assert_eq!(clean.regressions, 0);
        // 1 -> 3 errors in 1000: +200 %.
        let worse = compare_with_baseline(&run(10, 100, 1, 500.0), &run(10, 100, 3, 500.0), 0.5);
        let errors = change(&worse, "error_rate");
        assert!((errors.change - 2.0).abs() < 1e-9 && errors.regressed);
        // Errors going away is an improvement (-100 %).
        let better = compare_with_baseline(&run(10, 100, 3, 500.0), &baseline, 0.0);
        assert_eq!(change(&better, "error_rate").change, -1.0);
        assert_eq!(better.regressions, 0);
    }

    #[test]
    fn a_run_without_answers_regresses_and_a_baseline_without_them_is_not_compared() {
        let baseline = run(10, 100, 0, 500.0);
        let mut dead = run(10, 100, 0, 500.0);
        dead.latency = Default::default();
        let comparison = compare_with_baseline(&baseline, &dead, 0.1);
        assert!(
            change(&comparison, "p95").regressed,
            "-100 % is no improvement here"
        );
        assert!(
            comparison
                .warnings
                .iter()
                .any(|w| w.contains("this run measured no latency"))
        );
        let reverse = compare_with_baseline(&dead, &baseline, 0.1);
        assert!(!change(&reverse, "p95").regressed);
        assert!(
            reverse
                .warnings
                .iter()
                .any(|w| w.contains("baseline run measured no latency"))
        );
    }

    #[test]
    fn runs_of_another_target_or_model_are_compared_with_warnings() {
        let baseline = run(10, 100, 0, 500.0);
        let mut current = run(10, 100, 0, 500.0);
        current.target = "http://127.0.0.1:9000/api/v2/chat".to_owned();
        current.model = LoadModel::Open;
        current.settings.rate_per_second = Some(500.0);
        current.settings.users = baseline.settings.users + 10;
        let comparison = compare_with_baseline(&baseline, &current, 0.1);
        assert_eq!(comparison.changes.len(), 6);
        assert_eq!(comparison.regressions, 0);
        let warnings = comparison.warnings.join("\n");
        assert!(warnings.contains("/api/v2/chat"), "{warnings}");
        assert!(warnings.contains("open model"), "{warnings}");
        assert!(warnings.contains("users"), "{warnings}");
        assert!(warnings.contains("500/s"), "{warnings}");
        assert_eq!(comparison.warnings.len(), 4, "{warnings}");
        // Serialises and reads back.
        let json = serde_json::to_string(&comparison).unwrap();
        let back: BaselineComparison = serde_json::from_str(&json).unwrap();
        assert_eq!(back, comparison);
    }

    #[test]
    fn the_tolerance_is_never_negative() {
        let baseline = run(10, 100, 0, 500.0);
        // A negative tolerance would call an unchanged run a regression.
        for tolerance in [-1.0, f64::NAN] {
            let comparison = compare_with_baseline(&baseline, &baseline, tolerance);
            assert_eq!(comparison.regressions, 0);
            assert_eq!(comparison.tolerance, 0.0);
        }
    }
}
