//! The job store contract (`support/job_contract.rs`) against every store:
//! memory always; Redis and PostgreSQL from the harness (`scripts/test.sh`).

mod support;

use std::sync::Arc;

use perf_runtime::jobs::MemoryStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_keeps_the_contract() {
    support::job_contract::run_all(Arc::new(MemoryStore::new())).await;
}

async fn postgres_store(
    variable: &str,
    pgbouncer: bool,
) -> Option<(perf_runtime::Perf, Arc<dyn perf_runtime::jobs::JobStore>)> {
    let url = support::service_url(variable)?;
    let config = perf_runtime::PerfConfig::builder()
        .database_url(&url)
        .db_pgbouncer(pgbouncer)
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    let (perf, db) = support::pg_pool::start_pool(config).await;
    let store = perf_runtime::jobs::PostgresStore::connect(db)
        .await
        .expect("schema created");
    Some((perf, Arc::new(store)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_keeps_the_contract() {
    let Some((perf, store)) = postgres_store("DATABASE_URL", false).await else {
        return;
    };
    support::job_contract::run_all(store).await;
    perf.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_store_keeps_the_contract_through_pgbouncer() {
    let Some((perf, store)) = postgres_store("PGBOUNCER_URL", true).await else {
        return;
    };
    support::job_contract::run_all(store).await;
    perf.shutdown().await;
}
