//! A partition of the semantic index: its entries, their vectors kept side
//! by side for exact search or in an HNSW graph past a size, expiry and
//! eviction, and the graph's rebuild on a background thread.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hnsw_rs::anndists::dist::Distance;
use hnsw_rs::hnsw::Hnsw;
use quanta::Instant;

use super::{IndexConfig, SemanticHit, dot, read, write};

/// Cosine distance on unit vectors for the HNSW graph: 1 − dot, clamped at
/// 0 (rounding can push the dot of two equal unit vectors past 1).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct CosineDistance;

impl Distance<f32> for CosineDistance {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

pub(super) type Graph = Hnsw<'static, f32, CosineDistance>;

pub(super) struct Entry {
    pub(super) id: u64,
    pub(super) expires_at: Instant,
    pub(super) prompt: Arc<str>,
    /// Position in the exact store's arrays (unused by a graph).
    pub(super) position: usize,
}

pub(super) struct Candidate {
    pub(super) hit: SemanticHit,
    pub(super) prompt: Arc<str>,
}

pub(super) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

pub(super) struct Partition {
    pub(super) dimensions: usize,
    /// Insertion number of the next entry; also its data id in a graph.
    pub(super) next_seq: u64,
    /// Live entries by insertion number (the truth: a graph node or an
    /// exact slot without an entry here is dead).
    pub(super) entries: FastMap<u64, Entry>,
    /// Insertion number of each id.
    pub(super) seqs: FastMap<u64, u64>,
    /// Insertion numbers, oldest first (for eviction).
    pub(super) order: BTreeSet<u64>,
    /// (expiry, insertion number), soonest first (for purging).
    pub(super) expiries: BTreeSet<(Instant, u64)>,
    pub(super) store: Store,
    /// A graph is being built or rebuilt on another thread.
    pub(super) rebuilding: bool,
    /// Vectors inserted while it runs, replayed into the new graph.
    pub(super) pending: Vec<(u64, Vec<f32>)>,
}

pub(super) enum Store {
    Exact(Exact),
    Ann(Ann),
}

/// Vectors side by side (`dimensions` floats per entry) and the insertion
/// number of each.
#[derive(Default)]
pub(super) struct Exact {
    pub(super) vectors: Vec<f32>,
    pub(super) seqs: Vec<u64>,
}

pub(super) struct Ann {
    pub(super) graph: Arc<Graph>,
    /// Nodes in the graph, tombstones (and rare duplicates) included.
    pub(super) points: Arc<AtomicUsize>,
    /// Graph inserts handed out under the lock and not finished yet; a
    /// rebuild waits for them before it reads the graph.
    pub(super) inflight: Arc<AtomicUsize>,
}

impl Ann {
    pub(super) fn points(&self) -> usize {
        self.points.load(Ordering::Acquire)
    }
}

impl Partition {
    pub(super) fn new(dimensions: usize) -> Self {
        Partition {
            dimensions,
            next_seq: 0,
            entries: FastMap::default(),
            seqs: FastMap::default(),
            order: BTreeSet::new(),
            expiries: BTreeSet::new(),
            store: Store::Exact(Exact::default()),
            rebuilding: false,
            pending: Vec::new(),
        }
    }

    /// Registers an entry (evicting if full) and stores its vector in the
    /// exact store; a graph insert is left to the caller. Returns the
    /// entry's insertion number.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn insert(
        &mut self,
        config: &IndexConfig,
        id: u64,
        vector: &[f32],
        prompt: Arc<str>,
        expires_at: Instant,
        now: Instant,
        evicted: &mut Vec<u64>,
    ) -> u64 {
        self.remove(id);
        if self.entries.len() >= config.max_entries_per_partition {
            self.purge_expired(now, evicted);
        }
        while self.entries.len() >= config.max_entries_per_partition {
            let Some(&oldest) = self.order.first() else {
                break;
            };
            let gone = self.entries.get(&oldest).map(|e| e.id);
            if let Some(gone) = gone {
                self.remove(gone);
                evicted.push(gone);
            } else {
                self.order.remove(&oldest);
            }
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let position = match &mut self.store {
            Store::Exact(exact) => {
                exact.vectors.extend_from_slice(vector);
                exact.seqs.push(seq);
                exact.seqs.len() - 1
            }
            Store::Ann(_) => 0,
        };
        if self.rebuilding {
            self.pending.push((seq, vector.to_vec()));
        }
        self.entries.insert(
            seq,
            Entry {
                id,
                expires_at,
                prompt,
                position,
            },
        );
        self.seqs.insert(id, seq);
        self.order.insert(seq);
        self.expiries.insert((expires_at, seq));
        seq
    }

    /// Removes entry `id`; true if it was here.
    pub(super) fn remove(&mut self, id: u64) -> bool {
        let Some(seq) = self.seqs.remove(&id) else {
            return false;
        };
        let Some(entry) = self.entries.remove(&seq) else {
            return false;
        };
        self.order.remove(&seq);
        self.expiries.remove(&(entry.expires_at, seq));
        if let Store::Exact(exact) = &mut self.store {
            let d = self.dimensions;
            let pos = entry.position;
            let last = exact.seqs.len() - 1;
            if pos != last {
                let moved_seq = exact.seqs[last];
                exact.seqs[pos] = moved_seq;
                exact.vectors.copy_within(last * d..(last + 1) * d, pos * d);
                if let Some(moved) = self.entries.get_mut(&moved_seq) {
                    moved.position = pos;
                }
            }
            exact.seqs.pop();
            exact.vectors.truncate(last * d);
        }
        // A graph keeps the node as a tombstone: searches skip seqs with no entry.
        true
    }

    pub(super) fn purge_expired(&mut self, now: Instant, gone: &mut Vec<u64>) {
        while let Some(&(at, seq)) = self.expiries.first() {
            if at > now {
                break;
            }
            match self.entries.get(&seq).map(|e| e.id) {
                Some(id) => {
                    self.remove(id);
                    gone.push(id);
                }
                None => {
                    self.expiries.remove(&(at, seq));
                }
            }
        }
    }

    /// An exact store that grew to `exact_below`, or a graph whose
    /// tombstones outnumber its live entries.
    pub(super) fn needs_rebuild(&self, config: &IndexConfig) -> bool {
        if self.rebuilding {
            return false;
        }
        match &self.store {
            Store::Exact(exact) => exact.seqs.len() >= config.exact_below.max(1),
            Store::Ann(ann) => {
                let live = self.entries.len();
                ann.points().saturating_sub(live) > live.max(256)
            }
        }
    }

    /// Live, unexpired entries at or above `min_similarity`, best first, at
    /// most `k`; a graph considers `ef` candidates.
    pub(super) fn candidates(
        &self,
        ef: usize,
        query: &[f32],
        min_similarity: f32,
        k: usize,
        now: Instant,
    ) -> Vec<Candidate> {
        if query.len() != self.dimensions {
            return Vec::new();
        }
        let live = |seq: u64| self.entries.get(&seq).filter(|e| e.expires_at > now);
        let mut found: Vec<(f32, u64)> = Vec::with_capacity(k + 1);
        match &self.store {
            Store::Exact(exact) => {
                for (v, &seq) in exact.vectors.chunks_exact(self.dimensions).zip(&exact.seqs) {
                    let sim = dot(query, v);
                    if sim < min_similarity
                        || (found.len() == k && found.last().is_some_and(|&(s, _)| s >= sim))
                        || live(seq).is_none()
                    {
                        continue;
                    }
                    let at = found.partition_point(|&(s, _)| s >= sim);
                    found.insert(at, (sim, seq));
                    found.truncate(k);
                }
            }
            Store::Ann(ann) => {
                // hnsw_rs's filtered search gives up its early exit and
                // wanders the graph: ask for the `ef` nearest instead and
                // drop the dead ones here. Tombstones stay a minority (a
                // rebuild starts when they outnumber live entries).
                let ef = ef.max(k);
                for n in ann.graph.search(query, ef, ef) {
                    let seq = n.d_id as u64;
                    let sim = 1.0 - n.distance;
                    if sim < min_similarity || live(seq).is_none() {
                        continue;
                    }
                    // A node inserted twice around a rebuild shows up twice.
                    if !found.iter().any(|&(_, s)| s == seq) {
                        found.push((sim, seq));
                    }
                }
                found.sort_by(|a, b| b.0.total_cmp(&a.0));
                found.truncate(k);
            }
        }
        found
            .into_iter()
            .filter_map(|(similarity, seq)| {
                self.entries.get(&seq).map(|e| Candidate {
                    hit: SemanticHit {
                        id: e.id,
                        similarity,
                    },
                    prompt: Arc::clone(&e.prompt),
                })
            })
            .collect()
    }
}

pub(super) fn new_graph(config: &IndexConfig, expected: usize) -> Graph {
    // Layers: hnsw_rs caps them at 16, far more than log_16 of any size here.
    Hnsw::new(
        config.hnsw_connections,
        expected.max(1024),
        16,
        config.hnsw_ef_construction,
        CosineDistance,
    )
}

/// Decrements its counter when dropped.
pub(super) struct CountDown(pub(super) Arc<AtomicUsize>);

impl Drop for CountDown {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where a (re)build takes its vectors from.
pub(super) enum Source {
    /// Copied from the exact store under the lock.
    Copied(Vec<(Vec<f32>, u64)>),
    /// The current graph, once the inserts counted by the counter finish.
    Graph(Arc<Graph>, Arc<AtomicUsize>),
}

/// Builds a graph for `p` on a background thread (from its exact store once
/// it reaches `exact_below`, or from its live graph nodes once tombstones
/// outnumber them). The current store keeps serving until the new one is
/// swapped in; entries inserted meanwhile are replayed into it. A graph
/// that shrank below half of `exact_below` goes back to an exact store.
pub(super) fn start_rebuild(
    partition: &Arc<RwLock<Partition>>,
    p: &mut Partition,
    config: &IndexConfig,
) {
    let source = match &mut p.store {
        Store::Exact(exact) => Source::Copied(
            exact
                .vectors
                .chunks_exact(p.dimensions)
                .zip(&exact.seqs)
                .map(|(v, &seq)| (v.to_vec(), seq))
                .collect(),
        ),
        Store::Ann(ann) => {
            // Inserts handed out from now on also land in `pending`; wait
            // only for the earlier ones.
            let earlier = std::mem::replace(&mut ann.inflight, Arc::new(AtomicUsize::new(0)));
            Source::Graph(Arc::clone(&ann.graph), earlier)
        }
    };
    p.rebuilding = true;
    p.pending.clear();
    let weak = Arc::downgrade(partition);
    let config = config.clone();
    let spawned = std::thread::Builder::new()
        .name("perf-ai-index".into())
        .spawn(move || rebuild(&weak, source, &config));
    if spawned.is_err() {
        // No thread: keep serving as is; the next insert or removal retries.
        p.rebuilding = false;
    }
}

pub(super) fn rebuild(
    weak: &std::sync::Weak<RwLock<Partition>>,
    source: Source,
    config: &IndexConfig,
) {
    let live: Vec<(Vec<f32>, u64)> = match source {
        Source::Copied(vectors) => vectors,
        Source::Graph(graph, earlier) => {
            while earlier.load(Ordering::Acquire) > 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            let Some(partition) = weak.upgrade() else {
                return;
            };
            let p = read(&partition);
            let mut seen = std::collections::HashSet::new();
            graph
                .get_point_indexation()
                .into_iter()
                .filter_map(|point| {
                    let seq = point.get_origin_id() as u64;
                    (p.entries.contains_key(&seq) && seen.insert(seq))
                        .then(|| (point.get_v().to_vec(), seq))
                })
                .collect()
        }
    };
    let built: HashSet<u64> = live.iter().map(|(_, seq)| *seq).collect();
    let store = if live.len() < config.exact_below / 2 {
        None
    } else {
        let graph = new_graph(config, live.len());
        let items: Vec<(&[f32], usize)> = live
            .iter()
            .map(|(v, seq)| (v.as_slice(), *seq as usize))
            .collect();
        graph.parallel_insert_slice(&items);
        Some(graph)
    };
    let Some(partition) = weak.upgrade() else {
        return;
    };
    let mut p = write(&partition);
    let pending = std::mem::take(&mut p.pending);
    match store {
        Some(graph) => {
            let mut points = live.len();
            for (seq, v) in &pending {
                if !built.contains(seq) && p.entries.contains_key(seq) {
                    graph.insert_slice((v, *seq as usize));
                    points += 1;
                }
            }
            p.store = Store::Ann(Ann {
                graph: Arc::new(graph),
                points: Arc::new(AtomicUsize::new(points)),
                inflight: Arc::new(AtomicUsize::new(0)),
            });
        }
        None => {
            // Few left: an exact scan of the live entries.
            let mut exact = Exact::default();
            let all = live.iter().map(|(v, s)| (v, *s)).chain(
                pending
                    .iter()
                    .filter(|(seq, _)| !built.contains(seq))
                    .map(|(s, v)| (v, *s)),
            );
            for (v, seq) in all {
                if let Some(e) = p.entries.get_mut(&seq) {
                    e.position = exact.seqs.len();
                    exact.vectors.extend_from_slice(v);
                    exact.seqs.push(seq);
                }
            }
            p.store = Store::Exact(exact);
        }
    }
    p.rebuilding = false;
}
