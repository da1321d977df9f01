//! `RedisBudgets` against a real Redis: two instances (two clients) share
//! one requests-per-minute budget in a burst, tokens are weighted, a
//! charge below zero delays the next call, buckets refill, keys expire, the
//! script's arithmetic matches `LocalBudgets` call for call, and a Redis
//! outage hands the decisions to the in-process budgets, counted.
//!
//! Waits are the ones the limiter returns; the only time measured is the
//! elapsed time that bounds how far a refill may have moved them.

mod support;

use std::time::Duration;

use fred::prelude::{Builder, Client, ClientLike, Config, KeysInterface};
use futures_util::future::join_all;
use perf_runtime::ai::{Budget, BudgetKey, BudgetLimiter, LocalBudgets, OverBudget, RedisBudgets};
use support::redis_server::RedisServer;
use tokio::time::Instant;

async fn client(url: &str) -> Client {
    let config = Config::from_url(url).expect("redis url parses");
    let client = Builder::from_config(config).build().expect("redis client");
    client.init().await.expect("redis connects");
    client
}

/// Two instances, each with a client of its own, as two processes would.
async fn two_instances() -> Option<(RedisBudgets, RedisBudgets, Client)> {
    let url = support::service_url("REDIS_URL")?;
    Some((
        RedisBudgets::new(client(&url).await),
        RedisBudgets::new(client(&url).await),
        client(&url).await,
    ))
}

/// A key no other run shares (keys outlive a run by minutes).
fn fresh(model: &str) -> BudgetKey {
    BudgetKey {
        provider: format!("test-{}", support::run_id()),
        model: model.to_owned(),
    }
}

fn wait_of(result: Result<Duration, OverBudget>) -> Duration {
    match result {
        Err(OverBudget::Wait(wait)) => wait,
        other => panic!("expected a refusal with a wait, found {other:?}"),
    }
}

/// `wait` is what `full` becomes after at most `elapsed` of refill (and
/// rounding up to the microsecond).
fn about(wait: Duration, full: Duration, elapsed: Duration) -> bool {
    wait <= full + Duration::from_micros(1) && wait + elapsed + Duration::from_micros(1) >= full
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_requests_per_minute_budget() {
    let Some((a, b, _)) = two_instances().await else {
        return;
    };
    let key = fresh("rpm");
    let budget = Budget::per_minute(Some(60), None);
    let started = Instant::now();
    let burst = join_all((0..100).map(|i| {
        let instance = if i % 2 == 0 { &a } else { &b };
        let key = key.clone();
        async move {
            (
                i % 2,
                instance.reserve(&key, budget, 0, Duration::ZERO).await,
            )
        }
    }))
    .await;
    let took = started.elapsed();
    let admitted: Vec<usize> = (0..2)
        .map(|side| {
            burst
                .iter()
                .filter(|(s, result)| *s == side && *result == Ok(Duration::ZERO))
                .count()
        })
        .collect();
    let refused: Vec<Duration> = burst
        .iter()
        .filter_map(|(_, result)| match result {
            Err(OverBudget::Wait(wait)) => Some(*wait),
            _ => None,
        })
        .collect();
    println!(
        "burst of 100 in {took:?}: admitted {} + {} without waiting, {} refused (longest wait {:?})",
        admitted[0],
        admitted[1],
        refused.len(),
        refused.iter().max()
    );
    let total = admitted[0] + admitted[1];
    // A request refills every second; the burst takes milliseconds.
    assert!(
        (60..=60 + took.as_secs() as usize).contains(&total),
        "one budget of 60 across both instances, admitted {total} in {took:?}"
    );
    assert!(admitted[0] > 0 && admitted[1] > 0, "both drew from it");
    assert_eq!(total + refused.len(), 100, "no other outcome");
    assert!(
        refused
            .iter()
            .all(|wait| *wait > Duration::ZERO && *wait <= Duration::from_secs(1)),
        "the next request is at most a second away: {refused:?}"
    );

    // Callers that wait go in turn, whichever instance they call.
    let minute = Duration::from_secs(60);
    let started = Instant::now();
    let first = a.reserve(&key, budget, 0, minute).await.expect("waits");
    let second = b.reserve(&key, budget, 0, minute).await.expect("waits");
    let elapsed = started.elapsed();
    println!("waiting callers: {first:?}, then {second:?}");
    assert!(first <= Duration::from_secs(1), "{first:?}");
    assert!(
        about(second - first, Duration::from_secs(1), elapsed),
        "a second apart: {first:?} {second:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_weighted_and_overuse_charged_across_instances() {
    let Some((a, b, raw)) = two_instances().await else {
        return;
    };
    let key = fresh("tpm");
    let budget = Budget::per_minute(None, Some(1000));
    let started = Instant::now();
    for instance in [&a, &b, &a] {
        assert_eq!(
            instance.reserve(&key, budget, 300, Duration::ZERO).await,
            Ok(Duration::ZERO)
        );
    }
    let fourth = wait_of(b.reserve(&key, budget, 300, Duration::ZERO).await);
    println!("tpm 1000: 3 x 300 admitted, the 4th waits {fourth:?}");
    assert!(
        about(fourth, Duration::from_secs(12), started.elapsed()),
        "200 tokens more at 1000 a minute: {fourth:?}"
    );
    assert_eq!(
        a.reserve(&key, budget, 1001, Duration::from_secs(3600))
            .await,
        Err(OverBudget::TooLarge {
            tokens: 1001,
            tpm: 1000
        })
    );

    // Charged below zero: the next call waits for the debt too.
    let key = fresh("charge");
    let started = Instant::now();
    assert_eq!(
        a.reserve(&key, budget, 100, Duration::ZERO).await,
        Ok(Duration::ZERO)
    );
    b.charge(&key, budget, 1500).await;
    let after_charge = wait_of(a.reserve(&key, budget, 100, Duration::ZERO).await);
    println!("charged 1500 over: the next 100 tokens wait {after_charge:?}");
    assert!(
        about(after_charge, Duration::from_secs(42), started.elapsed()),
        "-600 left, 700 to refill at 1000 a minute: {after_charge:?}"
    );
    let hour = Duration::from_secs(3600);
    let first = a.reserve(&key, budget, 100, hour).await.expect("waits");
    let second = b.reserve(&key, budget, 100, hour).await.expect("waits");
    assert!(
        about(second - first, Duration::from_secs(6), started.elapsed()),
        "100 tokens apart: {first:?} {second:?}"
    );
    // -800 now: kept until full again (108 s) and a minute more.
    let ttl: i64 = raw.pttl(RedisBudgets::redis_key(&key)).await.expect("PTTL");
    println!("key {} expires in {ttl} ms", RedisBudgets::redis_key(&key));
    assert!((160_000..=168_000).contains(&ttl), "{ttl}");
    let idle = fresh("idle");
    a.reserve(&idle, budget, 1, Duration::ZERO)
        .await
        .expect("room");
    let ttl: i64 = raw
        .pttl(RedisBudgets::redis_key(&idle))
        .await
        .expect("PTTL");
    assert!((110_000..=120_000).contains(&ttl), "two minutes: {ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_refill_with_time() {
    let Some((a, b, _)) = two_instances().await else {
        return;
    };
    // 100 tokens a second.
    let budget = Budget::per_minute(None, Some(6000));
    let key = fresh("refill-tokens");
    assert_eq!(
        a.reserve(&key, budget, 6000, Duration::ZERO).await,
        Ok(Duration::ZERO)
    );
    let wait = wait_of(b.reserve(&key, budget, 50, Duration::ZERO).await);
    assert!(wait <= Duration::from_millis(500), "{wait:?}");
    tokio::time::sleep(wait).await;
    assert_eq!(
        b.reserve(&key, budget, 50, Duration::ZERO).await,
        Ok(Duration::ZERO),
        "refilled after the wait it named"
    );

    // Two requests a second.
    let budget = Budget::per_minute(Some(120), None);
    let key = fresh("refill-requests");
    let drained = join_all((0..120).map(|i| {
        let instance = if i % 2 == 0 { &a } else { &b };
        let key = key.clone();
        async move { instance.reserve(&key, budget, 0, Duration::ZERO).await }
    }))
    .await;
    assert!(drained.iter().all(|result| *result == Ok(Duration::ZERO)));
    let wait = wait_of(a.reserve(&key, budget, 0, Duration::ZERO).await);
    assert!(wait <= Duration::from_millis(500), "{wait:?}");
    tokio::time::sleep(wait).await;
    assert_eq!(
        b.reserve(&key, budget, 0, Duration::ZERO).await,
        Ok(Duration::ZERO)
    );
}

/// One call of the sequence both limiters run.
enum Step {
    Reserve(u64, Duration),
    Charge(u64),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_script_computes_what_local_budgets_compute() {
    let Some((redis, _, _)) = two_instances().await else {
        return;
    };
    let local = LocalBudgets::new();
    let key = fresh("same-math");
    let budget = Budget::per_minute(Some(6), Some(1000));
    let (now, minute) = (Duration::ZERO, Duration::from_secs(60));
    let steps = [
        Step::Reserve(300, now),
        Step::Reserve(300, now),
        Step::Reserve(300, now),
        Step::Reserve(300, now),
        Step::Reserve(300, minute),
        Step::Charge(400),
        Step::Reserve(100, now),
        Step::Reserve(100, minute),
        Step::Reserve(1001, minute),
        Step::Reserve(0, now),
        Step::Reserve(0, minute),
        Step::Reserve(0, minute),
        Step::Reserve(0, now),
        Step::Charge(50),
        Step::Reserve(50, minute * 2),
    ];
    let started = Instant::now();
    for (i, step) in steps.iter().enumerate() {
        let (from_redis, from_local) = match *step {
            Step::Reserve(tokens, max_wait) => (
                redis.reserve(&key, budget, tokens, max_wait).await,
                local.reserve(&key, budget, tokens, max_wait).await,
            ),
            Step::Charge(tokens) => {
                redis.charge(&key, budget, tokens).await;
                local.charge(&key, budget, tokens).await;
                continue;
            }
        };
        // The two ran a little apart in time: at most the elapsed time of
        // refill separates them.
        let tolerance = started.elapsed() + Duration::from_micros(2);
        println!("step {i}: redis {from_redis:?}, local {from_local:?}");
        let close = |x: Duration, y: Duration| x.abs_diff(y) <= tolerance;
        let same = match (from_redis, from_local) {
            (Ok(x), Ok(y)) => close(x, y),
            (Err(OverBudget::Wait(x)), Err(OverBudget::Wait(y))) => close(x, y),
            (x, y) => x == y,
        };
        assert!(
            same,
            "step {i}: redis {from_redis:?}, local {from_local:?} (tolerance {tolerance:?})"
        );
    }
}

/// Only this test starts the global runtime (one per process).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_falls_back_to_in_process_budgets() {
    let Some(url) = support::service_url("REDIS_URL") else {
        return;
    };
    assert!(
        RedisBudgets::from_global().is_none(),
        "no runtime, no Redis"
    );
    let config = perf_runtime::PerfConfig::builder()
        .redis_url(url)
        .enable_monitoring(false)
        .build()
        .expect("config");
    let perf = perf_runtime::init(config).await.expect("init");
    let global = RedisBudgets::from_global().expect("the runtime's Redis");
    let key = fresh("global");
    let budget = Budget::per_minute(Some(2), None);
    assert_eq!(
        global.reserve(&key, budget, 0, Duration::ZERO).await,
        Ok(Duration::ZERO)
    );

    let Some(mut server) = RedisServer::start() else {
        perf.shutdown().await;
        return;
    };
    let budgets = RedisBudgets::new(client(&server.url()).await);
    let key = fresh("outage");
    assert_eq!(
        budgets.reserve(&key, budget, 0, Duration::ZERO).await,
        Ok(Duration::ZERO),
        "through Redis"
    );
    server.kill();
    let errors = |kind: &str| {
        support::sample(
            &perf.render_prometheus().unwrap_or_default(),
            "perf_ai_budget_backend_errors_total",
            &[("kind", kind)],
        )
        .unwrap_or(0.0)
    };
    // The in-process budget starts full and limits alone.
    let during: Vec<_> =
        join_all((0..3).map(|_| budgets.reserve(&key, budget, 0, Duration::ZERO))).await;
    budgets
        .charge(&key, Budget::per_minute(None, Some(100)), 10)
        .await;
    println!(
        "Redis down: {during:?}; backend errors: reserve {}, charge {}",
        errors("reserve"),
        errors("charge")
    );
    assert_eq!(
        during.iter().filter(|r| **r == Ok(Duration::ZERO)).count(),
        2,
        "2 a minute, kept in process: {during:?}"
    );
    let refused = during
        .iter()
        .find_map(|r| match r {
            Err(OverBudget::Wait(wait)) => Some(*wait),
            _ => None,
        })
        .expect("the third refused");
    assert!(refused > Duration::from_secs(29) && refused <= Duration::from_secs(30));
    assert!(errors("reserve") >= 3.0, "failures counted");
    assert!(errors("charge") >= 1.0, "failures counted");
    perf.shutdown().await;
}
