//! [`FallbackChain`]: models tried in order when one fails for a reason
//! another may not share: over budget, rate-limited, timed out, a 5xx, a
//! broken connection or an open circuit. A request the provider refused as
//! wrong (400, 401, 404, ...) is not sent elsewhere: it would fail there too,
//! or succeed where it should not (a bad key hidden by a second provider).

use futures_util::StreamExt;

use super::{AiError, ChatRequest, ChatResponse, ChatStream, Provider};

const FALLBACKS: &str = "perf_ai_fallbacks_total";

impl AiError {
    /// Whether the failure is passing or tied to one provider or model
    /// (rate limits, budgets, timeouts, 5xx, connection failures), so that
    /// another route, or a later try, may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            AiError::RateLimited { .. } | AiError::Timeout { .. } => true,
            AiError::Provider { status, .. } => {
                status.is_none_or(|status| status == 429 || status >= 500)
            }
            _ => false,
        }
    }
}

/// Routes (a provider and a model) tried in order. The first that answers
/// wins; a failure that [`AiError::is_transient`] moves on to the next, any
/// other ends the call. A stream moves on only before its first piece:
/// once text has reached the caller, switching models would splice two
/// answers.
///
/// ```no_run
/// use perf_runtime::ai::{ChatMessage, ChatRequest, FallbackChain, Provider};
///
/// # async fn ask(openai: Provider, local: Provider) -> Result<(), perf_runtime::ai::AiError> {
/// let chain = FallbackChain::new(openai.clone(), "gpt-4o")
///     .or(openai, "gpt-4o-mini")
///     .or(local, "llama3.2");
/// let request = ChatRequest::new("", vec![ChatMessage::user("Say hi")]);
/// let answer = chain.chat(&request).await?;
/// println!("{} answered with {}", answer.provider, answer.model);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct FallbackChain {
    routes: Vec<(Provider, String)>,
}

impl FallbackChain {
    /// A chain that starts with `model` at `provider`.
    pub fn new(provider: Provider, model: impl Into<String>) -> Self {
        FallbackChain {
            routes: vec![(provider, model.into())],
        }
    }

    /// Adds `model` at `provider` as the next route.
    #[must_use]
    pub fn or(mut self, provider: Provider, model: impl Into<String>) -> Self {
        self.routes.push((provider, model.into()));
        self
    }

    /// The routes as `(provider name, model)`, in order.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.routes
            .iter()
            .map(|(provider, model)| (provider.name(), model.as_str()))
    }

    /// A whole answer from the first route that gives one; `request.model`
    /// is replaced by each route's model.
    ///
    /// # Errors
    ///
    /// The first error that is not transient, or the last route's error.
    pub async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, AiError> {
        let mut routes = self.routes.iter().peekable();
        loop {
            let (provider, model) = routes.next().expect("a chain has at least one route");
            let routed = request.clone().with_model(model.clone());
            match provider.chat(&routed).await {
                Err(error) if error.is_transient() && routes.peek().is_some() => {
                    fell_back(provider, model, &error);
                }
                result => return result,
            }
        }
    }

    /// A streamed answer from the first route whose stream starts: a route
    /// that fails before its first piece with a transient error gives way
    /// to the next.
    pub fn chat_stream(&self, request: &ChatRequest) -> ChatStream {
        let state = Chain {
            routes: self.routes.clone(),
            next: 0,
            request: request.clone(),
            current: None,
            started: false,
        };
        Box::pin(futures_util::stream::unfold(
            state,
            |mut chain| async move {
                loop {
                    if chain.current.is_none() {
                        let (provider, model) = chain.routes.get(chain.next)?;
                        let routed = chain.request.clone().with_model(model.clone());
                        chain.current = Some(provider.chat_stream(&routed));
                        chain.next += 1;
                    }
                    let item = chain.current.as_mut()?.next().await?;
                    match item {
                        Ok(chunk) => {
                            chain.started = true;
                            return Some((Ok(chunk), chain));
                        }
                        Err(error)
                            if !chain.started
                                && error.is_transient()
                                && chain.next < chain.routes.len() =>
                        {
                            let (provider, model) = &chain.routes[chain.next - 1];
                            fell_back(provider, model, &error);
                            chain.current = None;
                        }
                        Err(error) => {
                            // Nothing follows an error.
                            chain.next = chain.routes.len();
                            chain.current = None;
                            chain.started = true;
                            return Some((Err(error), chain));
                        }
                    }
                }
            },
        ))
    }
}

/// State of a chained stream.
struct Chain {
    routes: Vec<(Provider, String)>,
    next: usize,
    request: ChatRequest,
    current: Option<ChatStream>,
    started: bool,
}

fn fell_back(provider: &Provider, model: &str, error: &AiError) {
    tracing::warn!(
        provider = provider.name(),
        model,
        %error,
        "model call failed, trying the next route of the fallback chain"
    );
    metrics::counter!(FALLBACKS, "provider" => provider.name().to_owned(), "model" => model.to_owned())
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn only_passing_or_route_bound_failures_are_transient() {
        let provider = |status| AiError::Provider {
            provider: "p".into(),
            status,
            reason: "r".into(),
        };
        assert!(provider(None).is_transient());
        assert!(provider(Some(429)).is_transient());
        assert!(provider(Some(500)).is_transient());
        assert!(provider(Some(503)).is_transient());
        assert!(!provider(Some(400)).is_transient());
        assert!(!provider(Some(401)).is_transient());
        assert!(
            AiError::Timeout {
                provider: "p".into(),
                after: Duration::from_secs(1)
            }
            .is_transient()
        );
        assert!(
            !AiError::InvalidConfig {
                field: "f",
                expected: "e",
                found: "x".into()
            }
            .is_transient()
        );
    }
}
