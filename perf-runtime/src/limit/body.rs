//! [`LimitedBody`]: a response body that holds its permit until it ends.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http_body::{Body, Frame, SizeHint};

use super::{Outcome, Permit};

pin_project_lite::pin_project! {
    /// A response body under a concurrency limit. The permit is released
    /// when the body ends (with the outcome chosen when the headers were
    /// sent), or fails or is dropped early (recorded as ignored): a long
    /// stream keeps its place for as long as it runs.
    pub struct LimitedBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project_lite::pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Held {
            #[pin]
            body: B,
            permit: Option<Permit>,
            at_end: Outcome,
        },
        // The empty body of a 503 sent by the limit itself.
        Rejected,
    }
}

impl<B: Body> LimitedBody<B> {
    /// Wraps `body`; `permit` is released with `at_end` once it ends.
    pub fn new(body: B, mut permit: Permit, at_end: Outcome) -> Self {
        let permit = if body.is_end_stream() {
            // Servers may never poll a body that is already done.
            permit.set_outcome(at_end);
            None
        } else {
            Some(permit)
        };
        LimitedBody {
            kind: Kind::Held {
                body,
                permit,
                at_end,
            },
        }
    }

    /// An empty body, for a response the limit answers itself.
    pub(super) fn rejected() -> Self {
        LimitedBody {
            kind: Kind::Rejected,
        }
    }
}

impl<B: Body> Body for LimitedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Rejected => Poll::Ready(None),
            KindProj::Held {
                mut body,
                permit,
                at_end,
            } => {
                let frame = ready!(body.as_mut().poll_frame(cx));
                let ended = match &frame {
                    None => Some(*at_end),
                    Some(Err(_)) => Some(Outcome::Ignored),
                    // Servers stop polling once a body says it is done.
                    Some(Ok(_)) => body.is_end_stream().then_some(*at_end),
                };
                if let Some(outcome) = ended
                    && let Some(mut permit) = permit.take()
                {
                    permit.set_outcome(outcome);
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Held { body, .. } => body.is_end_stream(),
            Kind::Rejected => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Held { body, .. } => body.size_hint(),
            Kind::Rejected => SizeHint::with_exact(0),
        }
    }
}
