//! Loopback servers with known behaviour and the short runs the load-engine
//! tests make against them, shared so that each test states only what it
//! checks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use perf_runtime::bench::{BenchmarkConfig, BenchmarkReport, run_benchmark};

use super::http_server::{TestServer, text};

/// A server that answers after 5 ms, every `n`th request (by hit number)
/// with a 500; the count of 500s sent.
pub async fn every_nth_fails(n: usize) -> (TestServer, Arc<AtomicUsize>) {
    let sent_500 = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start({
        let sent_500 = Arc::clone(&sent_500);
        move |_request, hit| {
            let sent_500 = Arc::clone(&sent_500);
            async move {
                tokio::time::sleep(Duration::from_millis(5)).await;
                if hit.is_multiple_of(n) {
                    sent_500.fetch_add(1, Ordering::SeqCst);
                    text(500, "injected")
                } else {
                    text(200, "ok")
                }
            }
        }
    })
    .await;
    (server, sent_500)
}

/// A closed-model run of `users` for `duration` against `url`.
pub async fn closed_run(
    name: &str,
    url: String,
    users: usize,
    duration: Duration,
) -> BenchmarkReport {
    run_benchmark(
        BenchmarkConfig::builder(name, url)
            .concurrent_users(users)
            .duration(duration)
            .build()
            .expect("valid config"),
    )
    .await
    .expect("run")
}
