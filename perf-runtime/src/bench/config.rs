//! [`BenchmarkConfig`]: what to load, how hard and for how long; checked once
//! in [`BenchmarkConfigBuilder::build`] so that a run never starts with a
//! setting it cannot honour.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{HeaderMap, Method};
use url::Url;

use super::BenchError;
use super::window::WINDOW;

/// The default request timeout: a request without an answer by then counts
/// as a `timeout` error.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The settings of an HTTP benchmark; from [`BenchmarkConfig::builder`].
///
/// Without a [`rate`](BenchmarkConfigBuilder::rate) the run is *closed*:
/// `concurrent_users` virtual users each send a request, wait for the
/// answer, optionally think, and send the next. With a rate it is *open*:
/// requests are due on a fixed schedule whatever the answers, the users are
/// the connections available to send them, and latency is measured from
/// when each request was due (see `docs/bench.md`).
#[derive(Clone)]
pub struct BenchmarkConfig {
    pub(crate) name: String,
    pub(crate) target: Url,
    pub(crate) users: usize,
    pub(crate) duration: Duration,
    pub(crate) method: Method,
    pub(crate) payload: Option<Bytes>,
    pub(crate) headers: HeaderMap,
    pub(crate) request_timeout: Duration,
    pub(crate) think_time: Duration,
    pub(crate) ramp_up: Duration,
    pub(crate) rate: Option<f64>,
    pub(crate) window: Duration,
}

impl BenchmarkConfig {
    /// Starts a configuration named `name` (shown in reports) against
    /// `target_url` (`http://host:port/path?query`). Defaults: 10 users,
    /// 10 s, `GET`, no payload, 30 s request timeout, no think time, no
    /// ramp-up, closed model.
    pub fn builder(
        name: impl Into<String>,
        target_url: impl Into<String>,
    ) -> BenchmarkConfigBuilder {
        BenchmarkConfigBuilder {
            name: name.into(),
            target_url: target_url.into(),
            users: 10,
            duration: Duration::from_secs(10),
            method: Method::GET,
            payload: None,
            headers: Vec::new(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            think_time: Duration::ZERO,
            ramp_up: Duration::ZERO,
            rate: None,
            window: WINDOW,
        }
    }

    /// The same configuration with `users` virtual users (at least 1): how
    /// a stress test steps the load up from one base configuration.
    ///
    /// # Errors
    ///
    /// [`BenchError::InvalidConfig`] for 0 users.
    pub fn with_users(&self, users: usize) -> Result<BenchmarkConfig, BenchError> {
        check_users(users)?;
        Ok(BenchmarkConfig {
            users,
            ..self.clone()
        })
    }

    /// The same configuration measured for `duration` (more than zero).
    ///
    /// # Errors
    ///
    /// [`BenchError::InvalidConfig`] for a zero duration.
    pub fn with_duration(&self, duration: Duration) -> Result<BenchmarkConfig, BenchError> {
        check_duration(duration)?;
        Ok(BenchmarkConfig {
            duration,
            ..self.clone()
        })
    }

    /// The name shown in reports.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The target, printable: no user name, password or query string (an
    /// API key may sit in `?key=`).
    pub fn target_display(&self) -> String {
        display_target(&self.target)
    }

    /// Virtual users: the concurrency of a closed run, the connections
    /// available to an open one.
    pub fn concurrent_users(&self) -> usize {
        self.users
    }

    /// The measured window (ramp-up not included).
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The HTTP method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request body, if any.
    pub fn payload(&self) -> Option<&Bytes> {
        self.payload.as_ref()
    }

    /// Headers added to every request.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// How long a request may take before it counts as a timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// The pause of a closed-model user between an answer and its next request.
    pub fn think_time(&self) -> Duration {
        self.think_time
    }

    /// The period over which users start, kept out of the measured window.
    pub fn ramp_up(&self) -> Duration {
        self.ramp_up
    }

    /// Requests per second of an open-model run; `None` for a closed one.
    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// The length of the report's windows.
    pub fn window(&self) -> Duration {
        self.window
    }
}

impl fmt::Debug for BenchmarkConfig {
    /// Header values and the URL's credentials and query are left out: they
    /// may hold API keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BenchmarkConfig")
            .field("name", &self.name)
            .field("target", &display_target(&self.target))
            .field("users", &self.users)
            .field("duration", &self.duration)
            .field("method", &self.method)
            .field("payload_bytes", &self.payload.as_ref().map(Bytes::len))
            .field("header_names", &self.headers.keys().collect::<Vec<_>>())
            .field("request_timeout", &self.request_timeout)
            .field("think_time", &self.think_time)
            .field("ramp_up", &self.ramp_up)
            .field("rate", &self.rate)
            .field("window", &self.window)
            .finish()
    }
}

/// Unchecked settings of a [`BenchmarkConfig`]; [`build`](Self::build)
/// checks them all.
#[derive(Clone)]
#[must_use]
pub struct BenchmarkConfigBuilder {
    name: String,
    target_url: String,
    users: usize,
    duration: Duration,
    method: Method,
    payload: Option<Bytes>,
    headers: Vec<(String, String)>,
    request_timeout: Duration,
    think_time: Duration,
    ramp_up: Duration,
    rate: Option<f64>,
    window: Duration,
}

impl fmt::Debug for BenchmarkConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BenchmarkConfigBuilder")
            .field("name", &self.name)
            .field("users", &self.users)
            .field("duration", &self.duration)
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

impl BenchmarkConfigBuilder {
    /// Virtual users (at least 1; default 10).
    pub fn concurrent_users(mut self, users: usize) -> Self {
        self.users = users;
        self
    }

    /// Length of the measured window (more than zero; default 10 s).
    pub fn duration(mut self, duration: Duration) -> Self {
        self.duration = duration;
        self
    }

    /// The HTTP method (default `GET`).
    pub fn method(mut self, method: Method) -> Self {
        self.method = method;
        self
    }

    /// The body sent with every request, as is.
    pub fn payload(mut self, body: impl Into<Bytes>) -> Self {
        self.payload = Some(body.into());
        self
    }

    /// A JSON body sent with every request, with `content-type:
    /// application/json` (unless a header sets another).
    pub fn json_payload(mut self, body: &serde_json::Value) -> Self {
        self.payload = Some(Bytes::from(body.to_string()));
        self.headers.insert(
            0,
            (
                CONTENT_TYPE.as_str().to_owned(),
                "application/json".to_owned(),
            ),
        );
        self
    }

    /// A header added to every request; checked in `build`. A later header
    /// of the same name is added too, not replaced.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// How long one request may take, connecting included, before it counts
    /// as a timeout (more than zero; default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Pause of a closed-model user between an answer and its next request
    /// (default none). Ignored in the open model, whose schedule sets the pace.
    pub fn think_time(mut self, pause: Duration) -> Self {
        self.think_time = pause;
        self
    }

    /// Users start spread evenly over this period (the open model's rate
    /// rises linearly over it), and what is sent during it is not measured
    /// (default none).
    pub fn ramp_up(mut self, period: Duration) -> Self {
        self.ramp_up = period;
        self
    }

    /// Makes the run open: `per_second` requests per second in total, on a
    /// fixed schedule (a finite number above 0).
    pub fn rate(mut self, per_second: f64) -> Self {
        self.rate = Some(per_second);
        self
    }

    /// The length of the windows the measured period is cut into for
    /// figures over time (at least 100 ms; default [`WINDOW`], one second).
    /// An endurance run uses longer ones: an hour in one-second windows is
    /// 3,600 entries in the report.
    pub fn window(mut self, length: Duration) -> Self {
        self.window = length;
        self
    }

    /// Checks every setting.
    ///
    /// # Errors
    ///
    /// [`BenchError::InvalidConfig`] naming the first setting out of range
    /// and what it accepts.
    pub fn build(self) -> Result<BenchmarkConfig, BenchError> {
        let target = parse_target(&self.target_url)?;
        check_users(self.users)?;
        check_duration(self.duration)?;
        if self.window < MIN_WINDOW {
            return Err(BenchError::invalid(
                "window",
                "a window of at least 100ms, e.g. 1s",
                format!("{:?}", self.window),
            ));
        }
        if self.request_timeout.is_zero() {
            return Err(BenchError::invalid(
                "request_timeout",
                "a timeout longer than zero, e.g. 30s",
                "0s",
            ));
        }
        if let Some(rate) = self.rate
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(BenchError::invalid(
                "rate",
                "a finite number of requests per second above 0, e.g. 500",
                rate,
            ));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                BenchError::invalid(
                    "header",
                    "a header name of visible ASCII characters without separators",
                    name,
                )
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                BenchError::invalid(
                    "header",
                    "a header value of visible ASCII characters",
                    format!("a bad value for `{name}`"),
                )
            })?;
            if name == CONTENT_TYPE && headers.contains_key(CONTENT_TYPE) {
                // A content type set by hand wins over json_payload's.
                headers.insert(name, value);
            } else {
                headers.append(name, value);
            }
        }
        Ok(BenchmarkConfig {
            name: self.name,
            target,
            users: self.users,
            duration: self.duration,
            method: self.method,
            payload: self.payload,
            headers,
            request_timeout: self.request_timeout,
            think_time: self.think_time,
            ramp_up: self.ramp_up,
            rate: self.rate,
            window: self.window,
        })
    }
}

/// The shortest window: shorter ones hold too few requests for a percentile.
const MIN_WINDOW: Duration = Duration::from_millis(100);

fn check_users(users: usize) -> Result<(), BenchError> {
    if users == 0 {
        return Err(BenchError::invalid(
            "concurrent_users",
            "at least 1 virtual user",
            0,
        ));
    }
    Ok(())
}

pub(crate) fn check_duration(duration: Duration) -> Result<(), BenchError> {
    if duration.is_zero() {
        return Err(BenchError::invalid(
            "duration",
            "a measured window longer than zero, e.g. 30s",
            "0s",
        ));
    }
    Ok(())
}

const URL_EXPECTED: &str =
    "an absolute http:// URL with a host, e.g. http://127.0.0.1:8000/api/chat";

fn parse_target(text: &str) -> Result<Url, BenchError> {
    let shown = || masked(text);
    let url =
        Url::parse(text).map_err(|_| BenchError::invalid("target_url", URL_EXPECTED, shown()))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(BenchError::invalid(
                "target_url",
                "an http:// URL (https is not supported by the load generator yet)",
                shown(),
            ));
        }
        _ => return Err(BenchError::invalid("target_url", URL_EXPECTED, shown())),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(BenchError::invalid("target_url", URL_EXPECTED, shown()));
    }
    Ok(url)
}

/// `text` fit for an error message: a password, if any, masked.
fn masked(text: &str) -> String {
    match Url::parse(text) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        Ok(url) => url.to_string(),
        Err(_) if text.contains('@') => "<hidden: the url may hold a password>".to_owned(),
        Err(_) => format!("`{text}`"),
    }
}

/// `scheme://host:port/path`, without credentials or query string.
pub(crate) fn display_target(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: Result<BenchmarkConfig, BenchError>) -> &'static str {
        match result {
            Err(BenchError::InvalidConfig { field, .. }) => field,
            other => panic!("expected an invalid setting, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_config_keeps_every_setting() {
        let config =
            BenchmarkConfig::builder("chat", "http://user:pw@127.0.0.1:8000/api/chat?key=secret")
                .concurrent_users(3)
                .duration(Duration::from_secs(2))
                .method(Method::POST)
                .json_payload(&serde_json::json!({"q": "hi"}))
                .header("x-tenant", "a")
                .request_timeout(Duration::from_secs(1))
                .think_time(Duration::from_millis(5))
                .ramp_up(Duration::from_millis(500))
                .rate(50.0)
                .build()
                .expect("valid");
        assert_eq!(config.concurrent_users(), 3);
        assert_eq!(config.method(), Method::POST);
        assert_eq!(config.headers()[CONTENT_TYPE], "application/json");
        assert_eq!(config.headers()["x-tenant"], "a");
        assert_eq!(config.rate(), Some(50.0));
        assert_eq!(config.target_display(), "http://127.0.0.1:8000/api/chat");
        let debug = format!("{config:?}");
        assert!(
            !debug.contains("secret") && !debug.contains("pw"),
            "{debug}"
        );
    }

    #[test]
    fn bad_settings_name_the_field_and_the_expected_form() {
        let base = || BenchmarkConfig::builder("t", "http://127.0.0.1:1/");
        let cases = [
            (
                BenchmarkConfig::builder("t", "not a url").build(),
                "target_url",
            ),
            (
                BenchmarkConfig::builder("t", "ftp://127.0.0.1/").build(),
                "target_url",
            ),
            (
                BenchmarkConfig::builder("t", "https://127.0.0.1/").build(),
                "target_url",
            ),
            (base().concurrent_users(0).build(), "concurrent_users"),
            (base().duration(Duration::ZERO).build(), "duration"),
            (
                base().request_timeout(Duration::ZERO).build(),
                "request_timeout",
            ),
            (base().rate(0.0).build(), "rate"),
            (base().rate(-1.0).build(), "rate"),
            (base().rate(f64::NAN).build(), "rate"),
            (base().rate(f64::INFINITY).build(), "rate"),
            (base().header("bad name", "v").build(), "header"),
            (base().header("x-ok", "bad\nvalue").build(), "header"),
        ];
        for (result, expected) in cases {
            assert_eq!(field_of(result), expected);
        }
    }

    #[test]
    fn error_messages_say_what_is_expected_and_hide_passwords() {
        let error = BenchmarkConfig::builder("t", "ftp://u:hunter2@h/")
            .build()
            .expect_err("ftp");
        let message = error.to_string();
        assert!(message.contains("`target_url`"), "{message}");
        assert!(message.contains("http://"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");

        let error = BenchmarkConfig::builder("t", "http://h/")
            .concurrent_users(0)
            .build()
            .expect_err("zero users");
        assert_eq!(
            error.to_string(),
            "invalid benchmark setting `concurrent_users`: expected at least 1 virtual user, found 0"
        );
    }
}
