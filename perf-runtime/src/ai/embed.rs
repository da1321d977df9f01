//! [`Embedder`]: turns prompts into unit vectors for the semantic cache.
//!
//! Two implementations ship: [`LocalEmbedder`](super::LocalEmbedder), in
//! process and deterministic (the default, no network, no model download),
//! and an OpenAI-compatible `/v1/embeddings` client.

use super::AiError;

/// Turns texts into unit-length vectors whose dot product measures how alike
/// they are.
///
/// Entries of the semantic cache are partitioned by [`model`](Self::model),
/// so changing the embedder (or its version) never compares vectors from two
/// different spaces: old entries simply stop matching.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync + 'static {
    /// Names the embedding model; entries are partitioned by it.
    fn model(&self) -> &str;
    /// Length of every vector it returns.
    fn dimensions(&self) -> usize;
    /// One unit-length vector per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, AiError>;
}
