use perf_runtime::prelude::*;

#[profile(name = 5)]
fn f() {}

fn main() {
    f();
}
