use perf_runtime::prelude::*;

#[derive(Debug)]
struct AskError;

// `timeout` fails a call into the function's error type, which must be
// able to hold an `AiError`.
#[ai_optimized(provider = "openai", model = "gpt-4", timeout = "30s")]
async fn ask(question: String) -> Result<String, AskError> {
    Ok(question)
}

fn main() {}
