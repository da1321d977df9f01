//! What goes to a model and what comes back: [`ChatRequest`],
//! [`ChatResponse`], the pieces of a streamed answer ([`ChatChunk`]), and
//! their OpenAI-compatible wire form (`/v1/chat/completions`).

use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::AiError;

/// Who wrote a message of the conversation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions that frame the conversation.
    System,
    /// The person asking.
    User,
    /// The model's earlier answers.
    Assistant,
    /// The result of a tool the model called.
    Tool,
}

/// One message of the conversation.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatMessage {
    /// Who wrote it.
    pub role: Role,
    /// Its text.
    pub content: String,
    /// An optional participant name (OpenAI's `name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// For a [`Role::Tool`] message: the tool call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl ChatMessage {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        ChatMessage {
            role,
            content: content.into(),
            name: None,
            tool_call_id: None,
        }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        ChatMessage::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        ChatMessage::new(Role::User, content)
    }

    /// An assistant message (an earlier answer).
    pub fn assistant(content: impl Into<String>) -> Self {
        ChatMessage::new(Role::Assistant, content)
    }

    /// A tool result answering the call `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            tool_call_id: Some(tool_call_id.into()),
            ..ChatMessage::new(Role::Tool, content)
        }
    }

    /// Sets the participant name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

/// A chat completion request. Whether the answer streams is chosen by the
/// call ([`Provider::chat`](super::Provider::chat) or
/// [`Provider::chat_stream`](super::Provider::chat_stream)), not by the
/// request: both give the same text, so a cached answer serves either.
///
/// ```
/// use perf_runtime::ai::{ChatMessage, ChatRequest};
///
/// let request = ChatRequest::new(
///     "gpt-4o-mini",
///     vec![ChatMessage::system("Be brief."), ChatMessage::user("What is Rust?")],
/// )
/// .temperature(0.0)
/// .max_tokens(200)
/// .param("seed", 7);
/// assert_eq!(request.messages.len(), 2);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatRequest {
    /// The model to ask. A [`FallbackChain`](super::FallbackChain) replaces
    /// it with each route's model.
    pub model: String,
    /// The conversation, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Sampling temperature; the provider's default when `None`.
    pub temperature: Option<f32>,
    /// Cap on the answer's tokens; also what the tokens-per-minute budget
    /// reserves for the answer.
    pub max_tokens: Option<u32>,
    /// Further body fields sent as they are (`top_p`, `seed`, `tools`,
    /// `response_format`, ...). They never replace `model`, `messages`,
    /// `stream` or the fields above.
    pub extra: Map<String, Value>,
}

impl ChatRequest {
    /// A request for `model` with `messages` and the provider's defaults.
    pub fn new(model: impl Into<String>, messages: Vec<ChatMessage>) -> Self {
        ChatRequest {
            model: model.into(),
            messages,
            temperature: None,
            max_tokens: None,
            extra: Map::new(),
        }
    }

    /// Sets the temperature.
    #[must_use]
    pub fn temperature(mut self, temperature: f32) -> Self {
        self.temperature = Some(temperature);
        self
    }

    /// Caps the answer's tokens.
    #[must_use]
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// Adds a body field sent as it is.
    #[must_use]
    pub fn param(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra.insert(name.into(), value.into());
        self
    }

    /// Sets the model.
    #[must_use]
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// A rough count of the prompt's tokens, about four characters a token
    /// plus four tokens of framing per message: what the tokens-per-minute
    /// budget reserves before the provider's own count is known.
    pub fn estimated_prompt_tokens(&self) -> u64 {
        self.messages
            .iter()
            .map(|message| 4 + estimate_tokens(&message.content))
            .sum()
    }

    /// What a call reserves from the tokens-per-minute budget: the prompt
    /// estimate plus `max_tokens` (providers count the cap against their
    /// limits too, so the reservation is not given back when the answer is
    /// shorter).
    pub fn reserved_tokens(&self) -> u64 {
        self.estimated_prompt_tokens() + u64::from(self.max_tokens.unwrap_or(0))
    }

    /// The JSON body for `/chat/completions`.
    pub(crate) fn to_body(&self, stream: bool, stream_usage: bool) -> Value {
        let mut body = Map::new();
        for (name, value) in &self.extra {
            body.insert(name.clone(), value.clone());
        }
        body.insert("model".into(), Value::String(self.model.clone()));
        body.insert(
            "messages".into(),
            serde_json::to_value(&self.messages).unwrap_or(Value::Array(Vec::new())),
        );
        if let Some(temperature) = self.temperature {
            body.insert("temperature".into(), Value::from(f64::from(temperature)));
        }
        if let Some(max_tokens) = self.max_tokens {
            body.insert("max_tokens".into(), Value::from(max_tokens));
        }
        body.insert("stream".into(), Value::Bool(stream));
        if stream && stream_usage {
            body.insert(
                "stream_options".into(),
                serde_json::json!({ "include_usage": true }),
            );
        } else if !stream {
            body.remove("stream_options");
        }
        Value::Object(body)
    }
}

/// About four characters a token: the usual rule of thumb for English with
/// OpenAI's tokenizers.
pub(crate) fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

/// Tokens counted by the provider.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the prompt.
    pub prompt_tokens: u64,
    /// Tokens of the answer.
    pub completion_tokens: u64,
}

impl Usage {
    /// Prompt and answer together.
    pub fn total(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// A whole answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatResponse {
    /// The answer's text (empty when the model only called tools).
    pub content: String,
    /// Tool calls as the provider sent them (OpenAI's `tool_calls`), merged
    /// from their pieces for a streamed answer.
    pub tool_calls: Vec<Value>,
    /// Tokens counted by the provider, when it said.
    pub usage: Option<Usage>,
    /// The model that answered, as the provider names it.
    pub model: String,
    /// Why the answer ended (`stop`, `length`, `tool_calls`, ...).
    pub finish_reason: Option<String>,
    /// The configured name of the provider that answered (with a fallback
    /// chain, not necessarily the first).
    pub provider: String,
}

impl ChatResponse {
    /// Whether the model called tools: such answers depend on more than the
    /// prompt and are not for a cache.
    pub fn has_tool_calls(&self) -> bool {
        !self.tool_calls.is_empty()
    }

    /// Reads a streamed answer to its end and puts it together: the text,
    /// the tool calls merged by index, the finish reason and the usage.
    ///
    /// # Errors
    ///
    /// The first error of the stream.
    pub async fn from_stream<S>(stream: S) -> Result<ChatResponse, AiError>
    where
        S: Stream<Item = Result<ChatChunk, AiError>>,
    {
        let mut stream = std::pin::pin!(stream);
        let mut response = ChatResponse {
            content: String::new(),
            tool_calls: Vec::new(),
            usage: None,
            model: String::new(),
            finish_reason: None,
            provider: String::new(),
        };
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            response.content.push_str(&chunk.delta);
            for call in &chunk.tool_calls {
                merge_tool_call(&mut response.tool_calls, call);
            }
            if chunk.finish_reason.is_some() {
                response.finish_reason = chunk.finish_reason;
            }
            if chunk.usage.is_some() {
                response.usage = chunk.usage;
            }
            if response.model.is_empty() {
                response.model = chunk.model;
            }
            if response.provider.is_empty() {
                response.provider = chunk.provider;
            }
        }
        Ok(response)
    }
}

/// Adds one streamed tool-call piece (`{index, id?, type?, function: {name?,
/// arguments}}`) to the calls gathered so far: the first piece of an index
/// opens the call, later ones append to its `arguments`.
fn merge_tool_call(calls: &mut Vec<Value>, piece: &Value) {
    let index = piece.get("index").and_then(Value::as_u64);
    let existing = calls
        .iter_mut()
        .find(|call| index.is_some() && call.get("index").and_then(Value::as_u64) == index);
    let Some(call) = existing else {
        calls.push(piece.clone());
        return;
    };
    let more = piece
        .pointer("/function/arguments")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(Value::String(arguments)) = call.pointer_mut("/function/arguments") {
        arguments.push_str(more);
    } else if let Some(function) = call.get_mut("function").and_then(Value::as_object_mut) {
        function.insert("arguments".into(), Value::String(more.to_owned()));
    }
}

/// A piece of a streamed answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatChunk {
    /// Text added by this piece (may be empty).
    pub delta: String,
    /// Tool-call pieces of this chunk, as sent (see
    /// [`ChatResponse::from_stream`] for putting them together).
    pub tool_calls: Vec<Value>,
    /// Set on the piece that ends the answer.
    pub finish_reason: Option<String>,
    /// The usage, on the last piece when the provider sends it.
    pub usage: Option<Usage>,
    /// The model that answers, as the provider names it.
    pub model: String,
    /// The configured name of the provider that answers.
    pub provider: String,
}

impl ChatChunk {
    /// A chunk carrying `delta` and nothing else: for replaying a cached
    /// answer as a stream.
    pub fn text(delta: impl Into<String>) -> Self {
        ChatChunk {
            delta: delta.into(),
            ..ChatChunk::default()
        }
    }

    fn is_empty(&self) -> bool {
        self.delta.is_empty()
            && self.tool_calls.is_empty()
            && self.finish_reason.is_none()
            && self.usage.is_none()
    }
}

// Wire types: only the fields used; unknown ones are ignored, missing ones
// default, so servers that send less (Ollama, vLLM, TGI) still parse.

#[derive(Deserialize)]
pub(crate) struct WireCompletion {
    #[serde(default)]
    model: String,
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    message: Option<WireMessage>,
    #[serde(default)]
    delta: Option<WireMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<Value>>,
}

#[derive(Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

impl From<WireUsage> for Usage {
    fn from(usage: WireUsage) -> Self {
        Usage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        }
    }
}

impl WireCompletion {
    /// The first choice of a non-streamed answer.
    pub(crate) fn into_response(self, provider: &str) -> Result<ChatResponse, String> {
        let choice = self
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| "the answer has no `choices`".to_owned())?;
        let message = choice
            .message
            .ok_or_else(|| "the first choice has no `message`".to_owned())?;
        Ok(ChatResponse {
            content: message.content.unwrap_or_default(),
            tool_calls: message.tool_calls.unwrap_or_default(),
            usage: self.usage.map(Usage::from),
            model: self.model,
            finish_reason: choice.finish_reason,
            provider: provider.to_owned(),
        })
    }

    /// One streamed event as a chunk; `None` when it carries nothing (the
    /// opening role-only delta, keep-alives).
    pub(crate) fn into_chunk(self, provider: &str) -> Option<ChatChunk> {
        let mut chunk = ChatChunk {
            usage: self.usage.map(Usage::from),
            model: self.model,
            provider: provider.to_owned(),
            ..ChatChunk::default()
        };
        if let Some(choice) = self.choices.into_iter().next() {
            chunk.finish_reason = choice.finish_reason;
            if let Some(delta) = choice.delta.or(choice.message) {
                chunk.delta = delta.content.unwrap_or_default();
                chunk.tool_calls = delta.tool_calls.unwrap_or_default();
            }
        }
        (!chunk.is_empty()).then_some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_keeps_the_fixed_fields_over_extra_ones() {
        let request = ChatRequest::new("m", vec![ChatMessage::user("hi")])
            .max_tokens(5)
            .param("model", "other")
            .param("stream", true)
            .param("seed", 3);
        let body = request.to_body(false, true);
        assert_eq!(body["model"], "m");
        assert_eq!(body["stream"], false);
        assert_eq!(body["seed"], 3);
        assert_eq!(body["max_tokens"], 5);
        assert_eq!(body["messages"][0]["role"], "user");
        assert!(body.get("stream_options").is_none());
        let streamed = request.to_body(true, true);
        assert_eq!(streamed["stream_options"]["include_usage"], true);
        assert!(request.to_body(true, false).get("stream_options").is_none());
    }

    #[test]
    fn estimates_count_characters_and_framing() {
        let request = ChatRequest::new(
            "m",
            vec![ChatMessage::system("12345678"), ChatMessage::user("hi")],
        )
        .max_tokens(10);
        assert_eq!(request.estimated_prompt_tokens(), (4 + 2) + (4 + 1));
        assert_eq!(request.reserved_tokens(), 11 + 10);
    }

    #[test]
    fn wire_answers_parse_with_missing_fields() {
        let full: WireCompletion = serde_json::from_str(
            r#"{"model":"m1","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},
                "finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#,
        )
        .expect("parse");
        let response = full.into_response("p").expect("response");
        assert_eq!(response.content, "Hi");
        assert_eq!(response.usage.map(|u| u.total()), Some(4));
        assert_eq!(response.provider, "p");
        let empty: WireCompletion = serde_json::from_str(r#"{"choices":[]}"#).expect("parse");
        assert!(empty.into_response("p").is_err());
        let role_only: WireCompletion =
            serde_json::from_str(r#"{"choices":[{"delta":{"role":"assistant"}}]}"#).expect("parse");
        assert_eq!(role_only.into_chunk("p"), None);
    }

    #[tokio::test]
    async fn streamed_tool_calls_are_merged_by_index() {
        let pieces = [
            serde_json::json!({"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\""}}),
            serde_json::json!({"index":0,"function":{"arguments":":1}"}}),
            serde_json::json!({"index":1,"id":"c2","type":"function","function":{"name":"g","arguments":""}}),
        ];
        let chunks = pieces.into_iter().map(|piece| {
            Ok(ChatChunk {
                tool_calls: vec![piece],
                ..ChatChunk::default()
            })
        });
        let response = ChatResponse::from_stream(futures_util::stream::iter(chunks))
            .await
            .expect("merged");
        assert_eq!(response.tool_calls.len(), 2);
        assert_eq!(response.tool_calls[0]["function"]["arguments"], "{\"a\":1}");
        assert_eq!(response.tool_calls[1]["id"], "c2");
        assert!(response.has_tool_calls());
    }
}
