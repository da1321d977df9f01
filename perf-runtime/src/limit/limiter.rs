//! [`ConcurrencyLimit`]: the shared state, acquiring and releasing.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use metrics::SharedString;
use tokio::sync::Notify;

use super::algorithm::{Algorithm, Estimator, Sample};
use super::{LimitError, Permit};
use crate::monitor::names;

/// What a call does when every permit is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Overload {
    /// Refuse at once: the caller sheds load (a server answers 503).
    Reject,
    /// Queue for up to this long, then refuse.
    Wait(Duration),
}

/// An adaptive concurrency limit: at most `limit` calls run at once, and
/// `limit` follows the latency and outcomes of finished calls (see
/// [`Algorithm`]), between a minimum and a maximum.
///
/// Cloning is cheap and shares the limit.
///
/// ```
/// use perf_runtime::limit::{ConcurrencyLimit, Overload};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), perf_runtime::limit::LimitError> {
/// let limit = ConcurrencyLimit::builder("llm")
///     .initial(2)
///     .bounds(1, 100)
///     .overload(Overload::Reject)
///     .build()?;
/// let first = limit.acquire().await?;
/// let _second = limit.acquire().await?;
/// assert!(limit.acquire().await.is_err(), "a third call is shed");
/// first.success();
/// assert!(limit.acquire().await.is_ok(), "a released permit frees a place");
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ConcurrencyLimit {
    shared: Arc<Shared>,
}

#[derive(Debug)]
pub(super) struct Shared {
    name: Arc<str>,
    min: f64,
    max: f64,
    overload: Overload,
    state: Mutex<State>,
    /// Woken when a place may have freed up.
    freed: Notify,
}

#[derive(Debug)]
struct State {
    limit: f64,
    in_flight: usize,
    estimator: Estimator,
}

impl State {
    fn published_limit(&self) -> usize {
        self.limit as usize
    }

    fn has_room(&self) -> bool {
        self.in_flight < self.published_limit()
    }
}

impl ConcurrencyLimit {
    /// Starts a limiter named `name` (the `limiter` metric label: keep names
    /// static and few).
    pub fn builder(name: impl Into<String>) -> ConcurrencyLimitBuilder {
        ConcurrencyLimitBuilder {
            name: name.into(),
            initial: 20,
            min: 1,
            max: 1000,
            algorithm: Algorithm::default(),
            overload: Overload::Reject,
        }
    }

    /// The limiter's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.shared.lock().published_limit()
    }

    /// Calls holding a permit now.
    pub fn in_flight(&self) -> usize {
        self.shared.lock().in_flight
    }

    /// What a call does when every permit is taken.
    pub fn overload(&self) -> Overload {
        self.shared.overload
    }

    /// A permit, now or after waiting, as [`Overload`] says.
    ///
    /// # Errors
    ///
    /// [`LimitError::Rejected`] when full and set to reject,
    /// [`LimitError::WaitTimedOut`] when no place freed up in time.
    pub async fn acquire(&self) -> Result<Permit, LimitError> {
        if let Some(permit) = self.try_acquire() {
            return Ok(permit);
        }
        match self.shared.overload {
            Overload::Reject => Err(self.refuse(None)),
            Overload::Wait(max_wait) => tokio::time::timeout(max_wait, self.wait_for_room())
                .await
                .map_err(|_| self.refuse(Some(max_wait))),
        }
    }

    /// A permit if a place is free now, without waiting.
    pub fn try_acquire(&self) -> Option<Permit> {
        let mut state = self.shared.lock();
        if !state.has_room() {
            return None;
        }
        state.in_flight += 1;
        let in_flight = state.in_flight;
        self.shared.publish(&state);
        // Several places may have freed at once (the limit grew): pass the
        // wake-up on so the next waiter checks too.
        if state.has_room() {
            self.shared.freed.notify_one();
        }
        drop(state);
        Some(Permit::new(Arc::clone(&self.shared), in_flight))
    }

    async fn wait_for_room(&self) -> Permit {
        loop {
            let freed = self.shared.freed.notified();
            tokio::pin!(freed);
            // Registered before checking, so a release in between is not missed.
            freed.as_mut().enable();
            if let Some(permit) = self.try_acquire() {
                return permit;
            }
            freed.await;
        }
    }

    fn refuse(&self, waited: Option<Duration>) -> LimitError {
        metrics::counter!(names::CONCURRENCY_REJECTED, "limiter" => self.shared.label())
            .increment(1);
        let state = self.shared.lock();
        let limiter = self.shared.name.to_string();
        let limit = state.published_limit();
        match waited {
            None => LimitError::Rejected {
                limiter,
                limit,
                in_flight: state.in_flight,
            },
            Some(waited) => LimitError::WaitTimedOut {
                limiter,
                limit,
                waited,
            },
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn label(&self) -> SharedString {
        SharedString::from(Arc::clone(&self.name))
    }

    /// Returns a permit's place and feeds its sample to the algorithm.
    pub(super) fn release(&self, sample: Sample) {
        let mut state = self.lock();
        state.in_flight -= 1;
        let current = state.limit;
        state.limit = state
            .estimator
            .update(current, sample)
            .clamp(self.min, self.max);
        self.publish(&state);
        if state.has_room() {
            self.freed.notify_one();
        }
    }

    /// Sets the gauges; under the lock, so the last value written is the
    /// latest one.
    fn publish(&self, state: &State) {
        metrics::gauge!(names::CONCURRENCY_LIMIT, "limiter" => self.label())
            .set(state.published_limit() as f64);
        metrics::gauge!(names::CONCURRENCY_IN_FLIGHT, "limiter" => self.label())
            .set(state.in_flight as f64);
    }
}

/// Help texts for `/metrics`, given when a limiter is built (the runtime's
/// own list in `lifecycle` does not know these yet).
fn describe_metrics() {
    metrics::describe_gauge!(
        names::CONCURRENCY_LIMIT,
        "Current adaptive concurrency limit."
    );
    metrics::describe_gauge!(
        names::CONCURRENCY_IN_FLIGHT,
        "Calls holding a concurrency-limit permit."
    );
    metrics::describe_counter!(
        names::CONCURRENCY_REJECTED,
        "Calls a concurrency limit refused (full, or waited too long)."
    );
}

/// Settings of a [`ConcurrencyLimit`]; from [`ConcurrencyLimit::builder`].
#[derive(Clone, Debug)]
#[must_use]
pub struct ConcurrencyLimitBuilder {
    name: String,
    initial: usize,
    min: usize,
    max: usize,
    algorithm: Algorithm,
    overload: Overload,
}

impl ConcurrencyLimitBuilder {
    /// The starting limit (default 20).
    pub fn initial(mut self, initial: usize) -> Self {
        self.initial = initial;
        self
    }

    /// The limit never goes below `min` nor above `max` (default 1 and 1000).
    pub fn bounds(mut self, min: usize, max: usize) -> Self {
        self.min = min;
        self.max = max;
        self
    }

    /// How the limit adapts (default [`Algorithm::Gradient`]).
    pub fn algorithm(mut self, algorithm: Algorithm) -> Self {
        self.algorithm = algorithm;
        self
    }

    /// What a call does when full (default [`Overload::Reject`]).
    pub fn overload(mut self, overload: Overload) -> Self {
        self.overload = overload;
        self
    }

    /// The limiter; publishes its limit and in-flight gauges at once.
    ///
    /// # Errors
    ///
    /// [`LimitError::InvalidBounds`] unless `1 <= min <= initial <= max`.
    pub fn build(self) -> Result<ConcurrencyLimit, LimitError> {
        let ConcurrencyLimitBuilder {
            name,
            initial,
            min,
            max,
            algorithm,
            overload,
        } = self;
        if !(1 <= min && min <= initial && initial <= max) {
            return Err(LimitError::InvalidBounds {
                limiter: name,
                min,
                initial,
                max,
            });
        }
        let shared = Shared {
            name: name.into(),
            min: min as f64,
            max: max as f64,
            overload,
            state: Mutex::new(State {
                limit: initial as f64,
                in_flight: 0,
                estimator: Estimator::new(algorithm),
            }),
            freed: Notify::new(),
        };
        describe_metrics();
        shared.publish(&shared.lock());
        Ok(ConcurrencyLimit {
            shared: Arc::new(shared),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::{Aimd, Outcome};

    fn aimd_limit(initial: usize, overload: Overload) -> ConcurrencyLimit {
        ConcurrencyLimit::builder("test")
            .initial(initial)
            .bounds(2, 50)
            .algorithm(Algorithm::Aimd(Aimd {
                latency_threshold: Duration::from_millis(100),
                ..Aimd::default()
            }))
            .overload(overload)
            .build()
            .expect("valid bounds")
    }

    /// Runs one round: fills the limit, lets `latency` pass (simulated
    /// time), then releases every permit with `outcome`.
    async fn round(limit: &ConcurrencyLimit, latency: Duration, outcome: Outcome) {
        let mut permits = Vec::new();
        while let Some(mut permit) = limit.try_acquire() {
            permit.set_outcome(outcome);
            permits.push(permit);
        }
        tokio::time::advance(latency).await;
        drop(permits);
    }

    #[tokio::test(start_paused = true)]
    async fn grows_while_latency_is_low_and_shrinks_when_it_rises() {
        let limit = aimd_limit(4, Overload::Reject);
        let mut seen = vec![limit.limit()];
        for _ in 0..3 {
            round(&limit, Duration::from_millis(20), Outcome::Success).await;
            seen.push(limit.limit());
        }
        assert!(
            seen.windows(2).all(|w| w[1] > w[0]),
            "each fast round grows the limit: {seen:?}"
        );
        let peak = limit.limit();
        round(&limit, Duration::from_millis(300), Outcome::Success).await;
        assert!(
            limit.limit() * 2 <= peak,
            "a slow round shrinks it: {peak} -> {}",
            limit.limit()
        );
        // The latency step passes: the limit climbs back.
        let fallen = limit.limit();
        for _ in 0..3 {
            round(&limit, Duration::from_millis(20), Outcome::Success).await;
        }
        assert!(
            limit.limit() > fallen,
            "fast rounds grow it again: {fallen} -> {}",
            limit.limit()
        );
        for _ in 0..20 {
            round(&limit, Duration::from_millis(300), Outcome::Dropped).await;
        }
        assert_eq!(limit.limit(), 2, "never below the minimum");
        assert_eq!(limit.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_gradient_learns_its_baseline_and_backs_off_from_it() {
        let limit = ConcurrencyLimit::builder("gradient")
            .initial(10)
            .bounds(1, 200)
            .build()
            .expect("valid bounds");
        for _ in 0..5 {
            round(&limit, Duration::from_millis(40), Outcome::Success).await;
        }
        let grown = limit.limit();
        assert!(grown > 10, "steady latency grows the limit: {grown}");
        round(&limit, Duration::from_millis(400), Outcome::Success).await;
        let fallen = limit.limit();
        assert!(
            fallen < grown,
            "10x latency shrinks it: {grown} -> {fallen}"
        );
        // Back to the old latency: it recovers.
        for _ in 0..10 {
            round(&limit, Duration::from_millis(40), Outcome::Success).await;
        }
        assert!(
            limit.limit() > fallen,
            "the old latency grows it again: {fallen} -> {}",
            limit.limit()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn full_limit_rejects_or_waits_as_configured() {
        let rejecting = aimd_limit(2, Overload::Reject);
        let _held = (rejecting.acquire().await, rejecting.acquire().await);
        let refused = rejecting.acquire().await.expect_err("full");
        assert!(
            matches!(
                refused,
                LimitError::Rejected {
                    limit: 2,
                    in_flight: 2,
                    ..
                }
            ),
            "{refused}"
        );

        let waiting = aimd_limit(2, Overload::Wait(Duration::from_secs(1)));
        let first = waiting.acquire().await.expect("room");
        let _second = waiting.acquire().await.expect("room");
        let queued = tokio::spawn({
            let waiting = waiting.clone();
            async move { waiting.acquire().await }
        });
        tokio::time::advance(Duration::from_millis(10)).await;
        assert!(!queued.is_finished(), "waits while full");
        drop(first);
        let _third = queued.await.expect("task").expect("got the freed place");

        let timed_out = waiting.acquire().await.expect_err("still full");
        assert!(
            matches!(timed_out, LimitError::WaitTimedOut { .. }),
            "{timed_out}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_permit_dropped_without_outcome_changes_nothing() {
        let limit = aimd_limit(4, Overload::Reject);
        for _ in 0..10 {
            let permits: Vec<_> = std::iter::from_fn(|| limit.try_acquire()).collect();
            tokio::time::advance(Duration::from_secs(5)).await;
            drop(permits);
        }
        assert_eq!(limit.limit(), 4);
    }

    #[test]
    fn bounds_must_hold_the_initial_limit() {
        let error = ConcurrencyLimit::builder("bad")
            .initial(1)
            .bounds(2, 10)
            .build()
            .expect_err("initial below min");
        assert!(
            error.to_string().contains("min (2) <= initial (1)"),
            "{error}"
        );
    }
}
