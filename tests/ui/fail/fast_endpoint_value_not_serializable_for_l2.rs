use perf_runtime::prelude::*;

#[derive(Clone)]
struct Opaque;

#[fast_endpoint]
async fn f(id: u64) -> Opaque {
    let _ = id;
    Opaque
}

fn main() {}
