use perf_runtime::prelude::*;

// `provider` and `model` name the cache's partition and the client: both are
// required, and the error is on the attribute.
#[ai_optimized(cache_ttl = 60)]
async fn ask(question: String) -> String {
    question
}

#[ai_optimized(provider = "openai")]
async fn ask_model(question: String) -> String {
    question
}

fn main() {}
