use perf_runtime::prelude::*;

#[async_job(priority = "urgent")]
async fn f(id: u64) {
    let _ = id;
}

#[async_job(backoff = "random")]
async fn g(id: u64) {
    let _ = id;
}

#[async_job(timeout = "soon", max_retries = "3")]
async fn h(id: u64) {
    let _ = id;
}

#[async_job(queue = "")]
async fn i(id: u64) {
    let _ = id;
}

fn main() {}
