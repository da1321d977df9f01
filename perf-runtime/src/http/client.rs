//! [`HttpClient::send`]: the attempt loop. Each attempt passes the host's
//! breaker, rate limit, connection cap and the client's concurrency limit,
//! in that order (cheapest refusal first), then goes out on a pooled
//! connection; a transient failure is retried while attempts, the deadline
//! and the retry budget allow.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::request::Parts;
use http::{Request, StatusCode, Uri};
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::time::Instant;
use tower::retry::budget::Budget;

use super::breaker::Verdict;
use super::host::{Host, Hosts};
use super::response::Held;
use super::retry::{self, RetryNonIdempotent, RetryPolicy};
use super::watchdog;
use super::{HttpError, HttpResponse, metrics};
use crate::limit::{ConcurrencyLimit, Permit};

/// The shared outbound HTTP client: one per process (or per upstream
/// family), cloned freely; clones share pools, limits and breakers.
///
/// ```no_run
/// use perf_runtime::http::HttpClient;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), perf_runtime::http::HttpError> {
/// let client = HttpClient::builder()
///     .request_timeout(Duration::from_secs(20))
///     .total_deadline(Duration::from_secs(45))
///     .rate_limit_per_host(50.0, 10)
///     .metric_hosts(["api.openai.com"])
///     .build()?;
/// let models: serde_json::Value = client.get_json("https://api.openai.com/v1/models").await?;
/// # drop(models);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

/// Pooled clients: one for `https://`, one for plain `http://` (the
/// TLS-capable connector, cloned for each request by hyper-util, cost a
/// measured 7% of a plain loopback request's time when used for both).
#[derive(Debug)]
pub(super) struct Pooled {
    pub(super) tls: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    pub(super) plain: Client<HttpConnector, Full<Bytes>>,
}

impl Pooled {
    fn request(&self, request: Request<Full<Bytes>>) -> hyper_util::client::legacy::ResponseFuture {
        if request.uri().scheme() == Some(&http::uri::Scheme::HTTPS) {
            self.tls.request(request)
        } else {
            self.plain.request(request)
        }
    }
}

#[derive(Debug)]
pub(super) struct Inner {
    pub(super) client: Pooled,
    pub(super) hosts: Hosts,
    pub(super) request_timeout: Duration,
    pub(super) total_deadline: Duration,
    pub(super) retry: RetryPolicy,
    pub(super) max_response_bytes: Option<u64>,
    pub(super) concurrency_limit: Option<ConcurrencyLimit>,
}

/// How one attempt ended, before deciding whether to try again.
enum Ended {
    // Boxed: the response is several times the size of an error.
    Response(Box<HttpResponse>),
    Failed(HttpError),
}

impl Ended {
    fn into_result(self, attempts: u32) -> Result<HttpResponse, HttpError> {
        match self {
            Ended::Response(response) => Ok(*response),
            Ended::Failed(error) => Err(error.with_attempts(attempts)),
        }
    }
}

/// Whether an attempt's failure may be tried again, and when.
enum Again {
    No,
    /// After the server's `Retry-After`, or the backoff when `None`.
    Yes(Option<Duration>),
}

/// The request, kept so each attempt can send it afresh.
struct Prepared {
    parts: Parts,
    body: Bytes,
    may_repeat: bool,
}

impl HttpClient {
    pub(super) fn from_inner(inner: Inner) -> Self {
        HttpClient {
            inner: Arc::new(inner),
        }
    }

    /// Sends `request`, retrying transient failures, and returns once the
    /// response headers are in. A non-success status is not an error here
    /// (see [`HttpResponse::error_for_status`]); after the last attempt the
    /// last response is returned as it is.
    ///
    /// Retried: connect errors (the request never left), and for idempotent
    /// methods or requests carrying [`RetryNonIdempotent`], timeouts, broken
    /// connections and 429/502/503/504 (after `Retry-After` when given).
    ///
    /// # Errors
    ///
    /// An [`HttpError`] naming the host, the limit that refused the call, or
    /// the last failure with the attempts made.
    pub async fn send(&self, request: Request<Bytes>) -> Result<HttpResponse, HttpError> {
        let (parts, body) = request.into_parts();
        let started = Instant::now();
        let host = self.inner.hosts.get(&host_name(&parts.uri)?, started);
        let may_repeat = retry::is_idempotent(&parts.method)
            || parts.extensions.get::<RetryNonIdempotent>().is_some();
        let prepared = Prepared {
            parts,
            body,
            may_repeat,
        };
        let deadline = started + self.inner.total_deadline;
        host.budget.deposit();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (ended, again) = self
                .attempt(&host, &prepared, deadline, attempts)
                .await
                .map_err(|refused| refused.with_attempts(attempts))?;
            let Again::Yes(asked) = again else {
                return ended.into_result(attempts);
            };
            let policy = &self.inner.retry;
            let delay = asked.unwrap_or_else(|| policy.backoff(attempts));
            let denied = if attempts >= policy.max_attempts {
                Some("attempts")
            } else if asked.is_some_and(|wait| wait > policy.max_retry_after) {
                Some("retry_after")
            } else if Instant::now() + delay >= deadline {
                Some("deadline")
            } else if !host.budget.withdraw() {
                // Last, so a retry that would not happen anyway costs nothing.
                Some("budget")
            } else {
                None
            };
            if let Some(reason) = denied {
                metrics::retry_denied(&host.label, reason);
                return ended.into_result(attempts);
            }
            metrics::retry(&host.label);
            drop(ended);
            tokio::time::sleep(delay).await;
        }
    }

    /// The circuit breaker state of `host` (`host[:port]`, default port
    /// left out), or `None` when the host has not been called or the
    /// breaker is off.
    pub async fn breaker_state(&self, host: &str) -> Option<super::BreakerState> {
        let host = self.inner.hosts.find(host)?;
        host.breaker.as_ref().map(|breaker| breaker.state())
    }

    /// One attempt. `Err` is a refusal that ends the request at once
    /// (breaker open, no token, deadline passed while waiting).
    async fn attempt(
        &self,
        host: &Host,
        request: &Prepared,
        deadline: Instant,
        attempt: u32,
    ) -> Result<(Ended, Again), HttpError> {
        let admission = match &host.breaker {
            Some(breaker) => Some(breaker.admit().map_err(|retry_in| {
                metrics::rejected(&host.label, "circuit_open");
                HttpError::CircuitOpen {
                    host: host.name.to_string(),
                    retry_in,
                }
            })?),
            None => None,
        };
        let (connection, permit) = self.wait_for_turn(host, deadline).await?;

        let sent_at = Instant::now();
        let left = deadline.saturating_duration_since(sent_at);
        let cut_by_deadline = left < self.inner.request_timeout;
        let answer = watchdog::deadline(
            sent_at + left.min(self.inner.request_timeout),
            self.inner.client.request(request.rebuild()),
        )
        .await;
        let elapsed = sent_at.elapsed();

        let (error, again) = match answer {
            Ok(Ok(response)) => {
                let status = response.status();
                host.attempts
                    .record(&host.label, metrics::status_class(status), elapsed);
                self.judge(host, admission, verdict_on(status));
                let again = if retry::is_retryable_status(status) && request.may_repeat {
                    Again::Yes(retry::retry_after(response.headers(), SystemTime::now()))
                } else {
                    Again::No
                };
                let held = Held {
                    host: Arc::clone(&host.name),
                    attempts: attempt,
                    max_bytes: self.inner.max_response_bytes,
                    connection: Some(connection),
                    permit: keep_for_body(permit, status),
                };
                let response =
                    HttpResponse::new(response, held, attempt, deadline, self.inner.total_deadline);
                return Ok((Ended::Response(Box::new(response)), again));
            }
            Err(_) => {
                host.attempts.record(&host.label, "timeout", elapsed);
                if cut_by_deadline {
                    (self.deadline_exceeded(host), Again::No)
                } else {
                    let error = HttpError::Timeout {
                        host: host.name.to_string(),
                        timeout: self.inner.request_timeout,
                        attempts: attempt,
                    };
                    (error, again_if(request.may_repeat))
                }
            }
            Ok(Err(error)) if error.is_connect() => {
                host.attempts.record(&host.label, "error", elapsed);
                let error = HttpError::Connect {
                    host: host.name.to_string(),
                    attempts: attempt,
                    source: Box::new(error),
                };
                // The request never left: safe to repeat whatever the method.
                (error, Again::Yes(None))
            }
            Ok(Err(error)) => {
                host.attempts.record(&host.label, "error", elapsed);
                let error = HttpError::Transport {
                    host: host.name.to_string(),
                    attempts: attempt,
                    source: Box::new(error),
                };
                (error, again_if(request.may_repeat))
            }
        };
        // No answer at all: a sign of overload for the limit and the breaker.
        if let Some(permit) = permit {
            permit.dropped();
        }
        self.judge(host, admission, Verdict::Failure);
        Ok((Ended::Failed(error), again))
    }

    /// Waits for a token, a connection slot and a concurrency permit, all
    /// within the deadline.
    async fn wait_for_turn(
        &self,
        host: &Host,
        deadline: Instant,
    ) -> Result<(tokio::sync::OwnedSemaphorePermit, Option<Permit>), HttpError> {
        if let Some(bucket) = &host.bucket {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(wait) = bucket.reserve(left) else {
                metrics::rejected(&host.label, "rate_limited");
                let limit = bucket.limit();
                return Err(HttpError::RateLimited {
                    host: host.name.to_string(),
                    per_second: limit.per_second,
                    burst: limit.burst,
                });
            };
            tokio::time::sleep(wait).await;
        }
        let slot = Arc::clone(&host.connections).acquire_owned();
        let Ok(Ok(connection)) = watchdog::deadline(deadline, slot).await else {
            metrics::rejected(&host.label, "deadline");
            return Err(self.deadline_exceeded(host));
        };
        let permit = match &self.inner.concurrency_limit {
            None => None,
            Some(limit) => match watchdog::deadline(deadline, limit.acquire()).await {
                Ok(Ok(permit)) => Some(permit),
                Ok(Err(refused)) => {
                    metrics::rejected(&host.label, "concurrency_limited");
                    return Err(HttpError::ConcurrencyLimited {
                        host: host.name.to_string(),
                        source: refused,
                    });
                }
                Err(_) => {
                    metrics::rejected(&host.label, "deadline");
                    return Err(self.deadline_exceeded(host));
                }
            },
        };
        Ok((connection, permit))
    }

    /// Tells the breaker how the attempt went and publishes a state change.
    fn judge(
        &self,
        host: &Host,
        admission: Option<super::breaker::Admission<'_>>,
        verdict: Verdict,
    ) {
        let (Some(breaker), Some(admission)) = (&host.breaker, admission) else {
            return;
        };
        if let Some(state) = breaker.record(admission, verdict) {
            metrics::breaker_state(&host.label, state);
            tracing::warn!(host = %host.name, ?state, "http circuit breaker changed state");
        }
    }

    fn deadline_exceeded(&self, host: &Host) -> HttpError {
        HttpError::DeadlineExceeded {
            host: host.name.to_string(),
            deadline: self.inner.total_deadline,
            attempts: 0,
        }
    }
}

fn again_if(may_repeat: bool) -> Again {
    if may_repeat {
        Again::Yes(None)
    } else {
        Again::No
    }
}

/// What a status tells the breaker: 5xx is failure, 429 is neither (the host
/// is up and asks for less), the rest is success.
fn verdict_on(status: StatusCode) -> Verdict {
    if status == StatusCode::TOO_MANY_REQUESTS {
        Verdict::Neutral
    } else if status.is_server_error() {
        Verdict::Failure
    } else {
        Verdict::Success
    }
}

/// The concurrency permit a response body keeps. An overload answer (429,
/// 5xx) releases it at once as dropped: its body says nothing about load.
/// Otherwise the latency sample is the time to the headers, and the permit
/// stays until the body ends.
fn keep_for_body(permit: Option<Permit>, status: StatusCode) -> Option<Permit> {
    let mut permit = permit?;
    if retry::is_retryable_status(status) || status.is_server_error() {
        permit.dropped();
        return None;
    }
    permit.stop_clock();
    Some(permit)
}

impl Prepared {
    /// A fresh request with the same method, URI, headers and body
    /// (extensions are for this client and do not go out).
    fn rebuild(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.parts.method.clone();
        *request.uri_mut() = self.parts.uri.clone();
        // Room for the `Host` header hyper adds, so it does not regrow.
        let headers = request.headers_mut();
        headers.reserve(self.parts.headers.len() + 1);
        headers.extend(
            self.parts
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), value.clone())),
        );
        request
    }
}

/// `host[:port]` of `uri`, the port only when not the scheme's default;
/// never the user-info part, which may hold a password. Borrowed from the
/// URI unless it carries user-info and a port (every request looks its host
/// up by this name).
pub(super) fn host_name(uri: &Uri) -> Result<Cow<'_, str>, HttpError> {
    let invalid = |reason: &str| HttpError::InvalidUrl {
        url: masked(&uri.to_string()),
        reason: reason.to_owned(),
    };
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return Err(invalid("expected an absolute http:// or https:// url")),
    };
    let host = uri.host().ok_or_else(|| invalid("expected a host"))?;
    Ok(match uri.port_u16() {
        Some(port) if port != default_port => match uri.authority() {
            // The authority is the name itself unless it has user-info or
            // a port spelt with leading zeros.
            Some(authority)
                if !authority.as_str().contains('@')
                    && !authority
                        .port()
                        .is_some_and(|p| p.as_str().starts_with('0')) =>
            {
                Cow::Borrowed(authority.as_str())
            }
            _ => Cow::Owned(format!("{host}:{port}")),
        },
        _ => Cow::Borrowed(host),
    })
}

/// `url` fit for an error message: a password, if any, masked.
pub(super) fn masked(url: &str) -> String {
    match url.parse::<crate::config::SecretUrl>() {
        Ok(url) => url.redacted(),
        Err(_) if url.contains('@') => "<hidden: the url may hold a password>".to_owned(),
        Err(_) => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_leave_out_default_ports_and_credentials() {
        let name = |url: &str| host_name(&url.parse().expect("uri")).map(Cow::into_owned);
        assert_eq!(
            name("https://api.example.com/v1").expect("ok"),
            "api.example.com"
        );
        assert_eq!(
            name("http://127.0.0.1:8080/x?key=1").expect("ok"),
            "127.0.0.1:8080"
        );
        assert_eq!(
            name("https://u:hunter2@h.example:443/").expect("ok"),
            "h.example"
        );
        assert_eq!(
            name("http://u:hunter2@h.example:8080/").expect("ok"),
            "h.example:8080"
        );
        assert_eq!(
            name("http://h.example:08080/").expect("ok"),
            "h.example:8080"
        );
        assert_eq!(name("http://[::1]:8080/").expect("ok"), "[::1]:8080");
        let error = name("ftp://u:hunter2@h.example/").expect_err("not http");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}
