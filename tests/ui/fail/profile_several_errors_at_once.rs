use perf_runtime::prelude::*;

// Every argument error is reported in one build, not one per compile.
#[profile(name = 1, level = "loud", colour = "red")]
fn f() {}

fn main() {
    f();
}
