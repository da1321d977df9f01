//! [`HttpResponse`]: status and headers at once, the body as bytes, JSON or
//! a stream of chunks. The body holds the host's connection slot and the
//! concurrency permit until it ends, and refuses to grow past the size limit.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::Stream;
use http::{HeaderMap, StatusCode, Version, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyDataStream, BodyExt};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::HttpError;
use crate::limit::{Outcome, Permit};

/// A response whose headers have arrived. Nothing is retried from here on:
/// the body belongs to the caller.
#[derive(Debug)]
pub struct HttpResponse {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: ResponseBody,
    attempts: u32,
    /// The request's total deadline: bounds [`Self::bytes`], not streams.
    deadline: Instant,
    deadline_total: std::time::Duration,
}

impl HttpResponse {
    pub(super) fn new(
        response: http::Response<hyper::body::Incoming>,
        held: Held,
        attempts: u32,
        deadline: Instant,
        deadline_total: std::time::Duration,
    ) -> Self {
        let (parts, incoming) = response.into_parts();
        HttpResponse {
            status: parts.status,
            version: parts.version,
            headers: parts.headers,
            body: ResponseBody::new(incoming, held),
            attempts,
            deadline,
            deadline_total,
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The HTTP version spoken (HTTP/2 where the server offered it).
    pub fn version(&self) -> Version {
        self.version
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Attempts made for this response, retries included.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// `host[:port]` the response came from.
    pub fn host(&self) -> &str {
        &self.body.held.host
    }

    /// `self` if the status is a success (2xx).
    ///
    /// # Errors
    ///
    /// [`HttpError::Status`] for any other status.
    pub fn error_for_status(self) -> Result<Self, HttpError> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(HttpError::Status {
                host: self.host().to_owned(),
                status: self.status,
                attempts: self.attempts,
            })
        }
    }

    /// The whole body, within the size limit and the request's deadline.
    ///
    /// # Errors
    ///
    /// [`HttpError::ResponseTooLarge`] past the limit (the declared length is
    /// checked before reading), [`HttpError::DeadlineExceeded`],
    /// [`HttpError::Transport`] when the connection fails mid-body.
    pub async fn bytes(self) -> Result<Bytes, HttpError> {
        let declared = self
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
        if let (Some(declared), Some(limit)) = (declared, self.body.held.max_bytes)
            && declared > limit
        {
            return Err(self.body.held.too_large());
        }
        let host = Arc::clone(&self.body.held.host);
        match super::watchdog::deadline(self.deadline, self.body.collect()).await {
            Ok(collected) => Ok(collected?.to_bytes()),
            Err(_) => Err(HttpError::DeadlineExceeded {
                host: host.to_string(),
                deadline: self.deadline_total,
                attempts: self.attempts,
            }),
        }
    }

    /// The body decoded as JSON.
    ///
    /// # Errors
    ///
    /// As [`Self::bytes`], plus [`HttpError::Json`].
    pub async fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, HttpError> {
        let host = Arc::clone(&self.body.held.host);
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|source| HttpError::Json {
            host: host.to_string(),
            source,
        })
    }

    /// The body as a stream of chunks as they arrive (for SSE), with no
    /// deadline: a stream may run as long as the server sends. The stream
    /// ends with an error if the body passes the size limit or the
    /// connection fails; the host's slot and the concurrency permit are held
    /// until it ends or is dropped.
    pub fn into_stream(self) -> impl Stream<Item = Result<Bytes, HttpError>> + Send + 'static {
        BodyDataStream::new(self.body)
    }

    /// The body as an [`http_body::Body`], for handing on (to axum, say).
    pub fn into_body(self) -> impl Body<Data = Bytes, Error = HttpError> + Send + 'static {
        self.body
    }
}

/// What a response keeps until its body ends.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) host: Arc<str>,
    pub(super) attempts: u32,
    pub(super) max_bytes: Option<u64>,
    pub(super) connection: Option<OwnedSemaphorePermit>,
    pub(super) permit: Option<Permit>,
}

impl Held {
    fn too_large(&self) -> HttpError {
        HttpError::ResponseTooLarge {
            host: self.host.to_string(),
            limit: self.max_bytes.unwrap_or_default(),
        }
    }

    /// Frees the connection slot and records the permit's outcome.
    fn release(&mut self, outcome: Outcome) {
        self.connection = None;
        if let Some(mut permit) = self.permit.take() {
            permit.set_outcome(outcome);
        }
    }
}

pin_project_lite::pin_project! {
    #[derive(Debug)]
    struct ResponseBody {
        #[pin]
        incoming: hyper::body::Incoming,
        held: Held,
        received: u64,
        done: bool,
    }
}

impl ResponseBody {
    fn new(incoming: hyper::body::Incoming, mut held: Held) -> Self {
        let done = incoming.is_end_stream();
        if done {
            held.release(Outcome::Success);
        }
        ResponseBody {
            incoming,
            held,
            received: 0,
            done,
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let mut this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        let polled = ready!(this.incoming.as_mut().poll_frame(cx));
        let (item, ended) = match polled {
            None => (None, Some(Outcome::Success)),
            Some(Err(error)) => {
                let failed = HttpError::Transport {
                    host: this.held.host.to_string(),
                    attempts: this.held.attempts,
                    source: Box::new(error),
                };
                (Some(Err(failed)), Some(Outcome::Dropped))
            }
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    *this.received += data.len() as u64;
                }
                if this
                    .held
                    .max_bytes
                    .is_some_and(|limit| *this.received > limit)
                {
                    // An error, not a cut: a truncated JSON or answer must
                    // not pass for a whole one.
                    (Some(Err(this.held.too_large())), Some(Outcome::Ignored))
                } else {
                    let ended = this.incoming.is_end_stream().then_some(Outcome::Success);
                    (Some(Ok(frame)), ended)
                }
            }
        };
        if let Some(outcome) = ended {
            *this.done = true;
            this.held.release(outcome);
        }
        Poll::Ready(item)
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        if self.done {
            SizeHint::with_exact(0)
        } else {
            self.incoming.size_hint()
        }
    }
}
