//! Per-thread bookkeeping of the hit path: which calls are sampled, and
//! a hit counter that does not bounce one cache line between cores, and
//! needs no locked instruction on the threads that own a stripe.
//!
//! Each of the first `STRIPES - 1` threads that count owns one padded stripe
//! and adds to it with a plain load and store (only that thread writes it);
//! any later thread shares the last stripe through an atomic add. The sum is
//! published to the Prometheus counter when metrics are rendered.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const STRIPES: usize = 16;
/// The stripe every thread past the owners shares.
const SHARED: usize = STRIPES - 1;

#[repr(align(128))]
#[derive(Default)]
struct Stripe(AtomicU64);

#[derive(Default)]
pub(crate) struct StripedCounter {
    stripes: [Stripe; STRIPES],
}

/// This thread's stripe: the same in every counter, given out once.
fn stripe_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    INDEX.with(|index| {
        if index.get() == usize::MAX {
            index.set(NEXT.fetch_add(1, Ordering::Relaxed).min(SHARED));
        }
        index.get()
    })
}

/// True for one call in `SAMPLE_EVERY` on each thread: which L1 lookups
/// are timed (a thread-local count, no shared state).
#[inline]
pub(crate) fn sample_this_call() -> bool {
    const SAMPLE_EVERY: u32 = 256;
    thread_local! {
        static CALLS: Cell<u32> = const { Cell::new(0) };
    }
    CALLS.with(|calls| {
        let n = calls.get().wrapping_add(1);
        calls.set(n);
        n % SAMPLE_EVERY == 0
    })
}

impl StripedCounter {
    #[inline]
    pub(crate) fn increment(&self) {
        let index = stripe_index();
        let stripe = &self.stripes[index].0;
        if index == SHARED {
            stripe.fetch_add(1, Ordering::Relaxed);
        } else {
            // Only this thread writes its stripe: no read-modify-write
            // instruction needed, and readers still see whole values.
            stripe.store(stripe.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_across_threads() {
        let counter = std::sync::Arc::new(StripedCounter::default());
        // More threads than stripes: owners and sharers both count exactly.
        let threads: Vec<_> = (0..40)
            .map(|_| {
                let counter = counter.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| counter.increment()))
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(counter.total(), 40_000);
    }
}
