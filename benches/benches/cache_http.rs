//! An axum handler under `#[fast_endpoint]` served from L1, against the same
//! handler returning the same bytes uncached, both loaded by `wrk` on
//! loopback in the same run (alternating, three rounds each). The body is
//! trivial on purpose: what is measured is what the cache layer costs on the
//! HTTP path when every request is a hit.
//!
//! Needs Debian's `wrk`. Run with:
//! `cargo bench -p perf-benches --bench cache_http`

use std::process::Command;
use std::time::Duration;

use axum::Json;
use axum::extract::Path;
use perf_runtime::prelude::*;

const ROUNDS: usize = 3;
const SECONDS_PER_ROUND: u32 = 5;
const CONNECTIONS: u32 = 32;

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct Item {
    id: u64,
    name: String,
    tags: Vec<String>,
}

fn item(id: u64) -> Item {
    Item {
        id,
        name: format!("item-{id}"),
        tags: vec!["alpha".into(), "beta".into(), "gamma".into()],
    }
}

#[fast_endpoint(cache_ttl = 3600, tier = "l1")]
async fn cached(Path(id): Path<u64>) -> Json<Item> {
    Json(item(id))
}

async fn uncached(Path(id): Path<u64>) -> Json<Item> {
    Json(item(id))
}

/// Requests/s reported by one `wrk` run against `url`.
fn wrk(url: &str) -> f64 {
    let output = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{CONNECTIONS}"),
            &format!("-d{SECONDS_PER_ROUND}s"),
            url,
        ])
        .output()
        .expect("run wrk (Debian package `wrk`)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        !text.contains("Non-2xx"),
        "the server answered errors:\n{text}"
    );
    text.lines()
        .find_map(|line| line.strip_prefix("Requests/sec:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let (runtime, _perf) = perf_benches::service_runtime(2);
    let addr = runtime.block_on(async {
        let app = axum::Router::new()
            .route("/cached/{id}", axum::routing::get(cached))
            .route("/uncached/{id}", axum::routing::get(uncached));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    });
    let (mut with_cache, mut without) = (Vec::new(), Vec::new());
    // Warm the cache and both code paths.
    wrk(&format!("http://{addr}/cached/7"));
    wrk(&format!("http://{addr}/uncached/7"));
    for round in 1..=ROUNDS {
        let plain = wrk(&format!("http://{addr}/uncached/7"));
        let hit = wrk(&format!("http://{addr}/cached/7"));
        println!("round {round}: uncached {plain:.0} req/s, cached {hit:.0} req/s");
        without.push(plain);
        with_cache.push(hit);
        std::thread::sleep(Duration::from_millis(200));
    }
    let (plain, hit) = (median(without), median(with_cache));
    println!("\n| handler | requests/s (median of {ROUNDS}) | × uncached |");
    println!("|---|---:|---:|");
    println!("| uncached | {plain:.0} | 1.00 |");
    println!(
        "| `#[fast_endpoint]` L1 hit | {hit:.0} | {:.2} |",
        hit / plain
    );
    runtime.block_on(perf_runtime::shutdown());
}
