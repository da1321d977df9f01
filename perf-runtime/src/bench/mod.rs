//! The load-testing engine (feature `bench`): HTTP load with correct
//! percentiles, and the same measurement for in-process async functions.
//!
//! - [`BenchmarkConfig`]: target, virtual users, duration, method, payload,
//!   headers, request timeout, think time, ramp-up and an optional constant
//!   rate; checked when built, naming the bad setting.
//! - [`run_benchmark`]: each virtual user a task with its own keep-alive
//!   connection. Without a rate the model is *closed* (users loop); with one
//!   it is *open*: requests are due on a fixed schedule and their latency is
//!   counted from the due time, so a stalled server shows in the
//!   percentiles instead of silently slowing the load down (coordinated
//!   omission, which wrk2 corrects the same way). Requests that could not
//!   be sent on time are reported as `late`, or `dropped` when no user was
//!   free before the period ended.
//! - [`run_fn`]: `concurrency` tasks calling an async function in a loop.
//! - [`BenchmarkReport`]: counts, requests/s, HDR-histogram percentiles
//!   (p50 … p99.9, max), status codes, error kinds, and the same per
//!   one-second window; JSON with a versioned schema ([`SCHEMA_VERSION`]).
//!
//! - Streamed answers (server-sent events): time to first token, time per
//!   output token, tokens/s, streams that ended properly
//!   ([`StreamingSummary`]).
//! - [`Progress`]: live figures of a running benchmark.
//! - [`run_stress_test`]: users stepped up until p95 or the error rate
//!   breaks; the last sustainable step and the knee ([`StressReport`]).
//! - [`run_endurance`]: a long run in windows, the target's memory sampled
//!   from its `/metrics`, drift flagged ([`EnduranceReport`]).
//! - [`Threshold`] (`p95<500ms`), [`compare_with_baseline`], [`analyze`]:
//!   pass/fail for CI, regressions, findings with recommendations.
//! - [`render_html`]: one self-contained page with SVG charts.
//!
//! Why per-user histograms: recording stays lock-free on the hot path; the
//! histograms are merged when the run ends (and per window as users move
//! from one second to the next). See `docs/bench.md` for what is measured,
//! the two models and the JSON schema.
//!
//! ```no_run
//! # async fn demo() -> Result<(), perf_runtime::bench::BenchError> {
//! use std::time::Duration;
//! use perf_runtime::bench::{BenchmarkConfig, run_benchmark};
//!
//! let config = BenchmarkConfig::builder("chat", "http://127.0.0.1:8000/api/chat")
//!     .concurrent_users(100)
//!     .duration(Duration::from_secs(30))
//!     .ramp_up(Duration::from_secs(5))
//!     .rate(2000.0) // open model; leave out for closed
//!     .build()?;
//! let report = run_benchmark(config).await?;
//! println!("p99 {:?}, dropped {}", report.latency.p99(), report.dropped);
//! std::fs::write("run.json", report.to_json()).expect("writable");
//! # Ok(())
//! # }
//! ```

mod analysis;
mod baseline;
mod charts;
mod config;
mod conn;
mod endurance;
mod error;
mod function;
mod histogram;
mod html;
mod progress;
mod recorder;
mod report;
mod run;
mod schedule;
mod selfbench;
mod sse;
mod streaming;
mod stress;
mod target_metrics;
mod threshold;
mod window;
mod wire;

pub use analysis::{AnalysisInput, Finding, Severity, analyze};
pub use baseline::{BaselineComparison, MetricChange, compare_with_baseline};
pub use charts::{
    CHART_WIDTH, latency_histogram_svg, latency_over_time_svg, memory_svg, stress_curve_svg,
    throughput_over_time_svg,
};
pub use config::{BenchmarkConfig, BenchmarkConfigBuilder, DEFAULT_REQUEST_TIMEOUT};
pub use endurance::{
    DEFAULT_DRIFT_TOLERANCE, DRIFT_ERROR_RATE_FLOOR, Drift, ENDURANCE_SCHEMA_VERSION,
    EndurancePlan, EnduranceReport, MIN_DRIFT_WINDOWS, MemorySample, run_endurance,
};
pub use error::{BenchError, BoxError};
pub use function::{CallOutcome, run_fn};
pub use histogram::{LatencyBucket, LatencySummary};
pub use html::{HtmlReport, render_html};
pub use progress::{Phase, Progress, ProgressSnapshot};
pub use report::{
    BenchmarkReport, ErrorCounts, LoadModel, RunSettings, SCHEMA_VERSION, TargetKind,
};
pub use run::{LATE_AFTER, run_benchmark, run_benchmark_with_progress};
pub(crate) use selfbench::spawn_self_benchmark;
pub use selfbench::{SELF_BENCHMARK_FIRST_ROUND_MAX_DELAY, SELF_BENCHMARK_USERS};
pub use streaming::StreamingSummary;
pub use stress::{
    KNEE_GAIN_FRACTION, STRESS_SCHEMA_VERSION, StopReason, StressPlan, StressReport,
    StressSettings, StressStep, run_stress_plan, run_stress_test,
};
pub use target_metrics::{
    CPU_SECONDS, CacheCounters, RESIDENT_MEMORY, TargetMetrics, metrics_url_for,
    scrape_target_metrics,
};
pub use threshold::{
    Comparison, Threshold, ThresholdMetric, ThresholdResult, default_thresholds,
    evaluate_thresholds,
};
pub use window::{WINDOW, WindowReport};
