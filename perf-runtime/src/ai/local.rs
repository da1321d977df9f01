//! [`LocalEmbedder`]: the built-in embedder. No network, no model download,
//! a few microseconds per prompt.
//!
//! A prompt becomes a bag of hashed features of its normalised text (see
//! below), each added with a sign into one of `dimensions` buckets ("feature
//! hashing"), and the sum is scaled to unit length. Two prompts that share
//! most of their words, word pairs and word fragments point the same way, so
//! their dot product is close to 1. It sees spelling, not meaning: "laptop"
//! and "notebook" share nothing. That is why the semantic cache's default
//! threshold is high and a [`guard`](super::guard) checks every match.
//!
//! Features of each word (lowercased, apostrophes dropped, other punctuation
//! a separator):
//! - the word itself, plural stripped, weight [`WORD`] (×0.25 for function
//!   words such as "the", "is", "please", "what"; ×0.5 for request verbs
//!   such as "explain", "tell", "give", "list");
//! - the pair it forms with the previous word, weight [`BIGRAM`] (keeps some
//!   word order: "celsius to fahrenheit" is not "fahrenheit to celsius");
//! - its character 3-, 4- and 5-grams with boundary marks (`<word>`), weight
//!   [`CHARS`] shared among them, so inflections ("dictionary" and
//!   "dictionaries") and typos stay close.
//!
//! Features are hashed with XXH3-64 (a frozen, platform-independent
//! algorithm), so a vector is the same in every process, on every machine and
//! in every version that keeps [`LocalEmbedder::MODEL`]. Any change to the
//! features, weights, hashing or normalisation must change that name:
//! entries are partitioned by it, and vectors of two versions must never be
//! compared.

use async_trait::async_trait;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::text::{self, for_each_word};
use super::{AiError, Embedder};

/// Weight of a word.
const WORD: f32 = 1.0;
/// Weight of a pair of consecutive words.
const BIGRAM: f32 = 0.7;
/// Weight shared by the character n-grams of one word.
const CHARS: f32 = 0.8;
/// Character n-gram lengths.
const NGRAM_MIN: usize = 3;
const NGRAM_MAX: usize = 5;

/// Seeds that keep the kinds of features apart: the word "ing" and the
/// n-gram "ing" land in unrelated buckets.
const SEED_WORD: u64 = 0x7065_7266_2d77_6f72;
const SEED_BIGRAM: u64 = 0x7065_7266_2d62_6967;
const SEED_CHARS: u64 = 0x7065_7266_2d63_6872;
/// The one feature of a text with no words, so empty prompts match each
/// other and nothing else.
const EMPTY_FEATURE: &[u8] = b"<empty>";

/// The built-in embedder: signed feature hashing of word unigrams, word
/// bigrams and character n-grams, L2-normalised.
///
/// ```
/// use perf_runtime::ai::LocalEmbedder;
///
/// let e = LocalEmbedder::new();
/// let a = e.embed_one("How do I reverse a list in Python?");
/// let b = e.embed_one("how can I reverse a list in python");
/// let c = e.embed_one("What is the capital of France?");
/// let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f32>();
/// assert!(dot(&a, &b) > 0.9);
/// assert!(dot(&a, &c) < 0.3);
/// ```
#[derive(Debug, Clone)]
pub struct LocalEmbedder {
    dimensions: usize,
    model: String,
}

impl LocalEmbedder {
    /// The model name of the default configuration. It names the algorithm
    /// version: any change to how vectors are computed changes it.
    pub const MODEL: &'static str = "perf-local-v1";
    /// The default vector length: 256 floats (1 KiB a prompt). On the
    /// labelled prompt pairs, 128 to 1,024 buckets give the same precision
    /// and recall within one pair; memory and search time grow with the
    /// length, so the default is the shortest that keeps unrelated prompts
    /// well apart (two random prompts' vectors have a dot product of about
    /// ±1/16).
    pub const DIMENSIONS: usize = 256;

    /// The default embedder: [`MODEL`](Self::MODEL), [`DIMENSIONS`](Self::DIMENSIONS).
    pub fn new() -> Self {
        LocalEmbedder {
            dimensions: Self::DIMENSIONS,
            model: Self::MODEL.to_owned(),
        }
    }

    /// An embedder with vectors of `dimensions` floats (64 to 16,384). Its
    /// model name carries the length (`perf-local-v1-d1024`), since vectors
    /// of two lengths cannot be compared.
    pub fn with_dimensions(dimensions: usize) -> Result<Self, AiError> {
        if !(64..=16_384).contains(&dimensions) {
            return Err(AiError::InvalidConfig {
                field: "LocalEmbedder::with_dimensions",
                expected: "a vector length from 64 to 16384",
                found: dimensions.to_string(),
            });
        }
        let model = if dimensions == Self::DIMENSIONS {
            Self::MODEL.to_owned()
        } else {
            format!("{}-d{dimensions}", Self::MODEL)
        };
        Ok(LocalEmbedder { dimensions, model })
    }

    /// The unit vector of one text.
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut out = vec![0.0; self.dimensions];
        self.embed_into(text, &mut out);
        out
    }

    /// Writes the unit vector of `text` into `out`, which must be
    /// [`dimensions`](Embedder::dimensions) long (the allocation-free path).
    ///
    /// # Panics
    /// If `out` has another length.
    pub fn embed_into(&self, text: &str, out: &mut [f32]) {
        assert_eq!(
            out.len(),
            self.dimensions,
            "embed_into needs a buffer of the embedder's dimensions"
        );
        out.fill(0.0);
        let mut previous: Option<(u64, f32)> = None;
        let mut padded = String::with_capacity(48);
        let mut bounds: Vec<usize> = Vec::with_capacity(48);
        let mut any = false;
        for_each_word(text, |word, _| {
            any = true;
            let weight = text::weight(word);
            // Plurals share the word features; the n-grams below keep the
            // difference, slightly.
            let word_hash = xxh3_64_with_seed(text::stem(word).as_bytes(), SEED_WORD);
            self.add(out, word_hash, WORD * weight);
            if let Some((prev_hash, prev_weight)) = previous {
                let mut pair = [0u8; 16];
                pair[..8].copy_from_slice(&prev_hash.to_le_bytes());
                pair[8..].copy_from_slice(&word_hash.to_le_bytes());
                // Two function words in a row ("of the") say even less than one.
                let pair_weight = BIGRAM * (weight * prev_weight).sqrt();
                self.add(out, xxh3_64_with_seed(&pair, SEED_BIGRAM), pair_weight);
            }
            previous = Some((word_hash, weight));
            self.add_char_ngrams(out, word, weight, &mut padded, &mut bounds);
        });
        if !any {
            self.add(out, xxh3_64_with_seed(EMPTY_FEATURE, SEED_WORD), 1.0);
        }
        let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt();
        if norm > 0.0 {
            out.iter_mut().for_each(|x| *x /= norm);
        } else {
            // Every feature cancelled out (possible, if unlikely, with signed
            // hashing): fall back to the empty text's vector, still unit length.
            self.add(out, xxh3_64_with_seed(EMPTY_FEATURE, SEED_WORD), 1.0);
        }
    }

    fn add_char_ngrams(
        &self,
        out: &mut [f32],
        word: &str,
        weight: f32,
        padded: &mut String,
        bounds: &mut Vec<usize>,
    ) {
        padded.clear();
        padded.push('<');
        padded.push_str(word);
        padded.push('>');
        // Byte offsets of every char boundary, so n-grams count characters
        // and never split a multi-byte one.
        bounds.clear();
        bounds.extend(padded.char_indices().map(|(i, _)| i));
        bounds.push(padded.len());
        let chars = bounds.len() - 1;
        if chars < NGRAM_MIN {
            return;
        }
        let grams: usize = (NGRAM_MIN..=NGRAM_MAX.min(chars))
            .map(|n| chars + 1 - n)
            .sum();
        // The word's n-grams share one weight so long words do not drown
        // short ones; the square root keeps the block's length at about
        // CHARS when its n-grams fall in distinct buckets.
        let each = CHARS * weight / (grams as f32).sqrt();
        let bytes = padded.as_bytes();
        for n in NGRAM_MIN..=NGRAM_MAX.min(chars) {
            for start in 0..=chars - n {
                let gram = &bytes[bounds[start]..bounds[start + n]];
                self.add(out, xxh3_64_with_seed(gram, SEED_CHARS), each);
            }
        }
    }

    /// Adds `weight` with the hash's sign to the hash's bucket.
    #[inline]
    fn add(&self, out: &mut [f32], hash: u64, weight: f32) {
        // The high bits pick the bucket (multiply-shift: uniform for any
        // length, no division), the lowest bit the sign.
        let bucket = ((u128::from(hash) * self.dimensions as u128) >> 64) as usize;
        let signed = if hash & 1 == 0 { weight } else { -weight };
        out[bucket] += signed;
    }
}

impl Default for LocalEmbedder {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model(&self) -> &str {
        &self.model
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, AiError> {
        // A few microseconds a text: cheaper than a hop to a blocking thread.
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn vectors_have_unit_length() {
        let e = LocalEmbedder::new();
        for text in [
            "",
            "   ?! ",
            "a",
            "What is the capital of France?",
            "東京の天気は？",
        ] {
            let v = e.embed_one(text);
            assert_eq!(v.len(), LocalEmbedder::DIMENSIONS);
            let norm = dot(&v, &v).sqrt();
            assert!((norm - 1.0).abs() < 1e-5, "{text:?}: norm {norm}");
        }
    }

    #[test]
    fn case_punctuation_and_spacing_do_not_matter() {
        let e = LocalEmbedder::new();
        let a = e.embed_one("What's the capital   of France?");
        let b = e.embed_one("what's the capital of france");
        assert!(dot(&a, &b) > 0.9999);
    }

    #[test]
    fn unrelated_prompts_are_far_apart() {
        let e = LocalEmbedder::new();
        let a = e.embed_one("How do I reverse a list in Python?");
        let b = e.embed_one("Recommend a good science fiction book");
        assert!(dot(&a, &b) < 0.2, "{}", dot(&a, &b));
    }

    #[test]
    fn word_order_changes_the_vector() {
        let e = LocalEmbedder::new();
        let a = e.embed_one("convert celsius to fahrenheit");
        let b = e.embed_one("convert fahrenheit to celsius");
        assert!(dot(&a, &b) < 0.99, "{}", dot(&a, &b));
    }

    /// The vectors are part of the contract: entries written by one process
    /// are matched by another, possibly of a later version. If this fails,
    /// the algorithm changed: bump `LocalEmbedder::MODEL`, then update the
    /// expected value.
    #[test]
    fn vectors_are_stable_across_versions() {
        let e = LocalEmbedder::new();
        let v = e.embed_one("How do I reverse a list in Python?");
        // Quantised so the check does not depend on the last bit of a float.
        let quantised: Vec<u8> = v
            .iter()
            .flat_map(|x| ((x * 10_000.0).round() as i32).to_le_bytes())
            .collect();
        let fingerprint = xxh3_64_with_seed(&quantised, 0);
        assert_eq!(
            (LocalEmbedder::MODEL, fingerprint),
            ("perf-local-v1", 4747808324271611692),
            "the local embedder's vectors changed"
        );
    }

    #[test]
    fn dimensions_are_checked_and_named() {
        assert!(LocalEmbedder::with_dimensions(8).is_err());
        let e = LocalEmbedder::with_dimensions(1024).unwrap();
        assert_eq!(e.model(), "perf-local-v1-d1024");
        assert_eq!(e.embed_one("hi").len(), 1024);
        assert_eq!(
            LocalEmbedder::with_dimensions(256).unwrap().model(),
            "perf-local-v1"
        );
    }

    #[tokio::test]
    async fn the_trait_embeds_in_order() {
        let e = LocalEmbedder::new();
        let texts = vec!["first prompt".to_owned(), "second one".to_owned()];
        let out = e.embed(&texts).await.unwrap();
        assert_eq!(
            out,
            vec![e.embed_one("first prompt"), e.embed_one("second one")]
        );
    }
}
