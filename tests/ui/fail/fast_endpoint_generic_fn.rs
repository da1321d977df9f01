use perf_runtime::prelude::*;

#[fast_endpoint]
async fn f<T: Clone>(value: T) -> u64 {
    let _ = value;
    1
}

fn main() {}
