//! init / global / shutdown, the embedded default, and what a bad
//! configuration or a missing feature says.

mod support;

use perf_runtime::InitError;
use perf_runtime::prelude::*;

#[profile]
async fn before_init(x: u32) -> u32 {
    x + 1
}

#[tokio::test]
async fn lifecycle_of_the_global_runtime() {
    // Before init: the embedded default serves annotated calls and reports.
    assert_eq!(before_init(1).await, 2);
    let embedded = global();
    assert!(embedded.is_embedded_default());
    assert!(embedded.quick_health_check().await.healthy);
    let status = embedded.get_status().await;
    assert!(status.embedded_default);
    assert!(status.config.redis.is_none());

    let config = PerfConfig::builder()
        .enable_prometheus(false)
        .database_url("postgres://app:hunter2@127.0.0.1:1/app")
        .enable_connection_pooling(false)
        .build()
        .expect("valid config");
    let perf = perf_runtime::init(config.clone())
        .await
        .expect("first init");
    assert!(!global().is_embedded_default());
    assert!(matches!(
        perf_runtime::init(config.clone()).await,
        Err(InitError::AlreadyInitialized)
    ));

    // The status names what is off and why, and never shows the password.
    let status = perf.get_status().await;
    let json = serde_json::to_string(&status).expect("status serializes");
    assert!(!json.contains("hunter2"), "{json}");
    assert!(json.contains("app:***@127.0.0.1:1/app"), "{json}");
    let postgres = status
        .components
        .iter()
        .find(|c| c.name == "postgres")
        .expect("postgres listed");
    assert!(!postgres.enabled);
    assert_eq!(postgres.detail, "connection pooling is switched off");
    assert!(!format!("{perf:?}").contains("hunter2"));

    perf_runtime::shutdown().await;
    assert!(global().is_embedded_default());
    perf.shutdown().await; // a second shutdown is harmless

    // After shutdown, init works again.
    let again = perf_runtime::init(config)
        .await
        .expect("init after shutdown");
    perf_runtime::shutdown().await;
    again.shutdown().await;
}

#[tokio::test]
async fn errors_explain_themselves() {
    let message = InitError::FeatureMissing {
        setting: "REDIS_URL",
        feature: "redis",
    }
    .to_string();
    assert_eq!(
        message,
        "REDIS_URL is set but perf-runtime was built without its `redis` feature; \
         enable it in Cargo.toml or unset REDIS_URL"
    );
    let bad =
        PerfConfig::from_lookup(|name| (name == "MAX_ASYNC_WORKERS").then(|| "ten".to_owned()))
            .expect_err("ten is not a number");
    assert_eq!(
        bad.to_string(),
        "MAX_ASYNC_WORKERS=\"ten\": expected a positive integer"
    );
}

#[test]
fn init_outside_tokio_is_an_error_not_a_panic() {
    let result = futures_lite_block_on(Perf::start(PerfConfig::default()));
    assert!(
        matches!(result, Err(InitError::NoTokioRuntime)),
        "{result:?}"
    );
}

/// Polls a future to completion on this thread without any runtime.
fn futures_lite_block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::yield_now();
    }
}
