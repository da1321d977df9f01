//! The envelope of a value stored outside the process (Redis, PostgreSQL).
//!
//! ```text
//! offset 0  "PF"        magic
//!        2  version     format version (1)
//!        3  flags       bit 0: payload is LZ4-compressed
//!        4  length      u32 LE: length of the decoded payload
//!        8  payload     postcard bytes, compressed when bit 0 is set
//! ```
//!
//! Values whose encoding exceeds [`COMPRESS_ABOVE`] bytes are compressed.
//! Decoding checks magic, version and the declared length against a limit
//! before allocating anything, so a corrupt or hostile value costs at most
//! `limit` bytes and never panics.
//!
//! ```
//! use perf_runtime::cache::codec;
//!
//! let bytes = codec::encode(&("hello", 42u32)).unwrap();
//! let back: (String, u32) = codec::decode(&bytes, codec::DEFAULT_MAX_VALUE_BYTES).unwrap();
//! assert_eq!(back, ("hello".to_owned(), 42));
//! assert!(codec::decode::<(String, u32)>(b"garbage", 1024).is_err());
//! ```

use serde::Serialize;
use serde::de::DeserializeOwned;

const MAGIC: [u8; 2] = *b"PF";
const VERSION: u8 = 1;
const FLAG_LZ4: u8 = 1;
const HEADER: usize = 8;

/// Payloads larger than this are LZ4-compressed.
pub const COMPRESS_ABOVE: usize = 1024;

/// The default largest decoded value accepted: 8 MiB.
pub const DEFAULT_MAX_VALUE_BYTES: usize = 8 * 1024 * 1024;

/// A value could not be encoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The value's `Serialize` implementation failed.
    #[error("cannot encode the value: {0}")]
    Serialize(String),
    /// The encoded value exceeds 4 GiB, which the envelope cannot describe.
    #[error("the encoded value is {0} bytes; at most 4 GiB can be stored")]
    TooLarge(usize),
}

/// Bytes that are not a valid envelope for the expected type. The cache
/// tiers treat every one as a miss (and delete the entry).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than the header, or the magic bytes are wrong.
    #[error("not a perf cache value (bad header)")]
    NotAnEnvelope,
    /// Written by a format version this build does not read.
    #[error("cache value format version {0}; this build reads version 1")]
    UnknownVersion(u8),
    /// Flags this build does not understand.
    #[error("cache value has unknown flags {0:#04x}")]
    UnknownFlags(u8),
    /// The declared length exceeds the limit.
    #[error("cache value declares {declared} bytes, over the {limit}-byte limit")]
    TooLarge {
        /// Declared decoded length.
        declared: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The payload is truncated, or decompresses to another length.
    #[error("cache value is truncated or corrupt")]
    Corrupt,
    /// The payload does not deserialize as the expected type (often a
    /// changed type without a schema version bump).
    #[error("cache value does not match the expected type: {0}")]
    WrongType(String),
}

/// Encodes `value` into an envelope.
///
/// # Errors
/// [`EncodeError`] when serialization fails or the value is over 4 GiB.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let payload =
        postcard::to_allocvec(value).map_err(|e| EncodeError::Serialize(e.to_string()))?;
    let length = u32::try_from(payload.len()).map_err(|_| EncodeError::TooLarge(payload.len()))?;
    let (flags, body) = if payload.len() > COMPRESS_ABOVE {
        (FLAG_LZ4, lz4_flex::block::compress(&payload))
    } else {
        (0, payload)
    };
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(&MAGIC);
    out.push(VERSION);
    out.push(flags);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

/// Decodes an envelope, refusing any value that declares more than `limit`
/// decoded bytes before allocating for it.
///
/// # Errors
/// [`DecodeError`] for anything that is not a valid envelope of `T`.
pub fn decode<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, DecodeError> {
    if bytes.len() < HEADER || bytes[..2] != MAGIC {
        return Err(DecodeError::NotAnEnvelope);
    }
    if bytes[2] != VERSION {
        return Err(DecodeError::UnknownVersion(bytes[2]));
    }
    let flags = bytes[3];
    if flags & !FLAG_LZ4 != 0 {
        return Err(DecodeError::UnknownFlags(flags));
    }
    let declared = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    if declared > limit {
        return Err(DecodeError::TooLarge { declared, limit });
    }
    let body = &bytes[HEADER..];
    let decompressed;
    let payload = if flags & FLAG_LZ4 != 0 {
        let mut buffer = vec![0u8; declared];
        let written = lz4_flex::block::decompress_into(body, &mut buffer)
            .map_err(|_| DecodeError::Corrupt)?;
        if written != declared {
            return Err(DecodeError::Corrupt);
        }
        decompressed = buffer;
        &decompressed[..]
    } else {
        if body.len() != declared {
            return Err(DecodeError::Corrupt);
        }
        body
    };
    match postcard::take_from_bytes(payload) {
        Ok((value, [])) => Ok(value),
        // Bytes left over: the value was written as another type.
        Ok((_, rest)) => Err(DecodeError::WrongType(format!(
            "{} bytes left over after decoding",
            rest.len()
        ))),
        Err(error) => Err(DecodeError::WrongType(error.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Profile {
        id: u64,
        name: String,
        tags: Vec<String>,
    }

    #[test]
    fn round_trips_small_and_compressed_values() {
        let small = Profile {
            id: 7,
            name: "ann".into(),
            tags: vec!["pro".into()],
        };
        let bytes = encode(&small).unwrap();
        assert_eq!(bytes[3], 0, "small values are not compressed");
        assert_eq!(decode::<Profile>(&bytes, 1024).unwrap(), small);

        let large = Profile {
            id: 8,
            name: "b".repeat(10_000),
            tags: vec!["t".repeat(100); 50],
        };
        let bytes = encode(&large).unwrap();
        assert_eq!(bytes[3], FLAG_LZ4);
        assert!(
            bytes.len() < 2_000,
            "repetitive values compress: {}",
            bytes.len()
        );
        assert_eq!(
            decode::<Profile>(&bytes, DEFAULT_MAX_VALUE_BYTES).unwrap(),
            large
        );
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        assert_eq!(decode::<u32>(b"", 64), Err(DecodeError::NotAnEnvelope));
        assert_eq!(
            decode::<u32>(b"garbage!!", 64),
            Err(DecodeError::NotAnEnvelope)
        );
        let good = encode(&"hello world").unwrap();
        let mut wrong_version = good.clone();
        wrong_version[2] = 9;
        assert_eq!(
            decode::<String>(&wrong_version, 64),
            Err(DecodeError::UnknownVersion(9))
        );
        let mut wrong_flags = good.clone();
        wrong_flags[3] = 0x80;
        assert_eq!(
            decode::<String>(&wrong_flags, 64),
            Err(DecodeError::UnknownFlags(0x80))
        );
        let truncated = &good[..good.len() - 3];
        assert_eq!(decode::<String>(truncated, 64), Err(DecodeError::Corrupt));
        assert!(matches!(
            decode::<u64>(&good, 64),
            Err(DecodeError::WrongType(_))
        ));
    }

    #[test]
    fn a_huge_declared_length_is_refused_before_allocating() {
        let mut hostile = encode(&vec![0u8; 2000]).unwrap();
        hostile[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(
            decode::<Vec<u8>>(&hostile, DEFAULT_MAX_VALUE_BYTES),
            Err(DecodeError::TooLarge {
                declared: u32::MAX as usize,
                limit: DEFAULT_MAX_VALUE_BYTES
            })
        );
        // A postcard length prefix claiming 2^60 elements inside a small value.
        let mut payload = vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f];
        payload.extend_from_slice(&[1, 2, 3]);
        let mut envelope = b"PF\x01\x00".to_vec();
        envelope.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        envelope.extend_from_slice(&payload);
        assert!(matches!(
            decode::<Vec<u64>>(&envelope, 1024),
            Err(DecodeError::WrongType(_))
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode::<Profile>(&bytes, 4096);
            let _ = decode::<Vec<String>>(&bytes, 4096);
        }

        #[test]
        fn headed_garbage_never_panics(
            flags in 0u8..2,
            declared in 0u32..5000,
            body in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let mut bytes = b"PF\x01".to_vec();
            bytes.push(flags);
            bytes.extend_from_slice(&declared.to_le_bytes());
            bytes.extend_from_slice(&body);
            let _ = decode::<Profile>(&bytes, 4096);
        }

        #[test]
        fn round_trip(id in any::<u64>(), name in ".{0,2000}", tags in proptest::collection::vec(".{0,20}", 0..20)) {
            let value = Profile { id, name, tags };
            let bytes = encode(&value).unwrap();
            prop_assert_eq!(decode::<Profile>(&bytes, DEFAULT_MAX_VALUE_BYTES).unwrap(), value);
        }
    }
}
