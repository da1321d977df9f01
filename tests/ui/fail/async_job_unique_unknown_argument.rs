use perf_runtime::prelude::*;

#[async_job(unique = "{user}")]
async fn f(user_id: u64) {
    let _ = user_id;
}

fn main() {}
