//! A virtual user's HTTP/1.1 connection: one keep-alive connection, opened
//! before the user's first request and again only when the server closed
//! it or a request failed on it, as a browser tab or an SDK client does.
//! Plain hyper `conn` API, so each user owns exactly one connection and no
//! pool sits between the measurement and the wire.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::config::BenchmarkConfig;
use super::error::BoxError;
use super::recorder::{ErrorKind, Outcome};
use super::sse::SseScanner;

/// The request every user sends, prepared once.
pub(crate) struct Target {
    /// `host:port` to connect to (brackets around an IPv6 address).
    pub(crate) address: String,
    method: Method,
    path: Uri,
    headers: HeaderMap,
    payload: Bytes,
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
        Target {
            address: format!("{host}:{port}"),
            method: config.method.clone(),
            // A parsed URL's path and query always make a valid origin-form.
            path: path_and_query
                .parse()
                .unwrap_or_else(|_| Uri::from_static("/")),
            headers,
            payload: config.payload.clone().unwrap_or_default(),
            timeout: config.request_timeout,
        }
    }

    fn request(&self) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(self.payload.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.path.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }

    /// Opens a connection: TCP (no Nagle delay) and the HTTP/1 handshake.
    pub(crate) async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, BoxError> {
        let stream = TcpStream::connect(&self.address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes; a
            // failure shows on the request that was using it.
            let _ = connection.await;
        });
        Ok(sender)
    }
}

/// One user's connection.
pub(crate) struct Connection {
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub(crate) fn new() -> Connection {
        Connection { sender: None }
    }

    /// Connects ahead of the first request, so that the connect is not
    /// measured; a failure is left for the first request to meet and count.
    pub(crate) async fn open(&mut self, target: &Target) {
        if let Ok(Ok(sender)) = tokio::time::timeout(target.timeout, target.connect()).await {
            self.sender = Some(sender);
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
                self.sender = None;
                Outcome::Failed(ErrorKind::Timeout)
            }
        }
    }

    async fn exchange(&mut self, target: &Target, origin: Instant) -> Outcome {
        let sender = match self.sender.take() {
            Some(sender) if !sender.is_closed() => sender,
            _ => match target.connect().await {
                Ok(sender) => sender,
                Err(_) => return Outcome::Failed(ErrorKind::Connect),
            },
        };
        let mut sender = match ready(sender).await {
            Some(sender) => sender,
            // Closed by the server while idle (keep-alive timeout): not an
            // error of this request, connect again.
            None => match target.connect().await {
                Ok(fresh) => match ready(fresh).await {
                    Some(sender) => sender,
                    None => return Outcome::Failed(ErrorKind::Connect),
                },
                Err(_) => return Outcome::Failed(ErrorKind::Connect),
            },
        };
        let response = match sender.send_request(target.request()).await {
            Ok(response) => response,
            Err(_) => return Outcome::Failed(ErrorKind::Other),
        };
        let status = response.status().as_u16();
        let streamed = is_event_stream(response.headers());
        let mut body = response.into_body();
        if streamed {
            let mut scanner = SseScanner::new();
            let mut cut = false;
            while let Some(frame) = body.frame().await {
                match frame {
                    Ok(frame) => {
                        if let Some(data) = frame.data_ref() {
                            scanner.feed(data, origin.elapsed());
                        }
                    }
                    Err(_) => {
                        cut = true;
                        break;
                    }
                }
            }
            if !cut {
                self.sender = Some(sender);
            }
            return Outcome::Stream {
                status,
                stats: scanner.finish(),
                cut,
            };
        }
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                return Outcome::Failed(ErrorKind::Other);
            }
        }
        self.sender = Some(sender);
        Outcome::Response(status)
    }
}

/// `content-type: text/event-stream` (parameters allowed).
fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/event-stream"))
}

async fn ready(mut sender: SendRequest<Full<Bytes>>) -> Option<SendRequest<Full<Bytes>>> {
    sender.ready().await.ok().map(|()| sender)
}
