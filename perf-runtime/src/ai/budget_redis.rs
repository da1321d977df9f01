//! [`RedisBudgets`]: the requests- and tokens-per-minute budgets kept in
//! Redis, so every instance of a service draws on one budget per provider
//! account, as the provider counts it.
//!
//! The semantics are those of [`LocalBudgets`]: two token buckets per
//! provider and model (requests and tokens), each holding a minute's budget
//! and refilling at a sixtieth of it per second; a reservation waits in turn
//! up to `max_wait`, else [`OverBudget::Wait`]; a call larger than the
//! tokens-per-minute budget is [`OverBudget::TooLarge`]; a charge may take a
//! bucket below zero.
//!
//! Each call is one Lua script (`SCRIPT`), so the read, the refill and the
//! write are atomic however many instances call at once. The clock is
//! Redis's `TIME`, read inside the script: instances whose clocks disagree
//! still agree on the buckets. The script goes by `EVALSHA` (see
//! `backends::redis_script`), falling back to `EVAL` when the server
//! answers `NOSCRIPT` (after a restart or a failover).
//!
//! The key of a provider and model is `perf:ai:budget:{hash}`, the hash
//! being the hex XXH3 of `provider + "\0" + model`: fixed length whatever
//! the names (they are not secret, but a model named by a caller could be
//! long). A key expires once its buckets would be full again and a minute
//! more has passed (at least two minutes), so idle keys vanish and a fresh
//! key means exactly what an expired one did.
//!
//! When Redis fails (an error, or no answer within `REDIS_TIMEOUT`), the
//! call is decided by a [`LocalBudgets`] kept inside instead: a Redis outage
//! neither stops the calls nor lets them hammer the provider without limit.
//! During an outage each instance limits itself alone, so `n` instances may
//! together send up to `n` budgets. Failures are counted in
//! `perf_ai_budget_backend_errors_total` (by `kind`: reserve, charge) and
//! logged at most once every 10 seconds.

use std::fmt;
use std::time::Duration;

use fred::prelude::Client;
use fred::types::Value;
use xxhash_rust::xxh3::xxh3_64;

use super::budget::{Budget, BudgetKey, BudgetLimiter, LocalBudgets, OverBudget};

/// How long a script may take before the call is decided in process: as
/// long as the cache gives Redis.
const REDIS_TIMEOUT: Duration = Duration::from_millis(250);

/// The prefix of the budget keys.
const KEY_PREFIX: &str = "perf:ai:budget:";

const BACKEND_ERRORS: &str = "perf_ai_budget_backend_errors_total";

/// The script of every call. `KEYS[1]`: the budget's key. `ARGV`: the
/// operation (`reserve` or `charge`), rpm and tpm (-1: unlimited), the
/// tokens, the longest wait the caller takes (microseconds), and the
/// shortest time to live of the key (milliseconds).
///
/// The hash holds `r` (requests left), `t` (tokens left; both below zero
/// when reserved ahead or charged over) and `at` (microseconds of `TIME`
/// of the last refill). `reserve` answers `{1, wait}` when it took the
/// request and the tokens, `{0, wait}` when the wait exceeded the longest
/// one and it took nothing (waits in microseconds, rounded up); `charge`
/// answers `{1, 0}`.
const SCRIPT: &str = r#"
if redis.replicate_commands then redis.replicate_commands() end
local key = KEYS[1]
local op = ARGV[1]
local rpm = tonumber(ARGV[2])
local tpm = tonumber(ARGV[3])
local tokens = tonumber(ARGV[4])
local max_wait = tonumber(ARGV[5])
local min_ttl = tonumber(ARGV[6])
local minute = 60000000

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local state = redis.call('HMGET', key, 'r', 't', 'at')
local requests = tonumber(state[1])
local left = tonumber(state[2])
local at = tonumber(state[3]) or now
-- A clock that stepped back refills nothing until it catches up.
local elapsed = math.max(now - at, 0)
at = math.max(at, now)
if rpm >= 0 then
  requests = math.min((requests or rpm) + rpm * elapsed / minute, rpm)
end
if tpm >= 0 then
  left = math.min((left or tpm) + tpm * elapsed / minute, tpm)
end

local wait = 0
if op == 'reserve' then
  if rpm > 0 and requests < 1 then
    wait = (1 - requests) / rpm * minute
  end
  if tpm > 0 and left < tokens then
    wait = math.max(wait, (tokens - left) / tpm * minute)
  end
  if wait > max_wait then
    return {0, math.ceil(wait)}
  end
  if rpm >= 0 then requests = requests - 1 end
  if tpm >= 0 then left = left - tokens end
else
  if tpm >= 0 then left = left - tokens end
end

-- Kept until both buckets are full again, and a minute more.
local full_in = 0
if rpm > 0 then full_in = math.max(full_in, (rpm - requests) / rpm * minute) end
if tpm > 0 then full_in = math.max(full_in, (tpm - left) / tpm * minute) end
local ttl = math.max(min_ttl, math.ceil(full_in / 1000) + 60000)

local fields = {'at', string.format('%d', at)}
if rpm >= 0 then
  table.insert(fields, 'r')
  table.insert(fields, string.format('%.17g', requests))
end
if tpm >= 0 then
  table.insert(fields, 't')
  table.insert(fields, string.format('%.17g', left))
end
redis.call('HSET', key, unpack(fields))
redis.call('PEXPIRE', key, ttl)
return {1, math.ceil(wait)}
"#;

/// The shortest time to live of a key: two minutes.
const MIN_TTL_MS: u64 = 120_000;

/// A [`BudgetLimiter`] whose buckets live in Redis, shared by every
/// instance on the same Redis (see the module documentation for the key,
/// the script and what happens when Redis fails).
///
/// ```no_run
/// use std::sync::Arc;
/// use perf_runtime::ai::{Provider, ProviderConfig, RedisBudgets};
/// use perf_runtime::http::HttpClient;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ProviderConfig::builder("openai", "https://api.openai.com/v1").build()?;
/// let http = HttpClient::builder().build()?;
/// // `Provider::new` does this by itself once the runtime has Redis; by
/// // hand, for a Redis of another client:
/// let provider = match RedisBudgets::from_global() {
///     // Every instance on this Redis shares the account's budget.
///     Some(budgets) => Provider::with_limiter(config, http, Arc::new(budgets)),
///     // No Redis configured: budgets per process.
///     None => Provider::new(config, http),
/// };
/// # let _ = provider;
/// # Ok(())
/// # }
/// ```
pub struct RedisBudgets {
    client: Client,
    /// Decides when Redis cannot.
    fallback: LocalBudgets,
}

impl RedisBudgets {
    /// Budgets kept through `client`, which should be connected (or
    /// connecting: calls made before it is up are decided in process, and
    /// counted as backend errors). Instances share a budget when their
    /// clients reach the same Redis, whatever the client.
    pub fn new(client: Client) -> Self {
        RedisBudgets {
            client,
            fallback: LocalBudgets::new(),
        }
    }

    /// Budgets on the runtime's Redis connection (`REDIS_URL`), or `None`
    /// when Redis is not configured or not connected.
    pub fn from_global() -> Option<Self> {
        crate::global().redis_client().map(RedisBudgets::new)
    }

    /// The Redis key holding `key`'s buckets: `perf:ai:budget:` and the hex
    /// XXH3 of the provider, a NUL and the model. For operators looking at
    /// Redis (`HGETALL` shows `r`, `t` and `at`).
    pub fn redis_key(key: &BudgetKey) -> String {
        let mut bytes = Vec::with_capacity(key.provider.len() + 1 + key.model.len());
        bytes.extend_from_slice(key.provider.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(key.model.as_bytes());
        format!("{KEY_PREFIX}{:016x}", xxh3_64(&bytes))
    }

    /// Runs the script: `EVALSHA` when its hash is known, `EVAL` when not
    /// or when the server lost it (`NOSCRIPT`).
    async fn run(&self, key: &BudgetKey, args: Vec<Value>) -> Result<(bool, u64), String> {
        let redis_key = Self::redis_key(key);
        let call = crate::backends::redis_script::run(&self.client, SCRIPT, &redis_key, args);
        let answer = match tokio::time::timeout(REDIS_TIMEOUT, call).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => return Err(error.to_string()),
            Err(_) => {
                return Err(format!("no answer within {} ms", REDIS_TIMEOUT.as_millis()));
            }
        };
        parse_answer(answer)
    }

    fn failed(&self, kind: &'static str, reason: &str) {
        metrics::counter!(BACKEND_ERRORS, "kind" => kind).increment(1);
        rate_limited_warn(kind, reason);
    }
}

/// The script's `{admitted, wait}` answer.
fn parse_answer(answer: Value) -> Result<(bool, u64), String> {
    let unexpected = |answer: &Value| format!("the budget script answered {answer:?}");
    let Value::Array(items) = &answer else {
        return Err(unexpected(&answer));
    };
    match items.as_slice() {
        [Value::Integer(admitted), Value::Integer(wait)] if *wait >= 0 => {
            Ok((*admitted == 1, *wait as u64))
        }
        _ => Err(unexpected(&answer)),
    }
}

/// The script's arguments; -1 stands for an unlimited budget.
fn args(op: &str, budget: Budget, tokens: u64, max_wait: Duration) -> Vec<Value> {
    let limit = |limit: Option<u64>| limit.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
    vec![
        Value::from(op),
        Value::Integer(limit(budget.rpm.map(u64::from))),
        Value::Integer(limit(budget.tpm)),
        Value::Integer(i64::try_from(tokens).unwrap_or(i64::MAX)),
        Value::Integer(i64::try_from(max_wait.as_micros()).unwrap_or(i64::MAX)),
        Value::Integer(MIN_TTL_MS as i64),
    ]
}

#[async_trait::async_trait]
impl BudgetLimiter for RedisBudgets {
    async fn reserve(
        &self,
        key: &BudgetKey,
        budget: Budget,
        tokens: u64,
        max_wait: Duration,
    ) -> Result<Duration, OverBudget> {
        if let Some(decided) = super::budget::decided_without_buckets(budget, tokens) {
            return decided;
        }
        match self
            .run(key, args("reserve", budget, tokens, max_wait))
            .await
        {
            Ok((true, wait)) => Ok(Duration::from_micros(wait)),
            Ok((false, wait)) => Err(OverBudget::Wait(Duration::from_micros(wait))),
            Err(reason) => {
                self.failed("reserve", &reason);
                self.fallback.reserve(key, budget, tokens, max_wait).await
            }
        }
    }

    async fn charge(&self, key: &BudgetKey, budget: Budget, tokens: u64) {
        if budget.tpm.is_none() || tokens == 0 {
            return;
        }
        if let Err(reason) = self
            .run(key, args("charge", budget, tokens, Duration::ZERO))
            .await
        {
            self.failed("charge", &reason);
            self.fallback.charge(key, budget, tokens).await;
        }
    }
}

impl fmt::Debug for RedisBudgets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBudgets")
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

/// Logs a Redis failure of the budgets at most once every 10 s, with how
/// many were left out since.
fn rate_limited_warn(kind: &'static str, reason: &str) {
    static THROTTLE: crate::monitor::throttle::Throttle = crate::monitor::throttle::Throttle::new();
    if let Some(suppressed) = THROTTLE.admit() {
        tracing::warn!(
            kind,
            reason,
            suppressed,
            "AI budgets: Redis failed; this instance limits its calls alone until it is back"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hash_the_provider_and_the_model_apart() {
        let key = |provider: &str, model: &str| BudgetKey {
            provider: provider.into(),
            model: model.into(),
        };
        let a = RedisBudgets::redis_key(&key("openai", "gpt-4o"));
        assert_eq!(a.len(), KEY_PREFIX.len() + 16);
        assert!(a.starts_with("perf:ai:budget:"));
        assert!(a[KEY_PREFIX.len()..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, RedisBudgets::redis_key(&key("openai", "gpt-4o")));
        // The separator keeps "ab" + "c" apart from "a" + "bc".
        assert_ne!(
            RedisBudgets::redis_key(&key("ab", "c")),
            RedisBudgets::redis_key(&key("a", "bc"))
        );
    }

    #[test]
    fn unlimited_parts_go_as_minus_one_and_answers_are_checked() {
        let sent = args(
            "reserve",
            Budget::per_minute(None, Some(1000)),
            300,
            Duration::from_millis(1500),
        );
        assert_eq!(
            sent,
            [
                Value::from("reserve"),
                Value::Integer(-1),
                Value::Integer(1000),
                Value::Integer(300),
                Value::Integer(1_500_000),
                Value::Integer(120_000),
            ]
        );
        assert_eq!(
            parse_answer(Value::Array(vec![Value::Integer(1), Value::Integer(20)])),
            Ok((true, 20))
        );
        assert!(parse_answer(Value::Integer(1)).is_err());
        assert!(parse_answer(Value::Array(vec![Value::Integer(1), Value::Integer(-2)])).is_err());
    }
}
