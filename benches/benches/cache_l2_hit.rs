//! An L2 hit: `#[fast_endpoint(tier = "l2")]` served from Redis against a
//! raw `fred` GET of the same bytes, in the same run, with one task and
//! with 2 worker threads × 64 tasks (hot key). The L2 path adds the key,
//! the single-flight slot, the record's decoding and the metrics.
//!
//! Needs a Redis: start one with `eval "$(scripts/services.sh start)"`
//! (sets REDIS_URL), then run
//! `cargo bench -p perf-benches --bench cache_l2_hit`; set
//! REDIS_MAX_CONNECTIONS to measure another pool size (default 1 here).

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::Criterion;
use fred::interfaces::{ClientLike, KeysInterface};
use perf_runtime::cache::KeyHasher;
use perf_runtime::prelude::*;

const TASKS: u64 = 64;
const CASES: &[&str] = &["fast_endpoint_l2", "fred_get"];

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Item {
    id: u64,
    name: String,
    payload: Vec<u8>,
}

#[fast_endpoint(cache_ttl = 3600, tier = "l2")]
async fn with_fast_endpoint(id: u64) -> Item {
    Item {
        id,
        name: format!("item-{id}"),
        payload: vec![id as u8; 80],
    }
}

/// `iters` calls over `tasks` tasks; the wall time.
fn run(
    runtime: &tokio::runtime::Runtime,
    case: &'static str,
    iters: u64,
    tasks: u64,
    raw: &Arc<(fred::prelude::Client, String)>,
) -> Duration {
    runtime.block_on(async move {
        let started = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|task| {
                let raw = Arc::clone(raw);
                tokio::spawn(async move {
                    let per_task = iters / tasks + u64::from(task < iters % tasks);
                    for _ in 0..per_task {
                        if case == "fred_get" {
                            let bytes: fred::bytes::Bytes =
                                raw.0.get(raw.1.as_str()).await.expect("GET");
                            std::hint::black_box(bytes.len());
                        } else {
                            std::hint::black_box(with_fast_endpoint(7).await.id);
                        }
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.await.expect("bench task");
        }
        started.elapsed()
    })
}

fn main() {
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| {
        panic!("REDIS_URL is not set: start Redis with `eval \"$(scripts/services.sh start)\"`")
    });
    let runtime = perf_benches::runtime(2);
    // The pool size to measure (REDIS_MAX_CONNECTIONS, 1 by default here).
    let pool: u32 = std::env::var("REDIS_MAX_CONNECTIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1);
    println!("Redis pool: {pool} connection(s)");
    let _perf = perf_benches::start(&runtime, |config| {
        config.redis_url(&redis).redis_max_connections(pool)
    });
    let raw = runtime.block_on(async {
        // The function's own record, read raw by the baseline.
        with_fast_endpoint(7).await;
        let namespace = concat!(module_path!(), "::with_fast_endpoint");
        let mut hasher = KeyHasher::new(namespace, 1);
        hasher.part(&7u64).expect("key");
        let name = hasher.finish().redis_name(namespace, 1);
        let client = fred::prelude::Builder::from_config(
            fred::prelude::Config::from_url(&redis).expect("REDIS_URL"),
        )
        .build()
        .expect("client");
        client.init().await.expect("connect");
        let bytes: Option<fred::bytes::Bytes> = client.get(name.as_str()).await.expect("GET");
        assert!(bytes.is_some(), "the function's record is in Redis");
        Arc::new((client, name))
    });

    let mut criterion = Criterion::default()
        .output_directory(&perf_benches::criterion_dir())
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let cells = [
        ("cache_l2_hit_one_task", 1),
        ("cache_l2_hit_64_tasks", TASKS),
    ];
    for (group_name, tasks) in cells {
        let mut group = criterion.benchmark_group(group_name);
        for case in CASES {
            group.bench_function(*case, |b| {
                b.iter_custom(|iters| run(&runtime, case, iters, tasks, &raw))
            });
        }
        group.finish();
    }
    criterion.final_summary();
    for (group_name, _) in cells {
        perf_benches::print_ratios(group_name, "fred_get", CASES);
    }
    if let Some(ns) = perf_benches::median_ns("cache_l2_hit_64_tasks", "fast_endpoint_l2") {
        println!(
            "\nfast_endpoint_l2 with {TASKS} tasks: {:.0} hits/s",
            1e9 / ns
        );
    }
    runtime.block_on(perf_runtime::shutdown());
}
