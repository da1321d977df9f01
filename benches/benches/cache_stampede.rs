//! A stampede: 1,000 callers on one cold key whose body sleeps 10 ms.
//! `#[fast_endpoint]` (tier `l1`) against moka's `get_with` (which also runs
//! the body once) and `cached`'s `#[concurrent_cached]` (which does not), in
//! the same run. Each iteration uses a new key, so every stampede is cold;
//! the time is the wall time until all 1,000 callers have their value.
//!
//! Run with: `cargo bench -p perf-benches --bench cache_stampede`

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cached::proc_macro::concurrent_cached;
use criterion::Criterion;
use perf_runtime::prelude::*;

const CALLERS: u64 = 1000;
const BODY: Duration = Duration::from_millis(10);
const CASES: &[&str] = &["fast_endpoint", "moka_get_with", "concurrent_cached"];

/// Body runs per case, to report alongside the times.
static RUNS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
/// Keys already used: each stampede takes a new one.
static NEXT_KEY: AtomicU64 = AtomicU64::new(0);

async fn body(case: usize, key: u64) -> u64 {
    RUNS[case].fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(BODY).await;
    key * 2
}

#[fast_endpoint(cache_ttl = 3600, tier = "l1", max_entries = 100000)]
async fn with_fast_endpoint(key: u64) -> u64 {
    body(0, key).await
}

static MOKA: LazyLock<moka::future::Cache<u64, u64>> =
    LazyLock::new(|| moka::future::Cache::builder().max_capacity(100_000).build());

async fn with_get_with(key: u64) -> u64 {
    MOKA.get_with(key, body(1, key)).await
}

#[concurrent_cached]
async fn with_concurrent_cached(key: u64) -> u64 {
    body(2, key).await
}

async fn call(case: usize, key: u64) -> u64 {
    match case {
        0 => with_fast_endpoint(key).await,
        1 => with_get_with(key).await,
        _ => with_concurrent_cached(key).await,
    }
}

/// `iters` stampedes, one after the other, each on a fresh key.
fn run(runtime: &tokio::runtime::Runtime, case: usize, iters: u64) -> Duration {
    runtime.block_on(async move {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let callers: Vec<_> = (0..CALLERS)
                .map(|_| tokio::spawn(call(case, key)))
                .collect();
            for caller in callers {
                assert_eq!(caller.await.expect("caller"), key * 2);
            }
            total += started.elapsed();
        }
        total
    })
}

fn main() {
    let (runtime, _perf) = perf_benches::service_runtime(2);

    let mut criterion = Criterion::default()
        .output_directory(&perf_benches::criterion_dir())
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    let group_name = "cache_stampede_1000_callers";
    let mut group = criterion.benchmark_group(group_name);
    let mut stampedes = [0u64; 3];
    for (case, name) in CASES.iter().enumerate() {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                stampedes[case] += iters;
                run(&runtime, case, iters)
            })
        });
    }
    group.finish();
    criterion.final_summary();
    perf_benches::print_ratios(group_name, "moka_get_with", CASES);
    println!("\nbody runs per stampede of {CALLERS} callers on one cold key:\n");
    for (case, name) in CASES.iter().enumerate() {
        let runs = RUNS[case].load(Ordering::Relaxed) as f64;
        println!("| {name} | {:.1} |", runs / stampedes[case].max(1) as f64);
    }
    runtime.block_on(perf_runtime::shutdown());
}
