//! The figures of streamed answers, added up over a run: how many streams
//! ended properly, the time to the first token, the time per output token
//! and tokens per second ([`StreamingSummary`] in the report).

use serde::{Deserialize, Serialize};

use super::histogram::{Latencies, LatencySummary, merge, new_latencies, record};
use super::sse::StreamStats;

/// Streamed answers (`content-type: text/event-stream`) of a run; in the
/// report only when there was at least one. See `docs/bench.md` for what a
/// token and a proper end are.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StreamingSummary {
    /// Streamed answers in the measured period.
    pub streams: u64,
    /// Of those, the ones that sent an end marker and then ended cleanly.
    pub ended_properly: u64,
    /// `ended_properly` over `streams`.
    pub ended_properly_ratio: f64,
    /// Streams whose connection failed mid-body (also `errors.other`).
    pub cut: u64,
    /// Streams whose body ended cleanly without an end marker.
    pub without_end_marker: u64,
    /// Tokens (events with data) received, over all streams.
    pub tokens: u64,
    /// `tokens` over the measured period.
    pub tokens_per_second: f64,
    /// From sending the request (open model: from when it was due) to the
    /// first token; one value per stream that sent a token.
    pub time_to_first_token: LatencySummary,
    /// The mean time between a stream's tokens; one value per stream of
    /// two tokens or more.
    pub time_per_output_token: LatencySummary,
}

/// A user's (then the run's) streamed answers.
pub(crate) struct StreamingTotals {
    streams: u64,
    ended_properly: u64,
    cut: u64,
    without_end_marker: u64,
    tokens: u64,
    first_token: Latencies,
    per_token: Latencies,
}

impl StreamingTotals {
    pub(crate) fn new() -> StreamingTotals {
        StreamingTotals {
            streams: 0,
            ended_properly: 0,
            cut: 0,
            without_end_marker: 0,
            tokens: 0,
            first_token: new_latencies(),
            per_token: new_latencies(),
        }
    }

    /// One streamed answer; `cut` if its connection failed mid-body.
    pub(crate) fn record(&mut self, stats: &StreamStats, cut: bool) {
        self.streams += 1;
        self.tokens += u64::from(stats.tokens);
        match (cut, stats.end_marker) {
            (true, _) => self.cut += 1,
            (false, true) => self.ended_properly += 1,
            (false, false) => self.without_end_marker += 1,
        }
        if let Some(first) = stats.first_token {
            record(&mut self.first_token, first);
        }
        if let Some(gap) = stats.time_per_token() {
            record(&mut self.per_token, gap);
        }
    }

    pub(crate) fn merge(&mut self, other: &StreamingTotals) {
        self.streams += other.streams;
        self.ended_properly += other.ended_properly;
        self.cut += other.cut;
        self.without_end_marker += other.without_end_marker;
        self.tokens += other.tokens;
        merge(&mut self.first_token, &other.first_token);
        merge(&mut self.per_token, &other.per_token);
    }

    /// The summary over a measured period of `seconds`.
    pub(crate) fn summary(&self, seconds: f64) -> StreamingSummary {
        StreamingSummary {
            streams: self.streams,
            ended_properly: self.ended_properly,
            ended_properly_ratio: if self.streams == 0 {
                0.0
            } else {
                self.ended_properly as f64 / self.streams as f64
            },
            cut: self.cut,
            without_end_marker: self.without_end_marker,
            tokens: self.tokens,
            tokens_per_second: if seconds > 0.0 {
                self.tokens as f64 / seconds
            } else {
                0.0
            },
            time_to_first_token: LatencySummary::of(&self.first_token),
            time_per_output_token: LatencySummary::of(&self.per_token),
        }
    }
}
