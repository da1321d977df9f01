use perf_runtime::prelude::*;

#[profile(crate = "not a path")]
fn f() {}

fn main() {
    f();
}
