//! An L1 hit, `#[fast_endpoint]` against its peers in the same run: raw
//! moka `get` with a prebuilt key, a naive `get_with` wrapper, and the
//! `cached` crate's `#[cached]` and `#[concurrent_cached]`, on the same
//! function (key from a `(u64, String)` pair, a 104-byte value).
//!
//! Four cells: one task or 2 worker threads × 64 tasks, one hot key or
//! 10,000 keys. Each case's time is per call (wall time / calls). The
//! runtime is initialised (Prometheus recorder installed) as in a service.
//!
//! Run with: `cargo bench -p perf-benches --bench cache_hit`

use std::hint::black_box;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use cached::proc_macro::{cached, concurrent_cached};
use criterion::Criterion;
use perf_runtime::prelude::*;

const KEYS: u64 = 10_000;
const TASKS: u64 = 64;
const CASES: &[&str] = &[
    "fast_endpoint",
    "moka_get",
    "moka_get_with",
    "cached",
    "concurrent_cached",
];

#[derive(Clone)]
struct Item {
    id: u64,
    payload: [u8; 96],
}

fn compute(id: u64) -> Item {
    Item {
        id,
        payload: [id as u8; 96],
    }
}

#[fast_endpoint(cache_ttl = 3600, tier = "l1", max_entries = 20000)]
async fn with_fast_endpoint(id: u64, name: String) -> Item {
    let _ = name;
    compute(id)
}

static MOKA: LazyLock<moka::future::Cache<(u64, String), Item>> =
    LazyLock::new(|| moka::future::Cache::builder().max_capacity(20_000).build());

async fn with_get_with(id: u64, name: String) -> Item {
    MOKA.get_with((id, name), async move { compute(id) }).await
}

#[cached]
async fn with_cached(id: u64, name: String) -> Item {
    let _ = name;
    compute(id)
}

#[concurrent_cached]
async fn with_concurrent_cached(id: u64, name: String) -> Item {
    let _ = name;
    compute(id)
}

async fn call(case: &str, id: u64, name: &str, prebuilt: &(u64, String)) -> Item {
    match case {
        "fast_endpoint" => with_fast_endpoint(id, name.to_owned()).await,
        "moka_get" => MOKA.get(prebuilt).await.expect("warmed"),
        "moka_get_with" => with_get_with(id, name.to_owned()).await,
        "cached" => with_cached(id, name.to_owned()).await,
        _ => with_concurrent_cached(id, name.to_owned()).await,
    }
}

fn keys() -> Vec<(u64, String)> {
    (0..KEYS)
        .map(|id| (id, format!("tenant-{id:05}")))
        .collect()
}

/// Runs `iters` calls spread over `tasks` tasks and returns the wall time.
fn run(
    runtime: &tokio::runtime::Runtime,
    case: &'static str,
    iters: u64,
    tasks: u64,
    spread: u64,
) -> Duration {
    runtime.block_on(async move {
        let keys = std::sync::Arc::new(keys());
        let started = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|task| {
                let keys = keys.clone();
                tokio::spawn(async move {
                    let per_task = iters / tasks + u64::from(task < iters % tasks);
                    for i in 0..per_task {
                        let index = ((i * 7919 + task * 104_729) % spread) as usize;
                        let (id, name) = &keys[index];
                        let item = call(case, *id, name, &keys[index]).await;
                        black_box((item.id, item.payload[0]));
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
    let (runtime, _perf) = perf_benches::service_runtime(2);
    // Warm every cache with every key.
    runtime.block_on(async {
        for (id, name) in keys() {
            for case in CASES {
                if *case == "moka_get" {
                    MOKA.insert((id, name.clone()), compute(id)).await;
                } else {
                    call(case, id, &name, &(id, name.clone())).await;
                }
            }
        }
    });

    let mut criterion = Criterion::default()
        .output_directory(&perf_benches::criterion_dir())
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let cells = [
        ("cache_hit_one_task_hot_key", 1, 1),
        ("cache_hit_one_task_10k_keys", 1, KEYS),
        ("cache_hit_64_tasks_hot_key", TASKS, 1),
        ("cache_hit_64_tasks_10k_keys", TASKS, KEYS),
    ];
    for (group_name, tasks, spread) in cells {
        let mut group = criterion.benchmark_group(group_name);
        for case in CASES {
            group.bench_function(*case, |b| {
                b.iter_custom(|iters| run(&runtime, case, iters, tasks, spread))
            });
        }
        group.finish();
    }
    criterion.final_summary();
    for (group_name, _, _) in cells {
        perf_benches::print_ratios(group_name, "moka_get", CASES);
    }
    runtime.block_on(perf_runtime::shutdown());
}
