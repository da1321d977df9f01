//! Cancelled calls never hand their reply to another call (the failure
//! behind the ChatGPT incident of March 2023): 100,000 calls over 2,000 keys,
//! one in ten cut off by a timeout of 0–20 ms at a random point, while Redis
//! sits behind a proxy that adds 0–5 ms of jitter. Every value carries its
//! key, so a crossed reply is caught.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use perf_runtime::prelude::*;
use support::fault_proxy::{Fault, FaultProxy};

/// 100,032: a multiple of the task count.
const CALLS: u64 = 100_032;
const KEYS: u64 = 2_000;
const TASKS: u64 = 64;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Tagged {
    key: u64,
    check: u64,
}

fn check_of(key: u64) -> u64 {
    key.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xDEAD_BEEF
}

/// L2 only: every call goes through Redis.
#[fast_endpoint(cache_ttl = 60, tier = "l2")]
async fn tagged(key: u64, run: u64) -> Tagged {
    let _ = run;
    tokio::task::yield_now().await;
    Tagged {
        key,
        check: check_of(key),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_calls_never_cross_replies() {
    let Some(redis) = support::service_url("REDIS_URL") else {
        return;
    };
    let port: u16 = redis
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let proxy = FaultProxy::start(([127, 0, 0, 1], port).into()).await;
    proxy.set(Fault::Latency {
        base: Duration::ZERO,
        jitter: Duration::from_millis(5),
    });
    let config = PerfConfig::builder()
        .redis_url(format!("redis://127.0.0.1:{}/0", proxy.addr().port()))
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    let _perf = perf_runtime::init(config).await.expect("init");
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;

    let crossed = Arc::new(AtomicU64::new(0));
    let cancelled = Arc::new(AtomicU64::new(0));
    let completed = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let (crossed, cancelled, completed) =
                (crossed.clone(), cancelled.clone(), completed.clone());
            tokio::spawn(async move {
                let mut state = task.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
                for _ in 0..CALLS / TASKS {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let key = state % KEYS;
                    let result = if state % 10 == 0 {
                        let limit = Duration::from_micros((state >> 8) % 20_000);
                        match tokio::time::timeout(limit, tagged(key, run)).await {
                            Ok(value) => Some(value),
                            Err(_) => {
                                cancelled.fetch_add(1, Ordering::Relaxed);
                                None
                            }
                        }
                    } else {
                        Some(tagged(key, run).await)
                    };
                    if let Some(value) = result {
                        completed.fetch_add(1, Ordering::Relaxed);
                        if value
                            != (Tagged {
                                key,
                                check: check_of(key),
                            })
                        {
                            crossed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("no call panicked");
    }
    let (crossed, cancelled, completed) = (
        crossed.load(Ordering::Relaxed),
        cancelled.load(Ordering::Relaxed),
        completed.load(Ordering::Relaxed),
    );
    eprintln!(
        "figures: {completed} calls completed, {cancelled} cancelled, {crossed} crossed replies"
    );
    assert!(cancelled > 0, "the test cancelled calls");
    assert_eq!(completed + cancelled, CALLS);
    assert_eq!(crossed, 0, "a reply reached the wrong call");
    perf_runtime::shutdown().await;
}
