use perf_runtime::prelude::*;

#[async_job]
fn f(id: u64) {
    let _ = id;
}

fn main() {}
