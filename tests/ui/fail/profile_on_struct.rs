use perf_runtime::prelude::*;

#[profile]
struct Handler;

fn main() {
    let _ = Handler;
}
