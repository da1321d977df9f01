use perf_runtime::prelude::*;

struct Tenant(u64);

// The prompt must be an `AiPrompt`, the scope `Serialize`; each is
// reported on the argument's name.
#[ai_optimized(provider = "openai", model = "gpt-4")]
async fn by_number(question: u64) -> String {
    question.to_string()
}

#[ai_optimized(provider = "openai", model = "gpt-4", scope = tenant)]
async fn by_tenant(tenant: Tenant, question: String) -> String {
    format!("{}: {question}", tenant.0)
}

fn main() {}
