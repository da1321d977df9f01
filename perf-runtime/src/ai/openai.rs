//! [`OpenAiEmbedder`]: the semantic cache's [`Embedder`] over an
//! OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, Ollama, vLLM,
//! text-embeddings-inference), through a [`Provider`] and so under its
//! budgets, timeout and the shared HTTP client.

use async_trait::async_trait;

use super::{AiError, Embedder, Provider};

/// Inputs per request unless set: well under the limits of the common
/// servers (OpenAI takes 2048, text-embeddings-inference 32 by default,
/// which is why [`OpenAiEmbedder::batch_size`] exists).
const DEFAULT_BATCH: usize = 128;

/// An [`Embedder`] calling `/embeddings` of a provider. Texts go in batches;
/// every vector is checked for the expected length and scaled to unit
/// length, so dot products are cosine similarities whatever the server does.
///
/// ```no_run
/// use perf_runtime::ai::{Embedder, OpenAiEmbedder, Provider, ProviderConfig};
/// use perf_runtime::http::HttpClient;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let config = ProviderConfig::builder("ollama", "http://127.0.0.1:11434/v1").build()?;
/// let provider = Provider::new(config, HttpClient::builder().build()?);
/// let embedder = OpenAiEmbedder::detect(provider, "nomic-embed-text").await?;
/// let vectors = embedder.embed(&["What is Rust?".to_owned()]).await?;
/// assert_eq!(vectors[0].len(), embedder.dimensions());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct OpenAiEmbedder {
    provider: Provider,
    /// The model as the provider names it.
    provider_model: String,
    /// `provider/model`: what entries are partitioned by.
    model: String,
    dimensions: usize,
    batch_size: usize,
    request_dimensions: bool,
}

impl OpenAiEmbedder {
    /// An embedder of `model` whose vectors have `dimensions` floats.
    pub fn new(provider: Provider, model: impl Into<String>, dimensions: usize) -> Self {
        let provider_model = model.into();
        OpenAiEmbedder {
            model: format!("{}/{provider_model}", provider.name()),
            provider,
            provider_model,
            dimensions,
            batch_size: DEFAULT_BATCH,
            request_dimensions: false,
        }
    }

    /// An embedder of `model` with the length of the vectors it returns,
    /// learnt by embedding one short text.
    ///
    /// # Errors
    ///
    /// As [`Provider::embeddings`]; [`AiError::Embedding`] when the server
    /// returns an empty vector.
    pub async fn detect(provider: Provider, model: impl Into<String>) -> Result<Self, AiError> {
        let model = model.into();
        let probe = provider
            .embeddings(&model, &["dimension probe".to_owned()], None)
            .await?;
        let dimensions = probe.first().map_or(0, Vec::len);
        if dimensions == 0 {
            return Err(AiError::Embedding {
                model,
                reason: "the provider returned an empty vector".to_owned(),
            });
        }
        Ok(OpenAiEmbedder::new(provider, model, dimensions))
    }

    /// Texts per request (default 128; at least 1).
    #[must_use]
    pub fn batch_size(mut self, size: usize) -> Self {
        self.batch_size = size.max(1);
        self
    }

    /// Sends `dimensions` with each request, for models that can shorten
    /// their vectors (`text-embedding-3-*`); others refuse the field
    /// (default off).
    #[must_use]
    pub fn request_dimensions(mut self, on: bool) -> Self {
        self.request_dimensions = on;
        self
    }

    /// The model as the provider names it (without the provider's name).
    pub fn provider_model(&self) -> &str {
        &self.provider_model
    }

    fn failed(&self, reason: String) -> AiError {
        AiError::Embedding {
            model: self.model.clone(),
            reason,
        }
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    /// `provider/model`: the same model behind two providers may differ in
    /// version or quantisation, so their vectors are kept apart.
    fn model(&self) -> &str {
        &self.model
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, AiError> {
        let mut vectors = Vec::with_capacity(texts.len());
        let dimensions = self.request_dimensions.then_some(self.dimensions);
        // One batch after another: the provider's budget and the HTTP
        // client's per-host limits pace them; running them at once would
        // only queue there.
        for batch in texts.chunks(self.batch_size) {
            let answer = self
                .provider
                .embeddings(&self.provider_model, batch, dimensions)
                .await?;
            for mut vector in answer {
                if vector.len() != self.dimensions {
                    return Err(self.failed(format!(
                        "expected vectors of {} floats, the provider returned {}",
                        self.dimensions,
                        vector.len()
                    )));
                }
                normalise(&mut vector).map_err(|reason| self.failed(reason.to_owned()))?;
                vectors.push(vector);
            }
        }
        Ok(vectors)
    }
}

/// Scales `vector` to unit length.
fn normalise(vector: &mut [f32]) -> Result<(), &'static str> {
    let norm = vector
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if !norm.is_finite() {
        return Err("the provider returned a vector with non-finite values");
    }
    if norm == 0.0 {
        return Err("the provider returned a zero vector, which has no direction");
    }
    for x in vector.iter_mut() {
        *x = (f64::from(*x) / norm) as f32;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_scaled_to_unit_length_and_degenerate_ones_refused() {
        let mut vector = vec![3.0, 4.0];
        normalise(&mut vector).expect("normalised");
        assert_eq!(vector, [0.6, 0.8]);
        assert!(normalise(&mut [0.0, 0.0]).is_err());
        assert!(normalise(&mut [f32::NAN, 1.0]).is_err());
        assert!(
            normalise(&mut [f32::MAX, f32::MAX]).is_ok(),
            "no overflow in f64"
        );
    }
}
