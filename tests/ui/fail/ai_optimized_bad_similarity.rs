use perf_runtime::prelude::*;

#[ai_optimized(provider = "openai", model = "gpt-4", similarity = 1.5)]
async fn above_one(question: String) -> String {
    question
}

#[ai_optimized(provider = "openai", model = "gpt-4", similarity = -0.5)]
async fn negative(question: String) -> String {
    question
}

#[ai_optimized(provider = "openai", model = "gpt-4", similarity = "fuzzy")]
async fn unknown_word(question: String) -> String {
    question
}

#[ai_optimized(provider = "openai", model = "gpt-4", similarity = 2)]
async fn integer_above_one(question: String) -> String {
    question
}

#[ai_optimized(provider = "openai", model = "gpt-4", similarity)]
async fn no_value(question: String) -> String {
    question
}

fn main() {}
