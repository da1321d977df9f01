//! What `#[profile]` costs per call, against its baselines in the same run,
//! all recording into the Prometheus recorder that `perf_runtime::init`
//! installs (no tracing subscriber, as in production without tracing):
//!
//! - `bare`: the function alone;
//! - `profile`: the same under `#[profile]`;
//! - `macros_per_call`: hand-written `counter!`/`gauge!`/`histogram!` calls
//!   (a key lookup on every call) with `std::time::Instant`;
//! - `static_handles`: the same metrics through handles kept in statics,
//!   `std::time::Instant`: the floor of hand-written instrumentation;
//! - `static_handles_quanta`: as above with the TSC clock `#[profile]` uses;
//! - `autometrics`: `#[autometrics]` on the same function.
//!
//! A second group runs with a `tracing` subscriber (a bare registry, which
//! stores every span) so spans are really created: `#[profile]` against
//! `#[tracing::instrument]`, which records the span but no metrics.
//!
//! Run with: `cargo bench -p perf-benches --bench profile_overhead`
//! (prints a ratio table at the end; copy it into docs/PERFORMANCE.md).

use std::hint::black_box;
use std::sync::LazyLock;
use std::time::Instant;

use autometrics::autometrics;
use criterion::Criterion;
use metrics::{Counter, Gauge, Histogram};
use perf_runtime::prelude::*;

const GROUP: &str = "profile_overhead";
const TRACED_GROUP: &str = "profile_overhead_with_subscriber";
const TRACED_CASES: &[&str] = &["bare", "instrument", "profile"];
const CASES: &[&str] = &[
    "bare",
    "profile",
    "macros_per_call",
    "static_handles",
    "static_handles_quanta",
    "autometrics",
];

/// One benched function.
type Case = fn(u64) -> u64;

#[inline(never)]
fn bare(x: u64) -> u64 {
    black_box(x).wrapping_mul(31).rotate_left(7)
}

#[profile]
#[inline(never)]
fn profiled(x: u64) -> u64 {
    black_box(x).wrapping_mul(31).rotate_left(7)
}

#[tracing::instrument(skip_all)]
#[inline(never)]
fn instrumented(x: u64) -> u64 {
    black_box(x).wrapping_mul(31).rotate_left(7)
}

#[autometrics]
#[inline(never)]
fn auto(x: u64) -> u64 {
    black_box(x).wrapping_mul(31).rotate_left(7)
}

#[inline(never)]
fn macros_per_call(x: u64) -> u64 {
    let labels = [("function", "macros_per_call"), ("module", "bench")];
    metrics::gauge!("bench_in_flight", &labels).increment(1.0);
    let started = Instant::now();
    let out = black_box(x).wrapping_mul(31).rotate_left(7);
    metrics::histogram!("bench_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    metrics::counter!("bench_calls_total", "function" => "macros_per_call", "module" => "bench", "outcome" => "ok")
        .increment(1);
    metrics::gauge!("bench_in_flight", &labels).decrement(1.0);
    out
}

struct Handles {
    calls: Counter,
    in_flight: Gauge,
    duration: Histogram,
}

fn handles(function: &'static str) -> Handles {
    Handles {
        calls: metrics::counter!("bench_calls_total", "function" => function, "module" => "bench", "outcome" => "ok"),
        in_flight: metrics::gauge!("bench_in_flight", "function" => function, "module" => "bench"),
        duration: metrics::histogram!("bench_duration_seconds", "function" => function, "module" => "bench"),
    }
}

static STATIC_HANDLES: LazyLock<Handles> = LazyLock::new(|| handles("static_handles"));
static QUANTA_HANDLES: LazyLock<Handles> = LazyLock::new(|| handles("static_handles_quanta"));

#[inline(never)]
fn static_handles(x: u64) -> u64 {
    let h = &*STATIC_HANDLES;
    h.in_flight.increment(1.0);
    let started = Instant::now();
    let out = black_box(x).wrapping_mul(31).rotate_left(7);
    h.duration.record(started.elapsed().as_secs_f64());
    h.calls.increment(1);
    h.in_flight.decrement(1.0);
    out
}

#[inline(never)]
fn static_handles_quanta(x: u64) -> u64 {
    let h = &*QUANTA_HANDLES;
    h.in_flight.increment(1.0);
    let started = quanta::Instant::now();
    let out = black_box(x).wrapping_mul(31).rotate_left(7);
    h.duration.record(started.elapsed().as_secs_f64());
    h.calls.increment(1);
    h.in_flight.decrement(1.0);
    out
}

/// Benches each case under `group`, calling it with a fresh argument each time.
fn bench_cases(criterion: &mut Criterion, group: &str, cases: &[(&str, Case)]) {
    let mut group = criterion.benchmark_group(group);
    for (name, function) in cases {
        group.bench_function(*name, |b| {
            let mut x = 0u64;
            b.iter(|| {
                x = x.wrapping_add(1);
                function(black_box(x))
            })
        });
    }
    group.finish();
}

fn main() {
    // The runtime drains histogram samples every 5 s, as in a service; it
    // stays up for the whole run.
    let (runtime, perf) = perf_benches::service_runtime(1);

    let mut criterion = Criterion::default()
        .output_directory(&perf_benches::criterion_dir())
        .configure_from_args();
    bench_cases(
        &mut criterion,
        GROUP,
        &[
            ("bare", bare),
            ("profile", profiled),
            ("macros_per_call", macros_per_call),
            ("static_handles", static_handles),
            ("static_handles_quanta", static_handles_quanta),
            ("autometrics", auto),
        ],
    );
    {
        let subscriber = tracing_subscriber::registry();
        let _default = tracing::subscriber::set_default(subscriber);
        bench_cases(
            &mut criterion,
            TRACED_GROUP,
            &[
                ("bare", bare),
                ("instrument", instrumented),
                ("profile", profiled),
            ],
        );
    }
    criterion.final_summary();

    // Every case really recorded (a bench of a no-op would prove nothing).
    let text = perf.render_prometheus().unwrap_or_default();
    assert!(
        text.contains("function=\"profiled\""),
        "#[profile] recorded nothing"
    );
    assert!(
        text.contains("function=\"auto\""),
        "#[autometrics] recorded nothing"
    );
    perf_benches::print_ratios(GROUP, "static_handles", CASES);
    perf_benches::print_ratios(TRACED_GROUP, "instrument", TRACED_CASES);
    runtime.block_on(perf_runtime::shutdown());
}
