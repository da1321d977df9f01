//! Queries through the harness's PgBouncer (transaction pooling, 20 server
//! connections): the unsafe ways fail there, so the safe one is proven by
//! something that can fail. Many clients run parameterised queries of three
//! shapes at once; a query that errors or returns another query's answer
//! counts as a failure.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use perf_runtime::db::{DbError, Params};
use perf_runtime::{Perf, PerfConfig};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// Clients at once: more than PgBouncer's 20 server connections, so
/// statements of one client land on connections another just used.
const CLIENTS: usize = 40;

/// One test at a time: each sends 40 clients through PgBouncer's 20 server
/// connections, and the unsafe ones end with `RECONNECT`, which closes the
/// server connections of every client. Run together on two loaded cores,
/// the safe test's new connections waited past their 3 s acquire timeout.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// Queries per client.
const ROUNDS: usize = 50;

/// One query: its SQL, its parameters and the answer it must give. Each
/// shape has its own parameter count or type, so a `Bind` that meets
/// another client's statement errors or answers with the wrong shape.
struct Probe {
    sql: &'static str,
    params: Vec<i64>,
    answer: (i64, i64),
}

fn probe(client: usize, round: usize) -> Probe {
    let n = (client * 1000 + round) as i64;
    match (client + round) % 3 {
        0 => Probe {
            sql: "SELECT $1::int8 AS value, 1::int8 AS shape",
            params: vec![n],
            answer: (n, 1),
        },
        1 => Probe {
            sql: "SELECT $1::int8 + $2::int8 AS value, 2::int8 AS shape",
            params: vec![n, 7],
            answer: (n + 7, 2),
        },
        _ => Probe {
            sql: "SELECT $1::int8 * $2::int8 - $3::int8 AS value, 3::int8 AS shape",
            params: vec![n, 2, 1],
            answer: (2 * n - 1, 3),
        },
    }
}

/// Runs every probe of every client through `run` and counts failures.
async fn failures<F, Fut>(run: F) -> usize
where
    F: Fn(&'static str, Vec<i64>) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(i64, i64), String>> + Send,
{
    let failed = Arc::new(AtomicUsize::new(0));
    let first = Arc::new(std::sync::Mutex::new(None::<String>));
    let clients = (0..CLIENTS).map(|client| {
        let run = run.clone();
        let failed = Arc::clone(&failed);
        let first = Arc::clone(&first);
        tokio::spawn(async move {
            for round in 0..ROUNDS {
                let Probe {
                    sql,
                    params,
                    answer,
                } = probe(client, round);
                let outcome = match run(sql, params).await {
                    Ok(got) if got == answer => continue,
                    Ok(got) => format!("{sql}: got {got:?}, expected {answer:?}"),
                    Err(error) => format!("{sql}: {error}"),
                };
                failed.fetch_add(1, Ordering::Relaxed);
                first.lock().unwrap().get_or_insert(outcome);
            }
        })
    });
    for client in futures_util::future::join_all(clients).await {
        client.expect("client task");
    }
    let failed = failed.load(Ordering::Relaxed);
    eprintln!(
        "{failed} of {} queries failed; first: {:?}",
        CLIENTS * ROUNDS,
        first.lock().unwrap()
    );
    failed
}

async fn plain_sqlx_pool(bouncer: &str) -> sqlx::PgPool {
    let options: PgConnectOptions = bouncer.parse().expect("PGBOUNCER_URL");
    PgPoolOptions::new()
        .max_connections(CLIENTS as u32)
        .connect_with(options.statement_cache_capacity(0))
        .await
        .expect("connect through PgBouncer")
}

/// The unsafe runs leave named statements on PgBouncer's server
/// connections; have PgBouncer replace them (admin console `RECONNECT`) so
/// no later test meets them.
async fn drop_server_connections(bouncer: &str) {
    use sqlx::Connection;
    let (server, database) = bouncer
        .rsplit_once('/')
        .expect("PGBOUNCER_URL names a database");
    let mut console = sqlx::PgConnection::connect(&format!("{server}/pgbouncer"))
        .await
        .expect("PgBouncer's admin console");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("RECONNECT {database}")))
        .execute(&mut console)
        .await
        .expect("RECONNECT");
}

/// sqlx with its statement cache off, the usual advice: it still names the
/// statements it prepares and never closes them, and splits each query
/// over two `Sync`s, so PgBouncer mixes clients' statements up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_cache_off_alone_fails_through_pgbouncer() {
    let Some(bouncer) = support::service_url("PGBOUNCER_URL") else {
        return;
    };
    let _alone = ONE_AT_A_TIME.lock().await;
    let pool = plain_sqlx_pool(&bouncer).await;
    let failed = failures(move |sql, params| {
        let pool = pool.clone();
        async move {
            let mut query = sqlx::query_as::<_, (i64, i64)>(sql);
            for value in params {
                query = query.bind(value);
            }
            query.fetch_one(&pool).await.map_err(|e| e.to_string())
        }
    })
    .await;
    drop_server_connections(&bouncer).await;
    assert!(failed > 0, "expected PgBouncer to break some queries");
}

/// Unnamed statements without a transaction: the `Bind` may still reach a
/// server connection other than its `Parse`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unnamed_statements_outside_a_transaction_fail_through_pgbouncer() {
    let Some(bouncer) = support::service_url("PGBOUNCER_URL") else {
        return;
    };
    let _alone = ONE_AT_A_TIME.lock().await;
    let pool = plain_sqlx_pool(&bouncer).await;
    let failed = failures(move |sql, params| {
        let pool = pool.clone();
        async move {
            let mut query = sqlx::query_as::<_, (i64, i64)>(sql).persistent(false);
            for value in params {
                query = query.bind(value);
            }
            query.fetch_one(&pool).await.map_err(|e| e.to_string())
        }
    })
    .await;
    drop_server_connections(&bouncer).await;
    assert!(failed > 0, "expected PgBouncer to break some queries");
}

async fn start_through_bouncer(bouncer: &str) -> Perf {
    let config = PerfConfig::builder()
        .database_url(format!("{bouncer}?pgbouncer=true"))
        .db_max_connections(CLIENTS as u32)
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    Perf::start(config).await.expect("start")
}

/// The same load through `Db` with the PgBouncer switch: nothing fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_queries_are_safe_through_pgbouncer() {
    let Some(bouncer) = support::service_url("PGBOUNCER_URL") else {
        return;
    };
    let _alone = ONE_AT_A_TIME.lock().await;
    let perf = start_through_bouncer(&bouncer).await;
    let db = perf.db().expect("database configured");
    assert!(db.is_pgbouncer(), "switched on by ?pgbouncer=true");
    let failed = failures(move |sql, values| {
        let db = db.clone();
        async move {
            let params = values.into_iter().fold(Params::new(), Params::bind);
            db.fetch_optional::<(i64, i64)>(sql, params)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "no row".to_owned())
        }
    })
    .await;
    assert_eq!(failed, 0);
    perf.shutdown().await;
}

/// Writes, failed queries and reads in turn through PgBouncer: a failed
/// query's transaction is rolled back and the connection serves the next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_writes_and_errors_through_pgbouncer() {
    let Some(bouncer) = support::service_url("PGBOUNCER_URL") else {
        return;
    };
    let _alone = ONE_AT_A_TIME.lock().await;
    let perf = start_through_bouncer(&bouncer).await;
    let db = perf.db().expect("database configured");
    let run = support::run_id() as i64;
    db.execute(
        "CREATE TABLE IF NOT EXISTS perf_pgbouncer_notes (run int8, id int8, body text, PRIMARY KEY (run, id))",
        Params::new(),
    )
    .await
    .expect("create table");
    for id in 0..20_i64 {
        let inserted = db
            .execute(
                "INSERT INTO perf_pgbouncer_notes (run, id, body) VALUES ($1, $2, $3)",
                Params::new().bind(run).bind(id).bind(format!("note {id}")),
            )
            .await
            .expect("insert");
        assert_eq!(inserted, 1);
        let duplicate = db
            .execute(
                "INSERT INTO perf_pgbouncer_notes (run, id, body) VALUES ($1, $2, $3)",
                Params::new().bind(run).bind(id).bind("again"),
            )
            .await
            .expect_err("the primary key refuses a duplicate");
        assert!(matches!(duplicate, DbError::Query { .. }), "{duplicate:?}");
        assert!(
            duplicate.to_string().contains("duplicate key"),
            "{duplicate}"
        );
    }
    let notes: Vec<(i64, String)> = db
        .fetch_all(
            "SELECT id, body FROM perf_pgbouncer_notes WHERE run = $1 ORDER BY id",
            Params::new().bind(run),
        )
        .await
        .expect("read back");
    assert_eq!(notes.len(), 20);
    assert_eq!(notes[7], (7, "note 7".to_owned()));
    let deleted = db
        .execute(
            "DELETE FROM perf_pgbouncer_notes WHERE run = $1",
            Params::new().bind(run),
        )
        .await
        .expect("delete");
    assert_eq!(deleted, 20);
    perf.shutdown().await;
}
