//! [`AiSite`]: the cache of one `#[ai_optimized]` function, and the path of
//! a call through it.
//!
//! 1. The exact tier: the answer stored under a key of the function, the
//!    provider, model, context, scope and normalised last message — L1,
//!    then L2 (Redis), with single-flight: concurrent callers of one prompt
//!    share one model call.
//! 2. The semantic tier: the nearest cached prompt of the same partition
//!    (function and context, provider, model, embedder, scope) at or above
//!    the threshold that the guard accepts; its answer is read from the
//!    exact tier. Skipped when the function has `similarity = "exact"` or
//!    the request samples at a temperature above zero.
//! 3. The body, under the function's limits. A successful answer without
//!    tool calls is stored in the exact tier, its prompt in the index, and
//!    (with Redis) in the partition's shared stream.
//!
//! TTLs are absolute: an answer lives `cache_ttl` from when the model gave
//! it, whoever reads it meanwhile; a semantic hit is served from the
//! matched entry and does not start a new one.

use std::future::Future;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use super::limits::{Admitted, Limits};
use super::metrics::{self, HitKind};
use super::{AiAnswer, AiRequest, AiSpec, Canonical};
use crate::ai::{AiError, Lookup, PartitionKey, SemanticIndex};
use crate::cache::mode::{Mode, Split};
use crate::cache::{CacheKey, FunctionCache, KeyHasher, Ttl};

/// Answers kept in process per function (L1), at most.
const MAX_L1_ANSWERS: u64 = 50_000;
/// Entries of the index that point to nothing (invalidated or expired
/// answers) dropped in one lookup before it gives up.
const MAX_DANGLING_PER_LOOKUP: usize = 4;

/// The `static` an expansion keeps its site in: made on first call.
pub struct AiSiteCell<T: 'static> {
    spec: &'static AiSpec,
    site: OnceLock<&'static AiSite<T>>,
}

impl<T: AiAnswer> AiSiteCell<T> {
    /// A cell for the function described by `spec`.
    pub const fn new(spec: &'static AiSpec) -> Self {
        AiSiteCell {
            spec,
            site: OnceLock::new(),
        }
    }

    /// The function's site.
    pub fn get(&'static self) -> &'static AiSite<T> {
        self.site.get_or_init(|| AiSite::leak(self.spec))
    }
}

/// The cache and limits of one `#[ai_optimized]` function.
pub struct AiSite<T: 'static> {
    pub(super) spec: &'static AiSpec,
    pub(super) exact: &'static FunctionCache<T>,
    pub(super) index: SemanticIndex,
    pub(super) limits: Limits,
    pub(super) metrics: metrics::SiteMetrics,
    /// Seeds the hash of a call's context: the function's namespace.
    context_seed: u64,
    /// Seeds exact keys: namespace, provider and model.
    key_seed: u64,
    #[cfg(feature = "redis")]
    pub(super) streams: super::shared::Streams,
}

impl<T: 'static> std::fmt::Debug for AiSite<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AiSite")
            .field("function", &self.spec.name)
            .field("provider", &self.spec.provider)
            .field("model", &self.spec.model)
            .finish_non_exhaustive()
    }
}

/// What the exact tier's single flight carries: a fresh answer (cached)
/// or one reused from a semantic match (not cached again under the new
/// prompt: its life stays that of the entry it came from).
pub(super) enum Served<R> {
    Fresh(R),
    Reused(R),
}

impl<R> Served<R> {
    fn into_inner(self) -> R {
        match self {
            Served::Fresh(r) | Served::Reused(r) => r,
        }
    }
}

/// The cache mode of a site: `M`'s, except that reused answers and
/// answers calling tools are not stored.
pub(super) struct AiMode<M>(PhantomData<M>);

impl<M, R, T> Mode<Served<R>> for AiMode<M>
where
    M: Mode<R, Value = T>,
    T: AiAnswer,
{
    type Value = T;

    fn split(served: Served<R>) -> Split<T, Served<R>> {
        match served {
            Served::Reused(r) => Split::Skip(Served::Reused(r)),
            Served::Fresh(r) => match M::split(r) {
                Split::Cache(answer) if answer.has_tool_calls() => {
                    Split::Skip(Served::Fresh(M::join(answer)))
                }
                Split::Cache(answer) => Split::Cache(answer),
                Split::Error(r) => Split::Error(Served::Fresh(r)),
                Split::Skip(r) => Split::Skip(Served::Fresh(r)),
            },
        }
    }

    fn join(answer: T) -> Served<R> {
        Served::Reused(M::join(answer))
    }
}

/// The seed of a site's exact keys: its namespace, provider and model,
/// length-prefixed so that no two triples share one.
fn key_seed(spec: &AiSpec) -> u64 {
    let mut hasher = KeyHasher::new(spec.namespace, 1);
    let hashed = hasher.part(spec.provider).and_then(|h| h.part(spec.model));
    debug_assert!(hashed.is_ok());
    hasher.finish().as_u128() as u64
}

const KIND_EXACT: u8 = 0;
const KIND_SEMANTIC: u8 = 1;
const KIND_MISS: u8 = 2;

/// Tokens an answer used: as the provider counted, else estimated.
pub(super) fn tokens_of<T: AiAnswer>(answer: &T, canonical: &Canonical) -> u64 {
    answer.usage().map_or_else(
        || canonical.prompt_tokens + crate::ai::chat::estimate_tokens(&answer.text()),
        |usage| usage.total(),
    )
}

fn kind_of(code: u8) -> HitKind {
    match code {
        KIND_SEMANTIC => HitKind::Semantic,
        KIND_MISS => HitKind::Miss,
        _ => HitKind::Exact,
    }
}

impl<T: AiAnswer> AiSite<T> {
    /// A site for `spec`, made at run time and never freed. Two sites of one
    /// spec in one process behave as two instances of a service: their
    /// in-process tiers are apart, Redis is shared.
    pub fn leak(spec: &'static AiSpec) -> &'static Self {
        let site = AiSite {
            spec,
            exact: FunctionCache::leak_runtime(spec.name, spec.namespace, 1, MAX_L1_ANSWERS),
            index: SemanticIndex::new(Default::default())
                .expect("the default index configuration is valid"),
            limits: Limits::new(spec),
            metrics: Default::default(),
            context_seed: xxhash_rust::xxh3::xxh3_64(spec.namespace.as_bytes()),
            key_seed: key_seed(spec),
            #[cfg(feature = "redis")]
            streams: Default::default(),
        };
        let site: &'static Self = Box::leak(Box::new(site));
        super::control::register(site);
        site
    }

    /// The description the site was made from.
    pub fn spec(&self) -> &'static AiSpec {
        self.spec
    }

    /// Entries of the semantic index.
    pub fn indexed(&self) -> usize {
        self.index.stats().entries
    }

    /// A call: an exact hit, else a semantic hit, else `body` under the
    /// limits. `fail` turns a refusal of the limits (`rpm`, `tpm`,
    /// `timeout`) into the function's return value; without it the limits
    /// cannot refuse: the budget is not enforced (a warning says so) and
    /// there is no timeout.
    pub async fn call<M, R, F>(
        &'static self,
        request: AiRequest,
        fail: Option<fn(AiError) -> R>,
        body: F,
    ) -> R
    where
        M: Mode<R, Value = T>,
        F: Future<Output = R>,
    {
        self.call_traced::<M, R, F>(request, fail, body).await.0
    }

    /// As [`call`](Self::call), and says which tier served it.
    pub async fn call_traced<M, R, F>(
        &'static self,
        request: AiRequest,
        fail: Option<fn(AiError) -> R>,
        body: F,
    ) -> (R, HitKind)
    where
        M: Mode<R, Value = T>,
        F: Future<Output = R>,
    {
        let canonical = &request.canonical;
        let context_hash = self.context_hash(canonical);
        let key = self.exact_key(context_hash, request.scope.as_deref(), &canonical.query);
        if let Some(answer) = self.exact.hit(&key) {
            self.metrics
                .served(self.spec, HitKind::Exact, Some(&answer), canonical);
            return (M::join(answer), HitKind::Exact);
        }
        let kind = AtomicU8::new(KIND_EXACT);
        let vector: Mutex<Option<Vec<f32>>> = Mutex::new(None);
        let semantic = self.spec.similarity().filter(|_| !canonical.sampled);
        let partition = self.partition(&request, context_hash);
        let lookup_and_body = async {
            if let Some(threshold) = semantic
                && let Some(answer) = self
                    .semantic_lookup(&partition, canonical, threshold, &vector)
                    .await
            {
                kind.store(KIND_SEMANTIC, Ordering::Relaxed);
                return (Served::Reused(M::join(answer)), Vec::new());
            }
            kind.store(KIND_MISS, Ordering::Relaxed);
            let result = self
                .run_body(canonical, fail, body, |result| match M::split(result) {
                    Split::Cache(answer) => {
                        let used = tokens_of(&answer, canonical);
                        (M::join(answer), Some(used))
                    }
                    Split::Error(result) | Split::Skip(result) => (result, None),
                })
                .await;
            (Served::Fresh(result), self.tags(&partition))
        };
        // Boxed: the lookup and the body (a model call) make a large future,
        // and a hit must not carry, or move, it.
        let served = self
            .exact
            .call::<AiMode<M>, Served<R>, _>(
                key,
                Ttl::fresh(self.spec.ttl()),
                Box::pin(lookup_and_body),
            )
            .await;
        let kind = kind_of(kind.load(Ordering::Relaxed));
        // The body ran and its answer was stored (the cache hands a stored
        // answer back through `AiMode::join`, so `served` cannot say).
        if kind == HitKind::Miss && self.exact.holds(&key) {
            // Stored: make the prompt findable by meaning too.
            let vector = vector.lock().unwrap_or_else(PoisonError::into_inner).take();
            if let (Some(_), Some(vector)) = (semantic, vector) {
                self.remember(partition, canonical.text.clone(), vector)
                    .await;
            }
        }
        tracing::debug!(function = self.spec.name, hit = kind.as_str(), "ai cache");
        let result = served.into_inner();
        if kind == HitKind::Miss {
            self.metrics.served::<T>(self.spec, kind, None, canonical);
            return (result, kind);
        }
        // A hit: count what it saved, from the answer it served.
        let result = match M::split(result) {
            Split::Cache(answer) => {
                self.metrics
                    .served(self.spec, kind, Some(&answer), canonical);
                M::join(answer)
            }
            Split::Error(result) | Split::Skip(result) => result,
        };
        (result, kind)
    }

    /// Runs `body` under the limits; `tokens` reads what an answer used
    /// (and hands it back), so the tokens budget is charged for it.
    pub(super) async fn run_body<R, F>(
        &self,
        canonical: &Canonical,
        fail: Option<fn(AiError) -> R>,
        body: F,
        tokens: impl FnOnce(R) -> (R, Option<u64>),
    ) -> R
    where
        F: Future<Output = R>,
    {
        let admitted = match self.admit(canonical, fail).await {
            Ok(admitted) => admitted,
            Err(refused) => return refused,
        };
        let result = self.within_timeout(fail, body).await;
        let (result, used) = tokens(result);
        if let (Some(admitted), Some(used)) = (admitted, used) {
            self.limits.settle(&admitted, used).await;
        }
        result
    }

    /// Takes the limits' permit and budget for a call of the body; a
    /// refusal becomes `fail`'s value. Without `fail` nothing can refuse:
    /// the call goes on unlimited, with a warning.
    pub(super) async fn admit<R>(
        &self,
        canonical: &Canonical,
        fail: Option<fn(AiError) -> R>,
    ) -> Result<Option<Admitted>, R> {
        match self.limits.admit(canonical.prompt_tokens).await {
            Ok(admitted) => Ok(Some(admitted)),
            Err(error) => match fail {
                Some(fail) => Err(fail(error)),
                None => {
                    tracing::warn!(function = self.spec.name, %error, "limit not enforced: the function cannot return its error");
                    Ok(None)
                }
            },
        }
    }

    /// `body`, within the function's timeout when it has one and `fail`
    /// can say it ran out.
    pub(super) async fn within_timeout<R, F>(&self, fail: Option<fn(AiError) -> R>, body: F) -> R
    where
        F: Future<Output = R>,
    {
        match (self.limits.timeout(), fail) {
            (Some(after), Some(fail)) => match tokio::time::timeout(after, body).await {
                Ok(result) => result,
                Err(_) => fail(self.limits.timed_out(after)),
            },
            _ => body.await,
        }
    }

    /// The hash of a call's context, seeded with the function's namespace
    /// (so two functions never share a partition).
    pub(super) fn context_hash(&self, canonical: &Canonical) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(canonical.context.as_bytes(), self.context_seed)
    }

    /// The partition of a request: everything but the last message that
    /// must be equal for two prompts to share an answer.
    pub(super) fn partition(&self, request: &AiRequest, context_hash: u64) -> PartitionKey {
        PartitionKey {
            provider: self.spec.provider.to_owned(),
            model: self.spec.model.to_owned(),
            context_hash,
            embedding_model: super::embedder().model().to_owned(),
            scope: request.scope.clone(),
        }
    }

    /// The exact key of `query` (normalised) under a context and scope.
    /// Provider and model are the site's own, in its key seed.
    pub(super) fn exact_key(
        &self,
        context_hash: u64,
        scope: Option<&str>,
        query: &str,
    ) -> CacheKey {
        let mut hasher = KeyHasher::seeded(self.key_seed);
        let hashed = hasher
            .part(&context_hash)
            .and_then(|h| h.part(&scope))
            .and_then(|h| h.part(query));
        // Strings and integers always encode.
        debug_assert!(hashed.is_ok());
        hasher.finish()
    }

    /// The exact key of a prompt found in `partition`'s index.
    fn key_in(&self, partition: &PartitionKey, text: &str) -> CacheKey {
        self.exact_key(
            partition.context_hash,
            partition.scope.as_deref(),
            &super::prompt::normalize(text),
        )
    }

    /// The id of a prompt's entry in the index: its exact key's low bits
    /// (the same on every instance).
    pub(super) fn entry_id(&self, partition: &PartitionKey, text: &str) -> u64 {
        self.key_in(partition, text).as_u128() as u64
    }

    /// Tags of a stored answer, for invalidation by provider, model or scope.
    pub(super) fn tags(&self, partition: &PartitionKey) -> Vec<String> {
        super::control::tags(
            self.spec.provider,
            self.spec.model,
            partition.scope.as_deref(),
        )
    }

    /// The answer of the nearest cached prompt, if one passes the threshold
    /// and the guard. Leaves the prompt's vector in `vector` for storing.
    pub(super) async fn semantic_lookup(
        &self,
        partition: &PartitionKey,
        canonical: &Canonical,
        threshold: f32,
        vector: &Mutex<Option<Vec<f32>>>,
    ) -> Option<T> {
        let embedded = match super::embedder()
            .embed(std::slice::from_ref(&canonical.text))
            .await
        {
            Ok(mut vectors) if vectors.len() == 1 => vectors.pop()?,
            Ok(_) => return None,
            Err(error) => {
                tracing::warn!(function = self.spec.name, %error, "semantic cache skipped: embedding failed");
                return None;
            }
        };
        let found = self
            .search(partition, &embedded, &canonical.text, threshold)
            .await;
        let found = match found {
            Some(found) => Some(found),
            None if self.pull_shared(partition).await => {
                self.search(partition, &embedded, &canonical.text, threshold)
                    .await
            }
            None => None,
        };
        *vector.lock().unwrap_or_else(PoisonError::into_inner) = Some(embedded);
        found
    }

    /// Searches the index, dropping entries whose answer is gone.
    async fn search(
        &self,
        partition: &PartitionKey,
        vector: &[f32],
        text: &str,
        threshold: f32,
    ) -> Option<T> {
        for _ in 0..MAX_DANGLING_PER_LOOKUP {
            match self.index.lookup(partition, vector, text, threshold) {
                Lookup::Hit(hit) => {
                    let answer = match self.index.prompt_of(partition, hit.id) {
                        Some(prompt) => self.exact.peek(self.key_in(partition, &prompt)).await,
                        None => None,
                    };
                    match answer {
                        Some(answer) => {
                            metrics::semantic_similarity(self.spec, hit.similarity);
                            return Some(answer);
                        }
                        None => {
                            self.index.remove(hit.id);
                        }
                    }
                }
                Lookup::Refused { reason, .. } => {
                    metrics::refused(self.spec, reason.as_str());
                    return None;
                }
                Lookup::Miss => return None,
            }
        }
        None
    }

    /// Reads the partition's shared entries when due. True if any arrived.
    #[cfg(feature = "redis")]
    async fn pull_shared(&self, partition: &PartitionKey) -> bool {
        let Some(client) = crate::global().redis_client() else {
            return false;
        };
        let stream = super::shared::stream_name(self.spec.namespace, partition);
        if !self.streams.due(&stream) {
            return false;
        }
        let id_of = |text: &str| self.entry_id(partition, text);
        match self
            .streams
            .pull(&client, &stream, &self.index, partition, id_of)
            .await
        {
            Ok(added) => added > 0,
            Err(reason) => {
                metrics::backend_error(self.spec, "XRANGE", &reason);
                false
            }
        }
    }

    /// Without Redis there is nothing shared to read.
    #[cfg(not(feature = "redis"))]
    async fn pull_shared(&self, _partition: &PartitionKey) -> bool {
        false
    }

    /// Puts a stored answer's prompt in the index and, with Redis, in the
    /// partition's shared stream (awaited: two round trips after a model
    /// call, and then another instance finds the prompt at once).
    pub(super) async fn remember(&self, partition: PartitionKey, text: String, vector: Vec<f32>) {
        let id = self.entry_id(&partition, &text);
        let ttl = self.spec.ttl();
        if let Err(error) = self.index.insert(&partition, id, &vector, &text, ttl) {
            // Not shared either: other instances would index what this one
            // could not.
            tracing::warn!(function = self.spec.name, %error, "prompt not indexed");
        } else {
            #[cfg(feature = "redis")]
            self.share(&partition, &text, &vector, ttl).await;
        }
    }

    /// Appends a stored prompt to its partition's shared stream.
    #[cfg(feature = "redis")]
    async fn share(
        &self,
        partition: &PartitionKey,
        text: &str,
        vector: &[f32],
        ttl: std::time::Duration,
    ) {
        if let Some(client) = crate::global().redis_client() {
            let cap = self.index.config().max_entries_per_partition;
            let stream = super::shared::stream_name(self.spec.namespace, partition);
            if let Err(reason) =
                super::shared::append(&client, &stream, cap, text, vector, ttl).await
            {
                metrics::backend_error(self.spec, "XADD", &reason);
            }
        }
    }
}
