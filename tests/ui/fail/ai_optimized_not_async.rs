use perf_runtime::prelude::*;

#[ai_optimized(provider = "openai", model = "gpt-4")]
fn ask(question: String) -> String {
    question
}

fn main() {}
