//! The PostgreSQL pool under load and through an outage: queries queue for
//! a connection rather than fail, give up after `DB_ACQUIRE_TIMEOUT` with
//! an error naming the server (password masked), and the pool heals by
//! itself after a restart; its figures show on `/metrics`.

mod support;

use std::time::Duration;

use perf_runtime::db::{Db, DbError, Params};
use perf_runtime::{Perf, PerfConfig};
use support::fault_proxy::{Fault, FaultProxy};
use support::pg_pool::{one, start_pool, through, upstream};
use support::pg_server::{PASSWORD, PgServer};

async fn start(url: &str, max_connections: u32, acquire_timeout: Duration) -> (Perf, Db) {
    let config = PerfConfig::builder()
        .database_url(url)
        .db_max_connections(max_connections)
        .db_acquire_timeout(acquire_timeout)
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    start_pool(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_recovers_after_a_restart_and_fails_fast_meanwhile() {
    if support::service_url("DATABASE_URL").is_none() {
        return; // The harness's PostgreSQL binaries come with it.
    }
    let Some(server) = PgServer::start() else {
        return;
    };
    let acquire_timeout = Duration::from_secs(1);
    let (perf, db) = start(&server.url(), 4, acquire_timeout).await;
    assert_eq!(one(&db).await.expect("the server is up"), Some((1,)));

    server.crash();
    for attempt in 0..3 {
        // A guard against hanging only; the error itself says the call
        // ended on the acquire timeout.
        let failed = tokio::time::timeout(Duration::from_secs(60), one(&db))
            .await
            .expect("a call during the outage returns");
        let error = failed.expect_err("no server, no rows");
        let message = error.to_string();
        match &error {
            DbError::Unavailable { timeout, .. } => assert_eq!(*timeout, acquire_timeout),
            // The connection the pool held may break under the call before
            // the pool notices; after that, calls end on the timeout.
            DbError::Query { .. } if attempt == 0 => {}
            other => panic!("attempt {attempt}: unexpected {other:?}"),
        }
        assert!(message.contains("127.0.0.1"), "names the server: {message}");
        assert!(!message.contains(PASSWORD), "no password: {message}");
        assert!(message.contains("postgres:***@"), "masked: {message}");
    }
    let last = one(&db).await.expect_err("still down");
    assert!(
        last.to_string()
            .contains("no new connection could be opened (is the server up and reachable?)"),
        "{last}"
    );

    server.resume();
    assert_eq!(
        one(&db)
            .await
            .expect("the first call after the restart succeeds"),
        Some((1,))
    );
    // And keeps working, on every connection the pool opens.
    let calls = (0..16).map(|_| one(&db));
    for result in futures_util::future::join_all(calls).await {
        assert_eq!(result.expect("healed"), Some((1,)));
    }

    let text = perf.render_prometheus().expect("recorder installed");
    let timeouts = support::sample(&text, "perf_db_pool_acquire_timeouts_total", &[])
        .expect("timeouts counted");
    assert!(timeouts >= 3.0, "{timeouts}");
    let size = support::sample(&text, "perf_db_pool_connections", &[]).expect("size gauge");
    let idle = support::sample(&text, "perf_db_pool_idle_connections", &[]).expect("idle gauge");
    let in_use =
        support::sample(&text, "perf_db_pool_in_use_connections", &[]).expect("in-use gauge");
    assert!((1.0..=4.0).contains(&size), "{size}");
    assert_eq!(idle + in_use, size);
    assert_eq!(
        support::sample(&text, "perf_db_pool_max_connections", &[]),
        Some(4.0)
    );
    let waits = support::sample(&text, "perf_db_pool_acquire_duration_seconds_count", &[])
        .expect("acquire waits recorded");
    assert!(waits >= 21.0, "{waits}");
    if let Some(checked) = support::promtool_check(&text) {
        checked.expect("promtool accepts the exposition");
    }
    perf.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_queue_for_a_busy_pool_and_give_up_on_the_timeout() {
    let Some(database) = support::service_url("DATABASE_URL") else {
        return;
    };
    let (perf, db) = start(&database, 2, Duration::from_secs(1)).await;

    // 12 queries of 50 ms on 2 connections: they wait their turn, none fails.
    let queued = (0..12_i32).map(|n| {
        let db = db.clone();
        async move {
            db.fetch_all::<(i32,)>("SELECT $1::int4 FROM pg_sleep(0.05)", Params::new().bind(n))
                .await
        }
    });
    let results = futures_util::future::join_all(queued).await;
    for (n, result) in results.into_iter().enumerate() {
        assert_eq!(result.expect("queued, not refused"), vec![(n as i32,)]);
    }

    // Connections are checked as they come back; wait until all are idle,
    // so that "in use" below means held by the two long queries.
    while db.pool_status().in_use > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Both connections held for 3 s: a third query gives up after 1 s.
    let hold = |db: Db| async move { db.execute("SELECT pg_sleep(3)", Params::new()).await };
    let holders = [
        tokio::spawn(hold(db.clone())),
        tokio::spawn(hold(db.clone())),
    ];
    while db.pool_status().in_use < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let error = one(&db).await.expect_err("no connection free");
    assert!(matches!(error, DbError::Unavailable { .. }), "{error:?}");
    assert!(
        error.to_string().contains("every connection stayed busy"),
        "{error}"
    );
    assert!(!error.to_string().contains("perf_test_pw"), "{error}");
    for holder in holders {
        holder
            .await
            .expect("task")
            .expect("the long query finishes");
    }
    assert_eq!(one(&db).await.expect("free again"), Some((1,)));
    perf.shutdown().await;
}

/// A network that swallows packets (no reset, sockets stay open): a call
/// lent an idle connection that answered a moment before is not stopped by
/// a ping and ends on the query timeout; that failure has the pool ping
/// every other idle connection before lending it, so the next call ends on
/// the acquire timeout. Once the network is back the pool serves again with
/// all its slots, and shutdown does not hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blackholed_server_fails_on_the_timeout_and_the_pool_heals() {
    let Some(database) = support::service_url("DATABASE_URL") else {
        return;
    };
    let proxy = FaultProxy::start(upstream(&database)).await;
    let acquire_timeout = Duration::from_secs(1);
    let query_timeout = Duration::from_secs(3);
    let config = PerfConfig::builder()
        .database_url(through(&database, proxy.addr()))
        .db_max_connections(2)
        .db_acquire_timeout(acquire_timeout)
        .db_query_timeout(query_timeout)
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    let (perf, db) = start_pool(config).await;
    assert_eq!(one(&db).await.expect("through the proxy"), Some((1,)));
    // Both connections open and idle, each having just answered: the case
    // where no ping stands between a call and the black hole.
    let slow = || db.execute("SELECT pg_sleep(0.2)", Params::new());
    let (first, second) = tokio::join!(slow(), slow());
    first.expect("one slot");
    second.expect("the other slot");
    while db.pool_status().idle < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    proxy.set(Fault::Blackhole);
    for attempt in 0..2 {
        let failed = tokio::time::timeout(Duration::from_secs(60), one(&db))
            .await
            .expect("a call into the black hole returns");
        let error = failed.expect_err("nothing comes back");
        match &error {
            DbError::Unavailable { timeout, .. } => assert_eq!(*timeout, acquire_timeout),
            // The first call may be lent a connection alive a moment ago.
            DbError::TimedOut { timeout, .. } if attempt == 0 => {
                assert_eq!(*timeout, query_timeout);
            }
            other => panic!("attempt {attempt}: unexpected {other:?}"),
        }
        assert!(!error.to_string().contains("perf_test_pw"), "{error}");
    }

    proxy.set(Fault::None);
    assert_eq!(one(&db).await.expect("the network is back"), Some((1,)));
    // No slot was lost to the connection that went back to the pool as the
    // network died (its check never got an answer): both run at once.
    let (first, second) = tokio::join!(slow(), slow());
    first.expect("one slot");
    second.expect("the other slot");
    tokio::time::timeout(Duration::from_secs(60), perf.shutdown())
        .await
        .expect("shutdown does not wait on a dead connection");
}
