//! The parts of OpenAI's request bodies the simulator reads, checked the
//! way the real API checks them, so a client bug shows up as the same 400
//! it would get from a hosted model.

use serde::Deserialize;
use serde_json::Value;

/// A `/v1/chat/completions` body.
#[derive(Deserialize)]
pub(crate) struct ChatBody {
    pub(crate) model: String,
    pub(crate) messages: Vec<Message>,
    #[serde(default)]
    pub(crate) max_tokens: Option<u64>,
    /// The newer name of `max_tokens`; either is honoured.
    #[serde(default)]
    pub(crate) max_completion_tokens: Option<u64>,
    #[serde(default)]
    pub(crate) stream: bool,
    #[serde(default)]
    pub(crate) stream_options: Option<StreamOptions>,
    /// Read only to refuse values the real API refuses; the simulated
    /// answer does not depend on it.
    #[serde(default)]
    pub(crate) temperature: Option<f64>,
}

#[derive(Deserialize)]
pub(crate) struct StreamOptions {
    #[serde(default)]
    pub(crate) include_usage: bool,
}

/// One message; `content` is a string, a list of parts, or null (an
/// assistant message that only called tools).
#[derive(Deserialize)]
pub(crate) struct Message {
    pub(crate) role: String,
    #[serde(default)]
    content: Value,
}

impl Message {
    /// The message's text: the string, or the `text` of its parts joined.
    pub(crate) fn text(&self) -> String {
        match &self.content {
            Value::String(text) => text.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            _ => String::new(),
        }
    }
}

impl ChatBody {
    /// The body of a chat request, or the reason it is refused.
    pub(crate) fn parse(bytes: &[u8]) -> Result<ChatBody, String> {
        let body: ChatBody = serde_json::from_slice(bytes)
            .map_err(|error| format!("expected a chat completion request as JSON: {error}"))?;
        if body.model.trim().is_empty() {
            return Err("expected a non-empty `model`".to_owned());
        }
        if body.messages.is_empty() {
            return Err("expected at least one message in `messages`, found none".to_owned());
        }
        if let Some(role) = body
            .messages
            .iter()
            .map(|message| message.role.as_str())
            .find(|role| {
                !matches!(
                    *role,
                    "system" | "developer" | "user" | "assistant" | "tool"
                )
            })
        {
            return Err(format!(
                "expected each message's `role` to be system, developer, user, assistant or tool, found {role:?}"
            ));
        }
        if body.max_tokens() == Some(0) {
            return Err("expected `max_tokens` of at least 1, found 0".to_owned());
        }
        if let Some(temperature) = body.temperature
            && !(0.0..=2.0).contains(&temperature)
        {
            return Err(format!(
                "expected `temperature` from 0 to 2, found {temperature}"
            ));
        }
        Ok(body)
    }

    /// The cap on the answer's tokens, under either name.
    pub(crate) fn max_tokens(&self) -> Option<u64> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// Whether a streamed answer ends with a usage chunk.
    pub(crate) fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|options| options.include_usage)
    }
}

/// A `/v1/embeddings` body.
pub(crate) struct EmbeddingsBody {
    pub(crate) model: String,
    pub(crate) inputs: Vec<String>,
    pub(crate) dimensions: Option<usize>,
}

impl EmbeddingsBody {
    /// The body of an embeddings request, or the reason it is refused.
    pub(crate) fn parse(bytes: &[u8]) -> Result<EmbeddingsBody, String> {
        let body: Value = serde_json::from_slice(bytes)
            .map_err(|error| format!("expected an embeddings request as JSON: {error}"))?;
        let model = match body.get("model").and_then(Value::as_str) {
            Some(model) if !model.trim().is_empty() => model.to_owned(),
            _ => return Err("expected a non-empty `model`".to_owned()),
        };
        const EXPECTED_INPUT: &str = "expected `input` to be a string or a list of strings";
        let inputs = match body.get("input") {
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(many)) if !many.is_empty() => many
                .iter()
                .map(|input| input.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| format!("{EXPECTED_INPUT}, found a list with other items"))?,
            Some(Value::Array(_)) => return Err(format!("{EXPECTED_INPUT}, found an empty list")),
            Some(other) => return Err(format!("{EXPECTED_INPUT}, found {other}")),
            None => return Err(format!("{EXPECTED_INPUT}, found none")),
        };
        let dimensions = match body.get("dimensions") {
            None | Some(Value::Null) => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .and_then(|d| usize::try_from(d).ok())
                    .ok_or_else(|| {
                        format!("expected `dimensions` to be a whole number, found {value}")
                    })?,
            ),
        };
        Ok(EmbeddingsBody {
            model,
            inputs,
            dimensions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_bodies_are_checked_like_the_real_api() {
        let ok = ChatBody::parse(
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"text","text":"there"}]}],
                "max_completion_tokens":5,"stream":true,"stream_options":{"include_usage":true}}"#,
        )
        .expect("valid");
        assert_eq!(ok.messages[0].text(), "hi there");
        assert_eq!(ok.max_tokens(), Some(5));
        assert!(ok.stream && ok.include_usage());
        for (body, expected) in [
            (
                &b"{not json"[..],
                "expected a chat completion request as JSON",
            ),
            (br#"{"messages":[]}"#, "missing field `model`"),
            (br#"{"model":"m","messages":[]}"#, "at least one message"),
            (
                br#"{"model":"m","messages":[{"role":"robot","content":"x"}]}"#,
                "found \"robot\"",
            ),
            (
                br#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":0}"#,
                "at least 1, found 0",
            ),
            (
                br#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":3}"#,
                "from 0 to 2, found 3",
            ),
        ] {
            let error = ChatBody::parse(body).err().expect("refused");
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn embeddings_take_a_string_or_a_list_of_strings() {
        let one = EmbeddingsBody::parse(br#"{"model":"e","input":"hi"}"#).expect("one");
        assert_eq!(one.inputs, ["hi"]);
        let many = EmbeddingsBody::parse(br#"{"model":"e","input":["a","b"],"dimensions":64}"#)
            .expect("many");
        assert_eq!((many.inputs.len(), many.dimensions), (2, Some(64)));
        for (body, expected) in [
            (
                &br#"{"model":"e","input":[1,2]}"#[..],
                "found a list with other items",
            ),
            (br#"{"model":"e","input":[]}"#, "found an empty list"),
            (br#"{"model":"e"}"#, "found none"),
            (br#"{"input":"x"}"#, "non-empty `model`"),
            (
                br#"{"model":"e","input":"x","dimensions":"big"}"#,
                "whole number",
            ),
        ] {
            let error = EmbeddingsBody::parse(body).err().expect("refused");
            assert!(error.contains(expected), "{error}");
        }
    }
}
