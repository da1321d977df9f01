use perf_runtime::prelude::*;
use perf_runtime::ai::ChatStream;

// A limit that can fail a call needs an error type to fail into: refused on
// the limit's argument when the function returns no `Result`.
#[ai_optimized(provider = "openai", model = "gpt-4", timeout = "30s")]
async fn plain(question: String) -> String {
    question
}

#[ai_optimized(provider = "openai", model = "gpt-4", rpm = 60, tpm = 10000, max_concurrency = 4)]
async fn stream(question: String) -> ChatStream {
    let _ = question;
    Box::pin(futures_util::stream::empty())
}

fn main() {}
