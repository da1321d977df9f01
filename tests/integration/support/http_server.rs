//! A loopback HTTP server for the outbound-client tests: HTTP/1 and h2c
//! (prior knowledge), a handler given each request's hit number, and counts
//! of hits and accepted TCP connections.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type TestBody = BoxBody<Bytes, BoxError>;
type Handler = dyn Fn(Request<Incoming>, usize) -> Pin<Box<dyn Future<Output = Response<TestBody>> + Send>>
    + Send
    + Sync;

/// A running server; stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    accept: JoinHandle<()>,
}

impl TestServer {
    /// Serves `handler` on 127.0.0.1; `handler` gets each request and its
    /// hit number (1 for the first).
    pub async fn start<F, Fut>(handler: F) -> TestServer
    where
        F: Fn(Request<Incoming>, usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        let handler: Arc<Handler> = Arc::new(move |request, hit| Box::pin(handler(request, hit)));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("address");
        let hits = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let accept = tokio::spawn({
            let hits = Arc::clone(&hits);
            let connections = Arc::clone(&connections);
            async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    connections.fetch_add(1, Ordering::SeqCst);
                    // Small writes go out at once: with Nagle's algorithm a
                    // streamed chunk after the headers waits for the client's
                    // delayed ACK (~40 ms), which would show in every figure.
                    let _ = stream.set_nodelay(true);
                    let handler = Arc::clone(&handler);
                    let hits = Arc::clone(&hits);
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let hit = hits.fetch_add(1, Ordering::SeqCst) + 1;
                            let answer = handler(request, hit);
                            async move { Ok::<_, Infallible>(answer.await) }
                        });
                        let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        });
        TestServer {
            addr,
            hits,
            connections,
            accept,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:port` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `127.0.0.1:port`, as the client names the host.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Requests received.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// A response with `status` and a text body.
pub fn text(status: u16, body: impl Into<Bytes>) -> Response<TestBody> {
    let mut response = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = StatusCode::from_u16(status).expect("status");
    response
}

/// A 200 whose body sends `chunk`, then, a moment later (so the headers
/// and the chunk are out first), fails: the connection is cut mid-body.
pub fn chunk_then_cut(chunk: &'static str) -> Response<TestBody> {
    let frames = futures_util::stream::unfold(0, move |step| async move {
        match step {
            0 => Some((Ok(Frame::data(Bytes::from_static(chunk.as_bytes()))), 1)),
            1 => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                Some((Err::<Frame<Bytes>, BoxError>("cut mid-body".into()), 2))
            }
            _ => None,
        }
    });
    Response::new(BodyExt::boxed(StreamBody::new(frames)))
}
