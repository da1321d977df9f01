//! What the client records. Every series is labelled by `host` (bounded:
//! see the builder's `metric_hosts`) and, for requests, a status class, so
//! the series count is hosts x 7 whatever the traffic.

use std::sync::OnceLock;
use std::time::Duration;

use http::StatusCode;
use metrics::{Counter, Histogram, SharedString};

use super::breaker::BreakerState;
use crate::monitor::names;

/// Help texts for `/metrics`. Given when a client is built (the runtime's
/// own list in `lifecycle` does not know these yet); a client built before
/// `init` leaves them to the next one.
pub(super) fn describe() {
    metrics::describe_counter!(
        names::HTTP_CLIENT_REQUESTS,
        "Outbound HTTP attempts, retries included, by host and status class."
    );
    metrics::describe_histogram!(
        names::HTTP_CLIENT_REQUEST_DURATION,
        metrics::Unit::Seconds,
        "Outbound HTTP attempt duration to the response headers."
    );
    metrics::describe_counter!(names::HTTP_CLIENT_RETRIES, "Outbound HTTP retries made.");
    metrics::describe_counter!(
        names::HTTP_CLIENT_RETRIES_DENIED,
        "Outbound HTTP retries not made (attempts, budget, deadline, retry_after)."
    );
    metrics::describe_counter!(
        names::HTTP_CLIENT_REJECTED,
        "Outbound HTTP calls refused before sending, by reason."
    );
    metrics::describe_gauge!(
        names::HTTP_CLIENT_BREAKER_STATE,
        "Circuit breaker per host: 0 closed, 1 half-open, 2 open."
    );
}

/// The `status_class` of an attempt that got a response.
pub(super) fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Every `status_class` an attempt can end in.
const CLASSES: [&str; 7] = ["1xx", "2xx", "3xx", "4xx", "5xx", "timeout", "error"];

/// One host's request counter and duration histogram per status class,
/// registered on first use once the recorder is settled: looking a
/// labelled series up on every attempt costs about a microsecond.
#[derive(Debug, Default)]
pub(super) struct AttemptSeries {
    classes: [OnceLock<(Counter, Histogram)>; CLASSES.len()],
}

impl AttemptSeries {
    pub(super) fn record(&self, host: &SharedString, class: &'static str, elapsed: Duration) {
        let slot = CLASSES.iter().position(|c| *c == class);
        let (Some(slot), true) = (slot, crate::monitor::recorder::settled()) else {
            // Before `init` settles the recorder, handles would bind to the
            // wrong one: look the series up each time.
            return attempt(host, class, elapsed);
        };
        let (counter, histogram) = self.classes[slot].get_or_init(|| {
            (
                metrics::counter!(names::HTTP_CLIENT_REQUESTS, "host" => host.clone(), "status_class" => class),
                metrics::histogram!(names::HTTP_CLIENT_REQUEST_DURATION, "host" => host.clone(), "status_class" => class),
            )
        });
        counter.increment(1);
        histogram.record(elapsed.as_secs_f64());
    }
}

fn attempt(host: &SharedString, class: &'static str, elapsed: Duration) {
    metrics::counter!(names::HTTP_CLIENT_REQUESTS, "host" => host.clone(), "status_class" => class)
        .increment(1);
    metrics::histogram!(names::HTTP_CLIENT_REQUEST_DURATION, "host" => host.clone(), "status_class" => class)
        .record(elapsed.as_secs_f64());
}

pub(super) fn retry(host: &SharedString) {
    metrics::counter!(names::HTTP_CLIENT_RETRIES, "host" => host.clone()).increment(1);
}

pub(super) fn retry_denied(host: &SharedString, reason: &'static str) {
    metrics::counter!(names::HTTP_CLIENT_RETRIES_DENIED, "host" => host.clone(), "reason" => reason)
        .increment(1);
}

pub(super) fn rejected(host: &SharedString, reason: &'static str) {
    metrics::counter!(names::HTTP_CLIENT_REJECTED, "host" => host.clone(), "reason" => reason)
        .increment(1);
}

pub(super) fn breaker_state(host: &SharedString, state: BreakerState) {
    metrics::gauge!(names::HTTP_CLIENT_BREAKER_STATE, "host" => host.clone())
        .set(state.gauge_value());
}
