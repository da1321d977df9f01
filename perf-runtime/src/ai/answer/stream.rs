//! Streamed answers through the AI cache: a hit is replayed as a stream of
//! pieces, so a client has one code path; a miss streams the model's answer
//! through as it comes and stores it once it has ended properly.
//!
//! A stream is stored only when it ended with a finish reason and without
//! an error, and not when it called tools; a client that stops reading
//! early stores nothing. The concurrency permit of `max_concurrency` is
//! held until the stream ends or is dropped, not just until it starts.
//! Concurrent misses of one prompt each stream from the model (a stream
//! cannot be shared once started); the first to end is stored.

use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll};

use futures_util::Stream;

use super::limits::Admitted;
use super::metrics::{self, HitKind};
use super::site::{AiSite, tokens_of};
use super::{AiRequest, Canonical};
use crate::ai::{AiError, ChatChunk, ChatResponse, ChatStream, PartitionKey};
use crate::cache::CacheKey;

impl AiSite<ChatResponse> {
    /// A streamed call whose errors arrive in the stream: a cached answer
    /// replayed, else the body's stream (stored when it ends properly).
    pub async fn call_stream<F>(&'static self, request: AiRequest, body: F) -> ChatStream
    where
        F: Future<Output = ChatStream>,
    {
        self.stream_traced(request, Some(error_stream), body, Ok, |stream| stream)
            .await
            .0
    }

    /// A streamed call that returns `Result<ChatStream, E>`; `fail` turns a
    /// refusal of the limits into the function's error (see
    /// [`call`](AiSite::call)).
    pub async fn call_stream_result<E, F>(
        &'static self,
        request: AiRequest,
        fail: Option<fn(AiError) -> Result<ChatStream, E>>,
        body: F,
    ) -> Result<ChatStream, E>
    where
        F: Future<Output = Result<ChatStream, E>>,
    {
        self.stream_traced(request, fail, body, |r| r.map_err(Err), Ok)
            .await
            .0
    }

    /// The streamed call, saying which tier served it.
    pub async fn stream_traced<R, F>(
        &'static self,
        request: AiRequest,
        fail: Option<fn(AiError) -> R>,
        body: F,
        split: fn(R) -> Result<ChatStream, R>,
        join: fn(ChatStream) -> R,
    ) -> (R, HitKind)
    where
        F: Future<Output = R>,
    {
        let context_hash = self.context_hash(&request.canonical);
        let partition = self.partition(&request, context_hash);
        let key = self.exact_key(
            context_hash,
            request.scope.as_deref(),
            &request.canonical.query,
        );
        let canonical = request.canonical;
        if let Some(answer) = self.exact.lookup(key).await {
            self.metrics
                .served(self.spec, HitKind::Exact, Some(&answer), &canonical);
            return (join(replay(&answer)), HitKind::Exact);
        }
        let semantic = self.spec.similarity().filter(|_| !canonical.sampled);
        let vector = Mutex::new(None);
        if let Some(threshold) = semantic
            && let Some(answer) = self
                .semantic_lookup(&partition, &canonical, threshold, &vector)
                .await
        {
            self.metrics
                .served(self.spec, HitKind::Semantic, Some(&answer), &canonical);
            return (join(replay(&answer)), HitKind::Semantic);
        }
        self.metrics
            .served::<ChatResponse>(self.spec, HitKind::Miss, None, &canonical);
        let admitted = match self.admit(&canonical, fail).await {
            Ok(admitted) => admitted,
            Err(refused) => return (refused, HitKind::Miss),
        };
        let result = self.within_timeout(fail, body).await;
        let stream = match split(result) {
            Ok(stream) => stream,
            Err(result) => return (result, HitKind::Miss),
        };
        let vector = vector
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .filter(|_| semantic.is_some());
        let recording = Recording {
            inner: stream,
            chunks: Vec::new(),
            failed: false,
            pending: Some(Pending {
                site: self,
                key,
                partition,
                canonical,
                vector,
                admitted,
            }),
        };
        (join(Box::pin(recording)), HitKind::Miss)
    }
}

/// A stream that ends at once with `error`.
fn error_stream(error: AiError) -> ChatStream {
    Box::pin(futures_util::stream::iter([Err(error)]))
}

/// A cached answer as a stream: a piece per word, then the piece that ends
/// it (finish reason and usage), as a provider streams.
pub(crate) fn replay(answer: &ChatResponse) -> ChatStream {
    let piece = |delta: &str| ChatChunk {
        delta: delta.to_owned(),
        model: answer.model.clone(),
        provider: answer.provider.clone(),
        ..ChatChunk::default()
    };
    let mut chunks: Vec<Result<ChatChunk, AiError>> = answer
        .content
        .split_inclusive(' ')
        .map(|word| Ok(piece(word)))
        .collect();
    let mut last = piece("");
    last.finish_reason = Some(
        answer
            .finish_reason
            .clone()
            .unwrap_or_else(|| "stop".to_owned()),
    );
    last.usage = answer.usage;
    chunks.push(Ok(last));
    Box::pin(futures_util::stream::iter(chunks))
}

/// What storing a finished stream needs.
struct Pending {
    site: &'static AiSite<ChatResponse>,
    key: CacheKey,
    partition: PartitionKey,
    canonical: Canonical,
    vector: Option<Vec<f32>>,
    /// Holds the concurrency permit until the stream ends or is dropped.
    admitted: Option<Admitted>,
}

/// The body's stream, passed through and kept, to be stored at its end.
struct Recording {
    inner: ChatStream,
    chunks: Vec<ChatChunk>,
    failed: bool,
    pending: Option<Pending>,
}

impl Stream for Recording {
    type Item = Result<ChatChunk, AiError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                if this.pending.is_some() {
                    this.chunks.push(chunk.clone());
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.failed = true;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => {
                if let Some(pending) = this.pending.take()
                    && !this.failed
                {
                    let chunks = std::mem::take(&mut this.chunks);
                    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                        runtime.spawn(pending.store(chunks));
                    }
                }
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Pending {
    /// Puts the finished answer together and stores it if it may be.
    async fn store(self, chunks: Vec<ChatChunk>) {
        let site = self.site;
        let pieces = futures_util::stream::iter(chunks.into_iter().map(Ok));
        let Ok(answer) = ChatResponse::from_stream(pieces).await else {
            return;
        };
        if let Some(admitted) = &self.admitted {
            site.limits
                .settle(admitted, tokens_of(&answer, &self.canonical))
                .await;
        }
        if answer.finish_reason.is_none() {
            metrics::not_admitted(site.spec, "incomplete_stream");
            return;
        }
        if answer.has_tool_calls() {
            metrics::not_admitted(site.spec, "tool_calls");
            return;
        }
        let tags = site.tags(&self.partition);
        site.exact
            .put(self.key, site.spec.ttl(), answer, tags)
            .await;
        if let Some(vector) = self.vector {
            site.remember(self.partition, self.canonical.text, vector)
                .await;
        }
    }
}
