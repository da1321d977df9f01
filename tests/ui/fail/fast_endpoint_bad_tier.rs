use perf_runtime::prelude::*;

#[fast_endpoint(tier = "l3", max_entries = 0)]
async fn f(id: u64) -> u64 {
    id
}

fn main() {}
