//! What each virtual user records, and how users' figures are added up.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::progress::Progress;
use super::report::ErrorCounts;
use super::sse::StreamStats;
use super::streaming::StreamingTotals;
use super::window::{CurrentWindow, WindowTable};

/// Why a request got no answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// No connection (refused, reset during connect, handshake failed).
    Connect,
    /// No complete answer within the request timeout.
    Timeout,
    /// Anything else: the connection failed mid-request, a bad response.
    Other,
}

/// How one request (or one call of a benchmarked function) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// An HTTP answer with this status, body read to the end; 400 and above
    /// count as `http_status` errors.
    Response(u16),
    /// A streamed answer (server-sent events) with this status; `cut` if
    /// the connection failed mid-body (an `other` error, no latency).
    Stream {
        status: u16,
        stats: StreamStats,
        cut: bool,
    },
    /// A benchmarked function returned: `true` for `Ok` or `()`.
    Returned(bool),
    /// No answer. Its latency is not recorded (there is none to record).
    Failed(ErrorKind),
}

/// Where a user is in the run: what counts as warm-up and which window a
/// request belongs to.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Period {
    /// From the run's start to the measured period (the ramp-up).
    pub(crate) warmup: Duration,
    /// The measured period.
    pub(crate) measured: Duration,
}

impl Period {
    /// From the run's start to the end of the measured period.
    pub(crate) fn end(&self) -> Duration {
        self.warmup + self.measured
    }
}

/// The counts of one user, then of all users merged. Latencies are not
/// here: each request's is recorded once, in its window's histogram, and
/// the run's histogram is the windows' merged (one record per request, one
/// histogram per user).
pub(crate) struct Totals {
    pub(crate) requests: u64,
    pub(crate) successes: u64,
    pub(crate) warmup: u64,
    pub(crate) late: u64,
    pub(crate) status_codes: BTreeMap<u16, u64>,
    pub(crate) errors: ErrorCounts,
    /// Streamed answers, when there were any.
    pub(crate) streaming: Option<StreamingTotals>,
}

impl Totals {
    pub(crate) fn new() -> Totals {
        Totals {
            requests: 0,
            successes: 0,
            warmup: 0,
            late: 0,
            status_codes: BTreeMap::new(),
            errors: ErrorCounts::default(),
            streaming: None,
        }
    }

    /// Adds another user's figures.
    pub(crate) fn merge(&mut self, other: &Totals) {
        self.requests += other.requests;
        self.successes += other.successes;
        self.warmup += other.warmup;
        self.late += other.late;
        for (status, count) in &other.status_codes {
            *self.status_codes.entry(*status).or_default() += count;
        }
        self.errors.connect += other.errors.connect;
        self.errors.timeout += other.errors.timeout;
        self.errors.http_status += other.errors.http_status;
        self.errors.other += other.errors.other;
        if let Some(streams) = &other.streaming {
            self.streaming
                .get_or_insert_with(StreamingTotals::new)
                .merge(streams);
        }
    }
}

/// One user's recorder.
pub(crate) struct Recorder {
    period: Period,
    windows: Arc<WindowTable>,
    current: CurrentWindow,
    totals: Totals,
    progress: Progress,
}

impl Recorder {
    pub(crate) fn new(period: Period, windows: Arc<WindowTable>, progress: Progress) -> Recorder {
        Recorder {
            period,
            windows,
            current: CurrentWindow::new(),
            totals: Totals::new(),
            progress,
        }
    }

    /// Records a request sent (or due) `sent` after the run's start, which
    /// took `latency` and ended with `outcome`; `late` if it went out after
    /// it was due. Requests of the ramp-up are only counted as warm-up.
    pub(crate) fn record(
        &mut self,
        sent: Duration,
        latency: Duration,
        outcome: Outcome,
        late: bool,
    ) {
        let Some(since_start) = sent.checked_sub(self.period.warmup) else {
            self.totals.warmup += 1;
            return;
        };
        let totals = &mut self.totals;
        totals.requests += 1;
        totals.late += u64::from(late);
        let (answered, failed) = match outcome {
            Outcome::Response(status) => {
                *totals.status_codes.entry(status).or_default() += 1;
                let failed = status >= 400;
                totals.errors.http_status += u64::from(failed);
                (true, failed)
            }
            Outcome::Stream { status, stats, cut } => {
                totals
                    .streaming
                    .get_or_insert_with(StreamingTotals::new)
                    .record(&stats, cut);
                *totals.status_codes.entry(status).or_default() += 1;
                if cut {
                    totals.errors.other += 1;
                    (false, true)
                } else {
                    let failed = status >= 400;
                    totals.errors.http_status += u64::from(failed);
                    (true, failed)
                }
            }
            Outcome::Returned(ok) => {
                totals.errors.other += u64::from(!ok);
                (true, !ok)
            }
            Outcome::Failed(kind) => {
                match kind {
                    ErrorKind::Connect => totals.errors.connect += 1,
                    ErrorKind::Timeout => totals.errors.timeout += 1,
                    ErrorKind::Other => totals.errors.other += 1,
                }
                (false, true)
            }
        };
        totals.successes += u64::from(!failed);
        self.progress.count(failed);
        let index = self.windows.index_of(since_start);
        self.current
            .record(&self.windows, index, answered.then_some(latency), failed);
    }

    /// The user's totals; its last window handed to the table.
    pub(crate) fn finish(mut self) -> Totals {
        self.current.flush(&self.windows);
        self.totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::window::WINDOW;

    #[test]
    fn outcomes_are_counted_by_kind_and_warmup_is_kept_apart() {
        let period = Period {
            warmup: Duration::from_secs(1),
            measured: Duration::from_secs(2),
        };
        let windows = Arc::new(WindowTable::new(period.measured, WINDOW));
        let progress = Progress::new();
        let mut recorder = Recorder::new(period, Arc::clone(&windows), progress.clone());
        let ms = Duration::from_millis;
        recorder.record(ms(500), ms(5), Outcome::Response(200), false); // warm-up
        recorder.record(ms(1000), ms(5), Outcome::Response(200), false);
        recorder.record(ms(1100), ms(7), Outcome::Response(500), true);
        recorder.record(ms(2100), ms(1), Outcome::Failed(ErrorKind::Connect), false);
        recorder.record(ms(2200), ms(1), Outcome::Failed(ErrorKind::Timeout), false);
        recorder.record(ms(2300), ms(9), Outcome::Returned(false), false);
        let totals = recorder.finish();

        assert_eq!(totals.warmup, 1);
        assert_eq!(totals.requests, 5);
        assert_eq!(totals.successes, 1);
        assert_eq!(totals.late, 1);
        assert_eq!(totals.status_codes, BTreeMap::from([(200, 1), (500, 1)]));
        assert_eq!(
            totals.errors,
            ErrorCounts {
                connect: 1,
                timeout: 1,
                http_status: 1,
                other: 1
            }
        );
        // Only answered requests have a latency.
        assert_eq!(windows.merged().len(), 3);
        let reports = windows.reports();
        assert_eq!(reports[0].requests, 2);
        assert_eq!(reports[1].requests, 3);
        assert_eq!(reports[1].errors, 3);
        assert_eq!(reports[1].latency.count, 1);
        let snapshot = progress.snapshot();
        assert_eq!((snapshot.requests, snapshot.errors), (5, 4));
    }
}
