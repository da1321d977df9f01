//! [`SimulatorConfig`]: how slowly the simulated model answers, with
//! defaults typical of hosted GPT-4-class models and overrides from the
//! environment, so a demo or a load test can mimic a faster or slower model
//! without a code change.

use std::time::Duration;

/// Milliseconds before the first token: `CHAT_SIMULATOR_FIRST_TOKEN_MS`.
pub const CHAT_SIMULATOR_FIRST_TOKEN_MS: &str = "CHAT_SIMULATOR_FIRST_TOKEN_MS";
/// Milliseconds per further output token: `CHAT_SIMULATOR_MS_PER_TOKEN`.
pub const CHAT_SIMULATOR_MS_PER_TOKEN: &str = "CHAT_SIMULATOR_MS_PER_TOKEN";

/// The largest delay accepted from the environment (ten minutes): anything
/// above is taken for a typo (seconds written as milliseconds, an extra
/// zero) rather than a wish.
const MAX_MILLIS: u64 = 600_000;

/// What a bad variable was expected to hold.
const EXPECTED_MILLIS: &str = "a whole number of milliseconds from 0 to 600000, e.g. 250";

/// How long the simulated model takes.
///
/// The defaults, 250 ms to the first token and 15 ms for each further one
/// (about 65 tokens a second), are typical of hosted GPT-4-class models
/// (GPT-4o, Claude Sonnet, Gemini Pro) as seen by a client near the
/// provider's region; small models answer faster, reasoning models start
/// much later.
///
/// ```
/// use std::time::Duration;
/// use perf_examples::simulator::SimulatorConfig;
///
/// let config = SimulatorConfig::default();
/// assert_eq!(config.first_token, Duration::from_millis(250));
/// assert_eq!(SimulatorConfig::instant().per_token, Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SimulatorConfig {
    /// From the request to the first token of the answer (time to first
    /// token, TTFT): queueing, prompt processing and the first decode step.
    pub first_token: Duration,
    /// Between two further tokens (one word of the simulated answer is one
    /// token): the decode speed.
    pub per_token: Duration,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            first_token: Duration::from_millis(250),
            per_token: Duration::from_millis(15),
        }
    }
}

/// A variable of the simulator's configuration held something unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable} must be {expected}, found {found:?}")]
pub struct SimulatorConfigError {
    /// The variable, e.g. `CHAT_SIMULATOR_FIRST_TOKEN_MS`.
    pub variable: &'static str,
    /// The form it should have.
    pub expected: &'static str,
    /// What it held.
    pub found: String,
}

impl SimulatorConfig {
    /// No delays at all: for tests that check the answers, not the timing.
    pub fn instant() -> Self {
        SimulatorConfig {
            first_token: Duration::ZERO,
            per_token: Duration::ZERO,
        }
    }

    /// The defaults, overridden by `CHAT_SIMULATOR_FIRST_TOKEN_MS` and
    /// `CHAT_SIMULATOR_MS_PER_TOKEN` when set (an empty variable counts as
    /// unset).
    ///
    /// # Errors
    ///
    /// A variable that is not a whole number of milliseconds from 0 to
    /// 600000, named in the error.
    pub fn from_env() -> Result<Self, SimulatorConfigError> {
        Self::from_lookup(|variable| std::env::var(variable).ok())
    }

    /// As [`from_env`](Self::from_env), reading the variables through
    /// `lookup`.
    ///
    /// # Errors
    ///
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SimulatorConfigError> {
        let mut config = SimulatorConfig::default();
        if let Some(first_token) = millis(&lookup, CHAT_SIMULATOR_FIRST_TOKEN_MS)? {
            config.first_token = first_token;
        }
        if let Some(per_token) = millis(&lookup, CHAT_SIMULATOR_MS_PER_TOKEN)? {
            config.per_token = per_token;
        }
        Ok(config)
    }
}

/// The variable as milliseconds; `None` when unset or empty.
fn millis(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
) -> Result<Option<Duration>, SimulatorConfigError> {
    let Some(raw) = lookup(variable).filter(|value| !value.trim().is_empty()) else {
        return Ok(None);
    };
    match raw.trim().parse::<u64>() {
        Ok(ms) if ms <= MAX_MILLIS => Ok(Some(Duration::from_millis(ms))),
        _ => Err(SimulatorConfigError {
            variable,
            expected: EXPECTED_MILLIS,
            found: raw,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn unset_and_empty_variables_keep_the_defaults() {
        assert_eq!(
            SimulatorConfig::from_lookup(lookup(&[])),
            Ok(SimulatorConfig::default())
        );
        assert_eq!(
            SimulatorConfig::from_lookup(lookup(&[(CHAT_SIMULATOR_FIRST_TOKEN_MS, " ")])),
            Ok(SimulatorConfig::default())
        );
    }

    #[test]
    fn variables_override_the_defaults() {
        let config = SimulatorConfig::from_lookup(lookup(&[
            (CHAT_SIMULATOR_FIRST_TOKEN_MS, "40"),
            (CHAT_SIMULATOR_MS_PER_TOKEN, " 0 "),
        ]))
        .expect("valid");
        assert_eq!(config.first_token, Duration::from_millis(40));
        assert_eq!(config.per_token, Duration::ZERO);
    }

    #[test]
    fn a_bad_value_names_the_variable_and_the_expected_form() {
        for bad in ["fast", "-5", "1.5", "250ms", "600001"] {
            let error = SimulatorConfig::from_lookup(lookup(&[(CHAT_SIMULATOR_MS_PER_TOKEN, bad)]))
                .expect_err(bad);
            assert_eq!(error.variable, CHAT_SIMULATOR_MS_PER_TOKEN);
            let message = error.to_string();
            assert!(
                message.starts_with(
                    "CHAT_SIMULATOR_MS_PER_TOKEN must be a whole number of milliseconds"
                ) && message.contains(bad),
                "{message}"
            );
        }
    }
}
