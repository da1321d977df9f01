//! Histogram buckets: latency buckets for every `*_seconds` histogram, and a
//! per-metric override. Its own test binary, because the recorder (and so
//! its buckets) is fixed once per process.

use perf_runtime::prelude::*;

#[profile]
fn measured() -> u8 {
    1
}

#[tokio::test]
async fn buckets_are_configurable_per_metric() {
    let config = PerfConfig::builder()
        .enable_monitoring(false)
        .latency_buckets(vec![0.01, 0.1])
        .metric_buckets("perf_function_duration_seconds", vec![0.25, 0.5, 2.0])
        .build()
        .expect("valid config");
    let perf = perf_runtime::init(config).await.expect("init");
    measured();
    perf.register_health_check(perf_runtime::monitor::health::check_fn("noop", || async {
        Ok(())
    }));
    let _ = perf.quick_health_check().await;
    let text = perf.render_prometheus().expect("prometheus on");

    let bounds = |metric: &str| -> Vec<String> {
        text.lines()
            .filter(|line| line.starts_with(&format!("{metric}_bucket{{")))
            .filter_map(|line| {
                // `le` follows `{` or `,`; `module="…"` also ends in `le="`.
                let start = line.find(",le=\"").or_else(|| line.find("{le=\""))?;
                line[start..].split('"').nth(1).map(str::to_owned)
            })
            .collect()
    };
    assert_eq!(
        bounds("perf_function_duration_seconds"),
        ["0.25", "0.5", "2", "+Inf"],
        "{text}"
    );
    assert_eq!(
        bounds("perf_health_check_duration_seconds"),
        ["0.01", "0.1", "+Inf"],
        "{text}"
    );
    perf_runtime::shutdown().await;
}

#[test]
fn bad_buckets_are_refused_with_the_setting_named() {
    let error = PerfConfig::builder()
        .latency_buckets(vec![0.5, 0.1])
        .build()
        .expect_err("decreasing buckets");
    assert_eq!(
        error.to_string(),
        "latency_buckets=\"[0.5, 0.1]\": expected a non-empty list of increasing, positive bucket bounds"
    );
}
