use perf_runtime::prelude::*;

struct Json<T>(T);

#[ai_optimized(provider = "openai", model = "gpt-4")]
async fn two_candidates(system: String, question: String) -> String {
    system + &question
}

#[ai_optimized(provider = "openai", model = "gpt-4", prompt = questoin, scope = usr)]
async fn misspelt(user: u64, question: String) -> String {
    format!("{user}{question}")
}

#[ai_optimized(provider = "openai", model = "gpt-4", prompt = "question")]
async fn quoted(user: u64, question: String) -> String {
    format!("{user}{question}")
}

#[ai_optimized(provider = "openai", model = "gpt-4", prompt = question, scope = question)]
async fn scope_is_prompt(question: String) -> String {
    question
}

#[ai_optimized(provider = "openai", model = "gpt-4", prompt = question)]
async fn in_pattern(Json(question): Json<String>) -> String {
    question
}

#[ai_optimized(provider = "openai", model = "gpt-4")]
async fn only_a_pattern(Json(question): Json<String>) -> String {
    question
}

#[ai_optimized(provider = "openai", model = "gpt-4", scope = user)]
async fn only_the_scope(user: u64) -> String {
    user.to_string()
}

fn main() {}
