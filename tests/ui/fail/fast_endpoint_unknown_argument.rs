use perf_runtime::prelude::*;

#[fast_endpoint(ttl = 5)]
async fn f(id: u64) -> u64 {
    id
}

fn main() {}
