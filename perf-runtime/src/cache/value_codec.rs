//! How a cached value becomes bytes for Redis. Chosen where the macro
//! expands, on the concrete type: serde types directly, `axum::Json<T>`
//! through its `T` (autoref specialisation, as for profile outcomes).
//!
//! Values are MessagePack (`rmp-serde`): compact, and self-describing, so
//! types that deserialize through `deserialize_any` (`serde_json::Value`,
//! untagged enums, `#[serde(flatten)]`) round-trip too.

use std::marker::PhantomData;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::codec::{DecodeError, EncodeError};

/// Encode and decode functions for one value type (no envelope: the L2
/// record wraps the bytes in one).
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub struct ValueCodec<V> {
    pub(crate) to_bytes: fn(&V) -> Result<Vec<u8>, EncodeError>,
    pub(crate) from_bytes: fn(&[u8]) -> Result<V, DecodeError>,
}

impl<V> Clone for ValueCodec<V> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<V> Copy for ValueCodec<V> {}

impl<V: Serialize + DeserializeOwned> ValueCodec<V> {
    /// The codec of a serde type.
    pub fn serde() -> Self {
        ValueCodec {
            to_bytes: encode_value,
            from_bytes: decode_exact,
        }
    }
}

fn encode_value<V: Serialize + ?Sized>(value: &V) -> Result<Vec<u8>, EncodeError> {
    rmp_serde::to_vec(value).map_err(|e| EncodeError::Serialize(e.to_string()))
}

fn decode_exact<V: DeserializeOwned>(bytes: &[u8]) -> Result<V, DecodeError> {
    let mut deserializer = rmp_serde::Deserializer::new(bytes);
    let value =
        V::deserialize(&mut deserializer).map_err(|e| DecodeError::WrongType(e.to_string()))?;
    let rest = deserializer.into_inner();
    if !rest.is_empty() {
        return Err(DecodeError::WrongType(format!(
            "{} bytes left over",
            rest.len()
        )));
    }
    Ok(value)
}

/// Selects a codec for `V`; see the module docs.
#[doc(hidden)]
pub struct CodecProbe<V>(PhantomData<fn() -> V>);

impl<V> CodecProbe<V> {
    #[doc(hidden)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        CodecProbe(PhantomData)
    }
}

/// Chosen for serde types.
#[doc(hidden)]
pub trait SerdeCodec<V> {
    fn perf_codec(&self) -> ValueCodec<V>;
}

impl<V: Serialize + DeserializeOwned> SerdeCodec<V> for &CodecProbe<V> {
    fn perf_codec(&self) -> ValueCodec<V> {
        ValueCodec::serde()
    }
}

/// Chosen for `axum::Json<T>`: stores the `T`.
#[cfg(feature = "axum")]
#[doc(hidden)]
pub trait JsonCodec<V> {
    fn perf_codec(&self) -> ValueCodec<V>;
}

#[cfg(feature = "axum")]
impl<T: Serialize + DeserializeOwned> JsonCodec<axum::Json<T>> for CodecProbe<axum::Json<T>> {
    fn perf_codec(&self) -> ValueCodec<axum::Json<T>> {
        ValueCodec {
            to_bytes: |json| encode_value(&json.0),
            from_bytes: |bytes| decode_exact(bytes).map(axum::Json),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_describing_values_round_trip() {
        let codec = ValueCodec::<serde_json::Value>::serde();
        let value = serde_json::json!({"user_id": 7, "tags": ["a", null], "nested": {"x": 1.5}});
        let bytes = (codec.to_bytes)(&value).unwrap();
        assert_eq!((codec.from_bytes)(&bytes).unwrap(), value);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!((codec.from_bytes)(&trailing).is_err());
        assert!((codec.from_bytes)(&[0xc1]).is_err());
    }
}
