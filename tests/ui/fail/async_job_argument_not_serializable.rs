use perf_runtime::prelude::*;

struct Opaque;

#[async_job]
async fn f(value: Opaque) {
    let _ = value;
}

fn main() {}
