use perf_runtime::prelude::*;

// Every argument error is reported in one build, each on its value.
#[ai_optimized(
    provider = "",
    model = 4,
    cache_ttl = 0,
    timeout = "soon",
    name = " ",
    max_concurrency = 0,
    rpm = -1,
    tpm = "lots",
    crate = "not a path"
)]
async fn ask(question: String) -> Result<String, std::io::Error> {
    Ok(question)
}

fn main() {}
