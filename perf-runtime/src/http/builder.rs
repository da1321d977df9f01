//! [`HttpClientBuilder`]: every setting of the client, checked in `build`.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::breaker::BreakerPolicy;
use super::bucket::RateLimit;
use super::client::{HttpClient, Inner, Pooled};
use super::host::{HostSettings, Hosts};
use super::{HttpError, RetryPolicy};
use crate::PerfConfig;
use crate::limit::ConcurrencyLimit;

/// Settings of an [`HttpClient`]; from [`HttpClient::builder`].
#[derive(Clone, Debug)]
#[must_use]
pub struct HttpClientBuilder {
    max_connections_per_host: usize,
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
    connect_timeout: Duration,
    request_timeout: Duration,
    total_deadline: Duration,
    http2_prior_knowledge: bool,
    retry: RetryPolicy,
    rate_limit: Option<RateLimit>,
    breaker: Option<BreakerPolicy>,
    max_response_bytes: Option<u64>,
    concurrency_limit: Option<ConcurrencyLimit>,
    metric_hosts: Vec<String>,
    max_host_labels: usize,
}

impl Default for HttpClientBuilder {
    fn default() -> Self {
        HttpClientBuilder {
            max_connections_per_host: PerfConfig::default().http_max_connections as usize,
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 32,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            total_deadline: Duration::from_secs(60),
            http2_prior_knowledge: false,
            retry: RetryPolicy::default(),
            rate_limit: None,
            breaker: Some(BreakerPolicy::default()),
            max_response_bytes: Some(16 * 1024 * 1024),
            concurrency_limit: None,
            metric_hosts: Vec::new(),
            max_host_labels: 16,
        }
    }
}

impl HttpClientBuilder {
    /// Requests in flight per host, hence open connections per host over
    /// HTTP/1 (default `HTTP_MAX_CONNECTIONS`, 200). Further requests wait,
    /// within their deadline.
    pub fn max_connections_per_host(mut self, max: usize) -> Self {
        self.max_connections_per_host = max;
        self
    }

    /// How long an idle pooled connection is kept (default 90 s).
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// Idle connections kept per host (default 32).
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = max;
        self
    }

    /// How long opening a TCP connection may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one attempt may wait for the response headers (default 30 s).
    /// The body is bounded by [`Self::total_deadline`] when read whole, and
    /// not at all when streamed.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// The time one request may take across all its attempts, backoffs and
    /// waits for tokens or permits (default 60 s).
    pub fn total_deadline(mut self, deadline: Duration) -> Self {
        self.total_deadline = deadline;
        self
    }

    /// Speak HTTP/2 on plain `http://` without negotiation (h2c with prior
    /// knowledge), and only HTTP/2 on `https://`. Off by default: HTTP/2 is
    /// then used where the server offers it over TLS (ALPN).
    pub fn http2_prior_knowledge(mut self, on: bool) -> Self {
        self.http2_prior_knowledge = on;
        self
    }

    /// Retries, backoff and the retry budget (default [`RetryPolicy::default`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// A token bucket per host (default none).
    pub fn rate_limit_per_host(mut self, per_second: f64, burst: u32) -> Self {
        self.rate_limit = Some(RateLimit { per_second, burst });
        self
    }

    /// The circuit breaker per host; `None` turns it off (default
    /// [`BreakerPolicy::default`]).
    pub fn circuit_breaker(mut self, policy: Option<BreakerPolicy>) -> Self {
        self.breaker = policy;
        self
    }

    /// Largest response body accepted; `None` for no limit (default 16 MiB).
    pub fn max_response_bytes(mut self, max: Option<u64>) -> Self {
        self.max_response_bytes = max;
        self
    }

    /// An adaptive concurrency limit over every request of this client
    /// (default none). Each attempt takes a permit; a streamed body keeps it
    /// until it ends.
    pub fn concurrency_limit(mut self, limit: ConcurrencyLimit) -> Self {
        self.concurrency_limit = Some(limit);
        self
    }

    /// Hosts (`host` or `host:port` as in the URL, default ports left out)
    /// always given their own metric label, e.g. your model providers.
    pub fn metric_hosts<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.metric_hosts = hosts.into_iter().map(Into::into).collect();
        self
    }

    /// Other hosts labelled by name, first come first served, before the
    /// rest share the label `other` (default 16).
    pub fn max_host_labels(mut self, max: usize) -> Self {
        self.max_host_labels = max;
        self
    }

    /// The client.
    ///
    /// # Errors
    ///
    /// [`HttpError::InvalidConfig`] naming the setting that is out of range.
    pub fn build(self) -> Result<HttpClient, HttpError> {
        self.check()?;
        super::metrics::describe();
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|error| invalid("tls", error.to_string()))?
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .with_no_client_auth();
        let mut tcp = HttpConnector::new();
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(self.connect_timeout));
        let plain = self.pool_settings().build(tcp.clone());
        tcp.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(tcp);
        let client = Pooled {
            tls: self.pool_settings().build(connector),
            plain,
        };
        let hosts = Hosts::new(HostSettings {
            max_connections: self.max_connections_per_host,
            rate_limit: self.rate_limit,
            breaker: self.breaker,
            retry: self.retry.clone(),
            labelled_hosts: self.metric_hosts,
            max_host_labels: self.max_host_labels,
        });
        Ok(HttpClient::from_inner(Inner {
            client,
            hosts,
            request_timeout: self.request_timeout,
            total_deadline: self.total_deadline,
            retry: self.retry,
            max_response_bytes: self.max_response_bytes,
            concurrency_limit: self.concurrency_limit,
        }))
    }

    /// hyper-util's pool settings, the same for both schemes.
    fn pool_settings(&self) -> hyper_util::client::legacy::Builder {
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .http2_only(self.http2_prior_knowledge);
        builder
    }

    fn check(&self) -> Result<(), HttpError> {
        let retry = &self.retry;
        let positive = |d: Duration| d > Duration::ZERO;
        let checks: [(bool, &'static str, &str); 8] = [
            (
                self.max_connections_per_host >= 1,
                "max_connections_per_host",
                "expected at least 1",
            ),
            (
                positive(self.request_timeout),
                "request_timeout",
                "expected more than zero",
            ),
            (
                positive(self.total_deadline),
                "total_deadline",
                "expected more than zero",
            ),
            (
                positive(self.connect_timeout),
                "connect_timeout",
                "expected more than zero",
            ),
            (
                retry.max_attempts >= 1,
                "retry",
                "expected max_attempts >= 1",
            ),
            (
                (Duration::from_secs(1)..=Duration::from_secs(60)).contains(&retry.budget_window),
                "retry",
                "expected budget_window between 1 s and 60 s",
            ),
            (
                (0.0..=1000.0).contains(&retry.budget_ratio),
                "retry",
                "expected budget_ratio between 0 and 1000",
            ),
            (
                self.rate_limit
                    .is_none_or(|r| r.per_second > 0.0 && r.per_second.is_finite() && r.burst >= 1),
                "rate_limit_per_host",
                "expected a finite rate above 0 per second and a burst of at least 1",
            ),
        ];
        if let Some((_, setting, reason)) = checks.iter().find(|(ok, _, _)| !ok) {
            return Err(invalid(setting, (*reason).to_owned()));
        }
        if let Some(breaker) = &self.breaker
            && !(breaker.failure_ratio > 0.0
                && breaker.failure_ratio <= 1.0
                && breaker.min_calls >= 1)
        {
            return Err(invalid(
                "circuit_breaker",
                "expected failure_ratio in (0, 1] and min_calls >= 1".to_owned(),
            ));
        }
        Ok(())
    }
}

fn invalid(setting: &'static str, reason: String) -> HttpError {
    HttpError::InvalidConfig { setting, reason }
}

impl HttpClient {
    /// A builder with the defaults.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder::default()
    }

    /// A client with the defaults and `HTTP_MAX_CONNECTIONS` from `config`.
    ///
    /// # Errors
    ///
    /// [`HttpError::InvalidConfig`] when `http_max_connections` is 0.
    pub fn from_config(config: &PerfConfig) -> Result<HttpClient, HttpError> {
        HttpClient::builder()
            .max_connections_per_host(config.http_max_connections as usize)
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_settings_are_refused_by_name() {
        let retry = RetryPolicy {
            budget_window: Duration::from_secs(120),
            ..RetryPolicy::default()
        };
        let error = HttpClient::builder()
            .retry(retry)
            .build()
            .expect_err("window too long");
        assert!(
            error.to_string().contains("`retry`") && error.to_string().contains("budget_window"),
            "{error}"
        );
        let error = HttpClient::builder()
            .rate_limit_per_host(0.0, 1)
            .build()
            .expect_err("no rate");
        assert!(error.to_string().contains("rate_limit_per_host"), "{error}");
        let config = PerfConfig::default();
        assert!(HttpClient::from_config(&config).is_ok());
        let error = HttpClient::builder()
            .max_connections_per_host(0)
            .build()
            .expect_err("no connections");
        assert!(
            error.to_string().contains("max_connections_per_host"),
            "{error}"
        );
    }
}
