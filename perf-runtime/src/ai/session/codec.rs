//! The stored form of a session: postcard, then an LZ4 block, behind a
//! 13-byte header.
//!
//! ```text
//! offset 0  version   format version (1)
//!        1  token     u64 LE, new on every write: with the version, the
//!                     9-byte "head" the Redis scripts compare to tell
//!                     whether a session changed since it was read
//!        9  length    u32 LE: the postcard payload's length before
//!                     compression, at most MAX_DECODED_BYTES
//!       13  block     the LZ4 block of the payload
//! payload: expires_at_ms (Unix ms), then each message as
//!          (role, content, name, tool_call_id)
//! ```
//!
//! A message is written as a tuple rather than through
//! [`ChatMessage`]'s own serde form, whose skipped `None` fields a format
//! without field names (postcard) could not read back. The roles are
//! written by position: adding a role means a new format version.
//!
//! Decoding never panics and never allocates more than
//! [`MAX_DECODED_BYTES`] for the payload: the declared length is checked
//! before anything is allocated, the block must fill exactly that length,
//! and the payload must be consumed to its last byte.
//!
//! ```
//! use perf_runtime::ai::ChatMessage;
//! use perf_runtime::ai::session::codec;
//!
//! let messages = vec![ChatMessage::system("Be brief."), ChatMessage::user("Hi")];
//! let encoded = codec::encode(&messages, 7, 1_700_000_000_000).unwrap();
//! let decoded = codec::decode(encoded.bytes()).unwrap();
//! assert_eq!((decoded.token, decoded.messages), (7, messages));
//! assert!(codec::decode(b"garbage").is_err());
//! ```

use serde::{Deserialize, Serialize};

use crate::ai::{ChatMessage, Role};

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u8 = 1;
/// Largest payload (before compression) written or read: 8 MiB.
pub const MAX_DECODED_BYTES: usize = 8 * 1024 * 1024;
/// Bytes of version and token: what tells two writes apart.
pub(crate) const HEAD_LEN: usize = 9;
const HEADER_LEN: usize = HEAD_LEN + 4;
/// Upper bound of the postcard bytes of one message besides its strings:
/// the role, three length varints and two option tags.
const MESSAGE_OVERHEAD: usize = 1 + 3 * 5 + 2;
/// Upper bound of the payload bytes besides the messages: the expiry and
/// the message count as varints.
const PAYLOAD_OVERHEAD: usize = 10 + 10;

/// A session encoded for Redis.
#[derive(Clone, Debug)]
pub struct Encoded {
    bytes: Vec<u8>,
    raw_len: usize,
}

impl Encoded {
    /// What is stored: header and compressed payload.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The payload's length before compression.
    pub fn raw_len(&self) -> usize {
        self.raw_len
    }

    /// The stored length (header included).
    pub fn compressed_len(&self) -> usize {
        self.bytes.len()
    }

    /// Raw length over stored length: above 1 when compression pays.
    pub fn ratio(&self) -> f64 {
        self.raw_len as f64 / self.bytes.len().max(1) as f64
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// A session read back.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Decoded {
    /// The token of the write that stored it.
    pub token: u64,
    /// When it expires, in Unix milliseconds.
    pub expires_at_ms: u64,
    /// Its messages, oldest first.
    pub messages: Vec<ChatMessage>,
}

/// Bytes that are not a session this build can read. The store treats each
/// one as an absent session (and deletes the value).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodecError {
    /// Shorter than the 13-byte header.
    #[error("not a stored session: {0} bytes, shorter than the 13-byte header")]
    Truncated(usize),
    /// Written in a format this build does not read.
    #[error("stored session format version {0}; this build reads version 1")]
    UnknownVersion(u8),
    /// The payload is (or would be) larger than [`MAX_DECODED_BYTES`].
    #[error("stored session of {size} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// The payload's length.
        size: usize,
        /// [`MAX_DECODED_BYTES`].
        limit: usize,
    },
    /// The LZ4 block does not decompress to the declared length.
    #[error("stored session is corrupt: the compressed block does not match its length")]
    Corrupt,
    /// The payload does not read as a session.
    #[error("stored session does not read as messages: {0}")]
    Payload(String),
}

type WireMessage<S> = (Role, S, Option<S>, Option<S>);

#[derive(Serialize)]
struct PayloadRef<'a> {
    expires_at_ms: u64,
    messages: Vec<WireMessage<&'a str>>,
}

#[derive(Deserialize)]
struct Payload {
    expires_at_ms: u64,
    messages: Vec<WireMessage<String>>,
}

/// An upper bound of the payload length `messages` encode to, counted
/// without encoding: what [`encode`] would refuse is known before a write.
pub(crate) fn payload_bound(messages: &[ChatMessage]) -> usize {
    messages.iter().fold(PAYLOAD_OVERHEAD, |sum, m| {
        sum.saturating_add(MESSAGE_OVERHEAD)
            .saturating_add(m.content.len())
            .saturating_add(m.name.as_ref().map_or(0, String::len))
            .saturating_add(m.tool_call_id.as_ref().map_or(0, String::len))
    })
}

/// Encodes `messages` as written by the write `token`, expiring at
/// `expires_at_ms` (Unix milliseconds).
///
/// # Errors
/// [`CodecError::TooLarge`] when the payload exceeds [`MAX_DECODED_BYTES`].
pub fn encode(
    messages: &[ChatMessage],
    token: u64,
    expires_at_ms: u64,
) -> Result<Encoded, CodecError> {
    let payload = PayloadRef {
        expires_at_ms,
        messages: messages
            .iter()
            .map(|m| {
                (
                    m.role,
                    m.content.as_str(),
                    m.name.as_deref(),
                    m.tool_call_id.as_deref(),
                )
            })
            .collect(),
    };
    let raw = postcard::to_allocvec(&payload).map_err(|e| CodecError::Payload(e.to_string()))?;
    if raw.len() > MAX_DECODED_BYTES {
        return Err(CodecError::TooLarge {
            size: raw.len(),
            limit: MAX_DECODED_BYTES,
        });
    }
    let block = lz4_flex::block::compress(&raw);
    let mut bytes = Vec::with_capacity(HEADER_LEN + block.len());
    bytes.extend_from_slice(&head(token));
    // At most 8 MiB: fits.
    bytes.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&block);
    Ok(Encoded {
        bytes,
        raw_len: raw.len(),
    })
}

/// Reads a stored session.
///
/// # Errors
/// [`CodecError`] for anything that is not a session of this format.
pub fn decode(bytes: &[u8]) -> Result<Decoded, CodecError> {
    if bytes.len() < HEADER_LEN {
        return Err(CodecError::Truncated(bytes.len()));
    }
    if bytes[0] != FORMAT_VERSION {
        return Err(CodecError::UnknownVersion(bytes[0]));
    }
    let token = u64::from_le_bytes(bytes[1..HEAD_LEN].try_into().unwrap_or_default());
    let declared = u32::from_le_bytes([bytes[9], bytes[10], bytes[11], bytes[12]]) as usize;
    if declared > MAX_DECODED_BYTES {
        return Err(CodecError::TooLarge {
            size: declared,
            limit: MAX_DECODED_BYTES,
        });
    }
    let mut raw = vec![0u8; declared];
    let written = lz4_flex::block::decompress_into(&bytes[HEADER_LEN..], &mut raw)
        .map_err(|_| CodecError::Corrupt)?;
    if written != declared {
        return Err(CodecError::Corrupt);
    }
    let (payload, rest) = postcard::take_from_bytes::<Payload>(&raw)
        .map_err(|e| CodecError::Payload(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CodecError::Payload(format!(
            "{} bytes after the last message",
            rest.len()
        )));
    }
    Ok(Decoded {
        token,
        expires_at_ms: payload.expires_at_ms,
        messages: payload
            .messages
            .into_iter()
            .map(|(role, content, name, tool_call_id)| ChatMessage {
                role,
                content,
                name,
                tool_call_id,
            })
            .collect(),
    })
}

/// The first [`HEAD_LEN`] bytes of a session written by `token`.
pub(crate) fn head(token: u64) -> [u8; HEAD_LEN] {
    let mut head = [0u8; HEAD_LEN];
    head[0] = FORMAT_VERSION;
    head[1..].copy_from_slice(&token.to_le_bytes());
    head
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn conversation() -> Vec<ChatMessage> {
        vec![
            ChatMessage::system("You are a helpful assistant. Answer in English."),
            ChatMessage::user("What is the capital of France?").with_name("alice"),
            ChatMessage::assistant("The capital of France is Paris."),
            ChatMessage::tool("call_1", "{\"temperature\": 21}"),
            ChatMessage::user(""),
            ChatMessage::assistant("ünïcødé ✓ 日本語"),
        ]
    }

    #[test]
    fn round_trip_keeps_every_field() {
        let messages = conversation();
        let encoded = encode(&messages, u64::MAX, 1_234_567_890_123).unwrap();
        let decoded = decode(encoded.bytes()).unwrap();
        assert_eq!(decoded.token, u64::MAX);
        assert_eq!(decoded.expires_at_ms, 1_234_567_890_123);
        assert_eq!(decoded.messages, messages);
        assert_eq!(&encoded.bytes()[..HEAD_LEN], &head(u64::MAX));
        let empty = decode(encode(&[], 0, 0).unwrap().bytes()).unwrap();
        assert!(empty.messages.is_empty());
    }

    #[test]
    fn a_repetitive_conversation_compresses() {
        let messages: Vec<_> = (0..50)
            .map(|i| {
                ChatMessage::user(format!(
                    "Question {i}: how do I configure the connection pool for PostgreSQL \
                     so that the service keeps working when the database restarts?"
                ))
            })
            .collect();
        let encoded = encode(&messages, 1, 2).unwrap();
        assert!(
            encoded.ratio() > 2.0,
            "ratio {} ({} raw, {} stored)",
            encoded.ratio(),
            encoded.raw_len(),
            encoded.compressed_len()
        );
        assert!(payload_bound(&messages) >= encoded.raw_len());
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let good = encode(&conversation(), 9, 9).unwrap().into_bytes();
        assert_eq!(decode(b""), Err(CodecError::Truncated(0)));
        assert_eq!(decode(&good[..12]), Err(CodecError::Truncated(12)));
        let mut version = good.clone();
        version[0] = 2;
        assert_eq!(decode(&version), Err(CodecError::UnknownVersion(2)));
        let mut huge = good.clone();
        huge[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(decode(&huge), Err(CodecError::TooLarge { .. })));
        let mut longer = good.clone();
        let declared = u32::from_le_bytes(good[9..13].try_into().unwrap());
        longer[9..13].copy_from_slice(&(declared + 1).to_le_bytes());
        assert_eq!(decode(&longer), Err(CodecError::Corrupt));
        assert!(decode(&good[..good.len() - 1]).is_err(), "truncated block");
        // A valid block of a payload that is not a session.
        let mut not_a_session = head(1).to_vec();
        let raw = [0xffu8; 40];
        not_a_session.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        not_a_session.extend_from_slice(&lz4_flex::block::compress(&raw));
        assert!(matches!(
            decode(&not_a_session),
            Err(CodecError::Payload(_))
        ));
    }

    #[test]
    fn oversized_payloads_are_refused_when_encoding() {
        let big = vec![ChatMessage::user("x".repeat(MAX_DECODED_BYTES))];
        assert!(matches!(
            encode(&big, 1, 1),
            Err(CodecError::TooLarge { .. })
        ));
        assert!(payload_bound(&big) > MAX_DECODED_BYTES);
    }

    fn role() -> impl Strategy<Value = Role> {
        prop_oneof![
            Just(Role::System),
            Just(Role::User),
            Just(Role::Assistant),
            Just(Role::Tool)
        ]
    }

    fn message() -> impl Strategy<Value = ChatMessage> {
        (
            role(),
            ".{0,200}",
            proptest::option::of("[a-z]{1,8}"),
            proptest::option::of("call_[0-9]{1,4}"),
        )
            .prop_map(|(role, content, name, tool_call_id)| ChatMessage {
                role,
                content,
                name,
                tool_call_id,
            })
    }

    proptest! {
        #[test]
        fn any_conversation_round_trips(
            messages in proptest::collection::vec(message(), 0..40),
            token in any::<u64>(),
            expires in any::<u64>(),
        ) {
            let encoded = encode(&messages, token, expires).unwrap();
            prop_assert!(payload_bound(&messages) >= encoded.raw_len());
            let decoded = decode(encoded.bytes()).unwrap();
            prop_assert_eq!(decoded.token, token);
            prop_assert_eq!(decoded.expires_at_ms, expires);
            prop_assert_eq!(decoded.messages, messages);
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn flipped_bytes_never_panic(flip in 0usize..400, bit in 0u8..8) {
            let mut bytes = encode(&conversation(), 3, 4).unwrap().into_bytes();
            let at = flip % bytes.len();
            bytes[at] ^= 1 << bit;
            let _ = decode(&bytes);
        }
    }
}
