//! Every argument of `#[ai_optimized]`, and the shapes it accepts.

use std::sync::atomic::{AtomicUsize, Ordering};

use perf_runtime::ai::{AiError, ChatChunk, ChatMessage, ChatRequest, ChatResponse, ChatStream};
use perf_runtime::prelude::*;

mod reexport {
    pub use perf_runtime as runtime;
}

#[derive(Debug)]
enum ChatError {
    Ai(AiError),
    Empty,
}

impl From<AiError> for ChatError {
    fn from(error: AiError) -> Self {
        ChatError::Ai(error)
    }
}

static CALLS: AtomicUsize = AtomicUsize::new(0);

/// Kept on the function.
#[ai_optimized(
    provider = "openai",
    model = "gpt-4",
    cache_ttl = 3600,
    similarity = 0.9,
    scope = user_id,
    prompt = question,
    max_concurrency = 8,
    rpm = 500,
    tpm = 200000,
    timeout = "30s",
    name = "chat.ask"
)]
pub async fn ask(user_id: u64, question: String) -> Result<String, ChatError> {
    CALLS.fetch_add(1, Ordering::Relaxed);
    if question.is_empty() {
        return Err(ChatError::Empty);
    }
    let n: u64 = "2".parse().map_err(|_| ChatError::Empty)?;
    Ok(format!("{question} for {user_id}: {n}"))
}

// A plain answer, the prompt borrowed, the TTL as a string.
#[ai_optimized(
    provider = "ollama",
    model = "llama3",
    cache_ttl = "5m",
    similarity = "exact"
)]
async fn plain(question: &str) -> String {
    question.to_uppercase()
}

#[ai_optimized(
    provider = "openai",
    model = "gpt-4",
    similarity = 0,
    cache_ttl = "250ms"
)]
async fn exact_by_zero(question: String) -> String {
    question
}

#[ai_optimized(
    provider = "openai",
    model = "gpt-4",
    similarity = 1,
    crate = "perf_runtime"
)]
async fn strictest(question: String) -> String {
    question
}

#[ai_optimized(
    provider = "openai",
    model = "gpt-4",
    similarity = 0.0,
    crate = "reexport::runtime"
)]
async fn through_reexport(question: String) -> std::io::Result<String> {
    Ok(question)
}

// A conversation as the prompt, a whole response as the answer.
#[ai_optimized(provider = "openai", model = "gpt-4", timeout = 10)]
async fn conversation(messages: Vec<ChatMessage>) -> Result<ChatResponse, AiError> {
    let last = messages
        .last()
        .map(|m| m.content.clone())
        .unwrap_or_default();
    ChatResponse::from_stream(chunks(&last)).await
}

// Streams: the answer is kept once the stream has ended.
#[ai_optimized(provider = "openai", model = "gpt-4", max_concurrency = 2)]
async fn stream(request: ChatRequest) -> ChatStream {
    let last = request.messages.last().map(|m| m.content.clone());
    chunks(&last.unwrap_or_default())
}

#[ai_optimized(provider = "openai", model = "gpt-4", rpm = 60, scope = tenant)]
async fn stream_result(tenant: String, question: String) -> Result<ChatStream, ChatError> {
    Ok(chunks(&format!("{tenant}: {question}")))
}

struct Bot {
    greeting: String,
}

impl Bot {
    #[ai_optimized(provider = "openai", model = "gpt-4", scope = user)]
    async fn answer(&self, user: u64, question: String) -> String {
        format!("{} {user}, {question}", self.greeting)
    }
}

fn chunks(text: &str) -> ChatStream {
    let mut end = ChatChunk::text("");
    end.finish_reason = Some("stop".to_owned());
    let pieces = vec![Ok(ChatChunk::text(text)), Ok(end)];
    Box::pin(futures_util::stream::iter(pieces))
}

async fn text(stream: ChatStream) -> String {
    ChatResponse::from_stream(stream).await.unwrap().content
}

#[tokio::main]
async fn main() {
    assert_eq!(ask(1, "Hi".into()).await.unwrap(), "Hi for 1: 2");
    // Case and spacing do not change the key: the body ran once.
    assert_eq!(ask(1, "  hi ".into()).await.unwrap(), "Hi for 1: 2");
    assert_eq!(CALLS.load(Ordering::Relaxed), 1);
    // Another scope runs the body.
    assert_eq!(ask(2, "Hi".into()).await.unwrap(), "Hi for 2: 2");
    assert!(matches!(ask(1, String::new()).await, Err(ChatError::Empty)));
    assert_eq!(plain("a b").await, "A B");
    assert_eq!(exact_by_zero("q".into()).await, "q");
    assert_eq!(strictest("q".into()).await, "q");
    assert_eq!(through_reexport("q".into()).await.unwrap(), "q");
    let answer = conversation(vec![ChatMessage::user("hello")])
        .await
        .unwrap();
    assert_eq!(answer.content, "hello");
    let request = ChatRequest::new("gpt-4", vec![ChatMessage::user("streamed")]);
    assert_eq!(text(stream(request.clone()).await).await, "streamed");
    // From the cache, replayed as a stream.
    assert_eq!(text(stream(request).await).await, "streamed");
    let streamed = stream_result("acme".into(), "q".into()).await.unwrap();
    assert_eq!(text(streamed).await, "acme: q");
    let bot = Bot {
        greeting: "hello".into(),
    };
    assert_eq!(bot.answer(3, "how?".into()).await, "hello 3, how?");
}
