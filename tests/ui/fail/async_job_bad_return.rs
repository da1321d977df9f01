use perf_runtime::prelude::*;

#[async_job]
async fn f(id: u64) -> u64 {
    id
}

fn main() {}
