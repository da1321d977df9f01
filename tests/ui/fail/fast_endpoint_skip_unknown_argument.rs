use perf_runtime::prelude::*;

#[fast_endpoint(skip(trace))]
async fn f(id: u64) -> u64 {
    id
}

fn main() {}
