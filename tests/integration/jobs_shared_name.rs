//! Two `#[async_job]` functions with one job name in one binary: worker
//! pools refuse to start and enqueues of that name fail, naming it. (Its own
//! test binary: the clash is a property of everything linked.) Before, the
//! first handler linked won, and a job on the other's queue was stored,
//! never claimed, and its handle waited forever.

use std::sync::Arc;

use perf_runtime::async_job;
use perf_runtime::jobs::{JobError, Jobs, MemoryStore, WorkerConfig, WorkerConfigError};

mod billing {
    #[perf_runtime::async_job(queue = "billing")]
    pub async fn notify(user_id: u64) {
        let _ = user_id;
    }
}

mod mail {
    #[perf_runtime::async_job(queue = "mail")]
    pub async fn notify(user_id: u64) {
        let _ = user_id;
    }
}

#[async_job(queue = "audit")]
async fn audit(user_id: u64) {
    let _ = user_id;
}

fn memory_jobs() -> Jobs {
    Jobs::new(Arc::new(MemoryStore::new()))
}

#[tokio::test]
async fn a_worker_pool_refuses_to_start_naming_the_shared_job_name() {
    let jobs = memory_jobs();
    let mut config = WorkerConfig::default();
    config.queues = vec!["billing".into(), "mail".into(), "audit".into()];
    let error = jobs.start_workers(config).unwrap_err();
    assert!(
        matches!(&error, WorkerConfigError::SharedJobName { names } if names == &["notify"]),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("notify") && message.contains("name = "),
        "{message}"
    );
    assert!(!jobs.has_workers());
}

#[tokio::test]
async fn an_enqueue_of_a_shared_name_fails_and_stores_nothing() {
    let jobs = memory_jobs();
    for enqueue in [billing::notify(1).on(&jobs), mail::notify(1).on(&jobs)] {
        let error = enqueue.await.unwrap_err();
        assert!(
            matches!(error, JobError::SharedName { name: "notify" }),
            "{error:?}"
        );
        assert!(error.to_string().contains("distinct `name"), "{error}");
    }
    let depths = jobs.store().depths().await.unwrap();
    assert!(
        depths.iter().all(|depth| depth.available == 0),
        "{depths:?}"
    );

    // A job with a name of its own is unaffected.
    let handle = audit(1).on(&jobs).await.unwrap();
    assert!(handle.status().await.unwrap().is_some());
}
