//! HTTP routes for operators: `/metrics` (Prometheus text), `/health` (200 or
//! 503 naming the failing component) and `/status` (JSON).
//!
//! ```no_run
//! # async fn run() {
//! let app = axum::Router::new()
//!     .route("/api/hello", axum::routing::get(|| async { "hi" }))
//!     .merge(perf_runtime::axum::routes());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await.unwrap();
//! axum::serve(listener, app).await.unwrap();
//! # }
//! ```
//!
//! `/metrics` shows every function name of the service: mount these routes
//! on an internal listener, or behind your own authentication, when the
//! service faces the internet.

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::{Perf, global};

/// The routes, serving whatever runtime is global at request time.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    router(global)
}

/// The routes for one runtime instance (tests, or a second `Perf::start`).
pub fn routes_for<S: Clone + Send + Sync + 'static>(perf: Perf) -> Router<S> {
    router(move || perf.clone())
}

fn router<S, F>(perf: F) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    F: Fn() -> Perf + Clone + Send + Sync + 'static,
{
    let for_metrics = perf.clone();
    let for_health = perf.clone();
    Router::new()
        .route("/metrics", get(move || metrics(for_metrics())))
        .route("/health", get(move || health(for_health())))
        .route("/status", get(move || status(perf())))
}

async fn metrics(perf: Perf) -> Response {
    match perf.render_prometheus() {
        Some(text) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            text,
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "metrics are off: start the runtime with perf_runtime::init and ENABLE_PROMETHEUS=true\n",
        )
            .into_response(),
    }
}

async fn health(perf: Perf) -> Response {
    let report = perf.quick_health_check().await;
    let status = if report.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(report)).into_response()
}

async fn status(perf: Perf) -> Response {
    axum::Json(perf.get_status().await).into_response()
}
