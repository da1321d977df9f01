use perf_runtime::prelude::*;

#[fast_endpoint(tier = "l1", lock = "2s")]
async fn f(id: u64) -> u64 {
    id
}

fn main() {}
