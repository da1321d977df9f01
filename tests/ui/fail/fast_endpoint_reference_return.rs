use perf_runtime::prelude::*;

static NAME: String = String::new();

#[fast_endpoint]
async fn f(_id: u64) -> &'static String {
    &NAME
}

fn main() {}
