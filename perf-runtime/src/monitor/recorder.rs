//! The process-wide metrics recorder.
//!
//! Only [`crate::init`] (through `Perf::start`) installs a recorder, and only
//! when `ENABLE_PROMETHEUS` is on. Either way it then marks the recorder as
//! *settled*: from then on, profile sites may keep their metric handles,
//! because the recorder they came from is the one that stays.

use std::sync::atomic::{AtomicBool, Ordering};

static SETTLED: AtomicBool = AtomicBool::new(false);

/// Whether the global recorder is final, so handles may be cached.
#[inline]
pub(crate) fn settled() -> bool {
    SETTLED.load(Ordering::Acquire)
}

/// Marks the global recorder as final (whatever it is: ours, the user's, or none).
pub(crate) fn settle() {
    SETTLED.store(true, Ordering::Release);
}

#[cfg(feature = "prometheus")]
pub(crate) use prometheus::{install, installed};

#[cfg(feature = "prometheus")]
mod prometheus {
    use std::sync::{Mutex, OnceLock, PoisonError};

    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

    use crate::config::PerfConfig;
    use crate::lifecycle::InitError;

    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    static INSTALLING: Mutex<()> = Mutex::new(());

    /// The handle of the recorder we installed, if any.
    pub(crate) fn installed() -> Option<&'static PrometheusHandle> {
        HANDLE.get()
    }

    /// Installs the Prometheus recorder once per process; later calls get
    /// the same handle (buckets are fixed by the first configuration).
    pub(crate) fn install(config: &PerfConfig) -> Result<PrometheusHandle, InitError> {
        let _guard = INSTALLING.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = HANDLE.get() {
            return Ok(handle.clone());
        }
        // Histograms get buckets, so they render as Prometheus histograms
        // (aggregatable across instances) rather than summaries.
        let mut builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &config.latency_buckets)
            .map_err(|e| InitError::Metrics(e.to_string()))?;
        for (metric, buckets) in &config.metric_buckets {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(metric.clone()), buckets)
                .map_err(|e| InitError::Metrics(e.to_string()))?;
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        metrics::set_global_recorder(recorder).map_err(|_| InitError::RecorderTaken)?;
        let _ = HANDLE.set(handle.clone());
        Ok(handle)
    }
}
