//! The clock every L1 hit checks freshness against.
//!
//! Reading a clock costs 20–30 ns on a VM (TSC through `quanta`, or
//! `clock_gettime`): on a hit of ~100 ns that is a fifth of the cost. Hits
//! read [`coarse_now`] instead: one atomic load of a time that a background
//! thread advances every millisecond. An entry may so be served up to about a
//! millisecond (plus any delay in scheduling that thread) past its freshness
//! deadline; deadlines themselves are set with the precise clock.
//!
//! The thread only ticks while the cache is read: after a second without a
//! read it parks, and readers fall back to the precise clock (and wake it)
//! until it ticks again, so an idle service has no timer waking every
//! millisecond.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::Thread;
use std::time::Duration;

use quanta::Instant;

/// How often the coarse time advances.
const TICK: Duration = Duration::from_millis(1);
/// Ticks without a read after which the thread parks.
const IDLE_TICKS: u32 = 1000;

struct Ticker {
    epoch: Instant,
    /// Nanoseconds since `epoch`, as of the last tick.
    elapsed_ns: AtomicU64,
    /// True while the thread ticks; readers may then trust `elapsed_ns`.
    ticking: AtomicBool,
    /// Set by readers, cleared by the thread: was the clock read lately?
    read: AtomicBool,
    thread: Option<Thread>,
}

static TICKER: LazyLock<Ticker> = LazyLock::new(|| {
    let epoch = Instant::now();
    let thread = std::thread::Builder::new()
        .name("perf-cache-clock".into())
        .spawn(tick_loop)
        // Without the thread, every read takes the precise clock.
        .ok()
        .map(|handle| handle.thread().clone());
    Ticker {
        epoch,
        elapsed_ns: AtomicU64::new(0),
        ticking: AtomicBool::new(false),
        read: AtomicBool::new(true),
        thread,
    }
});

fn tick_loop() {
    let ticker = &*TICKER;
    loop {
        ticker
            .elapsed_ns
            .store(ticker.epoch.elapsed().as_nanos() as u64, Ordering::Release);
        ticker.ticking.store(true, Ordering::Release);
        let mut idle = 0;
        while idle < IDLE_TICKS {
            std::thread::sleep(TICK);
            ticker
                .elapsed_ns
                .store(ticker.epoch.elapsed().as_nanos() as u64, Ordering::Release);
            idle = if ticker.read.swap(false, Ordering::Relaxed) {
                0
            } else {
                idle + 1
            };
        }
        // Readers switch to the precise clock before the time goes stale.
        ticker.ticking.store(false, Ordering::Release);
        std::thread::park();
    }
}

/// Now, to within about a millisecond.
#[inline]
pub(crate) fn coarse_now() -> Instant {
    let ticker = &*TICKER;
    // A shared line written once per tick at most: loading it stays cheap.
    if !ticker.read.load(Ordering::Relaxed) {
        ticker.read.store(true, Ordering::Relaxed);
    }
    if ticker.ticking.load(Ordering::Acquire) {
        ticker.epoch + Duration::from_nanos(ticker.elapsed_ns.load(Ordering::Acquire))
    } else {
        wake(ticker);
        Instant::now()
    }
}

#[cold]
fn wake(ticker: &Ticker) {
    if let Some(thread) = &ticker.thread {
        thread.unpark();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_runs_ahead_of_the_precise_clock() {
        for _ in 0..200 {
            let coarse = coarse_now();
            assert!(coarse <= Instant::now());
        }
    }

    #[test]
    fn catches_up_with_a_precise_instant() {
        let _ = coarse_now();
        let mark = Instant::now();
        // Eventually (a tick later, or at once when the thread is parked)
        // the coarse time passes any precise instant already taken.
        let caught_up = (0..2000).any(|_| {
            std::thread::sleep(TICK);
            coarse_now() >= mark
        });
        assert!(caught_up, "the coarse clock stopped");
    }
}
