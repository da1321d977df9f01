use perf_runtime::prelude::*;

#[async_job(retries = 3)]
async fn f(id: u64) {
    let _ = id;
}

fn main() {}
