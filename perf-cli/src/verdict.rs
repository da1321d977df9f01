//! The verdict on a run: the thresholds given on the command line, the
//! comparison with a baseline report, and the engine's findings. Only the
//! first two decide the exit status; findings are advice.

use std::path::Path;
use std::time::Duration;

use perf_runtime::bench::{
    AnalysisInput, BaselineComparison, BenchmarkReport, Finding, TargetMetrics, Threshold,
    ThresholdResult, analyze, compare_with_baseline, evaluate_thresholds, metrics_url_for,
    scrape_target_metrics,
};

use crate::failure::Failure;
use crate::output::read_report;

/// How long a /metrics read may take before the cache figures are left out.
const METRICS_TIMEOUT: Duration = Duration::from_secs(5);

/// What was judged.
pub(crate) struct Verdict {
    pub(crate) thresholds: Vec<ThresholdResult>,
    pub(crate) baseline: Option<BaselineComparison>,
    pub(crate) findings: Vec<Finding>,
}

impl Verdict {
    /// Judges `report` against `thresholds`, the report at `baseline` (if
    /// any) within `tolerance`, with the target's metrics over the run.
    pub(crate) fn of(
        report: &BenchmarkReport,
        thresholds: &[Threshold],
        baseline: Option<&Path>,
        tolerance: f64,
        target_metrics: Option<&TargetMetrics>,
    ) -> Result<Verdict, Failure> {
        let thresholds = evaluate_thresholds(thresholds, report);
        let baseline = match baseline {
            Some(path) => Some(compare_with_baseline(
                &read_report(path)?,
                report,
                tolerance,
            )),
            None => None,
        };
        let findings = analyze(&AnalysisInput {
            report,
            thresholds: &thresholds,
            target_metrics,
        });
        Ok(Verdict {
            thresholds,
            baseline,
            findings,
        })
    }

    /// Every threshold held and nothing regressed against the baseline.
    pub(crate) fn passed(&self) -> bool {
        self.thresholds.iter().all(|result| result.passed)
            && self
                .baseline
                .as_ref()
                .is_none_or(|comparison| comparison.regressions == 0)
    }
}

/// Reads the target's /metrics before a run, so that the counters' growth
/// over the run can be taken after it. `None` when `--metrics none`, or
/// when the target has no /metrics (most servers not built on perf).
pub(crate) struct MetricsProbe {
    url: String,
    before: TargetMetrics,
}

impl MetricsProbe {
    /// `choice` is the `--metrics` argument.
    pub(crate) async fn before(target_url: &str, choice: Option<&str>) -> Option<MetricsProbe> {
        let url = match choice {
            Some("none") => return None,
            Some(url) => url.to_owned(),
            None => metrics_url_for(target_url)?,
        };
        let before = scrape_target_metrics(&url, METRICS_TIMEOUT).await.ok()?;
        Some(MetricsProbe { url, before })
    }

    /// The counters' growth since [`before`](Self::before); `None` if the
    /// second read failed.
    pub(crate) async fn after(self) -> Option<TargetMetrics> {
        let after = scrape_target_metrics(&self.url, METRICS_TIMEOUT)
            .await
            .ok()?;
        Some(after.since(&self.before))
    }
}
