//! When to retry and how long to wait: which failures are transient, which
//! methods may be sent twice, exponential backoff with full jitter, and the
//! server's own `Retry-After`.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, StatusCode, header};
use rand::Rng;

/// Retry settings of an [`HttpClient`](super::HttpClient).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts per request, the first included (default 3; 1 turns retries off).
    pub max_attempts: u32,
    /// The first backoff's ceiling; each retry doubles it (default 100 ms).
    pub base_delay: Duration,
    /// The ceiling no backoff exceeds (default 5 s).
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited for: the response goes
    /// back to the caller (default 30 s).
    pub max_retry_after: Duration,
    /// The retry budget: retries stay under this share of requests over
    /// [`Self::budget_window`] (default 0.1, i.e. 10%), so a failing
    /// upstream gets at most 10% more traffic, not 3x.
    pub budget_ratio: f32,
    /// Retries allowed per second on top of the ratio, so a quiet client can
    /// still retry (default 1).
    pub budget_min_per_second: u32,
    /// How long a request counts towards the budget, 1 to 60 s (default 10 s).
    pub budget_window: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(5),
            max_retry_after: Duration::from_secs(30),
            budget_ratio: 0.1,
            budget_min_per_second: 1,
            budget_window: Duration::from_secs(10),
        }
    }
}

/// Put this in a request's extensions to let a non-idempotent request
/// (POST, PATCH) be retried: only when the caller knows a repeat is harmless,
/// say with an idempotency key.
///
/// ```
/// let request = http::Request::post("http://127.0.0.1:1/v1/chat")
///     .header("idempotency-key", "d9f3…")
///     .extension(perf_runtime::http::RetryNonIdempotent)
///     .body(bytes::Bytes::new())
///     .unwrap();
/// # drop(request);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetryNonIdempotent;

/// Whether sending `method` twice does no more than sending it once
/// (RFC 9110 §9.2.2).
pub(super) fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// Statuses that say "try again later" rather than "this request is wrong".
pub(super) fn is_retryable_status(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
    )
}

impl RetryPolicy {
    /// The wait before retry number `retry` (1 for the first): a uniform
    /// draw from zero to the exponential ceiling ("full jitter"), so clients
    /// that failed together do not come back together.
    pub(super) fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_delay);
        ceiling.mul_f64(rand::rng().random_range(0.0..=1.0))
    }
}

/// The wait a `Retry-After` header asks for: delay-seconds or an HTTP-date
/// (RFC 9110 §10.2.3). A date in the past means now.
pub(super) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_retry_after(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::RETRY_AFTER, value.parse().expect("header value"));
        headers
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after(&with_retry_after("7"), now),
            Some(Duration::from_secs(7))
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
        assert_eq!(
            retry_after(&with_retry_after(&later), now),
            Some(Duration::from_secs(90))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
        assert_eq!(
            retry_after(&with_retry_after(&earlier), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&with_retry_after("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_stays_within_the_doubling_ceiling() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(350),
            ..RetryPolicy::default()
        };
        for (retry, ceiling) in [(1, 100), (2, 200), (3, 350), (10, 350), (40, 350)] {
            for _ in 0..200 {
                let delay = policy.backoff(retry);
                assert!(
                    delay <= Duration::from_millis(ceiling),
                    "retry {retry}: {delay:?}"
                );
            }
        }
        let spread: std::collections::HashSet<_> = (0..50).map(|_| policy.backoff(3)).collect();
        assert!(spread.len() > 40, "jittered, not fixed: {spread:?}");
    }

    #[test]
    fn only_safe_methods_and_transient_statuses_are_retried() {
        assert!(is_idempotent(&Method::GET) && is_idempotent(&Method::PUT));
        assert!(!is_idempotent(&Method::POST) && !is_idempotent(&Method::PATCH));
        for status in [429, 502, 503, 504] {
            assert!(is_retryable_status(
                StatusCode::from_u16(status).expect("status")
            ));
        }
        for status in [200, 400, 404, 500, 501] {
            assert!(!is_retryable_status(
                StatusCode::from_u16(status).expect("status")
            ));
        }
    }
}
