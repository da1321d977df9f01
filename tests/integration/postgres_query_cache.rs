//! The query-result cache against the harness's PostgreSQL and Redis: a
//! hit, a miss after the TTL, values that tell entries apart, invalidation
//! by table (by a write through the helper and by hand), and an
//! invalidation that reaches a second process.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use perf_runtime::db::{Db, Params, invalidate_tables};
use perf_runtime::{Perf, PerfConfig};

const TABLE: &str = "perf_query_cache_users";
const LONG: Duration = Duration::from_secs(600);

async fn start(database: &str, redis: &str) -> (Perf, Db) {
    let config = PerfConfig::builder()
        .database_url(database)
        .redis_url(redis)
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    let perf = perf_runtime::init(config).await.expect("init");
    let db = perf.db().expect("database configured");
    (perf, db)
}

/// The name of user `id` of this run, through the cache.
async fn cached_name(db: &Db, run: i64, id: i64, ttl: Duration) -> String {
    let rows: Vec<(String,)> = db
        .cached_query(
            "user_name",
            "SELECT name FROM perf_query_cache_users WHERE run = $1 AND id = $2",
            Params::new().bind(run).bind(id),
            ttl,
            &[TABLE],
        )
        .await
        .expect("query");
    rows.into_iter().next().expect("the user exists").0
}

/// Changes a name behind the cache's back.
async fn rename_quietly(db: &Db, run: i64, id: i64, name: &str) {
    db.execute(
        "UPDATE perf_query_cache_users SET name = $3 WHERE run = $1 AND id = $2",
        Params::new().bind(run).bind(id).bind(name.to_owned()),
    )
    .await
    .expect("update");
}

fn outcomes(perf: &Perf) -> (f64, f64) {
    let text = perf.render_prometheus().expect("recorder installed");
    let count = |outcome: &str| {
        support::sample(
            &text,
            "perf_db_query_cache_requests_total",
            &[("query", "user_name"), ("outcome", outcome)],
        )
        .unwrap_or(0.0)
    };
    (count("hit"), count("miss"))
}

/// The second process of the cross-instance check: answers `get` with the
/// name it reads through the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process() {
    let (Ok(database), Ok(redis), Ok(run)) = (
        std::env::var("PERF_CHILD_DATABASE"),
        std::env::var("PERF_CHILD_REDIS"),
        std::env::var("PERF_CHILD_RUN"),
    ) else {
        return; // Only runs when spawned by the parent test.
    };
    let run: i64 = run.parse().unwrap();
    let (_perf, db) = start(&database, &redis).await;
    for line in std::io::stdin().lock().lines() {
        if line.unwrap() != "get" {
            break;
        }
        println!("CHILD {}", cached_name(&db, run, 1, LONG).await);
    }
    perf_runtime::shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_cache_behaviour() {
    let (Some(database), Some(redis)) = (
        support::service_url("DATABASE_URL"),
        support::service_url("REDIS_URL"),
    ) else {
        return;
    };
    let (perf, db) = start(&database, &redis).await;
    let run = support::run_id() as i64;
    db.execute(
        "CREATE TABLE IF NOT EXISTS perf_query_cache_users (run int8, id int8, name text, PRIMARY KEY (run, id))",
        Params::new(),
    )
    .await
    .expect("create table");
    for (id, name) in [(1_i64, "alice"), (2, "bob"), (3, "carol")] {
        db.execute(
            "INSERT INTO perf_query_cache_users (run, id, name) VALUES ($1, $2, $3)",
            Params::new().bind(run).bind(id).bind(name),
        )
        .await
        .expect("insert");
    }

    // A miss, then a hit: the renamed row is not read again.
    let (hits, misses) = outcomes(&perf);
    assert_eq!(cached_name(&db, run, 2, LONG).await, "bob");
    rename_quietly(&db, run, 2, "bobby").await;
    assert_eq!(
        cached_name(&db, run, 2, LONG).await,
        "bob",
        "served from the cache"
    );
    assert_eq!(outcomes(&perf), (hits + 1.0, misses + 1.0));

    // Values tell entries apart: user 3 is its own entry.
    assert_eq!(cached_name(&db, run, 3, LONG).await, "carol");
    assert_eq!(outcomes(&perf), (hits + 1.0, misses + 2.0));

    // A write through the helper drops every result of its table.
    db.execute_invalidating(
        "UPDATE perf_query_cache_users SET name = $3 WHERE run = $1 AND id = $2",
        Params::new().bind(run).bind(3_i64).bind("caroline"),
        &[TABLE],
    )
    .await
    .expect("write and invalidate");
    assert_eq!(cached_name(&db, run, 2, LONG).await, "bobby");
    assert_eq!(cached_name(&db, run, 3, LONG).await, "caroline");

    // By hand, after a write made elsewhere; other tables' names do nothing.
    rename_quietly(&db, run, 2, "robert").await;
    invalidate_tables(["some_other_table"])
        .await
        .expect("invalidate");
    assert_eq!(cached_name(&db, run, 2, LONG).await, "bobby");
    invalidate_tables([TABLE]).await.expect("invalidate");
    assert_eq!(cached_name(&db, run, 2, LONG).await, "robert");

    // A short TTL: fresh at first, read again once it has passed.
    let short = Duration::from_millis(300);
    let run_short = run + 1;
    db.execute(
        "INSERT INTO perf_query_cache_users (run, id, name) VALUES ($1, 1, 'dave')",
        Params::new().bind(run_short),
    )
    .await
    .expect("insert");
    assert_eq!(cached_name(&db, run_short, 1, short).await, "dave");
    rename_quietly(&db, run_short, 1, "david").await;
    assert_eq!(cached_name(&db, run_short, 1, short).await, "dave");
    tokio::time::sleep(short + Duration::from_millis(200)).await;
    assert_eq!(cached_name(&db, run_short, 1, short).await, "david");

    // No value of a parameter appears in a Redis key name.
    let keys = support::redis_cli(&redis, &["--scan", "--pattern", "perf:perf_runtime::db::*"]);
    assert!(
        keys.contains("perf:perf_runtime::db::user_name:v1:"),
        "{keys}"
    );
    assert!(!keys.contains(&run.to_string()), "{keys}");

    invalidation_reaches_another_process(&db, &database, &redis, run).await;

    db.execute(
        "DELETE FROM perf_query_cache_users WHERE run IN ($1, $2)",
        Params::new().bind(run).bind(run_short),
    )
    .await
    .expect("clean up");
    perf_runtime::shutdown().await;
}

/// A second process caches user 1; a quiet rename does not reach it, an
/// invalidation of the table does (its TTL is ten minutes).
async fn invalidation_reaches_another_process(db: &Db, database: &str, redis: &str, run: i64) {
    assert_eq!(cached_name(db, run, 1, LONG).await, "alice");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PERF_CHILD_DATABASE", database)
        .env("PERF_CHILD_REDIS", redis)
        .env("PERF_CHILD_RUN", run.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the second process");
    let mut to_child = child.stdin.take().unwrap();
    // Answers arrive through a reader thread, so a silent child fails the
    // test after a while instead of hanging it.
    let (answers, answered) = std::sync::mpsc::channel::<String>();
    let from_child = BufReader::new(child.stdout.take().unwrap());
    std::thread::spawn(move || {
        for line in from_child.lines().map_while(Result::ok) {
            // libtest may print "test child_process ... " on the same line.
            if let Some(at) = line.find("CHILD ") {
                let _ = answers.send(line[at + 6..].trim().to_owned());
            }
        }
    });
    let mut ask = || -> String {
        writeln!(to_child, "get").unwrap();
        to_child.flush().unwrap();
        answered
            .recv_timeout(Duration::from_secs(30))
            .expect("the second process answers within 30 s")
    };
    assert_eq!(ask(), "alice");
    rename_quietly(db, run, 1, "alicia").await;
    assert_eq!(
        ask(),
        "alice",
        "the second process serves its cached result"
    );
    invalidate_tables([TABLE]).await.expect("invalidate");
    // The broadcast reaches the child's L1 promptly; poll briefly.
    let mut answer = String::new();
    for _ in 0..20 {
        answer = ask();
        if answer == "alicia" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        answer, "alicia",
        "the invalidation reached the second process"
    );
    writeln!(to_child, "quit").unwrap();
    drop(to_child);
    assert!(child.wait().unwrap().success());
}
