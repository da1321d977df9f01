use perf_runtime::prelude::*;

#[profile(name = "a", level = "debug", name = "b")]
fn f() {}

fn main() {
    f();
}
