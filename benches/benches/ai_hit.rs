//! An exact hit through `#[ai_optimized]` against an L1 hit of
//! `#[fast_endpoint]` on the same function (a `String` prompt in, a
//! 300-byte `String` answer out), in the same run; and a semantic hit (a
//! paraphrase of a cached prompt, 1,000 prompts cached in its partition)
//! for what the semantic tier costs on top.
//!
//! The exact hit does more than `#[fast_endpoint]`'s: the prompt is
//! normalised (case, whitespace) and the key covers provider, model,
//! context and scope. The ratio says what that costs.
//!
//! Run with: `cargo bench -p perf-benches --bench ai_hit`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::Criterion;
use perf_runtime::prelude::*;

const PROMPTS: usize = 1_000;

fn answer(prompt: &str) -> String {
    format!("{prompt}: {}", "the answer goes on for a while. ".repeat(9))
}

#[fast_endpoint(cache_ttl = 3600, tier = "l1", max_entries = 20000)]
async fn with_fast_endpoint(prompt: String) -> String {
    answer(&prompt)
}

#[ai_optimized(provider = "local", model = "bench", cache_ttl = 3600)]
async fn with_ai_optimized(prompt: String) -> String {
    answer(&prompt)
}

fn prompt(i: usize) -> String {
    format!("How do I configure service number {i} behind an nginx reverse proxy?")
}

/// Runs `iters` calls of `case` with `prompt` on one task; the wall time.
fn run(runtime: &tokio::runtime::Runtime, case: &str, prompt: &str, iters: u64) -> Duration {
    runtime.block_on(async {
        let started = Instant::now();
        for _ in 0..iters {
            let answer = match case {
                "fast_endpoint_l1_hit" => with_fast_endpoint(prompt.to_owned()).await,
                _ => with_ai_optimized(prompt.to_owned()).await,
            };
            black_box(answer.len());
        }
        started.elapsed()
    })
}

fn main() {
    let (runtime, _perf) = perf_benches::service_runtime(0);
    let prompts: Vec<String> = (0..PROMPTS).map(prompt).collect();
    runtime.block_on(async {
        for p in &prompts {
            with_fast_endpoint(p.clone()).await;
            with_ai_optimized(p.clone()).await;
        }
    });
    let hot = prompts[PROMPTS / 2].clone();
    // "How can I ..." for "How do I ...": served by meaning.
    let paraphrase = hot.replace("How do I", "How can I");

    let mut criterion = Criterion::default()
        .output_directory(&perf_benches::criterion_dir())
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let mut group = criterion.benchmark_group("ai_hit");
    for (case, prompt) in [
        ("fast_endpoint_l1_hit", &hot),
        ("ai_optimized_exact_hit", &hot),
        ("ai_optimized_semantic_hit", &paraphrase),
    ] {
        group.bench_function(case, |b| {
            b.iter_custom(|iters| run(&runtime, case, prompt, iters))
        });
    }
    group.finish();
    criterion.final_summary();
}
