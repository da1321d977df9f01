use perf_runtime::ai::AiError;
use perf_runtime::prelude::*;

#[derive(Debug)]
struct AskError(AiError);

impl From<AiError> for AskError {
    fn from(error: AiError) -> Self {
        AskError(error)
    }
}

// The answer type is checked against `AiAnswer`, once, on the type.
#[ai_optimized(provider = "openai", model = "gpt-4")]
async fn count_words(question: String) -> Result<u64, AskError> {
    Ok(question.split_whitespace().count() as u64)
}

#[derive(Clone, Debug)]
struct Opaque;

#[ai_optimized(provider = "openai", model = "gpt-4")]
async fn opaque(question: String) -> Opaque {
    let _ = question;
    Opaque
}

fn main() {}
