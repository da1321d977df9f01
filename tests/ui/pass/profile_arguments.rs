//! Every argument of `#[profile]`, alone and together.

use perf_runtime::prelude::*;

mod reexport {
    pub use perf_runtime as runtime;
}

#[profile]
fn bare() {}

#[profile(name = "custom.name")]
fn named() -> u8 {
    1
}

#[profile(level = "trace")]
fn at_trace() {}

#[profile(level = "debug")]
fn at_debug() {}

#[profile(level = "info")]
fn at_info() {}

#[profile(level = "warn")]
fn at_warn() {}

#[profile(level = "error")]
fn at_error() {}

#[profile(fields(user_id = %user_id, length = text.len()))]
fn with_fields(user_id: u64, text: &str) -> usize {
    text.len() + user_id as usize
}

#[profile(crate = "reexport::runtime")]
fn through_reexport() {}

#[profile(crate = "::perf_runtime")]
fn absolute_crate() {}

#[profile(name = "all", level = "debug", fields(n = n), crate = "::perf_runtime")]
async fn everything(n: u32) -> u32 {
    n
}

fn main() {
    bare();
    let _ = named();
    at_trace();
    at_debug();
    at_info();
    at_warn();
    at_error();
    let _ = with_fields(7, "hi");
    through_reexport();
    absolute_crate();
    let _ = everything(1);
}
