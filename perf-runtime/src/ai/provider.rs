//! [`Provider`]: an OpenAI-compatible chat and embeddings client over the
//! shared HTTP client.
//!
//! A call, in order:
//! 1. the budget of the provider and model ([`BudgetLimiter`]): one request
//!    and the reserved tokens, waited for up to
//!    [`budget_wait`](super::ProviderConfigBuilder::budget_wait), else
//!    [`AiError::RateLimited`];
//! 2. `POST {base_url}/chat/completions` through
//!    [`HttpClient::send`](crate::http::HttpClient::send), which brings
//!    the host's pool, rate limit, circuit breaker and retries: 429, 502,
//!    503, 504 and broken connections are retried with backoff and
//!    `Retry-After` under the client's retry budget; a 500 is retried here
//!    ([`server_error_retries`](super::ProviderConfigBuilder::server_error_retries));
//!    nothing is retried once a response body has begun, so a stream is
//!    never sent twice;
//! 3. the answer, within the provider's timeout (a stream: the headers and
//!    then each piece within it);
//! 4. the tokens used beyond the reservation charged to the budget.
//!
//! The key goes out in the `Authorization` header, marked sensitive (hidden
//! from `Debug`, never indexed by HPACK), and nowhere else: errors carry the
//! provider's name, messages from the server have the key scrubbed, metric
//! labels are provider, model and outcome.
//!
//! Metrics, by `provider` and `model` (bounded: the configured models, then
//! the first 32 others seen, then `other`): `perf_ai_requests_total` (by
//! `outcome`), `perf_ai_request_duration_seconds`,
//! `perf_ai_time_to_first_token_seconds` (streams),
//! `perf_ai_tokens_total` (by `kind`: prompt, completion),
//! `perf_ai_cost_microdollars_total` (from the [`PriceTable`](super::PriceTable)) and
//! `perf_ai_budget_refusals_total`.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use rand::Rng;
use serde_json::Value;
use tokio::time::Instant;

use super::budget::{BudgetKey, BudgetLimiter, LocalBudgets, OverBudget};
use super::chat::{WireCompletion, estimate_tokens};
use super::sse::SseDecoder;
use super::{AiError, ChatChunk, ChatRequest, ChatResponse, ProviderConfig, Usage};
use crate::http::{HttpClient, HttpError, HttpResponse, RetryNonIdempotent};

/// A streamed answer: pieces as they arrive, then the end. An error ends it.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<ChatChunk, AiError>> + Send + 'static>>;

const CHAT_PATH: &str = "/chat/completions";
const EMBEDDINGS_PATH: &str = "/embeddings";
/// Messages from a server are cut to this many characters in errors.
const MAX_REASON_CHARS: usize = 400;
/// Models labelled by name besides the configured ones.
const MAX_MODEL_LABELS: usize = 32;

mod names {
    pub(super) const REQUESTS: &str = "perf_ai_requests_total";
    pub(super) const DURATION: &str = "perf_ai_request_duration_seconds";
    pub(super) const FIRST_TOKEN: &str = "perf_ai_time_to_first_token_seconds";
    pub(super) const TOKENS: &str = "perf_ai_tokens_total";
    pub(super) const BUDGET_REFUSALS: &str = "perf_ai_budget_refusals_total";
    pub(super) const COST: &str = "perf_ai_cost_microdollars_total";
}

/// An OpenAI-compatible provider: chat completions (whole or streamed) and
/// embeddings, under its budgets and timeout. Cloning is cheap and clones
/// share the budgets.
///
/// ```no_run
/// use perf_runtime::ai::{ChatMessage, ChatRequest, Provider, ProviderConfig};
/// use perf_runtime::http::HttpClient;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let http = HttpClient::builder().build()?;
/// for config in ProviderConfig::list_from_env()? {
///     let provider = Provider::new(config, http.clone());
///     let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("Say hi")]);
///     let answer = provider.chat(&request).await?;
///     println!("{}: {}", provider.name(), answer.content);
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Provider {
    inner: Arc<Inner>,
}

struct Inner {
    config: ProviderConfig,
    http: HttpClient,
    limiter: Arc<dyn BudgetLimiter>,
    /// `Bearer <key>`, marked sensitive.
    authorization: Option<HeaderValue>,
    labels: ModelLabels,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The config's Debug hides the key; the header is left out.
        f.debug_struct("Provider")
            .field("config", &self.inner.config)
            .field("limiter", &self.inner.limiter)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// A provider over `http` (clone the process's client so pools, host
    /// limits and breakers are shared). Its budgets are kept in Redis,
    /// shared by every instance, when the runtime has Redis configured at
    /// the time the provider is made; in process otherwise.
    pub fn new(config: ProviderConfig, http: HttpClient) -> Provider {
        let limiter =
            super::budget::shared_limiter().unwrap_or_else(|| Arc::new(LocalBudgets::new()));
        Provider::with_limiter(config, http, limiter)
    }

    /// A provider whose budgets are kept by `limiter` (share one between
    /// providers, or use one backed by a shared store).
    pub fn with_limiter(
        config: ProviderConfig,
        http: HttpClient,
        limiter: Arc<dyn BudgetLimiter>,
    ) -> Provider {
        describe_metrics();
        let authorization = config.api_key().and_then(|key| {
            // Checked when the config was built; a failure here cannot happen.
            let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose())).ok()?;
            value.set_sensitive(true);
            Some(value)
        });
        Provider {
            inner: Arc::new(Inner {
                labels: ModelLabels::new(config.models()),
                config,
                http,
                limiter,
                authorization,
            }),
        }
    }

    /// The configured name.
    pub fn name(&self) -> &str {
        self.inner.config.name()
    }

    /// The configuration.
    pub fn config(&self) -> &ProviderConfig {
        &self.inner.config
    }

    /// Asks `request.model` (the provider's default model when empty) for
    /// a whole answer.
    ///
    /// # Errors
    ///
    /// [`AiError::RateLimited`] when over budget or when the provider still
    /// answers 429 after the retries, [`AiError::Timeout`] past the
    /// provider's timeout, [`AiError::Provider`] for any other failure (with
    /// the status when there was one), [`AiError::InvalidConfig`] when no
    /// model is named and the provider has no default.
    pub async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, AiError> {
        let request = self.with_default_model(request)?;
        let model = self.inner.labels.label(&request.model);
        let started = Instant::now();
        let result = self.chat_once(&request).await;
        self.record(&model, &result.as_ref().map(|r| r.usage), started);
        result
    }

    /// `request`, with the provider's default model if it names none.
    fn with_default_model<'r>(
        &self,
        request: &'r ChatRequest,
    ) -> Result<Cow<'r, ChatRequest>, AiError> {
        if !request.model.is_empty() {
            return Ok(Cow::Borrowed(request));
        }
        match self.inner.config.default_model() {
            Some(model) => Ok(Cow::Owned(request.clone().with_model(model))),
            None => Err(AiError::InvalidConfig {
                field: "model",
                expected: "a model in the request, or models configured for the provider \
                           (the first is the default)",
                found: String::new(),
            }),
        }
    }

    async fn chat_once(&self, request: &ChatRequest) -> Result<ChatResponse, AiError> {
        let reserved = request.reserved_tokens();
        self.take_budget(&request.model, reserved).await?;
        let body = request.to_body(false, false);
        let answer = self
            .within_timeout(async {
                let response = self
                    .post(CHAT_PATH, &body, &request.model, "application/json")
                    .await?;
                response
                    .json::<WireCompletion>()
                    .await
                    .map_err(|error| self.http_error(error, &request.model))
            })
            .await?;
        let answer = answer
            .into_response(self.name())
            .map_err(|reason| self.failed(None, reason))?;
        let used = answer.usage.map_or_else(
            || request.estimated_prompt_tokens() + estimate_tokens(&answer.content),
            |usage| usage.total(),
        );
        self.settle(&request.model, reserved, used).await;
        Ok(answer)
    }

    /// Asks `request.model` (the provider's default model when empty) for
    /// an answer streamed as server-sent events.
    /// Nothing happens until the stream is polled. The stream ends after
    /// the provider's `data: [DONE]`; a cut connection, a timeout between
    /// pieces or an error event ends it with an error, never silently.
    /// Errors before the first piece are those of [`Self::chat`].
    pub fn chat_stream(&self, request: &ChatRequest) -> ChatStream {
        let start = match self.with_default_model(request) {
            Ok(request) => Streaming::Start {
                provider: self.clone(),
                request: Box::new(request.into_owned()),
            },
            Err(error) => Streaming::Refused(error),
        };
        Box::pin(futures_util::stream::unfold(start, |state| async move {
            let mut open = match state {
                Streaming::Start { provider, request } => {
                    match provider.open_stream(&request).await {
                        Ok(open) => Box::new(open),
                        Err(error) => {
                            let model = provider.inner.labels.label(&request.model);
                            provider.record_stream(&model, "error", Some(&error), None);
                            return Some((Err(error), Streaming::Done));
                        }
                    }
                }
                Streaming::Open(open) => open,
                Streaming::Refused(error) => return Some((Err(error), Streaming::Done)),
                Streaming::Done => return None,
            };
            match open.next().await {
                Some(Ok(chunk)) => Some((Ok(chunk), Streaming::Open(open))),
                Some(Err(error)) => {
                    open.finish("error", Some(&error));
                    Some((Err(error), Streaming::Done))
                }
                None => {
                    open.finish("ok", None);
                    None
                }
            }
        }))
    }

    async fn open_stream(&self, request: &ChatRequest) -> Result<OpenStream, AiError> {
        let reserved = request.reserved_tokens();
        self.take_budget(&request.model, reserved).await?;
        let started = Instant::now();
        let body = request.to_body(true, self.inner.config.stream_usage());
        let response = self
            .within_timeout(self.post(CHAT_PATH, &body, &request.model, "text/event-stream"))
            .await?;
        let is_json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/json"));
        let mut open = OpenStream {
            provider: self.clone(),
            model: request.model.clone(),
            label: self.inner.labels.label(&request.model),
            prompt_estimate: request.estimated_prompt_tokens(),
            reserved,
            body: Box::pin(futures_util::stream::empty()),
            decoder: SseDecoder::default(),
            queue: VecDeque::new(),
            done: false,
            answer_chars: 0,
            usage: None,
            started,
            first_piece: None,
            recorded: false,
        };
        if is_json {
            // A server that ignores `stream: true` and answers whole: one piece.
            let answer = self
                .within_timeout(async {
                    response
                        .json::<WireCompletion>()
                        .await
                        .map_err(|error| self.http_error(error, &request.model))
                })
                .await?
                .into_response(self.name())
                .map_err(|reason| self.failed(None, reason))?;
            open.queue.push_back(ChatChunk {
                delta: answer.content,
                tool_calls: answer.tool_calls,
                finish_reason: answer.finish_reason,
                usage: answer.usage,
                model: answer.model,
                provider: answer.provider,
            });
            open.end().await;
        } else {
            open.body = Box::pin(response.into_stream());
        }
        Ok(open)
    }

    /// Raw embedding vectors of `inputs` from `model`, in order (not
    /// normalised; [`OpenAiEmbedder`](super::OpenAiEmbedder) does that).
    /// `dimensions` asks models that can shorten their vectors
    /// (`text-embedding-3-*`) for that length.
    ///
    /// # Errors
    ///
    /// As [`Self::chat`], plus [`AiError::Embedding`] when the answer does
    /// not hold one vector per input.
    pub async fn embeddings(
        &self,
        model: &str,
        inputs: &[String],
        dimensions: Option<usize>,
    ) -> Result<Vec<Vec<f32>>, AiError> {
        let label = self.inner.labels.label(model);
        let started = Instant::now();
        let result = self.embeddings_once(model, inputs, dimensions).await;
        let usage = result.as_ref().map(|(_, usage)| *usage);
        self.record(&label, &usage, started);
        result.map(|(vectors, _)| vectors)
    }

    async fn embeddings_once(
        &self,
        model: &str,
        inputs: &[String],
        dimensions: Option<usize>,
    ) -> Result<(Vec<Vec<f32>>, Option<Usage>), AiError> {
        let reserved: u64 = inputs.iter().map(|text| estimate_tokens(text)).sum();
        self.take_budget(model, reserved).await?;
        let mut body = serde_json::json!({
            "model": model,
            "input": inputs,
            "encoding_format": "float",
        });
        if let Some(dimensions) = dimensions {
            body["dimensions"] = Value::from(dimensions);
        }
        let answer: WireEmbeddings = self
            .within_timeout(async {
                let response = self
                    .post(EMBEDDINGS_PATH, &body, model, "application/json")
                    .await?;
                response
                    .json()
                    .await
                    .map_err(|error| self.http_error(error, model))
            })
            .await?;
        let usage = answer.usage.map(|usage| Usage {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: 0,
        });
        self.settle(model, reserved, usage.map_or(reserved, |u| u.total()))
            .await;
        let mut data = answer.data;
        if data.len() != inputs.len() {
            return Err(AiError::Embedding {
                model: model.to_owned(),
                reason: format!(
                    "provider `{}` returned {} vectors for {} inputs",
                    self.name(),
                    data.len(),
                    inputs.len()
                ),
            });
        }
        data.sort_by_key(|item| item.index);
        Ok((data.into_iter().map(|item| item.embedding).collect(), usage))
    }

    /// Takes the call out of the model's budget, waiting when allowed.
    async fn take_budget(&self, model: &str, tokens: u64) -> Result<(), AiError> {
        let config = &self.inner.config;
        let budget = config.budget_for(model);
        if budget.is_unlimited() {
            return Ok(());
        }
        let key = BudgetKey {
            provider: config.name().to_owned(),
            model: model.to_owned(),
        };
        let refused = match self
            .inner
            .limiter
            .reserve(&key, budget, tokens, config.budget_wait())
            .await
        {
            Ok(wait) => {
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                return Ok(());
            }
            Err(refused) => refused,
        };
        metrics::counter!(
            names::BUDGET_REFUSALS,
            "provider" => config.name().to_owned(),
            "model" => self.inner.labels.label(model),
        )
        .increment(1);
        Err(match refused {
            OverBudget::TooLarge { tokens, tpm } => self.failed(
                None,
                format!(
                    "the request reserves {tokens} tokens (prompt estimate plus max_tokens), \
                     more than the whole tokens-per-minute budget of {tpm} for model `{model}`; \
                     lower max_tokens or raise the budget"
                ),
            ),
            OverBudget::Wait(wait) => AiError::RateLimited {
                provider: config.name().to_owned(),
                model: model.to_owned(),
                retry_after: Some(wait),
            },
        })
    }

    /// Charges tokens used beyond the reservation.
    async fn settle(&self, model: &str, reserved: u64, used: u64) {
        let budget = self.inner.config.budget_for(model);
        if used > reserved && budget.tpm.is_some() {
            let key = BudgetKey {
                provider: self.name().to_owned(),
                model: model.to_owned(),
            };
            self.inner
                .limiter
                .charge(&key, budget, used - reserved)
                .await;
        }
    }

    /// `fut` within the provider's timeout.
    async fn within_timeout<T>(
        &self,
        fut: impl Future<Output = Result<T, AiError>>,
    ) -> Result<T, AiError> {
        let after = self.inner.config.timeout();
        tokio::time::timeout(after, fut)
            .await
            .unwrap_or_else(|_| Err(self.timed_out(after)))
    }

    fn timed_out(&self, after: Duration) -> AiError {
        AiError::Timeout {
            provider: self.name().to_owned(),
            after,
        }
    }

    /// POSTs `body` to `path` and returns a 2xx response with its body
    /// unread; a 500 is tried again as configured, any other failure
    /// becomes an error.
    async fn post(
        &self,
        path: &str,
        body: &Value,
        model: &str,
        accept: &'static str,
    ) -> Result<HttpResponse, AiError> {
        let bytes = Bytes::from(serde_json::to_vec(body).map_err(|error| {
            self.failed(None, format!("the request could not be encoded: {error}"))
        })?);
        let uri: Uri = self
            .inner
            .config
            .url(path)
            .parse()
            .map_err(|_| AiError::InvalidConfig {
                field: "base_url",
                expected: "a base URL that forms valid request URIs",
                found: self.inner.config.base_url().redacted(),
            })?;
        let mut server_errors = 0;
        loop {
            let mut request = Request::new(bytes.clone());
            *request.method_mut() = Method::POST;
            *request.uri_mut() = uri.clone();
            let headers = request.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(header::ACCEPT, HeaderValue::from_static(accept));
            if let Some(authorization) = &self.inner.authorization {
                headers.insert(header::AUTHORIZATION, authorization.clone());
            }
            // A chat completion changes nothing on the server: sending it
            // again after a 429 or a reset costs tokens, not correctness.
            request.extensions_mut().insert(RetryNonIdempotent);
            let response = self
                .inner
                .http
                .send(request)
                .await
                .map_err(|error| self.http_error(error, model))?;
            let status = response.status();
            if status.is_success() {
                return Ok(response);
            }
            if status == StatusCode::INTERNAL_SERVER_ERROR
                && server_errors < self.inner.config.server_error_retries()
            {
                server_errors += 1;
                drop(response);
                tokio::time::sleep(server_error_backoff(server_errors)).await;
                continue;
            }
            return Err(self.status_error(response, model).await);
        }
    }

    /// The error for a non-2xx answer, with the server's message (key
    /// scrubbed, cut short).
    async fn status_error(&self, response: HttpResponse, model: &str) -> AiError {
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response.bytes().await.unwrap_or_default();
        if status == StatusCode::TOO_MANY_REQUESTS {
            return AiError::RateLimited {
                provider: self.name().to_owned(),
                model: model.to_owned(),
                retry_after,
            };
        }
        let message = serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|json| error_message(&json))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        let reason = if message.trim().is_empty() {
            status.canonical_reason().unwrap_or("no message").to_owned()
        } else {
            message
        };
        self.failed(Some(status.as_u16()), reason)
    }

    /// An [`AiError::Provider`] whose reason has the key scrubbed and is cut
    /// to a readable length.
    pub(crate) fn failed(&self, status: Option<u16>, reason: String) -> AiError {
        let mut reason = match self.inner.config.api_key() {
            Some(key) => key.scrub(&reason),
            None => reason,
        };
        if let Some((cut, _)) = reason.char_indices().nth(MAX_REASON_CHARS) {
            reason.truncate(cut);
            reason.push('…');
        }
        AiError::Provider {
            provider: self.name().to_owned(),
            status,
            reason,
        }
    }

    /// An error of the HTTP client as an [`AiError`] naming the provider.
    fn http_error(&self, error: HttpError, model: &str) -> AiError {
        match error {
            HttpError::Timeout { timeout, .. } => self.timed_out(timeout),
            HttpError::DeadlineExceeded { deadline, .. } => self.timed_out(deadline),
            HttpError::RateLimited { .. } => AiError::RateLimited {
                provider: self.name().to_owned(),
                model: model.to_owned(),
                retry_after: None,
            },
            HttpError::Status { status, .. } => {
                self.failed(Some(status.as_u16()), error.to_string())
            }
            other => self.failed(None, other.to_string()),
        }
    }

    /// Counts a finished call (not streams: see [`OpenStream::finish`]).
    fn record(&self, model: &str, result: &Result<Option<Usage>, &AiError>, started: Instant) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(error) => outcome_of(error),
        };
        let provider = self.name().to_owned();
        metrics::counter!(names::REQUESTS, "provider" => provider.clone(), "model" => model.to_owned(), "outcome" => outcome)
            .increment(1);
        if let Ok(usage) = result {
            metrics::histogram!(names::DURATION, "provider" => provider.clone(), "model" => model.to_owned())
                .record(started.elapsed().as_secs_f64());
            if let Some(usage) = usage {
                self.record_tokens(model, *usage);
            }
        }
    }

    fn record_stream(
        &self,
        model: &str,
        outcome: &'static str,
        error: Option<&AiError>,
        elapsed: Option<Duration>,
    ) {
        let outcome = error.map_or(outcome, outcome_of);
        let provider = self.name().to_owned();
        metrics::counter!(names::REQUESTS, "provider" => provider.clone(), "model" => model.to_owned(), "outcome" => outcome)
            .increment(1);
        if let Some(elapsed) = elapsed {
            metrics::histogram!(names::DURATION, "provider" => provider, "model" => model.to_owned())
                .record(elapsed.as_secs_f64());
        }
    }

    fn record_tokens(&self, model: &str, usage: Usage) {
        for (kind, tokens) in [
            ("prompt", usage.prompt_tokens),
            ("completion", usage.completion_tokens),
        ] {
            metrics::counter!(names::TOKENS, "provider" => self.name().to_owned(), "model" => model.to_owned(), "kind" => kind)
                .increment(tokens);
        }
        let cost = super::PriceTable::global().cost_microdollars(model, usage);
        metrics::counter!(names::COST, "provider" => self.name().to_owned(), "model" => model.to_owned())
            .increment(cost);
    }
}

fn outcome_of(error: &AiError) -> &'static str {
    match error {
        AiError::RateLimited { .. } => "rate_limited",
        AiError::Timeout { .. } => "timeout",
        _ => "error",
    }
}

fn describe_metrics() {
    metrics::describe_counter!(
        names::REQUESTS,
        "Calls to model providers by provider, model and outcome (ok, rate_limited, timeout, error, cancelled)."
    );
    metrics::describe_histogram!(
        names::DURATION,
        metrics::Unit::Seconds,
        "Time to a whole answer from a model provider (a stream: to its end)."
    );
    metrics::describe_histogram!(
        names::FIRST_TOKEN,
        metrics::Unit::Seconds,
        "Time to the first streamed piece of an answer."
    );
    metrics::describe_counter!(
        names::TOKENS,
        "Tokens counted by model providers, by kind (prompt, completion)."
    );
    metrics::describe_counter!(
        names::BUDGET_REFUSALS,
        "Calls refused by the local requests- or tokens-per-minute budget."
    );
    metrics::describe_counter!(
        names::COST,
        "Estimated cost of model calls in micro-dollars, from the price table (PERF_AI_PRICES)."
    );
}

/// Wait before retrying a 500: full jitter under 250 ms doubled per retry,
/// at most 4 s.
fn server_error_backoff(retry: u32) -> Duration {
    let ceiling = Duration::from_millis(250)
        .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
        .min(Duration::from_secs(4));
    ceiling.mul_f64(rand::rng().random_range(0.0..=1.0))
}

/// `retry-after-ms` (Azure) or `retry-after` (seconds or an HTTP date).
fn retry_after(headers: &http::HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = text("retry-after")?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// `error.message` (OpenAI), `error` as a string (Ollama, TGI) or `message`.
fn error_message(json: &Value) -> Option<String> {
    json.pointer("/error/message")
        .or_else(|| json.get("error").filter(|e| e.is_string()))
        .or_else(|| json.get("message"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Model labels for metrics: the configured models, then the first few
/// others seen, then `other`, so a caller passing arbitrary model names
/// cannot grow the series without bound.
struct ModelLabels {
    known: Mutex<Vec<String>>,
    configured: usize,
}

impl ModelLabels {
    fn new(configured: &[String]) -> Self {
        ModelLabels {
            known: Mutex::new(configured.to_vec()),
            configured: configured.len(),
        }
    }

    fn label(&self, model: &str) -> String {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        if known.iter().any(|m| m == model) {
            return model.to_owned();
        }
        if known.len() < self.configured + MAX_MODEL_LABELS {
            known.push(model.to_owned());
            return model.to_owned();
        }
        "other".to_owned()
    }
}

/// `/embeddings` answer.
#[derive(serde::Deserialize)]
struct WireEmbeddings {
    #[serde(default)]
    data: Vec<WireEmbedding>,
    #[serde(default)]
    usage: Option<WireEmbeddingUsage>,
}

#[derive(serde::Deserialize)]
struct WireEmbedding {
    #[serde(default)]
    index: usize,
    embedding: Vec<f32>,
}

#[derive(serde::Deserialize)]
struct WireEmbeddingUsage {
    #[serde(default)]
    prompt_tokens: u64,
}

/// Where a [`ChatStream`] is.
enum Streaming {
    Start {
        provider: Provider,
        request: Box<ChatRequest>,
    },
    Open(Box<OpenStream>),
    /// Refused before starting; the error is the stream's only item.
    Refused(AiError),
    Done,
}

/// A stream whose headers have arrived.
struct OpenStream {
    provider: Provider,
    model: String,
    label: String,
    prompt_estimate: u64,
    reserved: u64,
    body: Pin<Box<dyn Stream<Item = Result<Bytes, HttpError>> + Send>>,
    decoder: SseDecoder,
    /// Pieces decoded but not yet handed out.
    queue: VecDeque<ChatChunk>,
    /// `[DONE]` seen: nothing more is read.
    done: bool,
    answer_chars: u64,
    usage: Option<Usage>,
    started: Instant,
    first_piece: Option<Duration>,
    recorded: bool,
}

impl OpenStream {
    async fn next(&mut self) -> Option<Result<ChatChunk, AiError>> {
        loop {
            if let Some(chunk) = self.queue.pop_front() {
                if self.first_piece.is_none() {
                    let elapsed = self.started.elapsed();
                    self.first_piece = Some(elapsed);
                    metrics::histogram!(names::FIRST_TOKEN, "provider" => self.provider.name().to_owned(), "model" => self.label.clone())
                        .record(elapsed.as_secs_f64());
                }
                return Some(Ok(chunk));
            }
            if self.done {
                return None;
            }
            let after = self.provider.inner.config.timeout();
            let bytes = match tokio::time::timeout(after, self.body.next()).await {
                Err(_) => return Some(Err(self.provider.timed_out(after))),
                Ok(Some(Ok(bytes))) => bytes,
                Ok(Some(Err(error))) => {
                    return Some(Err(self.provider.http_error(error, &self.model)));
                }
                Ok(None) => {
                    let reason = if self.decoder.holds_partial_event() {
                        "the stream was cut in the middle of an event; the answer is incomplete"
                    } else {
                        "the stream ended before `data: [DONE]`; the answer is incomplete"
                    };
                    return Some(Err(self.provider.failed(None, reason.to_owned())));
                }
            };
            let mut events = Vec::new();
            self.decoder.push(&bytes, |data| events.push(data));
            for data in events {
                if self.done {
                    break;
                }
                if data.trim() == "[DONE]" {
                    self.end().await;
                    continue;
                }
                let json: Value = match serde_json::from_str(&data) {
                    Ok(json) => json,
                    Err(error) => {
                        return Some(Err(self
                            .provider
                            .failed(None, format!("a streamed event is not JSON: {error}"))));
                    }
                };
                if json.get("error").is_some() {
                    let message = error_message(&json)
                        .unwrap_or_else(|| "the provider sent an error event".to_owned());
                    return Some(Err(self.provider.failed(None, message)));
                }
                let Ok(completion) = serde_json::from_value::<WireCompletion>(json) else {
                    return Some(Err(self.provider.failed(
                        None,
                        "a streamed event is not a chat completion chunk".to_owned(),
                    )));
                };
                if let Some(chunk) = completion.into_chunk(self.provider.name()) {
                    self.answer_chars += chunk.delta.chars().count() as u64;
                    if chunk.usage.is_some() {
                        self.usage = chunk.usage;
                    }
                    self.queue.push_back(chunk);
                }
            }
        }
    }

    /// The answer is complete: settles the budget with the usage (or an
    /// estimate when the server sent none).
    async fn end(&mut self) {
        self.done = true;
        let used = self.usage.map_or_else(
            || self.prompt_estimate + self.answer_chars.div_ceil(4),
            |usage| usage.total(),
        );
        self.provider.settle(&self.model, self.reserved, used).await;
        // Read what already arrived after `[DONE]` (the end of the body, as
        // a rule) without waiting, so the connection goes back to the pool
        // rather than being closed with an unfinished body.
        while let Some(Some(Ok(_))) = self.body.next().now_or_never() {}
    }

    /// Records the stream's outcome (`ok`, `error`, `cancelled`) once.
    fn finish(&mut self, outcome: &'static str, error: Option<&AiError>) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        let elapsed = (outcome == "ok").then(|| self.started.elapsed());
        self.provider
            .record_stream(&self.label, outcome, error, elapsed);
        if outcome == "ok"
            && let Some(usage) = self.usage
        {
            self.provider.record_tokens(&self.label, usage);
        }
    }
}

impl Drop for OpenStream {
    /// A stream dropped before `[DONE]` was given up by the caller; one
    /// dropped after it, without reading the end, was complete.
    fn drop(&mut self) {
        let outcome = if self.done { "ok" } else { "cancelled" };
        self.finish(outcome, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_milliseconds_seconds_and_dates() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut map = http::HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, value.parse().expect("value"));
            }
            map
        };
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")])),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&headers(&[
                ("retry-after-ms", "1500"),
                ("retry-after", "9")
            ])),
            Some(Duration::from_millis(1500))
        );
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        let wait = retry_after(&headers(&[("retry-after", &later)])).expect("date");
        assert!(wait > Duration::from_secs(100) && wait <= Duration::from_secs(120));
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
    }

    #[test]
    fn server_messages_are_found_in_the_usual_places() {
        let found = |text: &str| error_message(&serde_json::from_str(text).expect("json"));
        assert_eq!(
            found(r#"{"error":{"message":"bad model","type":"x"}}"#).as_deref(),
            Some("bad model")
        );
        assert_eq!(
            found(r#"{"error":"model not found"}"#).as_deref(),
            Some("model not found")
        );
        assert_eq!(
            found(r#"{"message":"overloaded"}"#).as_deref(),
            Some("overloaded")
        );
        assert_eq!(found(r#"{"detail":"x"}"#), None);
    }

    #[test]
    fn model_labels_are_bounded() {
        let labels = ModelLabels::new(&["a".to_owned()]);
        assert_eq!(labels.label("a"), "a");
        for i in 0..MAX_MODEL_LABELS {
            assert_eq!(labels.label(&format!("m{i}")), format!("m{i}"));
        }
        assert_eq!(labels.label("one-too-many"), "other");
        assert_eq!(labels.label("m0"), "m0");
        assert_eq!(labels.label("a"), "a");
    }

    #[test]
    fn server_error_backoff_grows_and_is_capped() {
        for _ in 0..100 {
            assert!(server_error_backoff(1) <= Duration::from_millis(250));
            assert!(server_error_backoff(10) <= Duration::from_secs(4));
        }
    }
}
