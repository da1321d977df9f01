//! One-second windows of the measured period, for figures "over time".
//!
//! A request belongs to the window in which it was sent (in the open model:
//! in which it was due), so windows tile the measured period exactly and a
//! stall shows in the window where the stalled requests were sent. Each
//! user fills the histogram of its current window and adds it to the shared
//! table when it moves on: memory stays one histogram per user plus one per
//! window, however many users.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::histogram::{Latencies, LatencySummary, merge, new_latencies, record};

/// The default length of a window
/// ([`BenchmarkConfigBuilder::window`](super::BenchmarkConfigBuilder::window)
/// sets another).
pub const WINDOW: Duration = Duration::from_secs(1);

/// The figures of one window of the measured period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WindowReport {
    /// Start of the window, from the start of the measured period.
    pub start_ms: u64,
    /// Length of the window: the run's `settings.window_ms` (1000 by
    /// default), less for a last, partial window.
    pub duration_ms: u64,
    /// Requests sent in the window, failed ones included.
    pub requests: u64,
    /// Of those, the failed ones (every error kind).
    pub errors: u64,
    /// `requests` per second of the window.
    pub requests_per_second: f64,
    /// Latency of the window's requests that got an answer.
    pub latency: LatencySummary,
}

#[derive(Default)]
struct Slot {
    requests: u64,
    errors: u64,
    latencies: Option<Latencies>,
}

/// The shared windows of a run.
pub(crate) struct WindowTable {
    measured: Duration,
    length: Duration,
    slots: Vec<Mutex<Slot>>,
}

impl WindowTable {
    /// Windows of `length` (more than zero) for a measured period of `measured`.
    pub(crate) fn new(measured: Duration, length: Duration) -> WindowTable {
        let count = measured.as_nanos().div_ceil(length.as_nanos()).max(1);
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        WindowTable {
            measured,
            length,
            slots: (0..count).map(|_| Mutex::default()).collect(),
        }
    }

    /// The window of a request sent `since_start` after the measured period
    /// began (the last one for anything past its end).
    pub(crate) fn index_of(&self, since_start: Duration) -> usize {
        let index = since_start.as_nanos() / self.length.as_nanos();
        usize::try_from(index)
            .unwrap_or(usize::MAX)
            .min(self.slots.len() - 1)
    }

    fn add(&self, index: usize, current: &CurrentWindow) {
        let mut slot = self.slots[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        slot.requests += current.requests;
        slot.errors += current.errors;
        if !current.latencies.is_empty() {
            merge(
                slot.latencies.get_or_insert_with(new_latencies),
                &current.latencies,
            );
        }
    }

    /// Every window's latencies in one histogram: the run's.
    pub(crate) fn merged(&self) -> Latencies {
        let mut all = new_latencies();
        for slot in &self.slots {
            let slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(latencies) = &slot.latencies {
                merge(&mut all, latencies);
            }
        }
        all
    }

    /// The report of each window, in order.
    pub(crate) fn reports(&self) -> Vec<WindowReport> {
        (0..self.slots.len())
            .map(|index| self.report(index))
            .collect()
    }

    /// The report of window `index` (less than [`len`](Self::len)), with
    /// what the users handed over so far.
    pub(crate) fn report(&self, index: usize) -> WindowReport {
        let slot = self.slots[index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let start = self.length * u32::try_from(index).unwrap_or(u32::MAX);
        let length = self.measured.saturating_sub(start).min(self.length);
        let seconds = length.as_secs_f64();
        WindowReport {
            start_ms: millis(start),
            duration_ms: millis(length),
            requests: slot.requests,
            errors: slot.errors,
            requests_per_second: if seconds > 0.0 {
                slot.requests as f64 / seconds
            } else {
                0.0
            },
            latency: slot
                .latencies
                .as_ref()
                .map(LatencySummary::of)
                .unwrap_or_default(),
        }
    }
}

/// A user's figures for the window it is in.
pub(crate) struct CurrentWindow {
    index: Option<usize>,
    requests: u64,
    errors: u64,
    latencies: Latencies,
}

impl CurrentWindow {
    pub(crate) fn new() -> CurrentWindow {
        CurrentWindow {
            index: None,
            requests: 0,
            errors: 0,
            latencies: new_latencies(),
        }
    }

    /// Counts a request of window `index`, handing the previous window to
    /// `table` first if this one is new. A user's requests come in time
    /// order, so each window is handed over once per user.
    pub(crate) fn record(
        &mut self,
        table: &WindowTable,
        index: usize,
        latency: Option<Duration>,
        failed: bool,
    ) {
        if self.index != Some(index) {
            self.flush(table);
            self.index = Some(index);
        }
        self.requests += 1;
        self.errors += u64::from(failed);
        if let Some(latency) = latency {
            record(&mut self.latencies, latency);
        }
    }

    /// Hands the current window to `table`.
    pub(crate) fn flush(&mut self, table: &WindowTable) {
        if let Some(index) = self.index.take() {
            table.add(index, self);
            self.requests = 0;
            self.errors = 0;
            self.latencies.reset();
        }
    }
}

pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_tile_the_measured_period() {
        let table = WindowTable::new(Duration::from_millis(2500), WINDOW);
        let reports = table.reports();
        assert_eq!(reports.len(), 3);
        assert_eq!(
            reports
                .iter()
                .map(|w| (w.start_ms, w.duration_ms))
                .collect::<Vec<_>>(),
            [(0, 1000), (1000, 1000), (2000, 500)]
        );
        assert_eq!(table.index_of(Duration::ZERO), 0);
        assert_eq!(table.index_of(Duration::from_millis(999)), 0);
        assert_eq!(table.index_of(Duration::from_millis(1000)), 1);
        assert_eq!(table.index_of(Duration::from_millis(2499)), 2);
        assert_eq!(table.index_of(Duration::from_secs(60)), 2);
    }

    #[test]
    fn longer_windows_tile_the_period_too() {
        let table = WindowTable::new(Duration::from_secs(25), Duration::from_secs(10));
        let tiles: Vec<_> = table
            .reports()
            .iter()
            .map(|w| (w.start_ms, w.duration_ms))
            .collect();
        assert_eq!(tiles, [(0, 10_000), (10_000, 10_000), (20_000, 5_000)]);
        assert_eq!(table.index_of(Duration::from_millis(19_999)), 1);
    }

    #[test]
    fn requests_land_in_the_window_they_were_sent_in_and_users_add_up() {
        let table = WindowTable::new(Duration::from_millis(2500), WINDOW);
        let mut first = CurrentWindow::new();
        let mut second = CurrentWindow::new();
        // User 1: two requests in window 0, one failed one in window 2.
        first.record(&table, 0, Some(Duration::from_millis(10)), false);
        first.record(&table, 0, Some(Duration::from_millis(30)), false);
        first.record(&table, 2, None, true);
        // User 2: one slow request in window 0, one in window 1.
        second.record(&table, 0, Some(Duration::from_millis(500)), false);
        second.record(&table, 1, Some(Duration::from_millis(20)), true);
        first.flush(&table);
        second.flush(&table);
        second.flush(&table); // a second flush adds nothing

        let reports = table.reports();
        let counts: Vec<_> = reports.iter().map(|w| (w.requests, w.errors)).collect();
        assert_eq!(counts, [(3, 0), (1, 1), (1, 1)]);
        assert_eq!(reports[0].latency.count, 3);
        assert!(reports[0].latency.max() >= Duration::from_millis(500));
        assert_eq!(reports[0].requests_per_second, 3.0);
        // The half-second window: 1 request in 0.5 s.
        assert_eq!(reports[2].requests_per_second, 2.0);
        assert_eq!(reports[2].latency.count, 0);
    }
}
