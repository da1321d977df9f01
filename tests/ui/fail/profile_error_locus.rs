use perf_runtime::prelude::*;

// A type error in the user's body must point at the user's line, not at the attribute.
#[profile]
fn f(x: u32) -> String {
    x + 1
}

#[profile]
async fn g() -> Result<u8, String> {
    let n: u8 = "1".parse()?;
    Ok(n)
}

fn main() {
    let _ = f(1);
    let _ = g();
}
