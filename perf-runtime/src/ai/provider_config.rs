//! [`ProviderConfig`]: where a model provider is, its key, its budgets and
//! its timeout; built in code or read from environment variables.
//!
//! # Environment variables
//!
//! | variable | meaning |
//! |---|---|
//! | `OPENAI_API_KEY` | key of the provider `openai`; setting it defines that provider |
//! | `OPENAI_BASE_URL` | base URL of `openai` (default `https://api.openai.com/v1`); setting it alone defines a keyless `openai` (a local Ollama or vLLM) |
//! | `PERF_AI_PROVIDERS` | further providers, by name, comma-separated: `ollama,azure-eu` (lowercase letters, digits, `-`, `_`) |
//! | `PERF_AI_<NAME>_BASE_URL` | base URL of provider `<name>`, up to the version (`http://127.0.0.1:11434/v1`); required (for `openai`: `OPENAI_BASE_URL` or the default) |
//! | `PERF_AI_<NAME>_API_KEY` | its key, sent as `Authorization: Bearer`; optional (for `openai`: `OPENAI_API_KEY`) |
//! | `PERF_AI_<NAME>_MODELS` | the models it serves, comma-separated, the default first |
//! | `PERF_AI_<NAME>_TIMEOUT` | time to a whole answer or between two streamed pieces: `30` (seconds), `250ms`, `30s`, `2m` (default 60 s) |
//! | `PERF_AI_<NAME>_RPM` | requests per minute, per model |
//! | `PERF_AI_<NAME>_TPM` | tokens per minute, per model |
//! | `PERF_AI_<NAME>_BUDGET_WAIT` | how long a call over budget waits for room before it is refused (default 0: refused at once, so a fallback takes over) |
//!
//! `<NAME>` is the name in upper case with `-` written `_`
//! (`azure-eu` → `PERF_AI_AZURE_EU_BASE_URL`). An empty variable counts as
//! unset. A bad value is an [`AiError::InvalidEnv`] naming the variable,
//! what is expected and what was found; a key is never shown.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use super::{AiError, Budget};
use crate::config::SecretUrl;

/// Name of the variable holding the `openai` provider's key.
pub const OPENAI_API_KEY: &str = "OPENAI_API_KEY";
/// Name of the variable holding the `openai` provider's base URL.
pub const OPENAI_BASE_URL: &str = "OPENAI_BASE_URL";
/// Name of the variable listing further providers.
pub const PERF_AI_PROVIDERS: &str = "PERF_AI_PROVIDERS";
/// The base URL of OpenAI's API.
pub const OPENAI_DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// An API key. It never prints: `Debug` shows `ApiKey(***)` and there is no
/// `Display`; [`expose`](Self::expose) hands it to the HTTP header only.
///
/// ```
/// use perf_runtime::ai::ApiKey;
///
/// let key = ApiKey::new("sk-canary-123");
/// assert_eq!(format!("{key:?}"), "ApiKey(***)");
/// assert_eq!(key.expose(), "sk-canary-123");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps `key`.
    pub fn new(key: impl Into<String>) -> Self {
        ApiKey(key.into())
    }

    /// The key itself, for the `Authorization` header. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key replaced by `***`: for
    /// messages from a server, which may quote the key it refused.
    pub(crate) fn scrub(&self, text: &str) -> String {
        if self.0.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.0, "***")
        }
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

impl From<String> for ApiKey {
    fn from(key: String) -> Self {
        ApiKey(key)
    }
}

impl From<&str> for ApiKey {
    fn from(key: &str) -> Self {
        ApiKey(key.to_owned())
    }
}

/// One OpenAI-compatible provider: OpenAI itself, Azure's OpenAI endpoint,
/// Ollama, vLLM, text-generation-inference, LiteLLM, ... From
/// [`ProviderConfig::builder`] or [`ProviderConfig::list_from_env`].
///
/// ```
/// use perf_runtime::ai::{Budget, ProviderConfig};
/// use std::time::Duration;
///
/// let config = ProviderConfig::builder("openai", "https://api.openai.com/v1")
///     .api_key("sk-canary-123")
///     .models(["gpt-4o-mini", "gpt-4o"])
///     .timeout(Duration::from_secs(30))
///     .budget(Budget::per_minute(Some(500), Some(200_000)))
///     .model_budget("gpt-4o", Budget::per_minute(Some(100), Some(30_000)))
///     .build()
///     .unwrap();
/// assert_eq!(config.budget_for("gpt-4o").rpm, Some(100));
/// assert!(!format!("{config:?}").contains("sk-canary"));
/// ```
#[derive(Clone, Debug)]
pub struct ProviderConfig {
    name: String,
    base_url: SecretUrl,
    api_key: Option<ApiKey>,
    models: Vec<String>,
    timeout: Duration,
    budget: Budget,
    model_budgets: HashMap<String, Budget>,
    budget_wait: Duration,
    server_error_retries: u32,
    stream_usage: bool,
}

impl ProviderConfig {
    /// Settings for the provider `name` (lowercase letters, digits, `-`,
    /// `_`: it becomes a metric label) at `base_url`, the URL up to the API
    /// version (`https://api.openai.com/v1`).
    pub fn builder(name: impl Into<String>, base_url: impl Into<String>) -> ProviderConfigBuilder {
        ProviderConfigBuilder {
            name: name.into(),
            base_url: base_url.into(),
            api_key: None,
            models: Vec::new(),
            timeout: Duration::from_secs(60),
            budget: Budget::UNLIMITED,
            model_budgets: HashMap::new(),
            budget_wait: Duration::ZERO,
            server_error_retries: 1,
            stream_usage: true,
        }
    }

    /// The configured name, used in errors, logs and metric labels.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The base URL (any password in it masked when printed).
    pub fn base_url(&self) -> &SecretUrl {
        &self.base_url
    }

    /// The key, if the provider needs one.
    pub fn api_key(&self) -> Option<&ApiKey> {
        self.api_key.as_ref()
    }

    /// The models it serves, the default first (may be empty: any model).
    pub fn models(&self) -> &[String] {
        &self.models
    }

    /// The default model: the first of [`Self::models`].
    pub fn default_model(&self) -> Option<&str> {
        self.models.first().map(String::as_str)
    }

    /// Time allowed for a whole answer, or for the headers and then each
    /// piece of a streamed one.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The budget of `model`: its own if set, else the provider's.
    pub fn budget_for(&self, model: &str) -> Budget {
        self.model_budgets
            .get(model)
            .copied()
            .unwrap_or(self.budget)
    }

    /// How long a call over budget may wait for room.
    pub fn budget_wait(&self) -> Duration {
        self.budget_wait
    }

    /// How many times a `500 Internal Server Error` is tried again.
    pub fn server_error_retries(&self) -> u32 {
        self.server_error_retries
    }

    /// Whether streamed requests ask for the usage in a last piece
    /// (`stream_options.include_usage`).
    pub fn stream_usage(&self) -> bool {
        self.stream_usage
    }

    /// `base_url` + `path` (`/chat/completions`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url.expose().trim_end_matches('/'))
    }

    /// Every provider the environment defines (see the module docs): `openai`
    /// first when defined, then those of `PERF_AI_PROVIDERS` in order.
    ///
    /// # Errors
    ///
    /// [`AiError::InvalidEnv`] naming the first variable that is missing or wrong.
    pub fn list_from_env() -> Result<Vec<ProviderConfig>, AiError> {
        Self::list_from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`Self::list_from_env`], reading variables through `lookup`
    /// (tests, other configuration sources).
    ///
    /// # Errors
    ///
    /// As [`Self::list_from_env`].
    pub fn list_from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Vec<ProviderConfig>, AiError> {
        let env = Env(&lookup);
        let mut names: Vec<String> = Vec::new();
        if env.text(OPENAI_API_KEY).is_some() || env.text(OPENAI_BASE_URL).is_some() {
            names.push("openai".to_owned());
        }
        if let Some(list) = env.text(PERF_AI_PROVIDERS) {
            for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if !valid_name(name) {
                    return Err(env.invalid(PERF_AI_PROVIDERS, &list, expected::NAMES));
                }
                if names.iter().any(|n| n == name) {
                    if name == "openai" {
                        continue;
                    }
                    return Err(env.invalid(PERF_AI_PROVIDERS, &list, expected::NAMES));
                }
                names.push(name.to_owned());
            }
        }
        names.iter().map(|name| env.provider(name)).collect()
    }
}

/// Settings of a [`ProviderConfig`], checked in [`build`](Self::build).
#[derive(Clone, Debug)]
#[must_use]
pub struct ProviderConfigBuilder {
    name: String,
    base_url: String,
    api_key: Option<ApiKey>,
    models: Vec<String>,
    timeout: Duration,
    budget: Budget,
    model_budgets: HashMap<String, Budget>,
    budget_wait: Duration,
    server_error_retries: u32,
    stream_usage: bool,
}

impl ProviderConfigBuilder {
    /// The key, sent as `Authorization: Bearer <key>` (default none, for
    /// local servers).
    pub fn api_key(mut self, key: impl Into<ApiKey>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// The models served, the default first (default none: any model).
    pub fn models<I, S>(mut self, models: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.models = models.into_iter().map(Into::into).collect();
        self
    }

    /// Time for a whole answer, or for the headers and then each piece of
    /// a streamed one (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The budget of every model without its own (default unlimited).
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// The budget of `model`, in place of the provider's.
    pub fn model_budget(mut self, model: impl Into<String>, budget: Budget) -> Self {
        self.model_budgets.insert(model.into(), budget);
        self
    }

    /// How long a call over budget waits for room before it is refused
    /// with [`AiError::RateLimited`] (default zero: refused at once, so a
    /// [`FallbackChain`](super::FallbackChain) moves on without delay).
    pub fn budget_wait(mut self, wait: Duration) -> Self {
        self.budget_wait = wait;
        self
    }

    /// How many times a `500` answer is tried again (default 1). The shared
    /// HTTP client already retries 429, 502, 503 and 504 with backoff,
    /// `Retry-After` and its retry budget; it leaves 500 alone because for
    /// most services it means a bad request, while model providers use it
    /// for passing faults and ask clients to retry.
    pub fn server_error_retries(mut self, retries: u32) -> Self {
        self.server_error_retries = retries;
        self
    }

    /// Whether streamed requests ask for the usage in a last piece (default
    /// true; turn off for servers that refuse `stream_options`). Without it
    /// the budget counts estimated tokens.
    pub fn stream_usage(mut self, on: bool) -> Self {
        self.stream_usage = on;
        self
    }

    /// The configuration.
    ///
    /// # Errors
    ///
    /// [`AiError::InvalidConfig`] naming the setting that cannot work.
    pub fn build(self) -> Result<ProviderConfig, AiError> {
        if !valid_name(&self.name) {
            return Err(invalid("name", expected::NAME, self.name));
        }
        let base_url = parse_base_url(&self.base_url)
            .map_err(|expected| invalid("base_url", expected, shown_url(&self.base_url)))?;
        if self.timeout.is_zero() {
            return Err(invalid("timeout", expected::TIMEOUT, "0s".to_owned()));
        }
        if let Some(key) = &self.api_key
            && http::HeaderValue::from_str(&format!("Bearer {}", key.expose())).is_err()
        {
            return Err(invalid("api_key", expected::KEY, "<hidden>".to_owned()));
        }
        let budgets = std::iter::once(&self.budget).chain(self.model_budgets.values());
        for budget in budgets {
            if budget.rpm == Some(0) || budget.tpm == Some(0) {
                return Err(invalid("budget", expected::BUDGET, format!("{budget:?}")));
            }
        }
        if let Some(model) = self.models.iter().find(|m| m.trim().is_empty()) {
            return Err(invalid("models", expected::MODELS, model.clone()));
        }
        Ok(ProviderConfig {
            name: self.name,
            base_url,
            api_key: self.api_key,
            models: self.models,
            timeout: self.timeout,
            budget: self.budget,
            model_budgets: self.model_budgets,
            budget_wait: self.budget_wait,
            server_error_retries: self.server_error_retries,
            stream_usage: self.stream_usage,
        })
    }
}

fn invalid(field: &'static str, expected: &'static str, found: String) -> AiError {
    AiError::InvalidConfig {
        field,
        expected,
        found,
    }
}

/// What each setting accepts, as error messages say it.
mod expected {
    pub(super) const NAME: &str =
        "a provider name of lowercase letters, digits, `-` and `_` (it becomes a metric label)";
    pub(super) const NAMES: &str =
        "distinct provider names of lowercase letters, digits, `-` and `_`, comma-separated";
    pub(super) const BASE_URL: &str =
        "an absolute http:// or https:// URL up to the API version, e.g. http://127.0.0.1:11434/v1";
    pub(super) const TIMEOUT: &str =
        "a duration above zero: seconds (`30`) or with a unit (`250ms`, `30s`, `2m`)";
    pub(super) const DURATION: &str =
        "a duration: seconds (`30`) or with a unit (`250ms`, `30s`, `2m`)";
    pub(super) const KEY: &str = "a key of visible ASCII characters";
    pub(super) const OPENAI_KEY: &str =
        "an API key: api.openai.com needs one (or set OPENAI_BASE_URL to a keyless server)";
    pub(super) const BUDGET: &str = "budgets above zero (leave a limit unset for none)";
    pub(super) const PER_MINUTE: &str = "a whole number above zero";
    pub(super) const MODELS: &str = "model names, comma-separated, none empty";
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn parse_base_url(raw: &str) -> Result<SecretUrl, &'static str> {
    let url: SecretUrl = raw.trim().parse().map_err(|_| expected::BASE_URL)?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(expected::BASE_URL);
    }
    Ok(url)
}

/// A URL fit for an error message: any password masked.
fn shown_url(raw: &str) -> String {
    match raw.parse::<SecretUrl>() {
        Ok(url) => url.redacted(),
        Err(_) if raw.contains('@') => "<hidden: the value may hold a password>".to_owned(),
        Err(_) => raw.to_owned(),
    }
}

/// A duration: whole seconds, or a number with `ms`, `s`, `m` or `h`.
pub(super) fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let (number, unit) = match raw.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => raw.split_at(at),
        None => (raw, "s"),
    };
    let number: f64 = number.parse().ok()?;
    let seconds = match unit.trim() {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    (0.0..1e9)
        .contains(&seconds)
        .then(|| Duration::from_secs_f64(seconds))
}

/// Variables read through a lookup; empty means unset.
struct Env<'a>(&'a dyn Fn(&str) -> Option<String>);

impl Env<'_> {
    fn text(&self, variable: &str) -> Option<String> {
        (self.0)(variable).filter(|value| !value.trim().is_empty())
    }

    fn invalid(&self, variable: &str, found: &str, expected: &'static str) -> AiError {
        AiError::InvalidEnv {
            variable: variable.to_owned(),
            expected,
            found: found.to_owned(),
        }
    }

    fn per_minute<T: std::str::FromStr + PartialEq + Default>(
        &self,
        variable: &str,
    ) -> Result<Option<T>, AiError> {
        let Some(raw) = self.text(variable) else {
            return Ok(None);
        };
        match raw.trim().parse::<T>() {
            Ok(n) if n != T::default() => Ok(Some(n)),
            _ => Err(self.invalid(variable, &raw, expected::PER_MINUTE)),
        }
    }

    fn duration(
        &self,
        variable: &str,
        expected: &'static str,
    ) -> Result<Option<Duration>, AiError> {
        let Some(raw) = self.text(variable) else {
            return Ok(None);
        };
        parse_duration(&raw)
            .map(Some)
            .ok_or_else(|| self.invalid(variable, &raw, expected))
    }

    /// The provider `name` from its `PERF_AI_<NAME>_*` variables (and the
    /// `OPENAI_*` ones for `openai`).
    fn provider(&self, name: &str) -> Result<ProviderConfig, AiError> {
        let prefix = format!("PERF_AI_{}_", name.to_ascii_uppercase().replace('-', "_"));
        let var = |suffix: &str| format!("{prefix}{suffix}");
        let is_openai = name == "openai";
        let url_var = var("BASE_URL");
        let (url_var, base_url) = match self.text(&url_var) {
            Some(url) => (url_var, url),
            None if is_openai => match self.text(OPENAI_BASE_URL) {
                Some(url) => (OPENAI_BASE_URL.to_owned(), url),
                None => (
                    OPENAI_BASE_URL.to_owned(),
                    OPENAI_DEFAULT_BASE_URL.to_owned(),
                ),
            },
            None => return Err(self.invalid(&url_var, "<unset>", expected::BASE_URL)),
        };
        if let Err(expected) = parse_base_url(&base_url) {
            return Err(self.invalid(&url_var, &shown_url(&base_url), expected));
        }
        let key_var = var("API_KEY");
        let (key_var, api_key) = match self.text(&key_var) {
            Some(key) => (key_var, Some(key)),
            None if is_openai => (OPENAI_API_KEY.to_owned(), self.text(OPENAI_API_KEY)),
            None => (key_var, None),
        };
        if is_openai && api_key.is_none() && base_url.trim() == OPENAI_DEFAULT_BASE_URL {
            return Err(self.invalid(OPENAI_API_KEY, "<unset>", expected::OPENAI_KEY));
        }
        let mut builder = ProviderConfig::builder(name, base_url.trim());
        if let Some(key) = api_key {
            let key = key.trim().to_owned();
            if http::HeaderValue::from_str(&format!("Bearer {key}")).is_err() {
                return Err(self.invalid(&key_var, "<hidden>", expected::KEY));
            }
            builder = builder.api_key(key);
        }
        if let Some(models) = self.text(&var("MODELS")) {
            builder = builder.models(
                models
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned),
            );
        }
        let timeout_var = var("TIMEOUT");
        if let Some(timeout) = self.duration(&timeout_var, expected::TIMEOUT)? {
            if timeout.is_zero() {
                let raw = self.text(&timeout_var).unwrap_or_default();
                return Err(self.invalid(&timeout_var, &raw, expected::TIMEOUT));
            }
            builder = builder.timeout(timeout);
        }
        let rpm = self.per_minute::<u32>(&var("RPM"))?;
        let tpm = self.per_minute::<u64>(&var("TPM"))?;
        builder = builder.budget(Budget::per_minute(rpm, tpm));
        if let Some(wait) = self.duration(&var("BUDGET_WAIT"), expected::DURATION)? {
            builder = builder.budget_wait(wait);
        }
        builder.build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Vec<ProviderConfig>, AiError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ProviderConfig::list_from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn openai_and_listed_providers_are_read() {
        let providers = from(&[
            ("OPENAI_API_KEY", "sk-canary-env-1"),
            ("PERF_AI_PROVIDERS", "ollama, azure-eu"),
            ("PERF_AI_OLLAMA_BASE_URL", "http://127.0.0.1:11434/v1/"),
            ("PERF_AI_OLLAMA_MODELS", "llama3.2, qwen2.5"),
            ("PERF_AI_OLLAMA_TIMEOUT", "250ms"),
            ("PERF_AI_OLLAMA_RPM", "60"),
            (
                "PERF_AI_AZURE_EU_BASE_URL",
                "https://eu.example.com/openai/v1",
            ),
            ("PERF_AI_AZURE_EU_API_KEY", "az-canary-2"),
            ("PERF_AI_AZURE_EU_TPM", "90000"),
            ("PERF_AI_AZURE_EU_BUDGET_WAIT", "2s"),
        ])
        .expect("valid");
        let names: Vec<_> = providers.iter().map(ProviderConfig::name).collect();
        assert_eq!(names, ["openai", "ollama", "azure-eu"]);
        let [openai, ollama, azure] = &providers[..] else {
            panic!("three providers")
        };
        assert_eq!(
            openai.url("/chat/completions"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            openai.api_key().map(ApiKey::expose),
            Some("sk-canary-env-1")
        );
        assert_eq!(
            ollama.url("/embeddings"),
            "http://127.0.0.1:11434/v1/embeddings"
        );
        assert_eq!(ollama.models(), ["llama3.2", "qwen2.5"]);
        assert_eq!(ollama.default_model(), Some("llama3.2"));
        assert_eq!(ollama.timeout(), Duration::from_millis(250));
        assert_eq!(ollama.budget_for("any"), Budget::per_minute(Some(60), None));
        assert!(ollama.api_key().is_none());
        assert_eq!(azure.budget_for("m").tpm, Some(90_000));
        assert_eq!(azure.budget_wait(), Duration::from_secs(2));
        let printed = format!("{providers:?}");
        assert!(
            !printed.contains("canary"),
            "no key in Debug output: {printed}"
        );
    }

    #[test]
    fn bad_values_name_the_variable_and_what_is_expected() {
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
        let cases: &[Case<'_>] = &[
            (
                &[("PERF_AI_PROVIDERS", "Ollama")],
                "PERF_AI_PROVIDERS",
                "lowercase",
            ),
            (
                &[("PERF_AI_PROVIDERS", "a,a")],
                "PERF_AI_PROVIDERS",
                "distinct",
            ),
            (
                &[("PERF_AI_PROVIDERS", "local")],
                "PERF_AI_LOCAL_BASE_URL",
                "<unset>",
            ),
            (
                &[
                    ("PERF_AI_PROVIDERS", "local"),
                    ("PERF_AI_LOCAL_BASE_URL", "ftp://x/v1"),
                ],
                "PERF_AI_LOCAL_BASE_URL",
                "http://",
            ),
            (
                &[("OPENAI_BASE_URL", "localhost:8080")],
                "OPENAI_BASE_URL",
                "absolute",
            ),
            (
                &[("PERF_AI_PROVIDERS", "openai")],
                "OPENAI_API_KEY",
                "needs one",
            ),
            (
                &[("OPENAI_API_KEY", "k"), ("PERF_AI_OPENAI_TIMEOUT", "soon")],
                "PERF_AI_OPENAI_TIMEOUT",
                "250ms",
            ),
            (
                &[("OPENAI_API_KEY", "k"), ("PERF_AI_OPENAI_TIMEOUT", "0")],
                "PERF_AI_OPENAI_TIMEOUT",
                "above zero",
            ),
            (
                &[("OPENAI_API_KEY", "k"), ("PERF_AI_OPENAI_RPM", "0")],
                "PERF_AI_OPENAI_RPM",
                "above zero",
            ),
            (
                &[("OPENAI_API_KEY", "k"), ("PERF_AI_OPENAI_TPM", "-5")],
                "PERF_AI_OPENAI_TPM",
                "whole number",
            ),
        ];
        for (vars, variable, hint) in cases {
            let error = from(vars).expect_err(variable).to_string();
            assert!(
                error.contains(&format!("`{variable}`")) && error.contains(hint),
                "{vars:?}: {error}"
            );
        }
        let error = from(&[("OPENAI_API_KEY", "sk-canary\nsecret")])
            .expect_err("newline in key")
            .to_string();
        assert!(
            error.contains("`OPENAI_API_KEY`") && !error.contains("canary"),
            "{error}"
        );
        let error = from(&[("OPENAI_BASE_URL", "http://u:hunter2@h:port/v1")])
            .expect_err("port is not a number")
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn nothing_configured_means_no_provider_and_a_keyless_local_openai_is_allowed() {
        assert!(from(&[]).expect("empty").is_empty());
        let local = from(&[("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")]).expect("keyless");
        assert_eq!(local.len(), 1);
        assert!(local[0].api_key().is_none());
        let both = from(&[("OPENAI_API_KEY", "k"), ("PERF_AI_PROVIDERS", "openai")]).expect("once");
        assert_eq!(both.len(), 1, "openai listed and implied counts once");
    }

    #[test]
    fn builder_refuses_what_cannot_work() {
        let build = |b: ProviderConfigBuilder| b.build().expect_err("invalid").to_string();
        let base = || ProviderConfig::builder("p", "http://127.0.0.1:1/v1");
        assert!(build(ProviderConfig::builder("P Q", "http://h/v1")).contains("`name`"));
        assert!(build(ProviderConfig::builder("p", "not a url")).contains("`base_url`"));
        assert!(build(base().timeout(Duration::ZERO)).contains("`timeout`"));
        assert!(build(base().budget(Budget::per_minute(Some(0), None))).contains("`budget`"));
        assert!(build(base().models([""])).contains("`models`"));
        let error = build(base().api_key("sk-canary\u{7f}"));
        assert!(
            error.contains("`api_key`") && !error.contains("canary"),
            "{error}"
        );
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("10 parsecs"), None);
    }
}
