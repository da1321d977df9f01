//! Connection URLs that may carry a password.
//!
//! The password is kept, but every way of printing the URL (`Debug`,
//! `Display`, error messages built from it) shows `***` in its place, so a
//! log line or a status report never leaks it.

use std::fmt;

use url::Url;

/// A connection URL (`redis://`, `postgres://`) whose password never prints.
///
/// ```
/// use perf_runtime::config::SecretUrl;
///
/// let url: SecretUrl = "redis://app:hunter2@127.0.0.1:6379/0".parse().unwrap();
/// assert_eq!(url.to_string(), "redis://app:***@127.0.0.1:6379/0");
/// assert_eq!(format!("{url:?}"), "SecretUrl(\"redis://app:***@127.0.0.1:6379/0\")");
/// assert_eq!(url.expose(), "redis://app:hunter2@127.0.0.1:6379/0");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SecretUrl {
    url: Url,
}

impl SecretUrl {
    /// The URL with its password, for handing to a client library. Never log it.
    pub fn expose(&self) -> &str {
        self.url.as_str()
    }

    /// The URL's scheme (`redis`, `postgres`, ...).
    pub fn scheme(&self) -> &str {
        self.url.scheme()
    }

    /// The host, if the URL names one.
    pub fn host(&self) -> Option<&str> {
        self.url.host_str()
    }

    /// The port, explicit or the scheme's default when known.
    pub fn port(&self) -> Option<u16> {
        self.url.port_or_known_default()
    }

    /// The password, when there is one: to redact it from foreign error
    /// messages that might quote it.
    pub(crate) fn password(&self) -> Option<&str> {
        self.url.password().filter(|p| !p.is_empty())
    }

    /// Whether the query string sets `name` to a true value (`true`, `1`,
    /// `yes`, `on`), as in `postgres://…/app?pgbouncer=true`.
    pub(crate) fn query_flag(&self, name: &str) -> bool {
        self.url.query_pairs().any(|(key, value)| {
            key == name
                && matches!(
                    value.to_ascii_lowercase().as_str(),
                    "true" | "1" | "yes" | "on"
                )
        })
    }

    /// The printable form: the URL with `***` for its password.
    pub fn redacted(&self) -> String {
        let mut shown = self.url.clone();
        if self.password().is_some() {
            // Cannot fail: the URL already has a password, so it has a host.
            let _ = shown.set_password(Some("***"));
        }
        shown.to_string()
    }

    #[cfg_attr(not(any(feature = "redis", feature = "postgres")), allow(dead_code))]
    /// Removes this URL's password from `text` (for example a driver's error
    /// message), in case a library quotes it.
    pub(crate) fn scrub(&self, text: &str) -> String {
        match self.password() {
            Some(password) => text.replace(password, "***"),
            None => text.to_owned(),
        }
    }
}

impl std::str::FromStr for SecretUrl {
    type Err = url::ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Url::parse(text).map(|url| SecretUrl { url })
    }
}

impl From<Url> for SecretUrl {
    fn from(url: Url) -> Self {
        SecretUrl { url }
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SecretUrl").field(&self.redacted()).finish()
    }
}

impl serde::Serialize for SecretUrl {
    /// Serializes the redacted form: reports built from a config stay safe.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

/// How a raw, possibly unparseable value is shown in an error: a value that
/// looks like it holds credentials (`user:pass@`) is not shown at all.
pub(crate) fn shown_value(raw: &str) -> String {
    match raw.parse::<SecretUrl>() {
        Ok(url) if url.password().is_some() => url.redacted(),
        Err(_) if raw.contains('@') => "<hidden: the value may hold a password>".to_owned(),
        _ => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_masked_everywhere() {
        let url: SecretUrl = "postgres://app:s3cr3t@db.internal:5432/chat"
            .parse()
            .unwrap();
        for shown in [
            url.to_string(),
            format!("{url:?}"),
            serde_json::to_string(&url).unwrap(),
        ] {
            assert!(!shown.contains("s3cr3t"), "{shown}");
            assert!(shown.contains("app:***@db.internal:5432/chat"), "{shown}");
        }
        assert_eq!(url.scrub("auth failed for s3cr3t"), "auth failed for ***");
    }

    #[test]
    fn url_without_password_prints_as_is() {
        let url: SecretUrl = "redis://127.0.0.1:6379/2".parse().unwrap();
        assert_eq!(url.to_string(), "redis://127.0.0.1:6379/2");
        assert_eq!(url.port(), Some(6379));
    }

    #[test]
    fn unparseable_values_with_credentials_are_hidden() {
        assert_eq!(shown_value("not a url"), "not a url");
        assert!(!shown_value("redis//user:pw@host").contains("pw"));
        assert_eq!(shown_value("redis://u:pw@h:1/0"), "redis://u:***@h:1/0");
    }
}
