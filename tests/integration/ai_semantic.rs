//! The semantic cache's decision, measured: the built-in embedder plus the
//! false-hit guard on the labelled prompt pairs of `tests/data/prompt_pairs.tsv`,
//! and the vector index (exact and approximate search, partitions, bounds)
//! through its public API.
//!
//! `PERF_AI_PAIRS_DETAIL=1` prints every pair with its similarity and the
//! guard's verdict (what to read when tuning the embedder or the guard).

use std::sync::Arc;
use std::time::Duration;

use perf_runtime::ai::guard::{self, Mismatch};
use perf_runtime::ai::{
    DEFAULT_SIMILARITY, Embedder, IndexConfig, LocalEmbedder, Lookup, PartitionKey, SemanticIndex,
};

struct Pair {
    /// Written after tuning, never tuned on.
    held_out: bool,
    paraphrase: bool,
    kind: String,
    a: String,
    b: String,
}

fn pairs() -> Vec<Pair> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/prompt_pairs.tsv");
    let text = std::fs::read_to_string(path).expect("read the prompt pairs");
    let mut held_out = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with("# held-out") {
            held_out = true;
        }
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 4, "4 tab-separated columns: {line:?}");
        let paraphrase = match cols[0] {
            "1" => true,
            "0" => false,
            other => panic!("label must be 0 or 1, found {other:?}"),
        };
        assert_eq!(
            paraphrase,
            cols[1] == "paraphrase",
            "kind `paraphrase` exactly when the label is 1: {line:?}"
        );
        out.push(Pair {
            held_out,
            paraphrase,
            kind: cols[1].to_owned(),
            a: cols[2].to_owned(),
            b: cols[3].to_owned(),
        });
    }
    out
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

struct Scored {
    held_out: bool,
    paraphrase: bool,
    kind: String,
    similarity: f32,
    guard: Result<(), Mismatch>,
}

#[derive(Debug, Clone, Copy)]
struct Figures {
    true_hits: usize,
    false_hits: usize,
    positives: usize,
    negatives: usize,
}

impl Figures {
    fn precision(&self) -> f64 {
        let served = self.true_hits + self.false_hits;
        if served == 0 {
            1.0
        } else {
            self.true_hits as f64 / served as f64
        }
    }
    fn recall(&self) -> f64 {
        self.true_hits as f64 / self.positives as f64
    }
    fn false_hit_rate(&self) -> f64 {
        self.false_hits as f64 / self.negatives as f64
    }
    fn line(&self) -> String {
        format!(
            "precision {:.3}, recall {:.3} ({} of {}), false-hit rate {:.3} ({} of {})",
            self.precision(),
            self.recall(),
            self.true_hits,
            self.positives,
            self.false_hit_rate(),
            self.false_hits,
            self.negatives
        )
    }
}

fn figures<'a>(
    scored: impl IntoIterator<Item = &'a Scored>,
    threshold: f32,
    with_guard: bool,
) -> Figures {
    let mut f = Figures {
        true_hits: 0,
        false_hits: 0,
        positives: 0,
        negatives: 0,
    };
    for s in scored {
        let served = s.similarity >= threshold && (!with_guard || s.guard.is_ok());
        if s.paraphrase {
            f.positives += 1;
            f.true_hits += usize::from(served);
        } else {
            f.negatives += 1;
            f.false_hits += usize::from(served);
        }
    }
    f
}

fn score(pairs: &[Pair]) -> Vec<Scored> {
    let e = LocalEmbedder::new();
    pairs
        .iter()
        .map(|p| Scored {
            held_out: p.held_out,
            paraphrase: p.paraphrase,
            kind: p.kind.clone(),
            similarity: dot(&e.embed_one(&p.a), &e.embed_one(&p.b)),
            // The cached prompt is `a`, the new one `b`.
            guard: guard::check(&p.a, &p.b),
        })
        .collect()
}

/// The rule: at the default threshold, at most 1% of the pairs
/// that are not paraphrases (negations, number changes, entity swaps,
/// opposites, reversed relations, added detail, other topics) are served
/// from the cache. Prints precision, recall and false-hit rate at the
/// default and around it, with and without the guard, for the whole set and
/// for its held-out part.
#[test]
fn labelled_pairs_false_hit_rate_at_the_default_threshold() {
    let pairs = pairs();
    assert!(
        pairs.len() >= 150,
        "the labelled set has {} pairs",
        pairs.len()
    );
    let scored = score(&pairs);
    if std::env::var_os("PERF_AI_PAIRS_DETAIL").is_some() {
        for (p, s) in pairs.iter().zip(&scored) {
            println!(
                "{}\t{:<12}\t{:.3}\t{:<9}\t{}\t{}",
                u8::from(p.paraphrase),
                p.kind,
                s.similarity,
                s.guard.err().map_or("ok", Mismatch::as_str),
                p.a,
                p.b
            );
        }
    }
    let held_out: Vec<&Scored> = scored.iter().filter(|s| s.held_out).collect();
    println!(
        "pairs: {} ({} paraphrases, {} not; {} of them held out)",
        scored.len(),
        scored.iter().filter(|s| s.paraphrase).count(),
        scored.iter().filter(|s| !s.paraphrase).count(),
        held_out.len()
    );
    println!("| threshold | guard | precision | recall | false-hit rate | false hits |");
    println!("|---:|---|---:|---:|---:|---:|");
    for t in [0.70, 0.75, 0.80, 0.85, 0.88, 0.90, 0.92, 0.95] {
        for with_guard in [false, true] {
            let f = figures(&scored, t, with_guard);
            println!(
                "| {t:.2} | {} | {:.3} | {:.3} | {:.3} | {} |",
                if with_guard { "yes" } else { "no" },
                f.precision(),
                f.recall(),
                f.false_hit_rate(),
                f.false_hits
            );
        }
    }
    let all = figures(&scored, DEFAULT_SIMILARITY, true);
    let unseen = figures(held_out.iter().copied(), DEFAULT_SIMILARITY, true);
    println!("default threshold {DEFAULT_SIMILARITY} with the guard:");
    println!("  all pairs: {}", all.line());
    println!("  held out:  {}", unseen.line());
    // What got through, to see which heuristic leaks.
    for s in &scored {
        if !s.paraphrase && s.similarity >= DEFAULT_SIMILARITY && s.guard.is_ok() {
            println!("  false hit: kind {} at {:.3}", s.kind, s.similarity);
        }
    }
    assert!(
        all.false_hit_rate() <= 0.01,
        "false-hit rate {:.3} at the default threshold {DEFAULT_SIMILARITY} is above 1%",
        all.false_hit_rate()
    );
    // The cache must still be worth having: the recall the docs state (with
    // a margin), so a change that quietly refuses everything fails here.
    assert!(
        all.recall() >= 0.6,
        "recall {:.3} at the default threshold fell below 0.6",
        all.recall()
    );
}

/// Similarity alone puts many of the pairs that differ only in a number,
/// negation, name, opposite or direction above the threshold: the guard is
/// what makes the threshold safe, and it must refuse every one of them.
#[test]
fn the_guard_refuses_what_the_embedder_cannot_tell_apart() {
    let scored = score(&pairs());
    let hard: Vec<&Scored> = scored
        .iter()
        .filter(|s| {
            matches!(
                s.kind.as_str(),
                "negation" | "number" | "entity" | "opposite" | "order"
            )
        })
        .collect();
    let close: Vec<&&Scored> = hard
        .iter()
        .filter(|s| s.similarity >= DEFAULT_SIMILARITY)
        .collect();
    let refused = close.iter().filter(|s| s.guard.is_err()).count();
    println!(
        "pairs differing in a number, negation, name, opposite or order: {}",
        hard.len()
    );
    println!(
        "  at or above {DEFAULT_SIMILARITY} by similarity alone: {}; refused by the guard: {refused}",
        close.len()
    );
    assert!(
        close.len() >= 10,
        "only {} of these pairs reach the threshold: the test no longer exercises the guard",
        close.len()
    );
    assert_eq!(refused, close.len(), "the guard let some of these through");
}

fn key(scope: &str) -> PartitionKey {
    PartitionKey::new("openai", "gpt-4o-mini", LocalEmbedder::MODEL)
        .with_context("You are a helpful assistant.")
        .with_scope(scope)
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn exact_and_semantic_matches_and_guarded_misses() {
    let e = LocalEmbedder::new();
    let index = SemanticIndex::new(IndexConfig::default()).unwrap();
    let k = key("user-a");
    let cached = "How do I reverse a list in Python?";
    index
        .insert(&k, 1, &e.embed_one(cached), cached, HOUR)
        .unwrap();
    let other = "What is the capital of France?";
    index
        .insert(&k, 2, &e.embed_one(other), other, HOUR)
        .unwrap();

    let same = index.lookup(&k, &e.embed_one(cached), cached, DEFAULT_SIMILARITY);
    let Lookup::Hit(hit) = same else {
        panic!("exact prompt: {same:?}")
    };
    assert_eq!(hit.id, 1);
    assert!(hit.similarity > 0.999);

    let paraphrase = "how can i reverse a list in python";
    let Lookup::Hit(hit) =
        index.lookup(&k, &e.embed_one(paraphrase), paraphrase, DEFAULT_SIMILARITY)
    else {
        panic!("paraphrase missed")
    };
    assert_eq!(hit.id, 1);

    let entity = "What is the capital of Germany?";
    let found = index.lookup(&k, &e.embed_one(entity), entity, DEFAULT_SIMILARITY);
    assert!(
        matches!(
            found,
            Lookup::Miss
                | Lookup::Refused {
                    reason: Mismatch::Entity,
                    ..
                }
        ),
        "{found:?}"
    );
    let unrelated = "Recommend a science fiction book";
    assert_eq!(
        index.lookup(&k, &e.embed_one(unrelated), unrelated, DEFAULT_SIMILARITY),
        Lookup::Miss
    );
}

#[test]
fn partitions_never_mix() {
    let e = LocalEmbedder::new();
    let index = SemanticIndex::new(IndexConfig::default()).unwrap();
    let prompt = "Summarize my last three orders";
    let v = e.embed_one(prompt);
    index.insert(&key("user-a"), 1, &v, prompt, HOUR).unwrap();
    // Same prompt, another user: nothing.
    assert_eq!(index.nearest(&key("user-b"), &v, 0.0), None);
    // Same user, another model, system prompt or embedder: nothing.
    let mut other_model = key("user-a");
    other_model.model = "gpt-4o".into();
    let other_context = key("user-a").with_context("You are a pirate.");
    let mut other_embedder = key("user-a");
    other_embedder.embedding_model = "text-embedding-3-small".into();
    for k in [other_model, other_context, other_embedder] {
        assert_eq!(index.nearest(&k, &v, 0.0), None, "{k:?}");
    }
    assert_eq!(
        index.nearest(&key("user-a"), &v, 0.99).map(|h| h.id),
        Some(1)
    );

    // Invalidating a scope leaves the others.
    index.insert(&key("user-b"), 2, &v, prompt, HOUR).unwrap();
    assert_eq!(index.remove_scope("user-a"), 1);
    assert_eq!(index.nearest(&key("user-a"), &v, 0.0), None);
    assert_eq!(
        index.nearest(&key("user-b"), &v, 0.0).map(|h| h.id),
        Some(2)
    );
    // By id, then everything.
    assert!(index.remove(2));
    assert!(!index.remove(2));
    index.insert(&key("user-c"), 3, &v, prompt, HOUR).unwrap();
    index.clear();
    assert_eq!(index.stats().entries, 0);
}

#[test]
fn a_partition_keeps_its_newest_entries_up_to_the_bound() {
    let e = LocalEmbedder::new();
    let index = SemanticIndex::new(IndexConfig::default().max_entries_per_partition(50)).unwrap();
    let k = key("user-a");
    let prompts: Vec<String> = (0..120)
        .map(|i| format!("question number {i} about topic {}", i * 7))
        .collect();
    for (i, p) in prompts.iter().enumerate() {
        index
            .insert(&k, i as u64, &e.embed_one(p), p, HOUR)
            .unwrap();
    }
    assert_eq!(index.partition_len(&k), 50);
    // The oldest went, the newest stayed.
    for (i, p) in prompts.iter().enumerate() {
        let found = index.nearest(&k, &e.embed_one(p), 0.999).map(|h| h.id);
        if i < 70 {
            assert_eq!(found, None, "entry {i} should have been evicted");
        } else {
            assert_eq!(found, Some(i as u64), "entry {i} should be there");
        }
    }
}

fn random_unit_vectors(n: usize, dims: usize, seed: u64) -> Vec<Vec<f32>> {
    // xorshift: reproducible without another dependency.
    let mut state = seed.max(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    (0..n)
        .map(|_| {
            let v: Vec<f32> = (0..dims).map(|_| next()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / norm).collect()
        })
        .collect()
}

/// Past `exact_below` a partition searches an HNSW graph; its nearest
/// neighbour must agree with the exact scan for nearly every query. The
/// queries are perturbed copies of stored vectors (what a semantic cache
/// sees: a near-duplicate of something cached) and fresh random vectors.
#[test]
fn the_approximate_index_agrees_with_exact_search() {
    let dims = 64;
    let n = 2_000;
    let stored = random_unit_vectors(n, dims, 7);
    let exact = SemanticIndex::new(IndexConfig::default().exact_below(usize::MAX)).unwrap();
    let ann = SemanticIndex::new(IndexConfig::default().exact_below(300)).unwrap();
    let k = key("shared");
    for (i, v) in stored.iter().enumerate() {
        exact.insert(&k, i as u64, v, "p", HOUR).unwrap();
        ann.insert(&k, i as u64, v, "p", HOUR).unwrap();
    }
    ann.wait_for_rebuilds();
    assert_eq!(ann.stats().approximate_partitions, 1);
    assert_eq!(exact.stats().approximate_partitions, 0);
    let noise = random_unit_vectors(300, dims, 99);
    let near: Vec<Vec<f32>> = noise
        .iter()
        .enumerate()
        .map(|(i, z)| {
            stored[i * 6]
                .iter()
                .zip(z)
                .map(|(s, z)| s + 0.3 * z)
                .collect()
        })
        .collect();
    let far = random_unit_vectors(200, dims, 1234);
    let mut agree = 0;
    let total = near.len() + far.len();
    for q in near.iter().chain(&far) {
        let want = exact.nearest(&k, q, -1.0).map(|h| h.id);
        let got = ann.nearest(&k, q, -1.0).map(|h| h.id);
        agree += usize::from(want == got);
    }
    let recall = agree as f64 / total as f64;
    println!(
        "approximate index: recall@1 {recall:.3} over {total} queries ({n} vectors, {dims} dims)"
    );
    assert!(recall >= 0.95, "recall@1 {recall:.3} below 0.95");
}

/// Tombstones (evicted, removed or expired entries) are rebuilt away in the
/// background and the index keeps answering meanwhile.
#[test]
fn removals_in_the_approximate_index_are_rebuilt_away() {
    let dims = 64;
    let stored = random_unit_vectors(2_000, dims, 3);
    let index = Arc::new(SemanticIndex::new(IndexConfig::default().exact_below(300)).unwrap());
    let k = key("shared");
    for (i, v) in stored.iter().enumerate() {
        index.insert(&k, i as u64, v, "p", HOUR).unwrap();
    }
    for i in 0..1_500u64 {
        assert!(index.remove(i));
    }
    index.wait_for_rebuilds();
    let stats = index.stats();
    assert_eq!(stats.entries, 500);
    assert!(stats.tombstones < 500, "{stats:?}");
    for (i, v) in stored.iter().enumerate() {
        let found = index.nearest(&k, v, 0.999).map(|h| h.id);
        if i < 1_500 {
            assert_eq!(found, None, "removed entry {i} found");
        } else {
            assert_eq!(found, Some(i as u64), "live entry {i} lost");
        }
    }
}

#[tokio::test]
async fn the_local_embedder_through_the_trait() {
    let e: Arc<dyn Embedder> = Arc::new(LocalEmbedder::new());
    assert_eq!(e.model(), "perf-local-v1");
    let out = e.embed(&["a".to_owned(), "b".to_owned()]).await.unwrap();
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|v| v.len() == e.dimensions()));
}
