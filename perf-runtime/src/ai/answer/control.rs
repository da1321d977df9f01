//! Operating the AI cache: invalidation by provider, model, scope or all,
//! and warming from a list of prompts.
//!
//! Answers are tagged when stored (`perf:ai`, `perf:ai:provider:<p>`,
//! `perf:ai:model:<p>/<m>`, `perf:ai:scope:<hash>`), so an invalidation is a
//! tag invalidation of the cache layer: this process's L1 at once, Redis,
//! and every other instance through the invalidation bus. This process's
//! semantic indexes drop the matching entries too, and so do the shared
//! streams in Redis; another instance's index keeps pointers to answers
//! that are gone, and drops each the first time a lookup meets it: it never
//! serves one.

use std::future::Future;
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use super::AiRequest;
use crate::ai::PartitionKey;
use crate::cache::{InvalidateError, WarmReport, invalidate_tag};

/// Prompts warmed at once by [`warm`].
const WARM_CONCURRENCY: usize = 4;

/// Which cached answers [`invalidate`] drops.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AiTarget {
    /// Every answer of every `#[ai_optimized]` function.
    All,
    /// Answers of one provider (the attribute's `provider`).
    Provider(String),
    /// Answers of one model of one provider.
    Model {
        /// The attribute's `provider`.
        provider: String,
        /// The attribute's `model`.
        model: String,
    },
    /// Answers cached for one scope (the value of the attribute's `scope`
    /// argument), hashed as calls hash it: build with [`AiTarget::scope`].
    Scope(String),
}

impl AiTarget {
    /// The answers of `scope`: the same value a call passed as its `scope`
    /// argument (a user id, say).
    pub fn scope<S: Serialize + ?Sized>(scope: &S) -> Self {
        let hashed = AiRequest::new("").scope(scope).scope;
        AiTarget::Scope(hashed.unwrap_or_default())
    }

    fn tag(&self) -> String {
        match self {
            AiTarget::All => "perf:ai".to_owned(),
            AiTarget::Provider(provider) => format!("perf:ai:provider:{provider}"),
            AiTarget::Model { provider, model } => format!("perf:ai:model:{provider}/{model}"),
            AiTarget::Scope(scope) => format!("perf:ai:scope:{scope}"),
        }
    }

    fn matches(&self, key: &PartitionKey) -> bool {
        match self {
            AiTarget::All => true,
            AiTarget::Provider(provider) => key.provider == *provider,
            AiTarget::Model { provider, model } => key.provider == *provider && key.model == *model,
            AiTarget::Scope(scope) => key.scope.as_deref() == Some(scope),
        }
    }
}

/// The tags of an answer stored for `provider`, `model` and `scope`.
pub(super) fn tags(provider: &str, model: &str, scope: Option<&str>) -> Vec<String> {
    let mut tags = vec![
        AiTarget::All.tag(),
        AiTarget::Provider(provider.to_owned()).tag(),
        AiTarget::Model {
            provider: provider.to_owned(),
            model: model.to_owned(),
        }
        .tag(),
    ];
    if let Some(scope) = scope {
        tags.push(AiTarget::Scope(scope.to_owned()).tag());
    }
    tags
}

/// What [`invalidate`] can reach in this process: the sites' indexes.
pub(super) trait IndexedSite: Send + Sync {
    fn forget(&self, target: &AiTarget) -> usize;
}

impl<T: super::AiAnswer> IndexedSite for super::AiSite<T> {
    fn forget(&self, target: &AiTarget) -> usize {
        self.index.remove_where(|key| target.matches(key))
    }
}

static SITES: Mutex<Vec<&'static dyn IndexedSite>> = Mutex::new(Vec::new());

pub(super) fn register(site: &'static dyn IndexedSite) {
    SITES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(site);
}

/// Drops the cached answers of `target`: here, in Redis and on every other
/// instance. Returns how many prompts left this process's semantic indexes.
///
/// # Errors
///
/// [`InvalidateError`] when Redis is configured but failed: this process
/// dropped its entries; other instances may serve theirs until they expire.
pub async fn invalidate(target: &AiTarget) -> Result<usize, InvalidateError> {
    let sites: Vec<&'static dyn IndexedSite> =
        SITES.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let forgotten = sites.iter().map(|site| site.forget(target)).sum();
    invalidate_tag(&target.tag()).await?;
    // The shared semantic entries go too, or other instances would read
    // them back (they would point to nothing, but cost a lookup each).
    #[cfg(feature = "redis")]
    if let Some(client) = crate::global().redis_client() {
        crate::cache::delete_matching(&client, &super::shared::pattern(target)).await?;
    }
    Ok(forgotten)
}

/// Warms the cache: calls `call` (an `#[ai_optimized]` function) for each
/// prompt, a few at a time. Prompts already cached are hits and cost
/// nothing; the others ask the model once and stay for the function's TTL.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # async fn ask(prompt: String) -> Result<String, std::io::Error> { Ok(prompt) }
/// let common = ["What are your opening hours?", "How do I reset my password?"];
/// let report = perf_runtime::ai::warm(common.map(String::from), ask).await;
/// assert_eq!(report.cached, 2);
/// # }
/// ```
pub async fn warm<P, F, Fut, T, E>(prompts: impl IntoIterator<Item = P>, call: F) -> WarmReport
where
    F: Fn(P) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let call = &call;
    let calls = prompts
        .into_iter()
        .map(|prompt| async move { call(prompt).await.is_ok() });
    WarmReport::count(calls, WARM_CONCURRENCY).await
}
