//! The command line: what each subcommand accepts, parsed by clap.
//! Values clap cannot check alone (durations, percentages, thresholds) have
//! parsers here that say what form they expect.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use perf_runtime::bench::Threshold;

/// Load, stress and endurance tests of an HTTP endpoint, with percentiles
/// that stay true when the server stalls, live progress, pass/fail
/// thresholds for CI and a self-contained HTML report.
#[derive(Debug, Parser)]
#[command(name = "perf", version, propagate_version = true)]
#[command(
    after_help = "Exit status: 0 all thresholds held, 1 a threshold or the baseline \
                        comparison failed, 2 bad arguments, 3 the run could not start or a file \
                        could not be read or written."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// A fixed number of users (or a fixed request rate) for a duration.
    Load(LoadArgs),
    /// Users stepped up until the p95 or error-rate limit breaks.
    Stress(StressArgs),
    /// A long run summarised in windows, flagging drift in latency, errors
    /// and the target's memory.
    Endurance(EnduranceArgs),
    /// Reads a JSON report written with --out: prints it, checks thresholds,
    /// compares with a baseline, writes the HTML page.
    Report(ReportArgs),
}

/// What to load and how each request looks.
#[derive(Debug, Args)]
pub(crate) struct TargetArgs {
    /// The endpoint, an http:// URL (e.g. http://127.0.0.1:8000/api/chat).
    pub(crate) url: String,
    /// Virtual users, each with its own keep-alive connection.
    #[arg(
        short = 'c',
        long = "connections",
        visible_alias = "users",
        default_value_t = 10
    )]
    pub(crate) users: usize,
    /// The HTTP method.
    #[arg(short = 'X', long, default_value = "GET")]
    pub(crate) method: String,
    /// A JSON body (checked before the run), sent with content-type
    /// application/json.
    #[arg(long, conflicts_with = "body")]
    pub(crate) json: Option<String>,
    /// A body sent as is.
    #[arg(long)]
    pub(crate) body: Option<String>,
    /// A header, "Name: value"; repeat for more.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub(crate) headers: Vec<String>,
    /// A request without a complete answer by then counts as a timeout.
    #[arg(long, value_parser = duration, default_value = "30s")]
    pub(crate) timeout: Duration,
    /// Users join over this period, which is not measured.
    #[arg(long, value_parser = duration, default_value = "0s")]
    pub(crate) ramp_up: Duration,
    /// A user's pause between an answer and its next request (closed model).
    #[arg(long, value_parser = duration, default_value = "0s")]
    pub(crate) think_time: Duration,
    /// The run's name in reports (default: the subcommand).
    #[arg(long)]
    pub(crate) name: Option<String>,
}

/// Where the results go.
#[derive(Debug, Args)]
pub(crate) struct OutputArgs {
    /// Writes the JSON report here (the input of `perf report` and of --baseline).
    #[arg(short = 'o', long, value_name = "FILE")]
    pub(crate) out: Option<PathBuf>,
    /// Writes the HTML report with charts here.
    #[arg(long, value_name = "FILE")]
    pub(crate) html: Option<PathBuf>,
    /// No live progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub(crate) no_progress: bool,
}

/// How a run is judged.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// A pass/fail condition, e.g. "p95<500ms", "errors<1%", "rps>500";
    /// repeat for more. One broken makes the exit status 1.
    #[arg(short = 't', long = "threshold", value_name = "CONDITION")]
    pub(crate) thresholds: Vec<Threshold>,
    /// A JSON report of an earlier run to compare with; a regression beyond
    /// --tolerance makes the exit status 1.
    #[arg(long, value_name = "FILE")]
    pub(crate) baseline: Option<PathBuf>,
    /// How much worse than the baseline a figure may be, e.g. "10%".
    #[arg(long, value_parser = fraction, default_value = "10%")]
    pub(crate) tolerance: f64,
    /// The target's Prometheus /metrics, read before and after the run (the
    /// cache hit rate; an endurance run's memory). Default: /metrics on the
    /// target's host, left out if it has none; "none" to skip.
    #[arg(long, value_name = "URL")]
    pub(crate) metrics: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// The measured period.
    #[arg(short = 'd', long, value_parser = duration, default_value = "10s")]
    pub(crate) duration: Duration,
    /// Requests per second in total, on a fixed schedule (open model;
    /// latency counted from when each request was due).
    #[arg(short = 'r', long)]
    pub(crate) rate: Option<f64>,
    #[command(flatten)]
    pub(crate) check: CheckArgs,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

#[derive(Debug, Args)]
pub(crate) struct StressArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// Users added at each step (the first step runs --connections users).
    #[arg(long, default_value_t = 10)]
    pub(crate) step: usize,
    /// The last step's users, at most.
    #[arg(long)]
    pub(crate) max_users: usize,
    /// How long each step is measured.
    #[arg(long, value_parser = duration, default_value = "10s")]
    pub(crate) step_duration: Duration,
    /// A step whose p95 is above this breaks the test (default
    /// RESPONSE_TIME_THRESHOLD, 500ms).
    #[arg(long, value_parser = duration)]
    pub(crate) max_p95: Option<Duration>,
    /// A step whose error rate is above this breaks the test (default
    /// ERROR_RATE_THRESHOLD, 1%).
    #[arg(long, value_parser = fraction)]
    pub(crate) max_errors: Option<f64>,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

#[derive(Debug, Args)]
pub(crate) struct EnduranceArgs {
    #[command(flatten)]
    pub(crate) target: TargetArgs,
    /// The measured period.
    #[arg(short = 'd', long, value_parser = duration)]
    pub(crate) duration: Duration,
    /// Length of the summary windows (default: a twentieth of the run).
    #[arg(long, value_parser = duration)]
    pub(crate) window: Option<Duration>,
    /// How much a figure may drift from the run's first fifth to its last
    /// before it is flagged, e.g. "25%".
    #[arg(long, value_parser = fraction, default_value = "25%")]
    pub(crate) drift_tolerance: f64,
    #[command(flatten)]
    pub(crate) check: CheckArgs,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// A JSON report written by `perf load|stress|endurance --out`.
    pub(crate) input: PathBuf,
    /// Writes the HTML report with charts here.
    #[arg(long, value_name = "FILE")]
    pub(crate) html: Option<PathBuf>,
    /// A pass/fail condition, as for `perf load`.
    #[arg(short = 't', long = "threshold", value_name = "CONDITION")]
    pub(crate) thresholds: Vec<Threshold>,
    /// A JSON report of an earlier run to compare with.
    #[arg(long, value_name = "FILE")]
    pub(crate) baseline: Option<PathBuf>,
    /// How much worse than the baseline a figure may be, e.g. "10%".
    #[arg(long, value_parser = fraction, default_value = "10%")]
    pub(crate) tolerance: f64,
}

/// "30s", "500ms", "5m", "1h 30m" (humantime's forms).
fn duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|error| format!("{error}; expected a duration such as 500ms, 30s, 5m or 1h"))
}

/// "10%" or a fraction "0.1", between 0 and 1.
fn fraction(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let value = match text.strip_suffix('%') {
        Some(percent) => percent.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    }
    .map_err(|_| {
        format!("expected a percentage such as 10% or a fraction such as 0.1, found `{text}`")
    })?;
    if (0.0..=1.0).contains(&value) {
        Ok(value)
    } else {
        Err(format!("expected between 0% and 100%, found `{text}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_fractions_take_the_usual_forms_and_explain_the_rest() {
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(
            duration("30")
                .unwrap_err()
                .contains("expected a duration such as")
        );
        assert_eq!(fraction("10%"), Ok(0.1));
        assert_eq!(fraction("0.25"), Ok(0.25));
        assert!(
            fraction("150%")
                .unwrap_err()
                .contains("between 0% and 100%")
        );
        assert!(
            fraction("ten")
                .unwrap_err()
                .contains("expected a percentage")
        );
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
