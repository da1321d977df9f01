//! [`AiSpec`]: what `#[ai_optimized]` fixes at compile time for one
//! function, and the run-time settings that may adjust it: the TTL default
//! of each provider and the similarity threshold, which a setting may
//! tighten but never loosen.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::ai::{AiError, DEFAULT_SIMILARITY};

/// Raises the similarity threshold of every `#[ai_optimized]` function
/// (a number in (0, 1]); a value below a function's own threshold changes
/// nothing for it.
pub const PERF_AI_SIMILARITY: &str = "PERF_AI_SIMILARITY";

/// How prompts are matched besides byte-for-byte (after normalisation).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Semantic {
    /// At or above [`DEFAULT_SIMILARITY`].
    Default,
    /// Exact matches only (`similarity = 0` or `"exact"`).
    Off,
    /// At or above this similarity, in (0, 1]: a floor.
    Floor(f32),
}

/// The compile-time description of one `#[ai_optimized]` function.
#[derive(Debug)]
pub struct AiSpec {
    /// The `function` label (the function's name or `name = ".."`).
    pub name: &'static str,
    /// Module path and function: keeps the entries of two functions apart.
    pub namespace: &'static str,
    /// The provider's name (`openai`, `ollama`, ...): a partition of the
    /// entries, a metric label and the key of the rate limits.
    pub provider: &'static str,
    /// The model: a partition of the entries and a metric label.
    pub model: &'static str,
    /// How long an answer is served; `None` takes the provider's default
    /// ([`default_ttl`]).
    pub cache_ttl: Option<Duration>,
    /// Semantic matching.
    pub semantic: Semantic,
    /// Calls running the body at once, at most.
    pub max_concurrency: Option<u32>,
    /// Requests per minute to the model from this process (all
    /// instances when Redis is configured).
    pub rpm: Option<u32>,
    /// Tokens per minute (prompt estimate, then the answer's usage).
    pub tpm: Option<u64>,
    /// Longest a call of the body may take.
    pub timeout: Option<Duration>,
}

impl AiSpec {
    /// The TTL of new entries.
    pub fn ttl(&self) -> Duration {
        self.cache_ttl.unwrap_or_else(|| default_ttl(self.provider))
    }

    /// The similarity a semantic match needs now, or `None` when semantic
    /// matching is off: the attribute's floor, raised by
    /// [`PERF_AI_SIMILARITY`] or [`tighten_similarity`].
    pub fn similarity(&self) -> Option<f32> {
        let floor = match self.semantic {
            Semantic::Off => return None,
            Semantic::Default => DEFAULT_SIMILARITY,
            Semantic::Floor(floor) => floor,
        };
        Some(floor.max(runtime_similarity()))
    }
}

/// The default TTL of a provider's answers: how fast its answers go stale.
///
/// Hosted frontier models (`openai`, `azure`, `anthropic`, `google`,
/// `mistral`) are updated behind a stable name without notice, and their
/// answers carry dated facts: an hour. Self-hosted models (`ollama`,
/// `vllm`, `tgi`, `local`) change only when their operator changes them,
/// and then under another name, which starts a new partition: a day.
/// The example's simulator (`simulator`): a day. Any other: an hour.
/// `PERF_AI_<NAME>_CACHE_TTL` (seconds, or `30m`, `12h`) overrides it; a
/// function's `cache_ttl` overrides both.
pub fn default_ttl(provider: &str) -> Duration {
    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(24 * 3600);
    if let Some(ttl) = ttl_from_env(provider) {
        return ttl;
    }
    match provider {
        "ollama" | "vllm" | "tgi" | "local" | "simulator" => DAY,
        _ => HOUR,
    }
}

/// `PERF_AI_<NAME>_CACHE_TTL`, when set and valid (an invalid value is
/// logged and ignored: the default is safe).
fn ttl_from_env(provider: &str) -> Option<Duration> {
    let variable = format!(
        "PERF_AI_{}_CACHE_TTL",
        provider.to_ascii_uppercase().replace('-', "_")
    );
    let raw = std::env::var(&variable).ok()?;
    match crate::ai::provider_config::parse_duration(&raw).filter(|d| !d.is_zero()) {
        Some(ttl) => Some(ttl),
        None => {
            tracing::warn!(
                variable,
                value = raw,
                "ignored: expected a duration above zero such as `3600`, `30m` or `12h`"
            );
            None
        }
    }
}

/// The process-wide raise of the threshold, as f32 bits; 0 is none.
static RUNTIME_SIMILARITY: AtomicU32 = AtomicU32::new(0);

fn runtime_similarity() -> f32 {
    static FROM_ENV: OnceLock<f32> = OnceLock::new();
    let env = *FROM_ENV.get_or_init(|| match std::env::var(PERF_AI_SIMILARITY) {
        Ok(raw) => parse_similarity(&raw).unwrap_or_else(|error| {
            tracing::warn!(%error, "ignored");
            0.0
        }),
        Err(_) => 0.0,
    });
    env.max(f32::from_bits(RUNTIME_SIMILARITY.load(Ordering::Relaxed)))
}

fn parse_similarity(raw: &str) -> Result<f32, AiError> {
    raw.trim()
        .parse::<f32>()
        .ok()
        .filter(|s| *s > 0.0 && *s <= 1.0)
        .ok_or_else(|| AiError::InvalidConfig {
            field: PERF_AI_SIMILARITY,
            expected: "a similarity in (0, 1], e.g. 0.9",
            found: raw.to_owned(),
        })
}

/// Raises the threshold of every `#[ai_optimized]` function to at least
/// `similarity` from now on (a function whose own threshold is higher keeps
/// it). It can only tighten: a lower value than an earlier call is ignored.
///
/// # Errors
///
/// [`AiError::InvalidConfig`] when `similarity` is not in (0, 1].
pub fn tighten_similarity(similarity: f32) -> Result<(), AiError> {
    if !(similarity > 0.0 && similarity <= 1.0) {
        return Err(AiError::InvalidConfig {
            field: "similarity",
            expected: "a similarity in (0, 1], e.g. 0.9",
            found: similarity.to_string(),
        });
    }
    // Positive floats order as their bits do.
    RUNTIME_SIMILARITY.fetch_max(similarity.to_bits(), Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(semantic: Semantic) -> AiSpec {
        AiSpec {
            name: "f",
            namespace: "m::f",
            provider: "openai",
            model: "gpt-4",
            cache_ttl: None,
            semantic,
            max_concurrency: None,
            rpm: None,
            tpm: None,
            timeout: None,
        }
    }

    #[test]
    fn a_setting_tightens_the_threshold_and_never_loosens_it() {
        let strict = spec(Semantic::Floor(0.97));
        let default = spec(Semantic::Default);
        assert_eq!(strict.similarity(), Some(0.97));
        tighten_similarity(0.9).unwrap();
        assert_eq!(default.similarity(), Some(0.9));
        assert_eq!(strict.similarity(), Some(0.97));
        tighten_similarity(0.5).unwrap();
        assert_eq!(default.similarity(), Some(0.9), "never loosened");
        assert_eq!(spec(Semantic::Off).similarity(), None);
        assert!(tighten_similarity(1.5).is_err());
        assert!(tighten_similarity(0.0).is_err());
    }

    #[test]
    fn ttl_defaults_follow_the_provider() {
        assert_eq!(default_ttl("openai"), Duration::from_secs(3600));
        assert_eq!(default_ttl("ollama"), Duration::from_secs(86400));
        assert_eq!(
            AiSpec {
                cache_ttl: Some(Duration::from_secs(5)),
                ..spec(Semantic::Default)
            }
            .ttl(),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn similarity_values_are_checked() {
        assert_eq!(parse_similarity("0.9").unwrap(), 0.9);
        for bad in ["0", "1.2", "x", "-0.5"] {
            let error = parse_similarity(bad).unwrap_err().to_string();
            assert!(error.contains(PERF_AI_SIMILARITY), "{error}");
        }
    }
}
