use perf_runtime::prelude::*;

#[profile(name = "  ")]
fn f() {}

fn main() {
    f();
}
