//! How a cached value becomes bytes for Redis. Chosen where the macro
//! expands, on the concrete type: serde types directly, `axum::Json<T>`
//! through its `T` (autoref specialisation, as for profile outcomes).

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
            to_bytes: |value| {
                postcard::to_allocvec(value).map_err(|e| EncodeError::Serialize(e.to_string()))
            },
            from_bytes: decode_exact,
        }
    }
}

fn decode_exact<V: DeserializeOwned>(bytes: &[u8]) -> Result<V, DecodeError> {
    match postcard::take_from_bytes(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(DecodeError::WrongType(format!(
            "{} bytes left over",
            rest.len()
        ))),
        Err(error) => Err(DecodeError::WrongType(error.to_string())),
    }
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
            to_bytes: |json| {
                postcard::to_allocvec(&json.0).map_err(|e| EncodeError::Serialize(e.to_string()))
            },
            from_bytes: |bytes| decode_exact(bytes).map(axum::Json),
        }
    }
}
