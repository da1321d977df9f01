//! PostgreSQL outages under load: tasks query without pause while the
//! server is crashed and restarted, or while the network to it is
//! blackholed (packets dropped, no reset) for 20 s. Every call returns (a
//! guard far above the acquire and query timeouts catches a hang), calls fail while the
//! server is away, succeed again once it is back, and afterwards no pool slot
//! is lost. Recovery times are printed, not asserted.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use perf_runtime::db::{Db, Params};
use perf_runtime::{Perf, PerfConfig};
use support::fault_proxy::{Fault, FaultProxy};
use support::pg_pool::{one, start_pool, through, upstream};
use support::pg_server::PgServer;

const POOL: u32 = 4;
const TASKS: usize = 8;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
/// A query already running when the network dies ends on this.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
/// Far above what a call may take (the acquire timeout plus the query
/// timeout): only a hung call reaches it.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// One finished call.
struct Call {
    ended: Instant,
    took: Duration,
    ok: bool,
}

/// Tasks querying in a loop until stopped, recording every call.
struct Load {
    stop: Arc<AtomicBool>,
    calls: Arc<Mutex<Vec<Call>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(db: &Db) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..TASKS)
            .map(|_| {
                let (db, stop, calls) = (db.clone(), Arc::clone(&stop), Arc::clone(&calls));
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let started = Instant::now();
                        let result = tokio::time::timeout(HANG_GUARD, one(&db))
                            .await
                            .expect("a call hung past its guard");
                        let call = Call {
                            ended: Instant::now(),
                            took: started.elapsed(),
                            ok: result.is_ok(),
                        };
                        calls
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(call);
                        if result.is_err() {
                            // Failing calls end on the acquire timeout or
                            // at once; do not spin on the fast ones.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                })
            })
            .collect();
        Load { stop, calls, tasks }
    }

    /// Waits until a call that ended after `since` succeeded; the wait.
    async fn first_success_after(&self, since: Instant) -> Duration {
        loop {
            let found = self
                .calls
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .filter(|call| call.ok && call.ended > since)
                .map(|call| call.ended)
                .min();
            if let Some(ended) = found {
                return ended - since;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the tasks; (calls, failed, slowest) between `from` and `to`.
    async fn stop(self, from: Instant, to: Instant) -> (usize, usize, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("a load task panicked");
        }
        let calls = self.calls.lock().unwrap_or_else(PoisonError::into_inner);
        let window: Vec<_> = calls
            .iter()
            .filter(|call| call.ended > from && call.ended <= to)
            .collect();
        let failed = window.iter().filter(|call| !call.ok).count();
        let slowest = window
            .iter()
            .map(|call| call.took)
            .max()
            .unwrap_or_default();
        (window.len(), failed, slowest)
    }
}

async fn start(url: &str) -> (Perf, Db) {
    let config = PerfConfig::builder()
        .database_url(url)
        .db_max_connections(POOL)
        .db_acquire_timeout(ACQUIRE_TIMEOUT)
        .db_query_timeout(QUERY_TIMEOUT)
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    start_pool(config).await
}

/// Every slot serves again: as many slow queries as the pool holds run
/// at once, and nothing is left lent out.
async fn assert_no_slot_lost(db: &Db) {
    let slow = (0..POOL).map(|_| db.execute("SELECT pg_sleep(0.2)", Params::new()));
    for result in futures_util::future::join_all(slow).await {
        result.expect("every slot serves");
    }
    // Connections go back to the pool in tasks of their own: give them a
    // moment, then none may still be out.
    let mut status = db.pool_status();
    for _ in 0..100 {
        if status.in_use == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = db.pool_status();
    }
    assert_eq!(status.in_use, 0, "a slot stayed lent out: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_and_restart_under_load_fails_fast_and_heals() {
    if support::service_url("DATABASE_URL").is_none() {
        return; // The harness's PostgreSQL binaries come with it.
    }
    let Some(server) = PgServer::start() else {
        return;
    };
    let server = Arc::new(server);
    let (perf, db) = start(&server.url()).await;
    let load = Load::start(&db);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let down = Instant::now();
    let crashing = Arc::clone(&server);
    tokio::task::spawn_blocking(move || crashing.crash())
        .await
        .expect("crash");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let resuming = Arc::clone(&server);
    tokio::task::spawn_blocking(move || resuming.resume())
        .await
        .expect("restart");
    let up = Instant::now();
    let recovered = load.first_success_after(up).await;
    let (calls, failed, slowest) = load.stop(down, up).await;
    println!(
        "crash under load: {calls} calls while down, {failed} failed, slowest {slowest:?}; \
         first success {recovered:?} after the restart"
    );
    assert!(failed > 0, "calls fail while the server is down");
    assert_no_slot_lost(&db).await;
    perf.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_blackholed_for_20_s_under_load_fails_fast_and_heals() {
    let Some(database) = support::service_url("DATABASE_URL") else {
        return;
    };
    let proxy = FaultProxy::start(upstream(&database)).await;
    let (perf, db) = start(&through(&database, proxy.addr())).await;
    let load = Load::start(&db);
    tokio::time::sleep(Duration::from_secs(1)).await;

    let down = Instant::now();
    proxy.set(Fault::Blackhole);
    tokio::time::sleep(Duration::from_secs(20)).await;
    proxy.set(Fault::None);
    let up = Instant::now();
    let recovered = load.first_success_after(up).await;
    let (calls, failed, slowest) = load.stop(down, up).await;
    println!(
        "blackhole under load: {calls} calls while down, {failed} failed, slowest {slowest:?}; \
         first success {recovered:?} after the network came back"
    );
    assert!(failed > 0, "calls fail while the network is down");
    assert_no_slot_lost(&db).await;
    tokio::time::timeout(HANG_GUARD, perf.shutdown())
        .await
        .expect("shutdown does not wait on a dead connection");
}
