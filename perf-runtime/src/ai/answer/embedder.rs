//! The embedder of the semantic cache: [`LocalEmbedder`] unless the
//! service chose another with [`use_embedder`] before the first call.

use std::sync::{Arc, OnceLock};

use crate::ai::{AiError, Embedder, LocalEmbedder};

static EMBEDDER: OnceLock<Arc<dyn Embedder>> = OnceLock::new();

/// Makes `embedder` the one every `#[ai_optimized]` function uses (an
/// [`OpenAiEmbedder`](crate::ai::OpenAiEmbedder) for a real embedding
/// model, say). Entries are partitioned by the embedder's model name, so
/// answers cached under another embedder are never compared with its
/// vectors.
///
/// # Errors
///
/// [`AiError::InvalidConfig`] when an embedder is already in use (set
/// before, or taken by a first call): swapping it under running calls
/// would mix two vector spaces in one request.
pub fn use_embedder(chosen: Arc<dyn Embedder>) -> Result<(), AiError> {
    let model = chosen.model().to_owned();
    EMBEDDER.set(chosen).map_err(|_| AiError::InvalidConfig {
        field: "embedder",
        expected: "use_embedder called once, before the first #[ai_optimized] call",
        found: format!("`{model}` after `{}` was in use", embedder().model()),
    })
}

/// The embedder in use (the local one if none was chosen).
pub fn embedder() -> &'static Arc<dyn Embedder> {
    EMBEDDER.get_or_init(|| Arc::new(LocalEmbedder::new()))
}
