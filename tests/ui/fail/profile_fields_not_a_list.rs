use perf_runtime::prelude::*;

#[profile(fields = "user_id")]
fn f(user_id: u64) -> u64 {
    user_id
}

fn main() {
    f(1);
}
