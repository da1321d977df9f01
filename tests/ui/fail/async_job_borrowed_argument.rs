use perf_runtime::prelude::*;

#[async_job]
async fn f(email: &str) {
    let _ = email;
}

#[async_job]
async fn g(ids: std::borrow::Cow<'_, [u64]>) {
    let _ = ids;
}

fn main() {}
