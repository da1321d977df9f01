//! Requests-per-minute and tokens-per-minute budgets per provider and model.
//!
//! A [`BudgetLimiter`] decides whether a call may go now, later, or not at
//! all. [`LocalBudgets`] keeps the counts in process: two token buckets per
//! provider and model, each holding a minute's budget and refilling at a
//! sixtieth of it per second, so a quiet minute allows a burst of the whole
//! budget and a busy one the steady rate. Tokens are weighted: a call takes
//! its prompt estimate plus its `max_tokens`, and an answer that used more
//! than that is charged the difference afterwards.
//!
//! Several instances of a service share one provider account, so their
//! budgets must be shared too. The trait is the seam for that:
//! `RedisBudgets` (feature `redis`) keeps the same two buckets per key in
//! Redis, updated by one atomic script per call on Redis's clock, and
//! decides in process through a `LocalBudgets` while Redis is down; it
//! plugs in through
//! [`Provider::with_limiter`](super::Provider::with_limiter) without touching
//! the client.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Per-minute budgets of one provider and model; `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Budget {
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Tokens (prompt and answer) per minute.
    pub tpm: Option<u64>,
}

impl Budget {
    /// No limit at all.
    pub const UNLIMITED: Budget = Budget {
        rpm: None,
        tpm: None,
    };

    /// A budget of `rpm` requests and `tpm` tokens per minute.
    pub fn per_minute(rpm: Option<u32>, tpm: Option<u64>) -> Self {
        Budget { rpm, tpm }
    }

    /// Whether nothing is limited.
    pub fn is_unlimited(&self) -> bool {
        self.rpm.is_none() && self.tpm.is_none()
    }
}

/// Whose budget a call spends: the provider's configured name and the model.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BudgetKey {
    /// The provider's configured name.
    pub provider: String,
    /// The model asked.
    pub model: String,
}

/// Why a budget refused a call. Nothing was taken from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OverBudget {
    /// The budget has room again after this long, more than the caller
    /// would wait.
    Wait(Duration),
    /// The call alone needs more tokens than a whole minute's budget.
    TooLarge {
        /// Tokens the call reserves.
        tokens: u64,
        /// The tokens-per-minute budget.
        tpm: u64,
    },
}

/// Takes calls out of per-minute budgets. Implementations must be cheap to
/// call concurrently: [`LocalBudgets`] in process, `RedisBudgets` (feature
/// `redis`) shared across instances.
#[async_trait::async_trait]
pub trait BudgetLimiter: Send + Sync + fmt::Debug + 'static {
    /// Takes one request and `tokens` tokens from `key`'s `budget` and
    /// returns how long to wait before sending (zero when there is room
    /// now). When that wait would exceed `max_wait`, takes nothing and
    /// refuses. Waiting callers reserve in turn, so they go in order.
    async fn reserve(
        &self,
        key: &BudgetKey,
        budget: Budget,
        tokens: u64,
        max_wait: Duration,
    ) -> Result<Duration, OverBudget>;

    /// Charges `tokens` more to `key`'s budget: an answer used more than its
    /// reservation. The budget may go below zero; later calls then wait for
    /// it to refill.
    async fn charge(&self, key: &BudgetKey, budget: Budget, tokens: u64);
}

/// The budgets every instance shares: in Redis, once the runtime has Redis
/// configured ([`RedisBudgets`](super::RedisBudgets), one per process);
/// `None` before that and without it.
pub(crate) fn shared_limiter() -> Option<std::sync::Arc<dyn BudgetLimiter>> {
    #[cfg(feature = "redis")]
    {
        use std::sync::{Arc, OnceLock};
        static SHARED: OnceLock<Arc<dyn BudgetLimiter>> = OnceLock::new();
        if let Some(shared) = SHARED.get() {
            return Some(Arc::clone(shared));
        }
        if let Some(redis) = super::RedisBudgets::from_global() {
            return Some(Arc::clone(SHARED.get_or_init(|| Arc::new(redis))));
        }
    }
    None
}

/// What any [`BudgetLimiter`] answers without looking at its buckets: an
/// unlimited budget always has room; a budget of 0 requests a minute and a
/// call larger than a minute's tokens never fit.
pub(super) fn decided_without_buckets(
    budget: Budget,
    tokens: u64,
) -> Option<Result<Duration, OverBudget>> {
    if budget.is_unlimited() {
        return Some(Ok(Duration::ZERO));
    }
    if budget.rpm == Some(0) {
        // No request ever fits (configuration refuses 0; a `Budget` built
        // by hand may not): refused, never divided by.
        return Some(Err(OverBudget::Wait(Duration::MAX)));
    }
    match budget.tpm {
        Some(tpm) if tokens > tpm => Some(Err(OverBudget::TooLarge { tokens, tpm })),
        _ => None,
    }
}

/// The in-process [`BudgetLimiter`]: token buckets per provider and model,
/// on tokio's clock.
#[derive(Default)]
pub struct LocalBudgets {
    buckets: Mutex<HashMap<BudgetKey, Buckets>>,
}

/// Keys kept before those whose buckets are full again (idle for a
/// minute, so equal to a fresh entry) are dropped: models named by callers
/// must not grow the map for ever.
const PRUNE_ABOVE: usize = 1024;

#[derive(Debug)]
struct Buckets {
    /// Requests left, below zero when reserved ahead.
    requests: f64,
    /// Tokens left, below zero when reserved ahead or charged over.
    tokens: f64,
    refilled_at: Instant,
}

impl Buckets {
    fn full(budget: Budget, now: Instant) -> Self {
        Buckets {
            requests: budget.rpm.map_or(0.0, f64::from),
            tokens: budget.tpm.map_or(0.0, |tpm| tpm as f64),
            refilled_at: now,
        }
    }

    fn refill(&mut self, budget: Budget, now: Instant) {
        let minutes = now.duration_since(self.refilled_at).as_secs_f64() / 60.0;
        if let Some(rpm) = budget.rpm {
            let rpm = f64::from(rpm);
            self.requests = (self.requests + rpm * minutes).min(rpm);
        }
        if let Some(tpm) = budget.tpm {
            let tpm = tpm as f64;
            self.tokens = (self.tokens + tpm * minutes).min(tpm);
        }
        self.refilled_at = now;
    }
}

/// How long until `available` grows to `needed` at `per_minute`.
fn wait_for(available: f64, needed: f64, per_minute: f64) -> Duration {
    if available >= needed {
        Duration::ZERO
    } else {
        Duration::from_secs_f64((needed - available) / per_minute * 60.0)
    }
}

impl LocalBudgets {
    /// An empty set of budgets; buckets start full on first use.
    pub fn new() -> Self {
        LocalBudgets::default()
    }

    fn with_buckets<T>(
        &self,
        key: &BudgetKey,
        budget: Budget,
        f: impl FnOnce(&mut Buckets) -> T,
    ) -> T {
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if !map.contains_key(key) && map.len() >= PRUNE_ABOVE {
            // A key idle for a minute has refilled whatever its budget.
            map.retain(|_, buckets| {
                now.duration_since(buckets.refilled_at) < Duration::from_secs(60)
            });
        }
        let buckets = map
            .entry(key.clone())
            .or_insert_with(|| Buckets::full(budget, now));
        buckets.refill(budget, now);
        f(buckets)
    }

    /// Reserves at `Instant::now()`; the synchronous core of
    /// [`BudgetLimiter::reserve`].
    fn reserve_now(
        &self,
        key: &BudgetKey,
        budget: Budget,
        tokens: u64,
        max_wait: Duration,
    ) -> Result<Duration, OverBudget> {
        if let Some(decided) = decided_without_buckets(budget, tokens) {
            return decided;
        }
        self.with_buckets(key, budget, |buckets| {
            let for_request = budget.rpm.map_or(Duration::ZERO, |rpm| {
                wait_for(buckets.requests, 1.0, f64::from(rpm))
            });
            let for_tokens = budget.tpm.map_or(Duration::ZERO, |tpm| {
                wait_for(buckets.tokens, tokens as f64, tpm as f64)
            });
            let wait = for_request.max(for_tokens);
            if wait > max_wait {
                return Err(OverBudget::Wait(wait));
            }
            if budget.rpm.is_some() {
                buckets.requests -= 1.0;
            }
            if budget.tpm.is_some() {
                buckets.tokens -= tokens as f64;
            }
            Ok(wait)
        })
    }
}

#[async_trait::async_trait]
impl BudgetLimiter for LocalBudgets {
    async fn reserve(
        &self,
        key: &BudgetKey,
        budget: Budget,
        tokens: u64,
        max_wait: Duration,
    ) -> Result<Duration, OverBudget> {
        self.reserve_now(key, budget, tokens, max_wait)
    }

    async fn charge(&self, key: &BudgetKey, budget: Budget, tokens: u64) {
        if budget.tpm.is_none() || tokens == 0 {
            return;
        }
        self.with_buckets(key, budget, |buckets| buckets.tokens -= tokens as f64);
    }
}

impl fmt::Debug for LocalBudgets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("LocalBudgets")
            .field("keys", &map.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(model: &str) -> BudgetKey {
        BudgetKey {
            provider: "p".into(),
            model: model.into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn requests_per_minute_allow_a_burst_then_refill_at_the_rate() {
        let budgets = LocalBudgets::new();
        let budget = Budget::per_minute(Some(3), None);
        let now = Duration::ZERO;
        for _ in 0..3 {
            assert_eq!(budgets.reserve_now(&key("m"), budget, 0, now), Ok(now));
        }
        assert_eq!(
            budgets.reserve_now(&key("m"), budget, 0, now),
            Err(OverBudget::Wait(Duration::from_secs(20))),
            "one request every 20 s at 3 per minute"
        );
        // Another model has its own budget.
        assert_eq!(budgets.reserve_now(&key("n"), budget, 0, now), Ok(now));
        // Waiting callers reserve in turn.
        let minute = Duration::from_secs(60);
        assert_eq!(
            budgets.reserve_now(&key("m"), budget, 0, minute),
            Ok(Duration::from_secs(20))
        );
        assert_eq!(
            budgets.reserve_now(&key("m"), budget, 0, minute),
            Ok(Duration::from_secs(40))
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(budgets.reserve_now(&key("m"), budget, 0, now), Ok(now));
    }

    #[test]
    fn a_budget_of_no_requests_refuses_instead_of_panicking() {
        let budget = Budget::per_minute(Some(0), None);
        assert_eq!(
            LocalBudgets::new().reserve_now(&key("m"), budget, 0, Duration::ZERO),
            Err(OverBudget::Wait(Duration::MAX))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_weighted_and_overuse_is_charged() {
        let budgets = LocalBudgets::new();
        let budget = Budget::per_minute(None, Some(1000));
        let now = Duration::ZERO;
        assert_eq!(budgets.reserve_now(&key("m"), budget, 600, now), Ok(now));
        assert_eq!(
            budgets.reserve_now(&key("m"), budget, 600, now),
            Err(OverBudget::Wait(Duration::from_secs(12))),
            "200 more tokens at 1000 per minute"
        );
        assert_eq!(budgets.reserve_now(&key("m"), budget, 400, now), Ok(now));
        assert_eq!(
            budgets.reserve_now(&key("m"), budget, 1001, now),
            Err(OverBudget::TooLarge {
                tokens: 1001,
                tpm: 1000
            })
        );
        tokio::time::advance(Duration::from_secs(60)).await;
        budgets.charge(&key("m"), budget, 500).await;
        assert_eq!(
            budgets.reserve_now(&key("m"), budget, 600, now),
            Err(OverBudget::Wait(Duration::from_secs(6))),
            "the 500 tokens charged after the fact count"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unlimited_budgets_take_nothing_and_idle_keys_are_pruned() {
        let budgets = LocalBudgets::new();
        for _ in 0..10 {
            assert_eq!(
                budgets.reserve_now(&key("m"), Budget::UNLIMITED, 10, Duration::ZERO),
                Ok(Duration::ZERO)
            );
        }
        let budget = Budget::per_minute(Some(1), None);
        for i in 0..PRUNE_ABOVE {
            let _ = budgets.reserve_now(&key(&i.to_string()), budget, 0, Duration::ZERO);
        }
        assert_eq!(budgets.buckets.lock().expect("lock").len(), PRUNE_ABOVE);
        tokio::time::advance(Duration::from_secs(61)).await;
        let _ = budgets.reserve_now(&key("new"), budget, 0, Duration::ZERO);
        let kept = budgets.buckets.lock().expect("lock").len();
        assert_eq!(kept, 1, "idle keys were dropped, the new one kept");
    }
}
