//! [`ProfileSite`]: the per-function state behind `#[profile]` and the hot
//! path of every profiled call.
//!
//! A site lives in a `static` next to the function. Once [`crate::init`] has
//! settled the metrics recorder, the site registers its metric handles once
//! and every later call only touches atomics (an integer in-flight count up
//! and down, a counter, a histogram sample) and reads a TSC clock (`quanta`)
//! twice: no key lookup, no allocation. Before that, each call looks its
//! metrics up through the `metrics` facade, so nothing is bound to a
//! recorder that is about to be replaced (a function called before `init`
//! must still count).
//!
//! The in-flight count is a plain integer on the site, published to the
//! `perf_function_in_flight` gauge when metrics are rendered and on each
//! monitoring tick: two integer atomics per call instead of two
//! compare-and-swap loops on a float gauge.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use metrics::{Counter, Histogram};

use super::Outcome;
use crate::monitor::{names, recorder};

/// The static state of one profiled function or named scope.
///
/// `#[profile]` declares one per function; declare your own for a hot block
/// that [`scope`](super::scope) would look up by name on every call:
///
/// ```
/// use perf_runtime::profile::ProfileSite;
///
/// static PARSE: ProfileSite = ProfileSite::new("parse_request", module_path!());
///
/// let call = PARSE.start();
/// let parsed = "42".parse::<u32>();
/// call.finish_with(&parsed);
/// ```
pub struct ProfileSite {
    function: &'static str,
    module: &'static str,
    metrics: OnceLock<SiteMetrics>,
    in_flight: AtomicI64,
    listed: AtomicBool,
}

/// Every site that has been called, for publishing in-flight counts.
static SITES: Mutex<Vec<&'static ProfileSite>> = Mutex::new(Vec::new());

/// Sets `perf_function_in_flight` of every called site from its count.
pub(crate) fn publish_in_flight() {
    let sites = SITES.lock().unwrap_or_else(PoisonError::into_inner).clone();
    for site in sites {
        metrics::gauge!(
            names::FUNCTION_IN_FLIGHT,
            "function" => site.function,
            "module" => site.module
        )
        .set(site.in_flight.load(Ordering::Relaxed) as f64);
    }
}

impl ProfileSite {
    /// A site named `function` in `module` (both become metric labels: keep
    /// them static and few).
    pub const fn new(function: &'static str, module: &'static str) -> Self {
        ProfileSite {
            function,
            module,
            metrics: OnceLock::new(),
            in_flight: AtomicI64::new(0),
            listed: AtomicBool::new(false),
        }
    }

    /// The `function` label.
    pub fn function(&self) -> &'static str {
        self.function
    }

    /// The `module` label.
    pub fn module(&self) -> &'static str {
        self.module
    }

    /// Starts measuring a call: the in-flight gauge goes up now and the call
    /// is recorded when the guard is finished or dropped.
    #[inline]
    pub fn start(&'static self) -> CallGuard {
        if !self.listed.load(Ordering::Relaxed) {
            self.list();
        }
        let metrics = if recorder::settled() {
            SiteMetricsRef::Cached(
                self.metrics
                    .get_or_init(|| SiteMetrics::register(self.function, self.module)),
            )
        } else {
            SiteMetricsRef::Fresh(Box::new(SiteMetrics::register(self.function, self.module)))
        };
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        CallGuard {
            site: self,
            metrics,
            outcome: None,
            started: quanta::Instant::now(),
        }
    }

    /// Calls in progress.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.load(Ordering::Relaxed)
    }

    #[cold]
    fn list(&'static self) {
        let mut sites = SITES.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.listed.swap(true, Ordering::Relaxed) {
            sites.push(self);
        }
    }
}

impl std::fmt::Debug for ProfileSite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileSite")
            .field("function", &self.function)
            .field("module", &self.module)
            .finish()
    }
}

struct SiteMetrics {
    calls: [Counter; 4],
    duration: Histogram,
}

impl SiteMetrics {
    fn register(function: &'static str, module: &'static str) -> Self {
        let calls = Outcome::ALL.map(|outcome| {
            metrics::counter!(
                names::FUNCTION_CALLS,
                "function" => function,
                "module" => module,
                "outcome" => outcome.as_str()
            )
        });
        SiteMetrics {
            calls,
            duration: metrics::histogram!(
                names::FUNCTION_DURATION,
                "function" => function,
                "module" => module
            ),
        }
    }
}

enum SiteMetricsRef {
    Cached(&'static SiteMetrics),
    Fresh(Box<SiteMetrics>),
}

impl SiteMetricsRef {
    #[inline]
    fn get(&self) -> &SiteMetrics {
        match self {
            SiteMetricsRef::Cached(metrics) => metrics,
            SiteMetricsRef::Fresh(metrics) => metrics,
        }
    }
}

/// One call in progress. Records the call when finished or dropped: a guard
/// dropped without [`finish`](Self::finish) counts as a panic while
/// unwinding, else as cancelled (its future was dropped).
#[must_use = "a call guard measures until it is finished or dropped"]
pub struct CallGuard {
    site: &'static ProfileSite,
    metrics: SiteMetricsRef,
    outcome: Option<Outcome>,
    started: quanta::Instant,
}

impl CallGuard {
    /// Ends the call with `outcome`.
    #[inline]
    pub fn finish(mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
    }

    /// Ends the call: `Err` is an error, `Ok` a success.
    #[inline]
    pub fn finish_with<T, E>(self, result: &Result<T, E>) {
        let outcome = if result.is_ok() {
            Outcome::Ok
        } else {
            Outcome::Error
        };
        self.finish(outcome);
    }
}

impl Drop for CallGuard {
    #[inline]
    fn drop(&mut self) {
        let elapsed = self.started.elapsed();
        let outcome = self.outcome.unwrap_or_else(|| {
            if std::thread::panicking() {
                Outcome::Panic
            } else {
                Outcome::Cancelled
            }
        });
        let metrics = self.metrics.get();
        metrics.duration.record(elapsed.as_secs_f64());
        metrics.calls[outcome.index()].increment(1);
        self.site.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
