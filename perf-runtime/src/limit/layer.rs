//! [`ConcurrencyLimitLayer`]: the limit as server middleware (axum, hyper).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use tower::{Layer, Service};

use super::{ConcurrencyLimit, LimitedBody, Outcome};

/// Limits a server's concurrent requests with a [`ConcurrencyLimit`].
///
/// A request over the limit gets an empty `503 Service Unavailable` at once
/// (or after waiting, if the limit is set to [`Overload::Wait`](super::Overload::Wait)),
/// without reaching the handler. A request that gets in holds its permit
/// until its response body has been sent to the end, so a long streamed
/// answer (SSE) counts for as long as it runs. The latency sample is the
/// time to the response headers; a 503 or 429 from the handler counts as
/// overload.
///
/// ```
/// use axum::{Router, routing::get};
/// use perf_runtime::limit::{ConcurrencyLimit, ConcurrencyLimitLayer};
///
/// # #[cfg(feature = "axum")]
/// # fn main() -> Result<(), perf_runtime::limit::LimitError> {
/// let limit = ConcurrencyLimit::builder("api").initial(50).bounds(10, 500).build()?;
/// let app: Router = Router::new()
///     .route("/chat", get(|| async { "hello" }))
///     .layer(ConcurrencyLimitLayer::new(limit));
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "axum"))]
/// # fn main() {}
/// ```
#[derive(Clone, Debug)]
pub struct ConcurrencyLimitLayer {
    limit: ConcurrencyLimit,
}

impl ConcurrencyLimitLayer {
    /// A layer sharing `limit` between every service it wraps.
    pub fn new(limit: ConcurrencyLimit) -> Self {
        ConcurrencyLimitLayer { limit }
    }
}

impl<S> Layer<S> for ConcurrencyLimitLayer {
    type Service = ConcurrencyLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConcurrencyLimitService {
            inner,
            limit: self.limit.clone(),
        }
    }
}

/// The service made by [`ConcurrencyLimitLayer`].
#[derive(Clone, Debug)]
pub struct ConcurrencyLimitService<S> {
    inner: S,
    limit: ConcurrencyLimit,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ConcurrencyLimitService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: http_body::Body,
{
    type Response = Response<LimitedBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        // The service polled ready is the one to call; a fresh clone stays behind.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let limit = self.limit.clone();
        Box::pin(async move {
            let Ok(mut permit) = limit.acquire().await else {
                let mut shed = Response::new(LimitedBody::rejected());
                *shed.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                return Ok(shed);
            };
            let response = match inner.call(request).await {
                Ok(response) => response,
                Err(error) => {
                    permit.set_outcome(Outcome::Dropped);
                    return Err(error);
                }
            };
            permit.stop_clock();
            let at_end = match response.status() {
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => Outcome::Dropped,
                _ => Outcome::Success,
            };
            Ok(response.map(|body| LimitedBody::new(body, permit, at_end)))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use bytes::Bytes;
    use http_body_util::{BodyExt, StreamBody};
    use tokio::sync::mpsc;
    use tower::ServiceExt;

    use super::*;
    use crate::limit::Overload;

    type Chunks = mpsc::UnboundedSender<Result<http_body::Frame<Bytes>, Infallible>>;

    /// A service whose single response streams whatever the test sends.
    fn streaming_service(
        chunks: mpsc::UnboundedReceiver<Result<http_body::Frame<Bytes>, Infallible>>,
    ) -> impl Service<
        Request<()>,
        Response = Response<impl http_body::Body<Data = Bytes, Error = Infallible>>,
        Error = Infallible,
        Future = impl Send,
    > + Clone
    + Send {
        let chunks = std::sync::Arc::new(std::sync::Mutex::new(Some(chunks)));
        tower::service_fn(move |_request: Request<()>| {
            let receiver = chunks.lock().expect("lock").take().expect("one call");
            let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
                receiver.recv().await.map(|chunk| (chunk, receiver))
            });
            async move { Ok(Response::new(StreamBody::new(stream))) }
        })
    }

    #[tokio::test]
    async fn a_streamed_body_holds_its_permit_until_it_ends() {
        let limit = ConcurrencyLimit::builder("stream")
            .initial(1)
            .bounds(1, 1)
            .overload(Overload::Reject)
            .build()
            .expect("valid bounds");
        let (sender, receiver): (Chunks, _) = mpsc::unbounded_channel();
        let service = ConcurrencyLimitLayer::new(limit.clone()).layer(streaming_service(receiver));

        let response = service.clone().oneshot(Request::new(())).await.expect("ok");
        assert_eq!(response.status(), StatusCode::OK);
        let mut body = std::pin::pin!(response.into_body());
        assert_eq!(limit.in_flight(), 1, "headers sent, body still open");

        sender
            .send(Ok(http_body::Frame::data(Bytes::from("data: 1\n\n"))))
            .expect("send");
        let frame = body
            .as_mut()
            .frame()
            .await
            .expect("a frame")
            .expect("no error");
        assert_eq!(frame.into_data().expect("data"), "data: 1\n\n");
        assert_eq!(limit.in_flight(), 1, "mid-stream the permit is held");

        let shed = service.clone().oneshot(Request::new(())).await.expect("ok");
        assert_eq!(
            shed.status(),
            StatusCode::SERVICE_UNAVAILABLE,
            "no room while streaming"
        );

        drop(sender);
        assert!(body.as_mut().frame().await.is_none(), "stream ended");
        assert_eq!(limit.in_flight(), 0, "the end of the body frees the permit");
    }

    #[tokio::test]
    async fn a_body_dropped_early_frees_its_permit() {
        let limit = ConcurrencyLimit::builder("dropped")
            .initial(1)
            .bounds(1, 1)
            .build()
            .expect("valid bounds");
        let (_sender, receiver): (Chunks, _) = mpsc::unbounded_channel();
        let service = ConcurrencyLimitLayer::new(limit.clone()).layer(streaming_service(receiver));
        let response = service.oneshot(Request::new(())).await.expect("ok");
        assert_eq!(limit.in_flight(), 1);
        drop(response);
        assert_eq!(
            limit.in_flight(),
            0,
            "a client that went away frees the place"
        );
    }
}
