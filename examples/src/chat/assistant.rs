//! A stand-in assistant that answers locally, so the example runs with no
//! model provider and no network. The AI issue replaces it with a provider
//! client under `#[ai_optimized]`.

use perf_runtime::prelude::*;

/// Answers `message` given the conversation so far.
#[profile(name = "assistant.reply", level = "debug")]
pub(crate) async fn reply(message: &str, turns_so_far: usize) -> String {
    let words = message.split_whitespace().count();
    let topic = message
        .split_whitespace()
        .max_by_key(|word| word.len())
        .unwrap_or("that");
    format!(
        "You said {words} word(s); let's talk about \"{topic}\". (turn {})",
        turns_so_far / 2 + 1
    )
}
