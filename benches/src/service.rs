//! Every bench that measures the framework starts it as a service would:
//! a tokio runtime, then `perf_runtime::init`, which installs the
//! Prometheus recorder, so metrics cost per call what they cost in
//! production (before `init`, every recording looks its labelled series up
//! afresh, which would make the framework look slower than it is).

use perf_runtime::Perf;
use perf_runtime::config::PerfConfigBuilder;
use tokio::runtime::Runtime;

/// A runtime with `workers` worker threads, or a current-thread runtime
/// for `0`; timers and I/O enabled.
pub fn runtime(workers: usize) -> Runtime {
    let mut builder = if workers == 0 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    };
    builder.enable_all().build().expect("tokio runtime")
}

/// Runs `perf_runtime::init` on `runtime` with the settings `configure`
/// adds; the monitoring HTTP server is off (a bench needs no port), the
/// recorder is installed all the same.
pub fn start(
    runtime: &Runtime,
    configure: impl FnOnce(PerfConfigBuilder) -> PerfConfigBuilder,
) -> Perf {
    let config = configure(perf_runtime::PerfConfig::builder())
        .enable_monitoring(false)
        .build()
        .expect("valid bench configuration");
    runtime
        .block_on(perf_runtime::init(config))
        .expect("init: the recorder installed, the configured backends reached")
}

/// [`runtime`] with the framework started on its defaults ([`start`]).
pub fn service_runtime(workers: usize) -> (Runtime, Perf) {
    let runtime = runtime(workers);
    let perf = start(&runtime, |config| config);
    (runtime, perf)
}
