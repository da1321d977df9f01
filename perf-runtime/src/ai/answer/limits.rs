//! The limits an `#[ai_optimized]` function puts on calls of its body (the
//! cache misses): at most `max_concurrency` at once, `rpm` requests and
//! `tpm` tokens per minute, each within `timeout`.
//!
//! The budgets are kept by one [`BudgetLimiter`] per process, keyed by the
//! attribute's provider and model: in process ([`LocalBudgets`]), or in
//! Redis when it is configured, so every instance of the service spends
//! from the same minute.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::AiSpec;
use crate::ai::{AiError, Budget, BudgetKey, BudgetLimiter, LocalBudgets, OverBudget};

/// How long a call waits for budget when the function has no `timeout`.
const DEFAULT_BUDGET_WAIT: Duration = Duration::from_secs(30);

/// The limits of one function.
pub(crate) struct Limits {
    concurrency: Option<Arc<Semaphore>>,
    budget: Budget,
    key: BudgetKey,
    timeout: Option<Duration>,
}

/// A call admitted by [`Limits::admit`]: the concurrency permit lives as
/// long as this (for a stream, until it ends).
pub(crate) struct Admitted {
    _permit: Option<OwnedSemaphorePermit>,
    reserved_tokens: u64,
}

impl Limits {
    pub(crate) fn new(spec: &AiSpec) -> Self {
        Limits {
            concurrency: spec
                .max_concurrency
                .map(|n| Arc::new(Semaphore::new(n as usize))),
            budget: Budget::per_minute(spec.rpm, spec.tpm),
            key: BudgetKey {
                provider: spec.provider.to_owned(),
                model: spec.model.to_owned(),
            },
            timeout: spec.timeout,
        }
    }

    /// The body's timeout.
    pub(crate) fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Waits for a concurrency slot and takes one request and
    /// `prompt_tokens` from the budgets (waiting for them up to the
    /// timeout, or 30 s without one).
    pub(crate) async fn admit(&self, prompt_tokens: u64) -> Result<Admitted, AiError> {
        let permit = match &self.concurrency {
            // The semaphore is never closed.
            Some(semaphore) => Arc::clone(semaphore).acquire_owned().await.ok(),
            None => None,
        };
        if !self.budget.is_unlimited() {
            let wait = self.timeout.unwrap_or(DEFAULT_BUDGET_WAIT);
            match limiter()
                .reserve(&self.key, self.budget, prompt_tokens, wait)
                .await
            {
                Ok(wait) if wait.is_zero() => {}
                Ok(wait) => tokio::time::sleep(wait).await,
                Err(refused) => return Err(self.refusal(refused)),
            }
        }
        Ok(Admitted {
            _permit: permit,
            reserved_tokens: prompt_tokens,
        })
    }

    /// Charges what an answer used beyond the reservation.
    pub(crate) async fn settle(&self, admitted: &Admitted, used_tokens: u64) {
        if self.budget.tpm.is_some() && used_tokens > admitted.reserved_tokens {
            limiter()
                .charge(
                    &self.key,
                    self.budget,
                    used_tokens - admitted.reserved_tokens,
                )
                .await;
        }
    }

    fn refusal(&self, refused: OverBudget) -> AiError {
        match refused {
            OverBudget::TooLarge { tokens, tpm } => AiError::InvalidConfig {
                field: "tpm",
                expected: "a tokens-per-minute budget above what one call needs",
                found: format!("{tpm}, for a call of about {tokens} tokens"),
            },
            OverBudget::Wait(wait) => AiError::RateLimited {
                provider: self.key.provider.clone(),
                model: self.key.model.clone(),
                retry_after: Some(wait),
            },
        }
    }

    /// A timeout as the error the caller sees.
    pub(crate) fn timed_out(&self, after: Duration) -> AiError {
        AiError::Timeout {
            provider: self.key.provider.clone(),
            after,
        }
    }
}

/// The process's budget keeper: shared through Redis once Redis is
/// configured, in process before that (and without it).
fn limiter() -> Arc<dyn BudgetLimiter> {
    if let Some(shared) = crate::ai::budget::shared_limiter() {
        return shared;
    }
    static LOCAL: OnceLock<Arc<dyn BudgetLimiter>> = OnceLock::new();
    Arc::clone(LOCAL.get_or_init(|| Arc::new(LocalBudgets::new())))
}
