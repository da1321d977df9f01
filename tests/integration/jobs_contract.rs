//! The job store contract (`support/job_contract.rs`) against every store:
//! memory always; Redis and PostgreSQL from the harness (`scripts/test.sh`).

mod support;

use std::sync::Arc;

use perf_runtime::jobs::MemoryStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_store_keeps_the_contract() {
    support::job_contract::run_all(Arc::new(MemoryStore::new())).await;
}
