use perf_runtime::prelude::*;

#[fast_endpoint(cache_ttl = "5 minutes")]
async fn f(id: u64) -> u64 {
    id
}

#[fast_endpoint(cache_ttl = 0)]
async fn g(id: u64) -> u64 {
    id
}

#[fast_endpoint(stale_if_error = true)]
async fn h(id: u64) -> u64 {
    id
}

fn main() {}
