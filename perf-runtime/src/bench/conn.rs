//! A virtual user's HTTP/1.1 connection: one keep-alive connection, opened
//! before the user's first request and again only when the server closed
//! it or a request failed on it, as a browser tab or an SDK client does.
//! Plain hyper `conn` API, so each user owns exactly one connection and no
//! pool sits between the measurement and the wire.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
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
    pub(crate) async fn connect(&self) -> Result<Link, BoxError> {
        let stream = TcpStream::connect(&self.address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        Ok(Link {
            sender,
            driver: Some(Box::pin(connection)),
        })
    }
}

/// hyper's side of a connection: reads and writes the socket when polled.
type Driver = Pin<Box<http1::Connection<TokioIo<TcpStream>, Full<Bytes>>>>;

/// An open connection: the handle requests are sent through, and the
/// connection itself, polled by the user's task while it waits for an
/// answer instead of by a task of its own. One task per user instead of
/// two saves a cross-task wake-up per request (measured against wrk: see
/// docs/PERFORMANCE.md).
pub(crate) struct Link {
    sender: SendRequest<Full<Bytes>>,
    /// `None` once the connection has ended (closed or failed).
    driver: Option<Driver>,
}

impl Link {
    /// Whether a request can still go out on it.
    fn is_open(&self) -> bool {
        self.driver.is_some() && !self.sender.is_closed()
    }

    /// Runs `work` (which uses `sender`) while driving the connection.
    async fn drive<F: Future>(driver: &mut Option<Driver>, work: F) -> F::Output {
        let mut work = pin!(work);
        poll_fn(|cx| {
            // The connection first, so that `work` sees what it read.
            if let Some(connection) = driver.as_mut()
                && connection.as_mut().poll(cx).is_ready()
            {
                // Ended: dropping it fails whatever `work` still waits
                // for, so `work` completes (with an error) right below.
                *driver = None;
            }
            work.as_mut().poll(cx)
        })
        .await
    }

    /// Waits until the connection takes a request; `false` if it was
    /// closed meanwhile (the server's keep-alive timeout).
    async fn ready(&mut self) -> bool {
        let Link { sender, driver } = self;
        Link::drive(driver, sender.ready()).await.is_ok()
    }
}

/// One user's connection.
pub(crate) struct Connection {
    link: Option<Link>,
}

impl Connection {
    pub(crate) fn new() -> Connection {
        Connection { link: None }
    }

    /// Connects ahead of the first request, so that the connect is not
    /// measured; a failure is left for the first request to meet and count.
    pub(crate) async fn open(&mut self, target: &Target) {
        if let Ok(Ok(link)) = tokio::time::timeout(target.timeout, target.connect()).await {
            self.link = Some(link);
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
                self.link = None;
                Outcome::Failed(ErrorKind::Timeout)
            }
        }
    }

    async fn exchange(&mut self, target: &Target, origin: Instant) -> Outcome {
        let mut link = match self.link.take() {
            Some(link) if link.is_open() => link,
            _ => match target.connect().await {
                Ok(link) => link,
                Err(_) => return Outcome::Failed(ErrorKind::Connect),
            },
        };
        if !link.ready().await {
            // Closed by the server while idle (keep-alive timeout): not an
            // error of this request, connect again.
            link = match target.connect().await {
                Ok(fresh) => fresh,
                Err(_) => return Outcome::Failed(ErrorKind::Connect),
            };
            if !link.ready().await {
                return Outcome::Failed(ErrorKind::Connect);
            }
        }
        let Link { sender, driver } = &mut link;
        let (outcome, reusable) = Link::drive(driver, answer(sender, target, origin)).await;
        if reusable {
            self.link = Some(link);
        }
        outcome
    }
}

/// Sends the request and reads the answer to its end; whether the
/// connection can carry the next request.
async fn answer(
    sender: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    origin: Instant,
) -> (Outcome, bool) {
    let response = match sender.send_request(target.request()).await {
        Ok(response) => response,
        Err(_) => return (Outcome::Failed(ErrorKind::Other), false),
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
        let outcome = Outcome::Stream {
            status,
            stats: scanner.finish(),
            cut,
        };
        return (outcome, !cut);
    }
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            return (Outcome::Failed(ErrorKind::Other), false);
        }
    }
    (Outcome::Response(status), true)
}

/// `content-type: text/event-stream` (parameters allowed).
fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("text/event-stream"))
}
