//! `#[fast_endpoint]` end to end, against the real Redis of the test
//! harness: keys, TTLs, modes, invalidation, single-flight, an L2 hit and a
//! broadcast invalidation seen by a second process.

mod support;

use support::{redis_cli, run_id};

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use perf_runtime::cache::{self, KeyHasher};
use perf_runtime::prelude::*;

static PROFILE_RUNS: AtomicUsize = AtomicUsize::new(0);
static SETTINGS_RUNS: AtomicUsize = AtomicUsize::new(0);
static SHORT_RUNS: AtomicUsize = AtomicUsize::new(0);
static FALLIBLE_RUNS: AtomicUsize = AtomicUsize::new(0);
static MAYBE_RUNS: AtomicUsize = AtomicUsize::new(0);
static NONE_RUNS: AtomicUsize = AtomicUsize::new(0);
static SLOW_RUNS: AtomicUsize = AtomicUsize::new(0);
static SHARED_RUNS: AtomicUsize = AtomicUsize::new(0);
static KEYED_RUNS: AtomicUsize = AtomicUsize::new(0);
static SWR_RUNS: AtomicUsize = AtomicUsize::new(0);
static SIE_RUNS: AtomicUsize = AtomicUsize::new(0);
static SIE_FAILING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

#[fast_endpoint(cache_ttl = "300ms", stale_while_revalidate = "10s", tier = "l1")]
async fn revalidated(n: u64) -> usize {
    let _ = n;
    tokio::time::sleep(Duration::from_millis(20)).await;
    SWR_RUNS.fetch_add(1, Ordering::SeqCst) + 1
}

#[fast_endpoint(cache_ttl = "300ms", stale_if_error = "1s", tier = "l1")]
async fn stale_on_error(n: u64) -> Result<usize, String> {
    let _ = n;
    let run = SIE_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    if SIE_FAILING.load(Ordering::SeqCst) {
        Err(format!("origin down (run {run})"))
    } else {
        Ok(run)
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Profile {
    user: u64,
    lang: String,
    computed: usize,
}

#[fast_endpoint(cache_ttl = 60, tags = ["user:{user}"])]
async fn profile(user: u64, lang: String) -> Profile {
    let computed = PROFILE_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    Profile {
        user,
        lang,
        computed,
    }
}

/// Same arguments as `profile`, another function: never shares an entry.
#[fast_endpoint(cache_ttl = 60)]
async fn settings(user: u64, lang: String) -> Profile {
    let computed = SETTINGS_RUNS.fetch_add(1, Ordering::SeqCst) + 1;
    Profile {
        user,
        lang,
        computed,
    }
}

#[fast_endpoint(cache_ttl = "300ms", tier = "l1")]
async fn short_lived(n: u64) -> u64 {
    SHORT_RUNS.fetch_add(1, Ordering::SeqCst);
    n * 2
}

#[fast_endpoint(cache_ttl = 60)]
async fn fallible(n: u64) -> Result<u64, String> {
    FALLIBLE_RUNS.fetch_add(1, Ordering::SeqCst);
    if n % 2 == 1 {
        Err(format!("{n} is odd"))
    } else {
        Ok(n)
    }
}

#[fast_endpoint(cache_ttl = 60)]
async fn maybe(n: u64) -> Option<u64> {
    MAYBE_RUNS.fetch_add(1, Ordering::SeqCst);
    n.is_multiple_of(2).then_some(n)
}

#[fast_endpoint(cache_ttl = 60, cache_none)]
async fn maybe_cached_none(n: u64) -> Option<u64> {
    NONE_RUNS.fetch_add(1, Ordering::SeqCst);
    n.is_multiple_of(2).then_some(n)
}

#[fast_endpoint(cache_ttl = 60)]
async fn slow(n: u64) -> u64 {
    SLOW_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(10)).await;
    n + 1
}

/// The L2 and broadcast subject: both processes run this same function.
#[fast_endpoint(cache_ttl = 60, tags = ["shared:{id}"])]
async fn shared(id: u64) -> u64 {
    SHARED_RUNS.fetch_add(1, Ordering::SeqCst);
    id * 10
}

struct Repo {
    prefix: String,
}

impl Repo {
    #[fast_endpoint(cache_ttl = 60, key = "repo:{id}", tier = "l1")]
    async fn get(&self, id: u64, _trace_id: u64) -> String {
        KEYED_RUNS.fetch_add(1, Ordering::SeqCst);
        format!("{}{id}", self.prefix)
    }
}

async fn start(redis: &str) -> Perf {
    let config = PerfConfig::builder()
        .redis_url(redis)
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    perf_runtime::init(config).await.expect("init")
}

/// The second process of `l2_hit_and_broadcast_reach_another_process`:
/// reads commands on stdin, answers on stdout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process() {
    let (Ok(redis), Ok(id)) = (
        std::env::var("PERF_CHILD_REDIS"),
        std::env::var("PERF_CHILD_ID"),
    ) else {
        return; // Only runs when spawned by the parent test.
    };
    let id: u64 = id.parse().unwrap();
    let _perf = start(&redis).await;
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let line = line.unwrap();
        if line == "call" {
            let before = SHARED_RUNS.load(Ordering::SeqCst);
            assert_eq!(shared(id).await, id * 10);
            let ran = SHARED_RUNS.load(Ordering::SeqCst) > before;
            println!("CHILD {}", if ran { "ran" } else { "cached" });
        } else {
            break;
        }
    }
    perf_runtime::shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_endpoint_behaviour() {
    let Some(redis) = support::service_url("REDIS_URL") else {
        return;
    };
    let perf = start(&redis).await;
    let run = run_id();

    // Distinct arguments never share; the same arguments do.
    let a = profile(run, "en".into()).await;
    let b = profile(run, "de".into()).await;
    let c = profile(run + 1, "en".into()).await;
    assert_eq!((a.computed, b.computed, c.computed), (1, 2, 3));
    assert_eq!(profile(run, "en".into()).await, a);
    assert_eq!(PROFILE_RUNS.load(Ordering::SeqCst), 3);
    // Hits are counted on striped counters and published when rendered.
    let text = perf.render_prometheus().expect("prometheus");
    let hits = support::sample(
        &text,
        "perf_cache_requests_total",
        &[("function", "profile"), ("tier", "l1"), ("outcome", "hit")],
    );
    assert_eq!(hits, Some(1.0), "{text}");
    // The Redis pool's connections, and the bytes L1 holds, are published too.
    let connected = support::sample(&text, "perf_redis_connections", &[("state", "connected")]);
    assert!(connected.is_some_and(|n| n >= 1.0), "{text}");
    let bytes = support::sample(&text, "perf_cache_bytes", &[("function", "profile")]);
    assert!(bytes.is_some_and(|n| n > 0.0), "{text}");
    // Two functions with the same arguments never share.
    assert_eq!(settings(run, "en".into()).await.computed, 1);
    assert_eq!(SETTINGS_RUNS.load(Ordering::SeqCst), 1);

    // Tag invalidation drops exactly the tagged user's entries.
    cache::invalidate_tag(&format!("user:{run}"))
        .await
        .expect("invalidate");
    assert_eq!(profile(run, "en".into()).await.computed, 4);
    assert_eq!(profile(run, "de".into()).await.computed, 5);
    assert_eq!(
        profile(run + 1, "en".into()).await.computed,
        3,
        "another user's entry stays"
    );

    // Key invalidation.
    let namespace = concat!(module_path!(), "::profile");
    let key = {
        let mut hasher = KeyHasher::new(namespace, 1);
        hasher.part(&(run + 1)).unwrap().part("en").unwrap();
        hasher.finish()
    };
    cache::invalidate_key(namespace, key)
        .await
        .expect("invalidate");
    assert_eq!(profile(run + 1, "en".into()).await.computed, 6);
    // Function invalidation.
    cache::invalidate_function(namespace)
        .await
        .expect("invalidate");
    assert_eq!(profile(run, "en".into()).await.computed, 7);

    // TTL expiry.
    assert_eq!(short_lived(run).await, run * 2);
    assert_eq!(short_lived(run).await, run * 2);
    assert_eq!(SHORT_RUNS.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(short_lived(run).await, run * 2);
    assert_eq!(
        SHORT_RUNS.load(Ordering::SeqCst),
        2,
        "expired after its TTL"
    );

    // A Result caches Ok only; an Option caches Some unless cache_none.
    let even = run * 2;
    for _ in 0..3 {
        assert_eq!(fallible(even).await, Ok(even));
        assert!(fallible(even + 1).await.is_err());
        assert_eq!(maybe(even).await, Some(even));
        assert_eq!(maybe(even + 1).await, None);
        assert_eq!(maybe_cached_none(even + 1).await, None);
    }
    assert_eq!(
        FALLIBLE_RUNS.load(Ordering::SeqCst),
        1 + 3,
        "errors are never cached"
    );
    assert_eq!(
        MAYBE_RUNS.load(Ordering::SeqCst),
        1 + 3,
        "None is not cached"
    );
    assert_eq!(
        NONE_RUNS.load(Ordering::SeqCst),
        1,
        "None is cached with cache_none"
    );

    // A method with an explicit key: the other argument is not part of it.
    let repo = Repo { prefix: "r".into() };
    assert_eq!(repo.get(run, 1).await, format!("r{run}"));
    assert_eq!(repo.get(run, 2).await, format!("r{run}"));
    assert_eq!(KEYED_RUNS.load(Ordering::SeqCst), 1);

    // Stampede: 1,000 concurrent callers of one cold key run the body once.
    let callers: Vec<_> = (0..1000).map(|_| tokio::spawn(slow(run))).collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), run + 1);
    }
    assert_eq!(SLOW_RUNS.load(Ordering::SeqCst), 1, "single-flight");

    // Garbage under a key in Redis: a miss (deleted and counted), not an error.
    let namespace = concat!(module_path!(), "::fallible");
    let garbage_arg = run * 2 + 100;
    let name = {
        let mut hasher = KeyHasher::new(namespace, 1);
        hasher.part(&garbage_arg).unwrap();
        hasher.finish().redis_name(namespace, 1)
    };
    let key = {
        let mut hasher = KeyHasher::new(namespace, 1);
        hasher.part(&garbage_arg).unwrap();
        hasher.finish()
    };
    for garbage in [
        b"not an envelope at all".to_vec(),
        b"PF\x01\x00\xff\xff\xff\x7f".to_vec(),
        b"PF\x01\x01\x10\x00\x00\x00trunc".to_vec(),
        b"PF\x01\x00\x03\x00\x00\x00\x00\xc1\x00".to_vec(),
    ] {
        // Clear what the previous round cached, then plant the garbage.
        cache::invalidate_key(namespace, key)
            .await
            .expect("invalidate");
        redis_set_raw(&redis, &name, &garbage);
        let before = FALLIBLE_RUNS.load(Ordering::SeqCst);
        assert_eq!(fallible(garbage_arg).await, Ok(garbage_arg));
        assert_eq!(
            FALLIBLE_RUNS.load(Ordering::SeqCst),
            before + 1,
            "garbage is a miss"
        );
    }
    let text = perf.render_prometheus().expect("prometheus");
    let decode_errors = support::sample(
        &text,
        "perf_cache_decode_errors_total",
        &[("function", "fallible")],
    );
    assert_eq!(decode_errors, Some(4.0), "{text}");

    // No argument value appears in Redis key names.
    let keys = redis_cli(&redis, &["KEYS", "perf:*"]);
    assert!(
        !keys.contains(&run.to_string()),
        "an argument leaked into a key name: {keys}"
    );

    stale_serving(run).await;
    l2_hit_and_broadcast_reach_another_process(&redis, run).await;
    perf_runtime::shutdown().await;
}

/// Stale-while-revalidate serves the old value at once and refreshes once
/// in the background; stale-if-error serves the old value while the body
/// fails, and only within its window.
async fn stale_serving(run: u64) {
    assert_eq!(revalidated(run).await, 1);
    tokio::time::sleep(Duration::from_millis(400)).await; // past freshness
    // Many callers of the stale value: all served at once, one refresh.
    for _ in 0..20 {
        assert_eq!(revalidated(run).await, 1, "the stale value is served");
    }
    let mut refreshed = 0;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        refreshed = revalidated(run).await;
        if refreshed == 2 {
            break;
        }
    }
    assert_eq!(refreshed, 2, "the background refresh replaced the value");
    assert_eq!(
        SWR_RUNS.load(Ordering::SeqCst),
        2,
        "exactly one background refresh"
    );

    assert_eq!(stale_on_error(run).await, Ok(1));
    SIE_FAILING.store(true, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(400)).await; // past freshness, inside the error window
    assert_eq!(
        stale_on_error(run).await,
        Ok(1),
        "the stale value answers a failure"
    );
    tokio::time::sleep(Duration::from_millis(1000)).await; // past the error window
    let late = stale_on_error(run).await;
    assert!(
        late.is_err(),
        "no value older than its window is served: {late:?}"
    );
    SIE_FAILING.store(false, Ordering::SeqCst);
}

/// A second process sharing Redis gets an L2 hit for a value this process
/// computed, and drops it from its L1 when this process invalidates it.
async fn l2_hit_and_broadcast_reach_another_process(redis: &str, run: u64) {
    assert_eq!(shared(run).await, run * 10);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PERF_CHILD_REDIS", redis)
        .env("PERF_CHILD_ID", run.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the second process");
    let mut to_child = child.stdin.take().unwrap();
    // Answers arrive through a reader thread, so a silent child fails the
    // test after a while instead of hanging it.
    let (answers, answered) = std::sync::mpsc::channel::<String>();
    let from_child = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in from_child.lines().map_while(Result::ok) {
            // libtest may print "test child_process ... " on the same line.
            if let Some(at) = line.find("CHILD ") {
                let _ = answers.send(line[at + 6..].trim().to_owned());
            }
        }
    });
    let ask = |to_child: &mut std::process::ChildStdin| -> String {
        writeln!(to_child, "call").unwrap();
        to_child.flush().unwrap();
        answered
            .recv_timeout(Duration::from_secs(30))
            .expect("the second process answers within 30 s")
    };
    assert_eq!(
        ask(&mut to_child),
        "cached",
        "an L2 hit in the second process"
    );
    assert_eq!(ask(&mut to_child), "cached", "and now an L1 hit there");
    cache::invalidate_tag(&format!("shared:{run}"))
        .await
        .expect("invalidate");
    // The broadcast reaches the child's L1 promptly; poll briefly.
    let mut answer = String::new();
    for _ in 0..20 {
        answer = ask(&mut to_child);
        if answer == "ran" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        answer, "ran",
        "the invalidation reached the second process's L1"
    );
    writeln!(to_child, "quit").unwrap();
    drop(to_child);
    assert!(child.wait().unwrap().success());
}

/// Runs `redis-cli` against the harness's Redis.
/// Stores `value` byte for byte under `key` (`redis-cli -x` reads it from stdin).
fn redis_set_raw(redis: &str, key: &str, value: &[u8]) {
    let mut child = Command::new("redis-cli")
        .arg("-u")
        .arg(redis)
        .args(["-x", "SET", key])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-cli (installed with redis-server)");
    child.stdin.take().unwrap().write_all(value).unwrap();
    assert!(child.wait().unwrap().success());
}
