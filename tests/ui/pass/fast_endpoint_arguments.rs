//! Every argument of `#[fast_endpoint]`, and the shapes it accepts.

use perf_runtime::prelude::*;

mod reexport {
    pub use perf_runtime as runtime;
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[derive(Clone)]
struct NotSerde(u64);

#[fast_endpoint]
async fn defaults(id: u64) -> User {
    User { id, name: String::new() }
}

#[fast_endpoint(cache_ttl = 300)]
async fn seconds(id: u64) -> u64 {
    id
}

#[fast_endpoint(cache_ttl = "250ms", stale_while_revalidate = "1m", stale_if_error = "1h")]
async fn durations(id: u64) -> u64 {
    id
}

#[fast_endpoint(cache_ttl = "1d", key = "user:{id}", tags = ["user:{id}", "all-users"])]
async fn keyed(id: u64, _request_id: String) -> Result<User, String> {
    Ok(User { id, name: String::new() })
}

#[fast_endpoint(skip(request_id), max_entries = 500, version = 3, name = "users.get")]
async fn skipping(id: u64, request_id: String) -> Option<User> {
    let _ = request_id;
    Some(User { id, name: String::new() })
}

#[fast_endpoint(cache_none)]
async fn none_too(id: u64) -> Option<u64> {
    Some(id)
}

#[fast_endpoint(tier = "l1", max_bytes = "64MiB")]
async fn bounded_by_bytes(id: u64) -> u64 {
    id
}

#[fast_endpoint(tier = "l1")]
async fn l1_only(id: u64) -> NotSerde {
    NotSerde(id)
}

#[fast_endpoint(tier = "l2", lock = "2s")]
async fn l2_only(id: u64) -> u64 {
    id
}

#[fast_endpoint(tier = "l1+l2", crate = "reexport::runtime")]
async fn through_reexport(id: u64) -> u64 {
    id
}

#[fast_endpoint]
async fn patterns((a, b): (u64, u64), Wrapper(c): Wrapper) -> u64 {
    a + b + c
}

#[derive(serde::Serialize)]
struct Wrapper(u64);

#[fast_endpoint]
async fn early_return(id: u64) -> Result<u64, String> {
    if id == 0 {
        return Err("zero".into());
    }
    let parsed: u64 = "7".parse().map_err(|_| "bad".to_owned())?;
    Ok(id + parsed)
}

struct Service {
    base: u64,
}

impl Service {
    #[fast_endpoint(key = "service:{id}", tier = "l1")]
    async fn lookup(&self, id: u64) -> u64 {
        self.base + id
    }
}

#[tokio::main]
async fn main() {
    let _ = defaults(1).await;
    let _ = seconds(1).await;
    let _ = durations(1).await;
    let _ = keyed(1, "r".into()).await;
    let _ = skipping(1, "r".into()).await;
    let _ = none_too(1).await;
    let _ = l1_only(1).await;
    let _ = l2_only(1).await;
    let _ = through_reexport(1).await;
    let _ = patterns((1, 2), Wrapper(3)).await;
    let _ = early_return(1).await;
    let _ = Service { base: 1 }.lookup(2).await;
}
