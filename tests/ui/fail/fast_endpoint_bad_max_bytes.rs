use perf_runtime::prelude::*;

#[fast_endpoint(max_bytes = "64 parsecs")]
async fn unknown_unit(id: u64) -> u64 {
    id
}

#[fast_endpoint(max_bytes = "1MiB", max_entries = 100)]
async fn both_bounds(id: u64) -> u64 {
    id
}

#[fast_endpoint(tier = "l2", max_bytes = 4096)]
async fn no_l1_to_bound(id: u64) -> u64 {
    id
}

fn main() {}
