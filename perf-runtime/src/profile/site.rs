//! [`ProfileSite`]: the per-function state behind `#[profile]` and the hot
//! path of every profiled call.
//!
//! A site lives in a `static` next to the function. Once [`crate::init`] has
//! settled the metrics recorder, the site registers its metric handles once
//! and every later call only touches atomics (a counter, a gauge up and down,
//! a histogram sample) and reads a TSC clock (`quanta`) twice: no key lookup,
//! no allocation. Before that, each call looks its metrics up through the
//! `metrics` facade, so nothing is bound to a recorder that is about to be
//! replaced (a function called before `init` must still count).

use std::sync::OnceLock;

use metrics::{Counter, Gauge, Histogram};

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
}

impl ProfileSite {
    /// A site named `function` in `module` (both become metric labels: keep
    /// them static and few).
    pub const fn new(function: &'static str, module: &'static str) -> Self {
        ProfileSite {
            function,
            module,
            metrics: OnceLock::new(),
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
    pub fn start(&self) -> CallGuard<'_> {
        let metrics = if recorder::settled() {
            SiteMetricsRef::Cached(
                self.metrics
                    .get_or_init(|| SiteMetrics::register(self.function, self.module)),
            )
        } else {
            SiteMetricsRef::Fresh(Box::new(SiteMetrics::register(self.function, self.module)))
        };
        metrics.get().in_flight.increment(1.0);
        CallGuard {
            metrics,
            outcome: None,
            started: quanta::Instant::now(),
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
    in_flight: Gauge,
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
            in_flight: metrics::gauge!(
                names::FUNCTION_IN_FLIGHT,
                "function" => function,
                "module" => module
            ),
            duration: metrics::histogram!(
                names::FUNCTION_DURATION,
                "function" => function,
                "module" => module
            ),
        }
    }
}

enum SiteMetricsRef<'a> {
    Cached(&'a SiteMetrics),
    Fresh(Box<SiteMetrics>),
}

impl SiteMetricsRef<'_> {
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
pub struct CallGuard<'a> {
    metrics: SiteMetricsRef<'a>,
    outcome: Option<Outcome>,
    started: quanta::Instant,
}

impl CallGuard<'_> {
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

impl Drop for CallGuard<'_> {
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
        metrics.in_flight.decrement(1.0);
    }
}
