use perf_runtime::prelude::*;

struct Opaque;

#[fast_endpoint(tier = "l1")]
async fn f(value: Opaque) -> u64 {
    let _ = value;
    1
}

fn main() {}
