//! [`BenchmarkReport`]: what a run measured, serialisable to JSON with a
//! stable schema (documented field by field in `docs/bench.md`; a change
//! that renames or removes a field bumps [`SCHEMA_VERSION`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::histogram::{LatencyBucket, LatencySummary, distribution};
use super::recorder::Totals;
use super::streaming::StreamingSummary;
use super::window::{WindowReport, WindowTable, millis};

/// The version of the JSON schema of [`BenchmarkReport`]. Fields may be
/// added within a version; renaming or removing one bumps it.
pub const SCHEMA_VERSION: u32 = 1;

/// How load was generated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LoadModel {
    /// A fixed number of users, each sending its next request when the
    /// previous one is answered (and it has thought).
    Closed,
    /// Requests due on a fixed schedule, whatever the answers; latency
    /// counted from the due time.
    Open,
}

/// What was loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TargetKind {
    /// An HTTP endpoint ([`run_benchmark`](super::run_benchmark)).
    Http,
    /// An in-process async function ([`run_fn`](super::run_fn)).
    Function,
}

/// Requests that failed, by why. Their sum is the error count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErrorCounts {
    /// No connection could be made (refused, handshake failed).
    pub connect: u64,
    /// No complete answer within the request timeout.
    pub timeout: u64,
    /// An answer with status 400 or above (also in `status_codes`).
    pub http_status: u64,
    /// Anything else: a connection cut mid-request, a benchmarked function
    /// that returned `Err`.
    pub other: u64,
}

impl ErrorCounts {
    /// All failed requests.
    pub fn total(&self) -> u64 {
        self.connect + self.timeout + self.http_status + self.other
    }
}

/// The settings the run was made with, as far as they shape the figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RunSettings {
    /// Virtual users (concurrency of `run_fn`).
    pub users: usize,
    /// The measured period.
    pub duration_ms: u64,
    /// The ramp-up before it, not measured.
    pub ramp_up_ms: u64,
    /// A closed-model user's pause between requests.
    pub think_time_ms: u64,
    /// The request timeout; `null` for a function.
    pub request_timeout_ms: Option<u64>,
    /// The open model's rate; `null` for a closed run.
    pub rate_per_second: Option<f64>,
    /// The HTTP method; `null` for a function.
    pub method: Option<String>,
    /// The length of the `windows` (1000 unless the run set another).
    #[serde(default = "default_window_ms")]
    pub window_ms: u64,
}

/// Reports written before windows could be set had one-second ones.
fn default_window_ms() -> u64 {
    1000
}

/// What a benchmark run measured.
///
/// Counts cover the measured period only: requests sent during the ramp-up
/// are in `warmup_requests` and nowhere else. A request belongs to the
/// period (and to a window) by when it was sent, or, in the open model, by
/// when it was due.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BenchmarkReport {
    /// [`SCHEMA_VERSION`] of the writer.
    pub schema_version: u32,
    /// The configuration's name.
    pub name: String,
    /// HTTP endpoint or in-process function.
    pub kind: TargetKind,
    /// `scheme://host:port/path` (no credentials, no query string), or the
    /// function's type name.
    pub target: String,
    /// Closed or open model.
    pub model: LoadModel,
    /// When the run started, RFC 3339 in UTC.
    pub started_at: String,
    /// The settings that shape the figures.
    pub settings: RunSettings,
    /// Wall time of the whole run: ramp-up, measured period and the wait
    /// for the last answers.
    pub wall_time_ms: u64,
    /// Requests sent in the measured period, failed ones included.
    pub requests: u64,
    /// Of those, the ones that succeeded: an HTTP status below 400, or a
    /// function that returned `Ok` / `()`.
    pub successes: u64,
    /// Requests sent during the ramp-up, not measured.
    pub warmup_requests: u64,
    /// Open model: requests due in the measured period that were never sent,
    /// because every user was busy until the period ended. 0 when closed.
    pub dropped: u64,
    /// Open model: requests sent more than [`LATE_AFTER`](super::LATE_AFTER)
    /// after they were due, because every user was busy. Their latency
    /// counts from the due time. 0 when closed.
    pub late: u64,
    /// `requests` over the measured period.
    pub requests_per_second: f64,
    /// Latency of every request that got an answer (any status), from when
    /// it was sent (open model: due) to the end of the answer's body.
    pub latency: LatencySummary,
    /// How the latencies spread: counts in log-spaced buckets (ten per
    /// power of ten), from the fastest answer's bucket to the slowest's.
    #[serde(default)]
    pub latency_distribution: Vec<LatencyBucket>,
    /// Answers by HTTP status code (keys are the codes, as strings in JSON).
    pub status_codes: BTreeMap<u16, u64>,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
    /// Streamed answers (server-sent events): time to first token, time
    /// per output token, tokens/s, the share that ended properly. Absent
    /// when no answer was streamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub streaming: Option<StreamingSummary>,
    /// The measured period in one-second windows, in order.
    pub windows: Vec<WindowReport>,
}

impl BenchmarkReport {
    /// Failed requests over requests sent (0 when none were sent).
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors.total() as f64 / self.requests as f64
        }
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Cannot fail: every field is a plain value with string map keys.
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

    /// Reads a report written by [`to_json`](Self::to_json).
    ///
    /// # Errors
    ///
    /// The JSON does not match this schema.
    pub fn from_json(json: &str) -> Result<BenchmarkReport, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// What a run knows besides the users' totals, to build its report.
pub(crate) struct Assembly {
    pub(crate) name: String,
    pub(crate) kind: TargetKind,
    pub(crate) target: String,
    pub(crate) model: LoadModel,
    pub(crate) started_at: String,
    pub(crate) settings: RunSettings,
    pub(crate) measured: Duration,
    pub(crate) wall_time: Duration,
    pub(crate) scheduled: Option<u64>,
}

impl Assembly {
    pub(crate) fn report(self, totals: Totals, windows: &WindowTable) -> BenchmarkReport {
        let latencies = windows.merged();
        BenchmarkReport {
            schema_version: SCHEMA_VERSION,
            name: self.name,
            kind: self.kind,
            target: self.target,
            model: self.model,
            started_at: self.started_at,
            settings: self.settings,
            wall_time_ms: millis(self.wall_time),
            requests: totals.requests,
            successes: totals.successes,
            warmup_requests: totals.warmup,
            dropped: self
                .scheduled
                .map_or(0, |due| due.saturating_sub(totals.requests)),
            late: totals.late,
            requests_per_second: totals.requests as f64 / self.measured.as_secs_f64(),
            latency: LatencySummary::of(&latencies),
            latency_distribution: distribution(&latencies),
            status_codes: totals.status_codes,
            errors: totals.errors,
            streaming: totals
                .streaming
                .map(|streams| streams.summary(self.measured.as_secs_f64())),
            windows: windows.reports(),
        }
    }
}

/// Now, RFC 3339 in UTC with milliseconds.
pub(crate) fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
