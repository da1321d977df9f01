use perf_runtime::prelude::*;

#[fast_endpoint(cache_none)]
async fn f(id: u64) -> u64 {
    id
}

fn main() {}
