//! Request deadlines kept by one watchdog thread instead of a tokio timer
//! per request.
//!
//! Why: a tokio timer that expires before the time driver's next planned
//! wake-up makes the driver unpark its thread (a syscall and a context
//! switch). With no other timer pending, which is the case whenever one
//! request at a time is in flight, that is every request: measured at about
//! 7% of a loopback request's CPU. Request timeouts are seconds long, so a
//! thread that looks at the pending deadlines every [`TICK`] serves them
//! well for a fraction of that cost: registering is a short lock, and a
//! deadline fires at most one tick late.
//!
//! The thread ticks while deadlines are pending and for a second after, then
//! parks until the next registration, so an idle process is not woken.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::thread::Thread;
use std::time::Duration;

use slab::Slab;
use tokio::time::Instant;

/// How often pending deadlines are checked: a deadline fires up to this late.
const TICK: Duration = Duration::from_millis(5);
/// Ticks with nothing pending after which the thread parks.
const IDLE_TICKS: u32 = 200;

struct Watchdog {
    pending: Mutex<Slab<Pending>>,
    /// Tells registrations apart when a slab slot is reused.
    next_id: AtomicU64,
    /// True while the thread is parked (or about to park): a registration
    /// then wakes it.
    parked: AtomicBool,
    thread: Option<Thread>,
}

struct Pending {
    id: u64,
    deadline: Instant,
    waker: Waker,
}

static WATCHDOG: LazyLock<Watchdog> = LazyLock::new(|| {
    let thread = std::thread::Builder::new()
        .name("perf-http-deadlines".into())
        .spawn(watch)
        .ok()
        .map(|handle| handle.thread().clone());
    Watchdog {
        pending: Mutex::new(Slab::new()),
        next_id: AtomicU64::new(0),
        parked: AtomicBool::new(false),
        thread,
    }
});

impl Watchdog {
    fn lock(&self) -> MutexGuard<'_, Slab<Pending>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn watch() {
    let watchdog = &*WATCHDOG;
    let mut idle = 0;
    loop {
        std::thread::sleep(TICK);
        let now = Instant::now();
        let expired: Vec<Waker> = {
            let mut pending = watchdog.lock();
            if pending.is_empty() {
                idle += 1;
            } else {
                idle = 0;
            }
            let keys: Vec<usize> = pending
                .iter()
                .filter(|(_, entry)| entry.deadline <= now)
                .map(|(key, _)| key)
                .collect();
            keys.into_iter()
                .map(|key| pending.remove(key).waker)
                .collect()
        };
        // Woken outside the lock: a waker may run code that registers.
        expired.into_iter().for_each(Waker::wake);
        if idle >= IDLE_TICKS {
            watchdog.parked.store(true, Ordering::SeqCst);
            // A registration that saw `parked` false before the store above
            // is in the slab by now: look again before parking.
            if watchdog.lock().is_empty() {
                std::thread::park();
            }
            watchdog.parked.store(false, Ordering::SeqCst);
            idle = 0;
        }
    }
}

/// The future's place in the watchdog, once it has waited.
#[derive(Clone, Copy, Debug)]
struct Registration {
    key: usize,
    id: u64,
}

pin_project_lite::pin_project! {
    /// `future`, or [`Elapsed`] once `deadline` has passed.
    #[derive(Debug)]
    pub(super) struct Deadline<F> {
        #[pin]
        future: F,
        deadline: Instant,
        registration: Option<Registration>,
    }

    impl<F> PinnedDrop for Deadline<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(registration) = this.project().registration.take() {
                deregister(registration);
            }
        }
    }
}

/// The deadline passed before the future finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Elapsed;

/// `future` bounded by `deadline` (to within [`TICK`]).
pub(super) fn deadline<F: Future>(deadline: Instant, future: F) -> Deadline<F> {
    Deadline {
        future,
        deadline,
        registration: None,
    }
}

impl<F: Future> Future for Deadline<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(output) = this.future.poll(cx) {
            if let Some(registration) = this.registration.take() {
                deregister(registration);
            }
            return Poll::Ready(Ok(output));
        }
        match this.registration {
            // The first wait registers without reading the clock (the
            // watchdog fires a deadline already past at its next tick).
            None => *this.registration = Some(register(*this.deadline, cx.waker())),
            Some(registration) => {
                if Instant::now() >= *this.deadline {
                    deregister(*registration);
                    *this.registration = None;
                    return Poll::Ready(Err(Elapsed));
                }
                refresh(*registration, cx.waker());
            }
        }
        Poll::Pending
    }
}

fn register(deadline: Instant, waker: &Waker) -> Registration {
    let watchdog = &*WATCHDOG;
    let id = watchdog.next_id.fetch_add(1, Ordering::Relaxed);
    let key = watchdog.lock().insert(Pending {
        id,
        deadline,
        waker: waker.clone(),
    });
    if watchdog.parked.load(Ordering::SeqCst)
        && let Some(thread) = &watchdog.thread
    {
        thread.unpark();
    }
    Registration { key, id }
}

/// Keeps the waker current when the task is polled from elsewhere.
fn refresh(registration: Registration, waker: &Waker) {
    let mut pending = WATCHDOG.lock();
    if let Some(entry) = pending.get_mut(registration.key)
        && entry.id == registration.id
        && !entry.waker.will_wake(waker)
    {
        entry.waker = waker.clone();
    }
}

fn deregister(registration: Registration) {
    let mut pending = WATCHDOG.lock();
    // Gone already if it fired; the slot may since hold another's deadline.
    if pending
        .get(registration.key)
        .is_some_and(|entry| entry.id == registration.id)
    {
        pending.remove(registration.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_future_done_in_time_is_returned_and_leaves_nothing_behind() {
        let out = deadline(Instant::now() + Duration::from_secs(5), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            7
        })
        .await;
        assert_eq!(out, Ok(7));
        let ready = deadline(Instant::now() + Duration::from_secs(5), async { 8 }).await;
        assert_eq!(ready, Ok(8), "ready at once: never registered");
        assert!(
            !WATCHDOG
                .lock()
                .iter()
                .any(|(_, entry)| entry.deadline > Instant::now() + Duration::from_secs(4)),
            "no deadline of ours left pending"
        );
    }

    #[tokio::test]
    async fn a_late_future_ends_at_its_deadline_within_a_tick_or_two() {
        let started = Instant::now();
        let out = deadline(
            started + Duration::from_millis(50),
            std::future::pending::<()>(),
        )
        .await;
        assert_eq!(out, Err(Elapsed));
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(50), "not early: {took:?}");
    }

    #[tokio::test]
    async fn a_dropped_future_removes_its_deadline() {
        let far = Instant::now() + Duration::from_secs(3600);
        let mut waiting = Box::pin(deadline(far, std::future::pending::<()>()));
        assert!(futures_util::poll!(waiting.as_mut()).is_pending());
        let has_far = || {
            WATCHDOG
                .lock()
                .iter()
                .any(|(_, entry)| entry.deadline == far)
        };
        assert!(has_far(), "registered while waiting");
        drop(waiting);
        assert!(!has_far(), "removed on drop");
    }
}
