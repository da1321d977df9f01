use perf_runtime::prelude::*;

#[fast_endpoint]
async fn f(id: u64) {
    let _ = id;
}

fn main() {}
