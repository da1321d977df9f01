//! [`BenchError`]: why a benchmark could not be set up or run. Failures of
//! single requests are not errors of the run: they are counted in the
//! report ([`ErrorCounts`](super::ErrorCounts)).

/// A boxed error from below (hyper, the OS), kept as the source.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A benchmark could not be set up or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A setting of the configuration is out of range.
    #[error("invalid benchmark setting `{field}`: expected {expected}, found {found}")]
    InvalidConfig {
        /// The setting (the builder method) whose value is wrong.
        field: &'static str,
        /// What is accepted.
        expected: &'static str,
        /// What was given (a URL with its password masked).
        found: String,
    },
    /// The target refused the first connection, before any load was sent:
    /// running would only count connect errors.
    #[error("cannot connect to {target} before the run: {source}; is the server running there?")]
    Connect {
        /// `host:port` of the target.
        target: String,
        /// The cause.
        #[source]
        source: BoxError,
    },
    /// A virtual user's task panicked (in [`run_fn`](super::run_fn): the
    /// benchmarked function panicked), so its figures are lost.
    #[error("virtual user {user} panicked: {message}; the run's figures would be incomplete")]
    UserPanicked {
        /// The user's index, from 0.
        user: usize,
        /// The panic message, if it was a string.
        message: String,
    },
    /// A threshold (`p95<500ms`) that does not parse.
    #[error("invalid threshold `{input}`: {reason}")]
    InvalidThreshold {
        /// The text as given.
        input: String,
        /// What is wrong with it, and what is accepted.
        reason: String,
    },
    /// The target's `/metrics` could not be read.
    #[error("cannot read the target's metrics at {url}: {reason}")]
    TargetMetrics {
        /// The metrics URL.
        url: String,
        /// What went wrong: no connection, a timeout, a status, not Prometheus text.
        reason: String,
    },
}

impl BenchError {
    pub(crate) fn invalid(
        field: &'static str,
        expected: &'static str,
        found: impl ToString,
    ) -> Self {
        BenchError::InvalidConfig {
            field,
            expected,
            found: found.to_string(),
        }
    }

    /// From the join error of a user's task.
    pub(crate) fn from_join(user: usize, error: tokio::task::JoinError) -> Self {
        let message = match error.try_into_panic() {
            Ok(payload) => payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a non-string panic payload".to_owned()),
            Err(_) => "the task was cancelled (is the runtime shutting down?)".to_owned(),
        };
        BenchError::UserPanicked { user, message }
    }
}
