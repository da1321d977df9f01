use perf_runtime::prelude::*;

#[profile(nmae = "typo")]
fn f() {}

fn main() {
    f();
}
