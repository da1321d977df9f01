use perf_runtime::prelude::*;

#[profile(level = "verbose")]
fn f() {}

fn main() {
    f();
}
