use perf_runtime::prelude::*;

#[fast_endpoint(key = "user:{user_id}", tags = ["team:{team}"])]
async fn f(id: u64) -> u64 {
    id
}

fn main() {}
