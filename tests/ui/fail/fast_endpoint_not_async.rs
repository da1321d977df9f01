use perf_runtime::prelude::*;

#[fast_endpoint]
fn f(id: u64) -> u64 {
    id
}

fn main() {}
