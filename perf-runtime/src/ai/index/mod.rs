//! [`SemanticIndex`]: the vectors of cached prompts, one partition per
//! [`PartitionKey`], searched for the nearest prompt above a threshold.
//!
//! - **Partitions never mix.** Provider, model, system-prompt hash,
//!   embedding model and user scope together name a partition; a search
//!   looks in exactly one. A change of any of them (a new model, an edited
//!   system prompt, another embedder) starts from an empty partition, and
//!   user A's entries are never candidates for user B.
//! - **Exact, then approximate.** A partition scans every vector (a dot
//!   product per entry, contiguous in memory) until it holds
//!   [`IndexConfig::exact_below`] entries, then moves to an HNSW graph
//!   (`hnsw_rs`), whose search cost grows with the logarithm of the size.
//! - **Absolute expiry.** Each entry carries the instant it expires; a hit
//!   does not extend it. Expired entries are never returned and are purged
//!   on the next insert into their partition (or by
//!   [`purge_expired`](SemanticIndex::purge_expired)).
//! - **Bounded.** A partition keeps at most
//!   [`IndexConfig::max_entries_per_partition`] entries: an insert into a
//!   full one first drops expired entries, then the oldest.
//! - **Removal.** By id, by partition, by any predicate on the key
//!   (provider, model, scope), or all. HNSW graphs cannot delete a node, so a
//!   removed entry stays in the graph as a tombstone that searches skip; once
//!   tombstones outnumber live entries, the graph is rebuilt from the live
//!   ones on a background thread while the old one keeps serving.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use quanta::Instant;
use xxhash_rust::xxh3::xxh3_64;

use super::AiError;
use super::guard::{self, Mismatch};

mod partition;
use partition::{CountDown, Partition, Store, start_rebuild};

/// The similarity at or above which a cached prompt may answer a new one,
/// for [`LocalEmbedder`](super::LocalEmbedder).
///
/// Chosen precision-first on the labelled prompt pairs kept in the tests
/// (`tests/data/prompt_pairs.tsv`, 317 pairs). With the [`guard`], 0.85
/// serves none of the 183 pairs that are not paraphrases and 112 of the 134
/// that are (precision 1.00, recall 0.84). The guard alone keeps the set
/// clean down to 0.70, but the threshold is the margin for what its
/// heuristics miss: at 0.85 the embedder already turns away 85% of the
/// non-paraphrases, at 0.80 only 66%, for 2 points more recall. Above 0.85
/// recall falls fast (0.70 at 0.90, 0.60 at 0.92) for no gain in precision.
/// Other embedders spread similarities differently: measure before reusing
/// it for them. A runtime setting may raise it, never lower it (the
/// caller enforces that: `lookup` uses the threshold it is given).
pub const DEFAULT_SIMILARITY: f32 = 0.85;

/// The partition an entry lives in: everything that changes the answer
/// besides the prompt itself.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PartitionKey {
    /// The provider's configured name (`openai`, `ollama`, ...).
    pub provider: String,
    /// The chat model (`gpt-4o-mini`, ...).
    pub model: String,
    /// A hash of the system prompt and of the parameters that change the
    /// answer (see [`with_context`](Self::with_context)); 0 when there are none.
    pub context_hash: u64,
    /// The embedding model ([`Embedder::model`](super::Embedder::model)).
    pub embedding_model: String,
    /// Who may share entries: a user, tenant or conversation id; `None`
    /// for entries shared by all callers.
    pub scope: Option<String>,
}

impl PartitionKey {
    /// A key shared by all callers, with no system prompt.
    pub fn new(
        provider: impl Into<String>,
        model: impl Into<String>,
        embedding_model: impl Into<String>,
    ) -> Self {
        PartitionKey {
            provider: provider.into(),
            model: model.into(),
            context_hash: 0,
            embedding_model: embedding_model.into(),
            scope: None,
        }
    }

    /// Hashes `context` (the system prompt, and any model parameters that
    /// change the answer, in a stable textual form) into the key.
    pub fn with_context(mut self, context: &str) -> Self {
        self.context_hash = xxh3_64(context.as_bytes());
        self
    }

    /// Isolates the entries to `scope` (a user, tenant or conversation id).
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
}

impl std::fmt::Debug for PartitionKey {
    /// The scope is shown as a hash: it is usually a user id, which has no
    /// place in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionKey")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("context_hash", &format_args!("{:016x}", self.context_hash))
            .field("embedding_model", &self.embedding_model)
            .field(
                "scope",
                &self
                    .scope
                    .as_ref()
                    .map(|s| format!("#{:016x}", xxh3_64(s.as_bytes()))),
            )
            .finish()
    }
}

/// How partitions are searched and bounded.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IndexConfig {
    /// Entries a partition keeps before it drops its oldest (default 100,000).
    pub max_entries_per_partition: usize,
    /// Below this many entries a partition is scanned exactly; at it, the
    /// partition moves to an HNSW graph, built in the background (default
    /// 8,192: an exact scan of 256-float vectors costs about 45 ns an entry,
    /// so about as much there as a graph search; many small partitions,
    /// one per user, never pay for a graph).
    pub exact_below: usize,
    /// HNSW: links per node (default 16).
    pub hnsw_connections: usize,
    /// HNSW: candidates considered while inserting (default 64).
    pub hnsw_ef_construction: usize,
    /// HNSW: candidates considered while searching (default 32); higher
    /// finds the true nearest more often, slower. At 100,000 cached prompts
    /// (benches/ai_semantic.rs) 32 found as many retyped prompts as 64 (497
    /// of 500) in two thirds of the time; 16 found 496.
    pub hnsw_ef_search: usize,
    /// Candidates above the threshold that [`SemanticIndex::lookup`] checks
    /// with the guard, best first (default 4): a refused nearest prompt does
    /// not hide a compatible one just behind it.
    pub guard_candidates: usize,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            max_entries_per_partition: 100_000,
            exact_below: 8_192,
            hnsw_connections: 16,
            hnsw_ef_construction: 64,
            hnsw_ef_search: 32,
            guard_candidates: 4,
        }
    }
}

impl IndexConfig {
    /// Sets [`max_entries_per_partition`](Self::max_entries_per_partition).
    pub fn max_entries_per_partition(mut self, n: usize) -> Self {
        self.max_entries_per_partition = n;
        self
    }

    /// Sets [`exact_below`](Self::exact_below).
    pub fn exact_below(mut self, n: usize) -> Self {
        self.exact_below = n;
        self
    }

    /// Sets [`hnsw_connections`](Self::hnsw_connections).
    pub fn hnsw_connections(mut self, n: usize) -> Self {
        self.hnsw_connections = n;
        self
    }

    /// Sets [`hnsw_ef_construction`](Self::hnsw_ef_construction).
    pub fn hnsw_ef_construction(mut self, n: usize) -> Self {
        self.hnsw_ef_construction = n;
        self
    }

    /// Sets [`guard_candidates`](Self::guard_candidates).
    pub fn guard_candidates(mut self, n: usize) -> Self {
        self.guard_candidates = n;
        self
    }

    /// Sets [`hnsw_ef_search`](Self::hnsw_ef_search).
    pub fn hnsw_ef_search(mut self, n: usize) -> Self {
        self.hnsw_ef_search = n;
        self
    }

    fn validate(&self) -> Result<(), AiError> {
        let bad = |field, expected, found: usize| {
            Err(AiError::InvalidConfig {
                field,
                expected,
                found: found.to_string(),
            })
        };
        if self.max_entries_per_partition == 0 {
            return bad("max_entries_per_partition", "at least 1", 0);
        }
        if !(2..=255).contains(&self.hnsw_connections) {
            return bad("hnsw_connections", "2 to 255", self.hnsw_connections);
        }
        if self.hnsw_ef_construction == 0 {
            return bad("hnsw_ef_construction", "at least 1", 0);
        }
        if self.hnsw_ef_search == 0 {
            return bad("hnsw_ef_search", "at least 1", 0);
        }
        if self.guard_candidates == 0 {
            return bad("guard_candidates", "at least 1", 0);
        }
        Ok(())
    }
}

/// A cached prompt near enough to the one searched for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SemanticHit {
    /// The id the entry was inserted with.
    pub id: u64,
    /// Cosine similarity to the searched vector, in [-1, 1].
    pub similarity: f32,
}

/// What [`SemanticIndex::lookup`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup {
    /// A cached prompt above the threshold that the guard accepted.
    Hit(SemanticHit),
    /// Prompts above the threshold, all refused by the guard; `best` is the
    /// nearest of them and `reason` why it was refused.
    Refused {
        /// The nearest candidate.
        best: SemanticHit,
        /// Why the guard refused it.
        reason: Mismatch,
    },
    /// Nothing above the threshold.
    Miss,
}

/// Sizes, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IndexStats {
    /// Partitions holding at least one entry.
    pub partitions: usize,
    /// Live entries (expired ones not yet purged included).
    pub entries: usize,
    /// Partitions searched through an HNSW graph.
    pub approximate_partitions: usize,
    /// Removed entries still in HNSW graphs, awaiting a rebuild.
    pub tombstones: usize,
}

/// The vectors of cached prompts, partitioned by [`PartitionKey`]. Cheap to
/// share: wrap it in an `Arc`; every method takes `&self`.
pub struct SemanticIndex {
    config: IndexConfig,
    /// `config.hnsw_ef_search`, adjustable at run time.
    ef_search: AtomicUsize,
    inner: RwLock<Inner>,
}

#[derive(Default)]
struct Inner {
    partitions: HashMap<Arc<PartitionKey>, Arc<RwLock<Partition>>>,
    /// Which partition holds each id.
    owners: HashMap<u64, Arc<PartitionKey>>,
}

impl std::fmt::Debug for SemanticIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SemanticIndex")
            .field("config", &self.config)
            .field("stats", &self.stats())
            .finish()
    }
}

impl SemanticIndex {
    /// An empty index.
    pub fn new(config: IndexConfig) -> Result<Self, AiError> {
        config.validate()?;
        Ok(SemanticIndex {
            ef_search: AtomicUsize::new(config.hnsw_ef_search),
            config,
            inner: RwLock::new(Inner::default()),
        })
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &IndexConfig {
        &self.config
    }

    /// Changes how many candidates a graph search considers (see
    /// [`IndexConfig::hnsw_ef_search`]) from the next lookup on: the knob
    /// between lookup latency and how often the true nearest is found.
    pub fn set_hnsw_ef_search(&self, ef: usize) {
        self.ef_search.store(ef.max(1), Ordering::Relaxed);
    }

    fn ef_search(&self) -> usize {
        self.ef_search.load(Ordering::Relaxed)
    }

    /// Adds (or replaces) entry `id` in `key`'s partition: its prompt's
    /// `vector` (normalised here if it is not unit length), the prompt text
    /// the guard compares against, and how long it lives from now. The
    /// expiry is fixed here, an absolute instant: hits never extend it. (An
    /// entry read back from a shared tier passes what is left of its TTL.)
    ///
    /// Ids are unique across the whole index: inserting an id that exists,
    /// in any partition, replaces the old entry. If the partition is full,
    /// its expired entries go first, then its oldest.
    pub fn insert(
        &self,
        key: &PartitionKey,
        id: u64,
        vector: &[f32],
        prompt: &str,
        ttl: Duration,
    ) -> Result<(), AiError> {
        let unit = unit_vector(vector, &key.embedding_model)?;
        let now = Instant::now();
        if ttl.is_zero() {
            // Already dead: storing it would only evict a live entry.
            self.remove(id);
            return Ok(());
        }
        // A TTL past what the clock can hold means "until evicted".
        const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
        let expires_at = now
            .checked_add(ttl.min(CENTURY))
            .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
        let (partition, previous) = {
            let mut inner = write(&self.inner);
            let key = match inner.partitions.get_key_value(key) {
                Some((k, _)) => Arc::clone(k),
                None => Arc::new(key.clone()),
            };
            let previous = inner.owners.insert(id, Arc::clone(&key));
            let partition = Arc::clone(
                inner
                    .partitions
                    .entry(Arc::clone(&key))
                    .or_insert_with(|| Arc::new(RwLock::new(Partition::new(unit.len())))),
            );
            (partition, previous.filter(|p| **p != *key))
        };
        if let Some(old) = previous {
            self.remove_from(&old, id);
        }
        let mut removed = Vec::new();
        {
            let mut p = write(&partition);
            if p.dimensions != unit.len() {
                drop(p);
                // Undo the ownership recorded above: nothing was stored.
                let mut inner = write(&self.inner);
                if inner.owners.get(&id).is_some_and(|k| **k == *key) {
                    inner.owners.remove(&id);
                }
                return Err(AiError::Dimensions {
                    model: key.embedding_model.clone(),
                    expected: partition_dimensions(&partition),
                    found: unit.len(),
                });
            }
            let seq = p.insert(
                &self.config,
                id,
                &unit,
                prompt.into(),
                expires_at,
                now,
                &mut removed,
            );
            // A graph insert costs about a millisecond at 100,000 entries:
            // it runs after the partition's lock is released (the graph has
            // its own fine-grained locks), so lookups never wait for it.
            let job = match &p.store {
                Store::Ann(ann) => {
                    ann.inflight.fetch_add(1, Ordering::AcqRel);
                    Some((
                        Arc::clone(&ann.graph),
                        Arc::clone(&ann.points),
                        Arc::clone(&ann.inflight),
                    ))
                }
                Store::Exact(_) => None,
            };
            if p.needs_rebuild(&self.config) {
                start_rebuild(&partition, &mut p, &self.config);
            }
            drop(p);
            if let Some((graph, points, inflight)) = job {
                // Counted down even if the insert panics, or a rebuild
                // waiting for it would wait forever.
                let _done = CountDown(inflight);
                graph.insert_slice((&unit, seq as usize));
                points.fetch_add(1, Ordering::AcqRel);
            }
        }
        if !removed.is_empty() {
            let mut inner = write(&self.inner);
            for gone in removed {
                if inner.owners.get(&gone).is_some_and(|k| **k == *key) {
                    inner.owners.remove(&gone);
                }
            }
        }
        Ok(())
    }

    /// The nearest live entry of `key`'s partition whose similarity to
    /// `vector` is at least `min_similarity`, without the guard.
    pub fn nearest(
        &self,
        key: &PartitionKey,
        vector: &[f32],
        min_similarity: f32,
    ) -> Option<SemanticHit> {
        let partition = self.partition(key)?;
        let query = unit_vector(vector, &key.embedding_model).ok()?;
        let p = read(&partition);
        p.candidates(self.ef_search(), &query, min_similarity, 1, Instant::now())
            .first()
            .map(|c| c.hit)
    }

    /// The semantic-cache decision: the nearest entries of `key`'s partition
    /// at or above `min_similarity`, best first, each checked by the
    /// [`guard`] against `prompt`; the first it accepts is the hit.
    pub fn lookup(
        &self,
        key: &PartitionKey,
        vector: &[f32],
        prompt: &str,
        min_similarity: f32,
    ) -> Lookup {
        let Some(partition) = self.partition(key) else {
            return Lookup::Miss;
        };
        let Ok(query) = unit_vector(vector, &key.embedding_model) else {
            return Lookup::Miss;
        };
        let candidates = {
            let p = read(&partition);
            p.candidates(
                self.ef_search(),
                &query,
                min_similarity,
                self.config.guard_candidates,
                Instant::now(),
            )
        };
        let mut refused = None;
        for c in candidates {
            match guard::check(&c.prompt, prompt) {
                Ok(()) => return Lookup::Hit(c.hit),
                Err(reason) => {
                    refused.get_or_insert(Lookup::Refused {
                        best: c.hit,
                        reason,
                    });
                }
            }
        }
        refused.unwrap_or(Lookup::Miss)
    }

    /// Removes entry `id`, wherever it is. True if it was there.
    pub fn remove(&self, id: u64) -> bool {
        let owner = write(&self.inner).owners.remove(&id);
        match owner {
            Some(key) => self.remove_from(&key, id),
            None => false,
        }
    }

    fn remove_from(&self, key: &PartitionKey, id: u64) -> bool {
        let Some(partition) = self.partition(key) else {
            return false;
        };
        let mut p = write(&partition);
        let removed = p.remove(id);
        if p.needs_rebuild(&self.config) {
            start_rebuild(&partition, &mut p, &self.config);
        }
        removed
    }

    /// Drops `key`'s partition. Returns the entries it held.
    pub fn remove_partition(&self, key: &PartitionKey) -> usize {
        self.remove_where(|k| k == key)
    }

    /// Drops every partition of `scope` (a user, tenant or conversation).
    pub fn remove_scope(&self, scope: &str) -> usize {
        self.remove_where(|k| k.scope.as_deref() == Some(scope))
    }

    /// Drops every partition whose key matches (by provider, model, ...).
    /// Returns the entries they held.
    pub fn remove_where(&self, mut matches: impl FnMut(&PartitionKey) -> bool) -> usize {
        let mut inner = write(&self.inner);
        let doomed: Vec<Arc<PartitionKey>> = inner
            .partitions
            .keys()
            .filter(|k| matches(k))
            .cloned()
            .collect();
        let mut count = 0;
        for key in doomed {
            if let Some(partition) = inner.partitions.remove(&key) {
                let p = read(&partition);
                count += p.entries.len();
                for e in p.entries.values() {
                    inner.owners.remove(&e.id);
                }
            }
        }
        count
    }

    /// Drops everything.
    pub fn clear(&self) {
        let mut inner = write(&self.inner);
        inner.partitions.clear();
        inner.owners.clear();
    }

    /// Removes expired entries from every partition now (inserts do it for
    /// their own partition). Returns how many went.
    pub fn purge_expired(&self) -> usize {
        let partitions: Vec<_> = read(&self.inner)
            .partitions
            .iter()
            .map(|(k, p)| (Arc::clone(k), Arc::clone(p)))
            .collect();
        let now = Instant::now();
        let mut gone = Vec::new();
        for (key, partition) in &partitions {
            let mut p = write(partition);
            let before = gone.len();
            p.purge_expired(now, &mut gone);
            if p.needs_rebuild(&self.config) {
                start_rebuild(partition, &mut p, &self.config);
            }
            let empty = p.entries.is_empty();
            drop(p);
            let mut inner = write(&self.inner);
            for id in &gone[before..] {
                if inner.owners.get(id).is_some_and(|k| k == key) {
                    inner.owners.remove(id);
                }
            }
            // Empty partitions (a user who left) would otherwise stay forever.
            if empty && Arc::strong_count(partition) <= 2 {
                inner.partitions.remove(&**key);
            }
        }
        gone.len()
    }

    /// The prompt entry `id` of `key`'s partition was stored with, while it
    /// lives: what a semantic hit turns back into the exact key of its
    /// answer.
    pub fn prompt_of(&self, key: &PartitionKey, id: u64) -> Option<Arc<str>> {
        let partition = self.partition(key)?;
        let p = read(&partition);
        let seq = p.seqs.get(&id)?;
        let entry = p.entries.get(seq)?;
        (entry.expires_at > Instant::now()).then(|| Arc::clone(&entry.prompt))
    }

    /// Live entries in `key`'s partition (expired ones not yet purged included).
    pub fn partition_len(&self, key: &PartitionKey) -> usize {
        self.partition(key).map_or(0, |p| read(&p).entries.len())
    }

    /// Sizes across all partitions.
    pub fn stats(&self) -> IndexStats {
        let inner = read(&self.inner);
        let mut stats = IndexStats::default();
        for partition in inner.partitions.values() {
            let p = read(partition);
            if p.entries.is_empty() {
                continue;
            }
            stats.partitions += 1;
            stats.entries += p.entries.len();
            if let Store::Ann(ann) = &p.store {
                stats.approximate_partitions += 1;
                stats.tombstones += ann.points().saturating_sub(p.entries.len());
            }
        }
        stats
    }

    /// Blocks until no partition is building or rebuilding its graph (for
    /// tests and benchmarks that need a settled index).
    pub fn wait_for_rebuilds(&self) {
        let partitions: Vec<_> = read(&self.inner).partitions.values().cloned().collect();
        for p in partitions {
            loop {
                let rebuilding = read(&p).rebuilding;
                if !rebuilding {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    fn partition(&self, key: &PartitionKey) -> Option<Arc<RwLock<Partition>>> {
        read(&self.inner).partitions.get(key).cloned()
    }
}

fn partition_dimensions(p: &RwLock<Partition>) -> usize {
    read(p).dimensions
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    // A panic while holding the lock leaves consistent-enough data (every
    // mutation completes before unlocking or only grows tombstones): go on.
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

/// `vector` scaled to unit length; an error for an empty, zero or
/// non-finite vector, which no similarity can be computed against.
fn unit_vector(vector: &[f32], model: &str) -> Result<Vec<f32>, AiError> {
    let norm = dot(vector, vector).sqrt();
    if vector.is_empty() || !norm.is_finite() || norm == 0.0 {
        return Err(AiError::Embedding {
            model: model.to_owned(),
            reason: "the vector is empty, zero or not finite".to_owned(),
        });
    }
    if (norm - 1.0).abs() < 1e-4 {
        return Ok(vector.to_vec());
    }
    Ok(vector.iter().map(|x| x / norm).collect())
}

/// Dot product with eight independent sums, so the compiler vectorises it
/// (a single running sum is a chain of dependent adds).
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks_a = a.chunks_exact(8);
    let chunks_b = b.chunks_exact(8);
    let (rest_a, rest_b) = (chunks_a.remainder(), chunks_b.remainder());
    for (x, y) in chunks_a.zip(chunks_b) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut sum = acc.iter().sum::<f32>();
    for (x, y) in rest_a.iter().zip(rest_b) {
        sum += x * y;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scope: &str) -> PartitionKey {
        PartitionKey::new("openai", "gpt-4o-mini", "perf-local-v1").with_scope(scope)
    }

    /// A unit vector pointing mostly along axis `i` of 16.
    fn axis(i: usize) -> Vec<f32> {
        let mut v = vec![0.05f32; 16];
        v[i] = 1.0;
        let n = dot(&v, &v).sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn entries_expire_at_an_absolute_instant_that_hits_do_not_extend() {
        let (clock, mock) = quanta::Clock::mock();
        quanta::with_clock(&clock, || {
            let index = SemanticIndex::new(IndexConfig::default()).unwrap();
            let k = key("a");
            index
                .insert(&k, 1, &axis(0), "p", Duration::from_secs(10))
                .unwrap();
            mock.increment(Duration::from_secs(6));
            assert_eq!(index.nearest(&k, &axis(0), 0.9).map(|h| h.id), Some(1));
            mock.increment(Duration::from_secs(3));
            assert!(matches!(
                index.lookup(&k, &axis(0), "p", 0.9),
                Lookup::Hit(_)
            ));
            // 11 s after the insert: the hits at 6 s and 9 s bought nothing.
            mock.increment(Duration::from_secs(2));
            assert_eq!(index.nearest(&k, &axis(0), 0.9), None);
            assert_eq!(index.lookup(&k, &axis(0), "p", 0.9), Lookup::Miss);
            assert_eq!(index.stats().entries, 1, "not purged yet, only skipped");
            assert_eq!(index.purge_expired(), 1);
            assert_eq!(index.stats(), IndexStats::default());
        });
    }

    #[test]
    fn a_full_partition_drops_expired_entries_before_live_ones() {
        let (clock, mock) = quanta::Clock::mock();
        quanta::with_clock(&clock, || {
            let config = IndexConfig::default().max_entries_per_partition(3);
            let index = SemanticIndex::new(config).unwrap();
            let k = key("a");
            index
                .insert(&k, 1, &axis(1), "p", Duration::from_secs(5))
                .unwrap();
            index
                .insert(&k, 2, &axis(2), "p", Duration::from_secs(100))
                .unwrap();
            index
                .insert(&k, 3, &axis(3), "p", Duration::from_secs(100))
                .unwrap();
            mock.increment(Duration::from_secs(10));
            index
                .insert(&k, 4, &axis(4), "p", Duration::from_secs(100))
                .unwrap();
            // 1 had expired: it made the room, the oldest live entry (2) stayed.
            assert_eq!(index.partition_len(&k), 3);
            assert_eq!(index.nearest(&k, &axis(2), 0.9).map(|h| h.id), Some(2));
            index
                .insert(&k, 5, &axis(5), "p", Duration::from_secs(100))
                .unwrap();
            // Nothing expired: the oldest (2) goes.
            assert_eq!(index.nearest(&k, &axis(2), 0.9), None);
            assert!(!index.remove(2), "an evicted id is forgotten");
            assert_eq!(index.nearest(&k, &axis(5), 0.9).map(|h| h.id), Some(5));
        });
    }

    #[test]
    fn the_graph_skips_expired_and_removed_entries() {
        let (clock, mock) = quanta::Clock::mock();
        quanta::with_clock(&clock, || {
            let index = SemanticIndex::new(IndexConfig::default().exact_below(8)).unwrap();
            let k = key("a");
            for i in 0..16u64 {
                let ttl = Duration::from_secs(if i % 2 == 0 { 5 } else { 100 });
                index.insert(&k, i, &axis(i as usize), "p", ttl).unwrap();
            }
            index.wait_for_rebuilds();
            assert_eq!(index.stats().approximate_partitions, 1);
            assert_eq!(index.nearest(&k, &axis(4), 0.9).map(|h| h.id), Some(4));
            mock.increment(Duration::from_secs(10));
            assert_eq!(index.nearest(&k, &axis(4), 0.9), None, "expired");
            assert!(index.remove(5));
            assert_eq!(index.nearest(&k, &axis(5), 0.9), None, "removed");
            assert_eq!(index.nearest(&k, &axis(7), 0.9).map(|h| h.id), Some(7));
        });
    }

    #[test]
    fn an_id_moves_between_partitions_instead_of_living_twice() {
        let index = SemanticIndex::new(IndexConfig::default()).unwrap();
        let hour = Duration::from_secs(3600);
        index.insert(&key("a"), 1, &axis(0), "p", hour).unwrap();
        index.insert(&key("b"), 1, &axis(0), "p", hour).unwrap();
        assert_eq!(index.nearest(&key("a"), &axis(0), 0.5), None);
        assert_eq!(
            index.nearest(&key("b"), &axis(0), 0.5).map(|h| h.id),
            Some(1)
        );
        assert_eq!(index.stats().entries, 1);
    }

    #[test]
    fn vectors_are_checked() {
        let index = SemanticIndex::new(IndexConfig::default()).unwrap();
        let hour = Duration::from_secs(3600);
        let k = key("a");
        assert!(matches!(
            index.insert(&k, 1, &[0.0; 16], "p", hour),
            Err(AiError::Embedding { .. })
        ));
        assert!(matches!(
            index.insert(&k, 1, &[f32::NAN; 16], "p", hour),
            Err(AiError::Embedding { .. })
        ));
        index.insert(&k, 1, &axis(0), "p", hour).unwrap();
        assert!(matches!(
            index.insert(&k, 2, &[1.0; 8], "p", hour),
            Err(AiError::Dimensions {
                expected: 16,
                found: 8,
                ..
            })
        ));
        assert!(!index.remove(2), "a refused insert leaves no trace");
        // Not unit length: normalised, so the similarity is still a cosine.
        let long: Vec<f32> = axis(3).iter().map(|x| x * 7.0).collect();
        index.insert(&k, 3, &long, "p", hour).unwrap();
        let hit = index.nearest(&k, &axis(3), 0.5).unwrap();
        assert_eq!(hit.id, 3);
        assert!((hit.similarity - 1.0).abs() < 1e-4, "{}", hit.similarity);
    }

    #[test]
    fn lookup_checks_the_next_candidates_when_the_nearest_is_refused() {
        let index = SemanticIndex::new(IndexConfig::default()).unwrap();
        let hour = Duration::from_secs(3600);
        let k = key("a");
        let mut near = axis(0);
        near[1] += 0.01;
        // The nearest differs in a number; the one just behind it matches.
        index
            .insert(&k, 1, &axis(0), "top 5 movies of 2019", hour)
            .unwrap();
        index
            .insert(&k, 2, &near, "top 10 movies of 2019", hour)
            .unwrap();
        let found = index.lookup(&k, &axis(0), "Top 10 movies of 2019?", 0.9);
        assert!(
            matches!(found, Lookup::Hit(SemanticHit { id: 2, .. })),
            "{found:?}"
        );
        let found = index.lookup(&k, &axis(0), "top 20 movies of 2019", 0.9);
        assert!(
            matches!(
                found,
                Lookup::Refused {
                    reason: Mismatch::Number,
                    best: SemanticHit { id: 1, .. }
                }
            ),
            "{found:?}"
        );
    }

    #[test]
    fn the_scope_is_not_shown_in_debug_output() {
        let shown = format!("{:?}", key("user-4711@example.com"));
        assert!(!shown.contains("4711"), "{shown}");
        assert!(shown.contains("openai"), "{shown}");
    }

    #[test]
    fn config_is_validated() {
        let c = IndexConfig {
            hnsw_connections: 300,
            ..IndexConfig::default()
        };
        assert!(matches!(
            SemanticIndex::new(c),
            Err(AiError::InvalidConfig {
                field: "hnsw_connections",
                ..
            })
        ));
        assert!(SemanticIndex::new(IndexConfig::default().max_entries_per_partition(0)).is_err());
    }
}
