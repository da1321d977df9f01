use perf_runtime::prelude::*;

#[ai_optimized(provider = "openai", model = "gpt-4")]
async fn no_return(question: String) {
    let _ = question;
}

#[ai_optimized(provider = "openai", model = "gpt-4")]
async fn unit(question: String) -> () {
    let _ = question;
}

#[ai_optimized(provider = "openai", model = "gpt-4")]
async fn reference(question: String) -> &'static str {
    let _ = question;
    "answer"
}

#[ai_optimized(provider = "openai", model = "gpt-4")]
async fn opaque(question: String) -> impl std::fmt::Display {
    question
}

struct Answer(String);

impl Answer {
    #[ai_optimized(provider = "openai", model = "gpt-4")]
    async fn with_self(question: String) -> Result<Self, std::io::Error> {
        Ok(Answer(question))
    }
}

fn main() {}
