//! [`SessionConfig`]: how long conversations live, how many messages each
//! keeps, how many stay decoded in process, and where they go in Redis.
//! Built with [`SessionConfig::builder`], checked once by
//! [`build`](SessionConfigBuilder::build), so a [`SessionStore`](super::SessionStore)
//! never meets a setting that cannot work.

use std::time::Duration;

use crate::ai::AiError;

/// The default [`SessionConfig::ttl`]: 24 hours.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The default [`SessionConfig::max_messages`].
pub const DEFAULT_MAX_MESSAGES: usize = 200;
/// The default [`SessionConfig::l1_capacity`].
pub const DEFAULT_L1_CAPACITY: u64 = 10_000;
/// The default [`SessionConfig::key_prefix`].
pub const DEFAULT_KEY_PREFIX: &str = "perf:ai:session:";

/// Longest accepted TTL: a year (Redis takes milliseconds as an `i64`, but a
/// conversation kept longer is an archive, not a session).
const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 60 * 60);
/// Most messages a session may keep.
const MAX_MESSAGES: usize = 100_000;
/// Longest accepted key prefix, in bytes.
const MAX_PREFIX_BYTES: usize = 128;

/// Settings of a [`SessionStore`](super::SessionStore). The default is valid;
/// change it through [`SessionConfig::builder`].
///
/// ```
/// use std::time::Duration;
/// use perf_runtime::ai::session::SessionConfig;
///
/// let config = SessionConfig::builder()
///     .ttl(Duration::from_secs(3600))
///     .max_messages(50)
///     .key_prefix("chat:session:")
///     .build()
///     .unwrap();
/// assert_eq!(config.max_messages(), 50);
/// assert!(SessionConfig::builder().max_messages(0).build().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    ttl: Duration,
    max_messages: usize,
    l1_capacity: u64,
    key_prefix: String,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            ttl: DEFAULT_TTL,
            max_messages: DEFAULT_MAX_MESSAGES,
            l1_capacity: DEFAULT_L1_CAPACITY,
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
        }
    }
}

impl SessionConfig {
    /// A builder starting from the defaults.
    pub fn builder() -> SessionConfigBuilder {
        SessionConfigBuilder {
            config: SessionConfig::default(),
        }
    }

    /// How long a session lives after its last write (an append or a
    /// remove), in Redis and in process: absolute from that write, not
    /// sliding on reads. Default 24 h.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Messages kept per session; past it the oldest non-system messages
    /// are dropped first. Default 200.
    pub fn max_messages(&self) -> usize {
        self.max_messages
    }

    /// Sessions kept decoded in process (the L1 tier). Default 10,000.
    pub fn l1_capacity(&self) -> u64 {
        self.l1_capacity
    }

    /// The start of every Redis key; the rest is the hex hash of the
    /// session id. Default `perf:ai:session:`.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }
}

/// Builds a [`SessionConfig`]; [`build`](Self::build) checks it.
#[derive(Clone, Debug)]
#[must_use]
pub struct SessionConfigBuilder {
    config: SessionConfig,
}

impl SessionConfigBuilder {
    /// Sets [`SessionConfig::ttl`] (1 ms to a year).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.config.ttl = ttl;
        self
    }

    /// Sets [`SessionConfig::max_messages`] (1 to 100,000).
    pub fn max_messages(mut self, n: usize) -> Self {
        self.config.max_messages = n;
        self
    }

    /// Sets [`SessionConfig::l1_capacity`] (at least 1).
    pub fn l1_capacity(mut self, n: u64) -> Self {
        self.config.l1_capacity = n;
        self
    }

    /// Sets [`SessionConfig::key_prefix`] (1 to 128 bytes, no whitespace or
    /// control characters).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.key_prefix = prefix.into();
        self
    }

    /// The checked settings.
    ///
    /// # Errors
    /// [`AiError::InvalidConfig`] naming the first setting out of range.
    pub fn build(self) -> Result<SessionConfig, AiError> {
        let config = self.config;
        let bad = |field, expected, found: String| {
            Err(AiError::InvalidConfig {
                field,
                expected,
                found,
            })
        };
        if config.ttl < Duration::from_millis(1) || config.ttl > MAX_TTL {
            return bad(
                "session ttl",
                "1 ms to 366 days",
                format!("{:?}", config.ttl),
            );
        }
        if !(1..=MAX_MESSAGES).contains(&config.max_messages) {
            return bad(
                "session max_messages",
                "1 to 100000",
                config.max_messages.to_string(),
            );
        }
        if config.l1_capacity == 0 {
            return bad("session l1_capacity", "at least 1", "0".to_owned());
        }
        let prefix = &config.key_prefix;
        if prefix.is_empty()
            || prefix.len() > MAX_PREFIX_BYTES
            || prefix.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return bad(
                "session key_prefix",
                "1 to 128 bytes without whitespace or control characters",
                prefix.escape_debug().to_string(),
            );
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented() {
        let config = SessionConfig::builder().build().unwrap();
        assert_eq!(config, SessionConfig::default());
        assert_eq!(config.ttl(), Duration::from_secs(86_400));
        assert_eq!(config.max_messages(), 200);
        assert_eq!(config.l1_capacity(), 10_000);
        assert_eq!(config.key_prefix(), "perf:ai:session:");
    }

    #[test]
    fn out_of_range_settings_name_the_field() {
        let field = |builder: SessionConfigBuilder| match builder.build() {
            Err(AiError::InvalidConfig { field, .. }) => field,
            other => panic!("expected InvalidConfig, got {other:?}"),
        };
        let b = SessionConfig::builder;
        assert_eq!(field(b().ttl(Duration::ZERO)), "session ttl");
        assert_eq!(field(b().ttl(Duration::from_micros(999))), "session ttl");
        assert_eq!(
            field(b().ttl(MAX_TTL + Duration::from_secs(1))),
            "session ttl"
        );
        assert_eq!(field(b().max_messages(0)), "session max_messages");
        assert_eq!(
            field(b().max_messages(MAX_MESSAGES + 1)),
            "session max_messages"
        );
        assert_eq!(field(b().l1_capacity(0)), "session l1_capacity");
        assert_eq!(field(b().key_prefix("")), "session key_prefix");
        assert_eq!(field(b().key_prefix("a b:")), "session key_prefix");
        assert_eq!(field(b().key_prefix("x".repeat(129))), "session key_prefix");
        assert!(b().ttl(MAX_TTL).max_messages(MAX_MESSAGES).build().is_ok());
        assert!(
            b().ttl(Duration::from_millis(1))
                .max_messages(1)
                .build()
                .is_ok()
        );
    }
}
