//! The query-result cache (L3): a hit of `Db::cached_query` against the same
//! query run on PostgreSQL through `Db::fetch_all`, in the same run, one
//! task and 2 worker threads × 32 tasks. The query reads 10 rows of a
//! 1,000-row table by an indexed column.
//!
//! Needs PostgreSQL: start one with `eval "$(scripts/services.sh start)"`
//! (sets DATABASE_URL), then run
//! `cargo bench -p perf-benches --bench db_query_cache`.

use std::time::{Duration, Instant};

use criterion::Criterion;
use perf_runtime::db::{Db, Params};

const TASKS: u64 = 32;
const CASES: &[&str] = &["cached_query_hit", "postgres_query"];
const SQL: &str = "SELECT id, name FROM bench_query_cache WHERE team = $1 ORDER BY id";

async fn one_query(db: &Db, case: &str) -> usize {
    let rows: Vec<(i64, String)> = if case == "cached_query_hit" {
        db.cached_query(
            "bench.team",
            SQL,
            Params::new().bind(7_i64),
            Duration::from_secs(3600),
            &["bench_query_cache"],
        )
        .await
    } else {
        db.fetch_all(SQL, Params::new().bind(7_i64)).await
    }
    .expect("query");
    rows.len()
}

fn run(
    runtime: &tokio::runtime::Runtime,
    db: &Db,
    case: &'static str,
    iters: u64,
    tasks: u64,
) -> Duration {
    runtime.block_on(async move {
        let started = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|task| {
                let db = db.clone();
                tokio::spawn(async move {
                    let per_task = iters / tasks + u64::from(task < iters % tasks);
                    for _ in 0..per_task {
                        std::hint::black_box(one_query(&db, case).await);
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.await.expect("bench task");
        }
        started.elapsed()
    })
}

fn main() {
    let database = std::env::var("DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "DATABASE_URL is not set: start PostgreSQL with `eval \"$(scripts/services.sh start)\"`"
        )
    });
    let runtime = perf_benches::runtime(2);
    let perf = perf_benches::start(&runtime, |config| config.database_url(&database));
    let db = runtime.block_on(async {
        let db = perf.db().expect("DATABASE_URL is set");
        for statement in [
            "DROP TABLE IF EXISTS bench_query_cache",
            "CREATE TABLE bench_query_cache (id BIGINT PRIMARY KEY, team BIGINT NOT NULL, name TEXT NOT NULL)",
            "INSERT INTO bench_query_cache SELECT n, n % 100, 'member-' || n FROM generate_series(1, 1000) AS n",
            "CREATE INDEX ON bench_query_cache (team)",
            "ANALYZE bench_query_cache",
        ] {
            db.execute(statement, Params::new()).await.expect(statement);
        }
        assert_eq!(one_query(&db, "postgres_query").await, 10);
        assert_eq!(one_query(&db, "cached_query_hit").await, 10);
        db
    });

    let mut criterion = Criterion::default()
        .output_directory(&perf_benches::criterion_dir())
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let cells = [
        ("db_query_cache_one_task", 1),
        ("db_query_cache_32_tasks", TASKS),
    ];
    for (group_name, tasks) in cells {
        let mut group = criterion.benchmark_group(group_name);
        for case in CASES {
            group.bench_function(*case, |b| {
                b.iter_custom(|iters| run(&runtime, &db, case, iters, tasks))
            });
        }
        group.finish();
    }
    criterion.final_summary();
    for (group_name, _) in cells {
        perf_benches::print_ratios(group_name, "postgres_query", CASES);
    }
    runtime.block_on(perf_runtime::shutdown());
}
