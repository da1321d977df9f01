use perf_runtime::prelude::*;

#[async_job]
async fn f<T: serde::Serialize>(value: T) {
    let _ = value;
}

fn main() {}
