//! A virtual user's HTTP/1.1 connection: one keep-alive connection, opened
//! before the user's first request and again only when the server closed
//! it or a request failed on it, as a browser tab or an SDK client does.
//! Each user owns exactly one socket and no pool sits between the
//! measurement and the wire; the protocol is in `wire.rs`.

use std::time::Duration;

use bytes::Bytes;
use http::header::HOST;
use http::{HeaderValue, Method};
use tokio::time::Instant;

use super::config::BenchmarkConfig;
use super::error::BoxError;
use super::recorder::{ErrorKind, Outcome};
use super::wire::{Wire, WireError, request_bytes};

/// The request every user sends, prepared once.
pub(crate) struct Target {
    /// `host:port` to connect to (brackets around an IPv6 address).
    pub(crate) address: String,
    /// The request's bytes on the wire.
    request: Bytes,
    /// A HEAD request: its answer has no body.
    head: bool,
    timeout: Duration,
}

impl Target {
    pub(crate) fn new(config: &BenchmarkConfig) -> Target {
        let url = &config.target;
        // `build` checked the scheme (http) and that there is a host.
        let host = url.host_str().unwrap_or_default();
        let port = url.port_or_known_default().unwrap_or(80);
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let mut headers = config.headers.clone();
        if let Ok(value) = HeaderValue::from_str(&authority) {
            headers.entry(HOST).or_insert(value);
        }
        let path_and_query = match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        };
        let payload = config.payload.clone().unwrap_or_default();
        Target {
            address: format!("{host}:{port}"),
            request: request_bytes(&config.method, &path_and_query, &headers, &payload),
            head: config.method == Method::HEAD,
            timeout: config.request_timeout,
        }
    }

    /// Opens a connection.
    pub(crate) async fn connect(&self) -> Result<Wire, BoxError> {
        Ok(Wire::connect(&self.address).await?)
    }
}

/// One user's connection.
pub(crate) struct Connection {
    wire: Option<Wire>,
}

impl Connection {
    pub(crate) fn new() -> Connection {
        Connection { wire: None }
    }

    /// Connects ahead of the first request, so that the connect is not
    /// measured; a failure is left for the first request to meet and count.
    pub(crate) async fn open(&mut self, target: &Target) {
        if let Ok(Ok(wire)) = tokio::time::timeout(target.timeout, target.connect()).await {
            self.wire = Some(wire);
        }
    }

    /// Sends the target's request and reads the whole answer, within the
    /// request timeout (a reconnect, when needed, included). A streamed
    /// answer's events are timed from `origin` (when the request was sent,
    /// or due).
    pub(crate) async fn send(&mut self, target: &Target, origin: Instant) -> Outcome {
        match tokio::time::timeout(target.timeout, self.exchange(target, origin)).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => {
                // The answer may still come on this connection: never reuse it.
                self.wire = None;
                Outcome::Failed(ErrorKind::Timeout)
            }
        }
    }

    async fn exchange(&mut self, target: &Target, origin: Instant) -> Outcome {
        let (mut wire, reused) = match self.wire.take() {
            Some(wire) => (wire, true),
            None => match target.connect().await {
                Ok(wire) => (wire, false),
                Err(_) => return Outcome::Failed(ErrorKind::Connect),
            },
        };
        let mut result = wire.exchange(&target.request, origin, target.head).await;
        if reused && matches!(result, Err(WireError::Closed)) {
            // Closed by the server while idle (its keep-alive timeout): not
            // an error of this request; send it again on a new connection.
            wire = match target.connect().await {
                Ok(fresh) => fresh,
                Err(_) => return Outcome::Failed(ErrorKind::Connect),
            };
            result = wire.exchange(&target.request, origin, target.head).await;
        }
        match result {
            Ok((outcome, reusable)) => {
                if reusable {
                    self.wire = Some(wire);
                }
                outcome
            }
            Err(_) => Outcome::Failed(ErrorKind::Other),
        }
    }
}
