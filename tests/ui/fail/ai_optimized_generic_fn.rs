use perf_runtime::prelude::*;

#[ai_optimized(provider = "openai", model = "gpt-4")]
async fn by_type<P: Into<String>>(question: P) -> String {
    question.into()
}

#[ai_optimized(provider = "openai", model = "gpt-4")]
async fn by_const<const N: usize>(question: String) -> String {
    question.repeat(N)
}

// Lifetimes are fine: the answer is owned.
#[ai_optimized(provider = "openai", model = "gpt-4", similarity = "exact")]
async fn borrowing<'a>(question: &'a str) -> Result<String, std::io::Error> {
    Ok(question.to_owned())
}

fn main() {}
