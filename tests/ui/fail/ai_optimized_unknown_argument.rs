use perf_runtime::prelude::*;

// An unknown argument lists the accepted ones; a repeated one is reported on
// its second occurrence.
#[ai_optimized(provider = "openai", model = "gpt-4", temperature = 0.2, model = "gpt-4o")]
async fn ask(question: String) -> String {
    question
}

fn main() {}
