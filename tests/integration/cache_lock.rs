//! `#[fast_endpoint(lock = ..)]`: cold misses on several processes sharing
//! Redis wait for one computation. The test binary re-runs itself as the
//! other processes (`lock_child`), which all call at the same instant.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use perf_runtime::cache::KeyHasher;
use perf_runtime::prelude::*;
use support::{redis_cli, run_id};

/// How long each body takes: far longer than the processes' spread at the
/// start, so without the lock every process computes.
const BODY: Duration = Duration::from_millis(1000);
const PROCESSES: usize = 3;
const CALLS_PER_PROCESS: usize = 10;

#[fast_endpoint(cache_ttl = 60, lock = "10s")]
async fn locked(run: u64) -> u64 {
    count_run("locked", run).await;
    tokio::time::sleep(BODY).await;
    run * 2
}

#[fast_endpoint(cache_ttl = 60)]
async fn unlocked(run: u64) -> u64 {
    count_run("unlocked", run).await;
    tokio::time::sleep(BODY).await;
    run * 2
}

#[fast_endpoint(cache_ttl = 60, lock = "1s")]
async fn held_elsewhere(run: u64) -> u64 {
    run * 3
}

/// Body runs are counted in Redis, across every process.
fn runs_key(function: &str, run: u64) -> String {
    format!("perf-test:lock-runs:{function}:{run}")
}

async fn count_run(function: &str, run: u64) {
    let redis = std::env::var("PERF_LOCK_REDIS").expect("set by the parent");
    let key = runs_key(function, run);
    tokio::task::spawn_blocking(move || redis_cli(&redis, &["INCR", &key]))
        .await
        .expect("redis-cli");
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

async fn start(redis: &str) {
    let config = PerfConfig::builder()
        .redis_url(redis)
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    perf_runtime::init(config).await.expect("init");
}

/// One of the processes: waits for the shared start instant, then calls
/// the function from many tasks at once and prints what they got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_child() {
    let Ok(redis) = std::env::var("PERF_LOCK_REDIS") else {
        return; // Only runs when spawned by the parent test.
    };
    let var = |name: &str| std::env::var(name).expect("set by the parent");
    let run: u64 = var("PERF_LOCK_RUN").parse().unwrap();
    let start_at: u64 = var("PERF_LOCK_START").parse().unwrap();
    let function = var("PERF_LOCK_FUNCTION");
    start(&redis).await;
    tokio::time::sleep(Duration::from_millis(start_at.saturating_sub(unix_ms()))).await;
    let calls: Vec<_> = (0..CALLS_PER_PROCESS)
        .map(|_| {
            let function = function.clone();
            tokio::spawn(async move {
                match function.as_str() {
                    "locked" => locked(run).await,
                    _ => unlocked(run).await,
                }
            })
        })
        .collect();
    for call in calls {
        println!("LOCK-CHILD value={}", call.await.unwrap());
    }
    perf_runtime::shutdown().await;
}

#[test]
fn processes_wait_for_one_computation_under_the_lock() {
    let Some(redis) = support::service_url("REDIS_URL") else {
        return;
    };
    let run = run_id();
    // Far enough ahead for every process to have started and initialised.
    let start_at = unix_ms() + 3000;
    let children: Vec<_> = ["locked", "unlocked"]
        .iter()
        .flat_map(|function| (0..PROCESSES).map(move |_| *function))
        .map(|function| {
            let child = std::process::Command::new(std::env::current_exe().unwrap())
                .args(["lock_child", "--exact", "--nocapture", "--test-threads=1"])
                .env("PERF_LOCK_REDIS", &redis)
                .env("PERF_LOCK_RUN", run.to_string())
                .env("PERF_LOCK_START", start_at.to_string())
                .env("PERF_LOCK_FUNCTION", function)
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("spawn a child process");
            (function, child)
        })
        .collect();
    for (function, child) in children {
        let output = child.wait_with_output().expect("child output");
        assert!(output.status.success(), "{function} child failed");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let values: Vec<&str> = stdout
            .lines()
            .filter_map(|line| line.split("LOCK-CHILD value=").nth(1))
            .collect();
        assert_eq!(values.len(), CALLS_PER_PROCESS, "{function}: {stdout}");
        let expected = (run * 2).to_string();
        assert!(values.iter().all(|v| v.trim() == expected), "{stdout}");
    }
    let runs = |function: &str| -> u64 {
        redis_cli(&redis, &["GET", &runs_key(function, run)])
            .trim()
            .parse()
            .unwrap_or(0)
    };
    let (locked_runs, unlocked_runs) = (runs("locked"), runs("unlocked"));
    println!(
        "{PROCESSES} processes × {CALLS_PER_PROCESS} calls: body runs with the lock {locked_runs}, without {unlocked_runs}"
    );
    assert_eq!(locked_runs, 1, "with the lock, one body run in all");
    // The control shows the processes really overlapped: without the lock
    // each of them computes (single-flight alone is per process).
    assert!(
        unlocked_runs > 1,
        "the processes did not overlap, so the test proved nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_by_a_dead_instance_delays_a_call_by_its_time_at_most() {
    let Some(redis) = support::service_url("REDIS_URL") else {
        return;
    };
    start(&redis).await;
    let run = run_id();
    // The lock of this call's key, as a crashed instance would leave it.
    let namespace = concat!(module_path!(), "::held_elsewhere");
    let mut hasher = KeyHasher::new(namespace, 1);
    hasher.part(&run).unwrap();
    let lock = format!("{}:lock", hasher.finish().redis_name(namespace, 1));
    redis_cli(&redis, &["SET", &lock, "someone-else", "PX", "60000"]);

    let started = Instant::now();
    assert_eq!(held_elsewhere(run).await, run * 3);
    let waited = started.elapsed();
    // It waited for the other instance (a lower bound, not a timing goal),
    // then computed itself and left the other holder's lock alone.
    assert!(waited >= Duration::from_secs(1), "waited only {waited:?}");
    assert_eq!(redis_cli(&redis, &["GET", &lock]).trim(), "someone-else");
    perf_runtime::shutdown().await;
}
