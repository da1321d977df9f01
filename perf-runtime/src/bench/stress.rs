//! Stress testing: the load stepped up from a base configuration until the
//! target breaks a limit or the steps reach `max_users`
//! ([`run_stress_test`], [`run_stress_plan`]).
//!
//! Each step is a run of its own ([`run_benchmark_with_progress`]) with
//! `users` virtual users for `step_duration`: the base's users first, then
//! `step_size` more each step, the last step capped at `max_users` (so
//! `max_users` is always reached unless a step breaks first). A step is
//! **broken** when its p95 latency is above `max_p95` or its error rate
//! above `max_error_rate`; the test stops there, and the steps after it are
//! not run.
//!
//! Rules, stated once here and in `docs/bench.md`:
//!
//! - **Ramp-up, per step.** Every step is a fresh run with fresh
//!   connections, so the base's ramp-up, if any, is applied to each step:
//!   the step's users join over it and nothing sent during it is measured.
//!   Without it every user of a step connects at once at the start of the
//!   step's measured period.
//! - **Model.** Closed (users loop) unless the base has a rate. An open
//!   base keeps its rate *per user*: a step with `u` users is due
//!   `base_rate / base_users × u` requests per second, so the load grows in
//!   the open model as it does in the closed one. There, requests `dropped`
//!   because every user was busy count as failed in the step's error rate.
//! - **Error rate** of a step: failed requests (and, open model, dropped
//!   ones) over requests sent (and dropped).
//! - **Sustainable**: a step that held both limits. `last_sustainable_users`
//!   is the users of the last such step: the step before the broken one, or
//!   the last step when none broke; `None` when the first step broke.
//! - **Knee**: where added users stop buying throughput. Throughput is
//!   *successful* requests per second (errors bought are not capacity).
//!   With `r₀ / u₀` the first step's throughput per user, the knee is the
//!   users of the step *before* the first step `i` whose gain per added user,
//!   `(rᵢ − rᵢ₋₁) / (uᵢ − uᵢ₋₁)`, is below half of `r₀ / u₀`
//!   ([`KNEE_GAIN_FRACTION`]): the load past which each added user brings
//!   less than half of what the first users brought each. A target with `N`
//!   workers has its knee at the step with `N` users; one whose latency
//!   grows with every request in flight has it at the first step. `None`
//!   when throughput kept growing up to the last step run (or the first
//!   step had none). The rule compares throughput only: latency that rises
//!   while throughput still grows is what the p95 limit is for.
//! - A step after the first whose target refuses the step's first
//!   connection (the target went down under the previous step) is recorded
//!   as broken with `connect` and no figures; a refused first step is
//!   [`BenchError::Connect`], as for a single run.
//!
//! Default limits come from the runtime's configuration
//! ([`PerfConfig`]): `RESPONSE_TIME_THRESHOLD` (the p95 limit, default
//! 500 ms) and `ERROR_RATE_THRESHOLD` (percent, default 1 %). See
//! [`StressPlan::from_runtime`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::config::BenchmarkConfig;
use super::error::BenchError;
use super::histogram::LatencySummary;
use super::progress::Progress;
use super::report::{BenchmarkReport, ErrorCounts, LoadModel, now_rfc3339};
use super::run::run_benchmark_with_progress;
use super::window::millis;
use crate::config::{ConfigError, PerfConfig};

/// The version of the JSON schema of [`StressReport`], separate from the
/// run report's [`SCHEMA_VERSION`](super::SCHEMA_VERSION) because the two
/// documents change independently. Fields may be added within a version;
/// renaming or removing one bumps it.
pub const STRESS_SCHEMA_VERSION: u32 = 1;

/// The knee is where a step's throughput gain per added user falls below
/// this fraction of the first step's throughput per user.
pub const KNEE_GAIN_FRACTION: f64 = 0.5;

/// The environment variables whose values are the default limits when the
/// runtime was not started with [`init`](crate::init).
const LIMIT_VARIABLES: [&str; 2] = ["RESPONSE_TIME_THRESHOLD", "ERROR_RATE_THRESHOLD"];

/// How a stress test steps the load up, and the limits that end it.
///
/// Build with [`StressPlan::new`] (limits: the runtime's defaults, 500 ms
/// p95 and 1 % errors) or [`StressPlan::from_runtime`] (limits: the
/// runtime's configuration), then adjust with the `with_*` methods. The
/// plan is checked against the base configuration when the test starts.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct StressPlan {
    /// Users of the last step (at least the base's users).
    pub max_users: usize,
    /// Users added per step (at least 1).
    pub step_size: usize,
    /// The measured period of each step (more than zero).
    pub step_duration: Duration,
    /// A step whose p95 latency is above this is broken (more than zero).
    pub max_p95: Duration,
    /// A step whose error rate (a fraction: 0.01 is 1 %) is above this is
    /// broken (0 to 1).
    pub max_error_rate: f64,
}

impl StressPlan {
    /// Steps up to `max_users` by `step_size`, each measured for
    /// `step_duration`, with the runtime's default limits: p95 above
    /// 500 ms or more than 1 % errors breaks a step.
    pub fn new(max_users: usize, step_size: usize, step_duration: Duration) -> StressPlan {
        StressPlan {
            max_users,
            step_size,
            step_duration,
            max_p95: Duration::ZERO,
            max_error_rate: 0.0,
        }
        .with_limits_from(&PerfConfig::default())
    }

    /// As [`new`](Self::new), with the limits of the runtime's
    /// configuration: the global runtime's if [`init`](crate::init) has
    /// run, otherwise `RESPONSE_TIME_THRESHOLD` (milliseconds) and
    /// `ERROR_RATE_THRESHOLD` (percent) from the environment, each
    /// defaulting as in [`PerfConfig`] (500 ms, 1 %). No other variable is
    /// read.
    ///
    /// # Errors
    ///
    /// [`BenchError::InvalidConfig`] naming the variable whose value is
    /// malformed or out of range.
    pub fn from_runtime(
        max_users: usize,
        step_size: usize,
        step_duration: Duration,
    ) -> Result<StressPlan, BenchError> {
        let config = runtime_limits(|name| std::env::var(name).ok())?;
        Ok(StressPlan::new(max_users, step_size, step_duration).with_limits_from(&config))
    }

    /// The limits of `config`: `response_time_threshold` as the p95 limit,
    /// `error_rate_threshold` (percent) as the error-rate limit.
    pub fn with_limits_from(self, config: &PerfConfig) -> StressPlan {
        StressPlan {
            max_p95: config.response_time_threshold,
            max_error_rate: config.error_rate_threshold / 100.0,
            ..self
        }
    }

    /// A step whose p95 latency is above `limit` is broken.
    pub fn with_max_p95(self, limit: Duration) -> StressPlan {
        StressPlan {
            max_p95: limit,
            ..self
        }
    }

    /// A step whose error rate is above `fraction` (0.01 is 1 %) is broken.
    pub fn with_max_error_rate(self, fraction: f64) -> StressPlan {
        StressPlan {
            max_error_rate: fraction,
            ..self
        }
    }

    /// The users of each step from a base of `base_users`: the base, then
    /// `step_size` more each step, the last capped at `max_users`. Empty
    /// when no step can be made: `base_users` 0 or above `max_users`, or
    /// `step_size` 0.
    pub fn step_users(&self, base_users: usize) -> Vec<usize> {
        if base_users == 0 || base_users > self.max_users || self.step_size == 0 {
            return Vec::new();
        }
        let mut steps = vec![base_users];
        let mut users = base_users;
        while users < self.max_users {
            users = users.saturating_add(self.step_size).min(self.max_users);
            steps.push(users);
        }
        steps
    }

    fn check(&self, base_users: usize) -> Result<(), BenchError> {
        if self.max_users < base_users {
            return Err(BenchError::invalid(
                "max_users",
                "at least the base configuration's concurrent_users",
                format!("{} (base: {base_users})", self.max_users),
            ));
        }
        if self.step_size == 0 {
            return Err(BenchError::invalid(
                "step_size",
                "at least 1 user added per step, e.g. 50",
                0,
            ));
        }
        if self.step_duration.is_zero() {
            return Err(BenchError::invalid(
                "step_duration",
                "a measured period per step longer than zero, e.g. 60s",
                "0s",
            ));
        }
        if self.max_p95.is_zero() {
            return Err(BenchError::invalid(
                "max_p95",
                "a p95 limit longer than zero, e.g. 500ms",
                "0s",
            ));
        }
        if !(0.0..=1.0).contains(&self.max_error_rate) {
            return Err(BenchError::invalid(
                "max_error_rate",
                "a fraction of requests from 0 to 1, e.g. 0.01 for 1 %",
                self.max_error_rate,
            ));
        }
        Ok(())
    }
}

/// Why a stress test stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopReason {
    /// The step with `max_users` held both limits.
    MaxUsers,
    /// A step broke a limit (the last step of the report, which lists
    /// which in [`StressStep::broken`]).
    Broken,
}

/// The plan a stress test ran, as far as it shapes the figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StressSettings {
    /// Closed, or open with the rate stepped up per user.
    pub model: LoadModel,
    /// Users of the first step (the base configuration's).
    pub base_users: usize,
    /// Users of the last step, if reached.
    pub max_users: usize,
    /// Users added per step.
    pub step_size: usize,
    /// The measured period of each step.
    pub step_duration_ms: u64,
    /// The ramp-up before each step's measured period.
    pub ramp_up_ms: u64,
    /// Open model: requests per second per user (the base's rate over its
    /// users); `null` for a closed test.
    pub rate_per_user: Option<f64>,
    /// The p95 limit.
    pub max_p95_us: u64,
    /// The error-rate limit, a fraction.
    pub max_error_rate: f64,
}

/// The figures of one step of a stress test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StressStep {
    /// Virtual users of the step.
    pub users: usize,
    /// Open model: the step's rate; `null` when closed.
    pub rate_per_second: Option<f64>,
    /// Requests sent in the step's measured period, failed ones included.
    pub requests: u64,
    /// Of those, the ones that succeeded.
    pub successes: u64,
    /// `requests` over the step's measured period.
    pub requests_per_second: f64,
    /// `successes` over the step's measured period: the throughput the
    /// knee is found on.
    pub successes_per_second: f64,
    /// Failed (and, open model, dropped) requests over requests sent (and
    /// dropped); the figure held against `max_error_rate`.
    pub error_rate: f64,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
    /// Open model: requests due but never sent. 0 when closed.
    pub dropped: u64,
    /// Latency of the step's answered requests.
    pub latency: LatencySummary,
    /// The step held both limits.
    pub sustainable: bool,
    /// The limits the step broke: `p95`, `error_rate`, or `connect` (the
    /// target refused the step's first connection), or `no_requests`
    /// (nothing was measured); empty when sustainable.
    pub broken: Vec<String>,
    /// Why the step has no figures (`connect`), if so.
    pub failure: Option<String>,
}

impl StressStep {
    fn measured(users: usize, report: &BenchmarkReport, plan: &StressPlan) -> StressStep {
        let seconds = plan.step_duration.as_secs_f64();
        let offered = report.requests + report.dropped;
        let error_rate = if offered == 0 {
            0.0
        } else {
            (report.errors.total() + report.dropped) as f64 / offered as f64
        };
        let p95 = (report.latency.count > 0).then(|| report.latency.p95());
        let broken = broken_limits(report.requests, p95, error_rate, plan);
        StressStep {
            users,
            rate_per_second: report.settings.rate_per_second,
            requests: report.requests,
            successes: report.successes,
            requests_per_second: report.requests_per_second,
            successes_per_second: report.successes as f64 / seconds,
            error_rate,
            errors: report.errors.clone(),
            dropped: report.dropped,
            latency: report.latency.clone(),
            sustainable: broken.is_empty(),
            broken,
            failure: None,
        }
    }

    fn unreachable(users: usize, rate: Option<f64>, error: &BenchError) -> StressStep {
        StressStep {
            users,
            rate_per_second: rate,
            requests: 0,
            successes: 0,
            requests_per_second: 0.0,
            successes_per_second: 0.0,
            error_rate: 1.0,
            errors: ErrorCounts::default(),
            dropped: 0,
            latency: LatencySummary::default(),
            sustainable: false,
            broken: vec!["connect".to_owned()],
            failure: Some(error.to_string()),
        }
    }
}

/// The limits a step with these figures broke, in a fixed order.
fn broken_limits(
    requests: u64,
    p95: Option<Duration>,
    error_rate: f64,
    plan: &StressPlan,
) -> Vec<String> {
    let mut broken = Vec::new();
    if requests == 0 {
        // Nothing measured cannot be called sustainable.
        broken.push("no_requests".to_owned());
    }
    if p95.is_some_and(|p95| p95 > plan.max_p95) {
        broken.push("p95".to_owned());
    }
    if error_rate > plan.max_error_rate {
        broken.push("error_rate".to_owned());
    }
    broken
}

/// What a stress test measured, step by step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StressReport {
    /// [`STRESS_SCHEMA_VERSION`] of the writer.
    pub schema_version: u32,
    /// The base configuration's name.
    pub name: String,
    /// `scheme://host:port/path` (no credentials, no query string).
    pub target: String,
    /// When the first step started, RFC 3339 in UTC.
    pub started_at: String,
    /// The plan.
    pub plan: StressSettings,
    /// The steps run, in order; the last one is the broken one when
    /// `stop_reason` is `broken`.
    pub steps: Vec<StressStep>,
    /// Users of the last step that held both limits; `null` when the first
    /// step broke.
    pub last_sustainable_users: Option<usize>,
    /// Users past which added users bring less than half the throughput
    /// each that the first step's did (see the module documentation);
    /// `null` when throughput kept up to the last step.
    pub knee_users: Option<usize>,
    /// Why the test stopped.
    pub stop_reason: StopReason,
}

impl StressReport {
    /// The step that broke a limit, if the test stopped on one.
    pub fn broken_step(&self) -> Option<&StressStep> {
        self.steps.last().filter(|step| !step.sustainable)
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Cannot fail: every field is a plain value.
        serde_json::to_string_pretty(self).expect("a stress report always serialises")
    }

    /// Reads a report written by [`to_json`](Self::to_json).
    ///
    /// # Errors
    ///
    /// The JSON does not match this schema.
    pub fn from_json(json: &str) -> Result<StressReport, serde_json::Error> {
        serde_json::from_str(json)
    }
}

/// The seed guide's `run_stress_test(base_config, max_users, step_size,
/// step_duration)`: steps of `step_size` users from the base's users up to
/// `max_users`, each measured for `step_duration`, with the limits of the
/// runtime's configuration ([`StressPlan::from_runtime`]).
///
/// # Errors
///
/// As [`StressPlan::from_runtime`] and [`run_stress_plan`].
pub async fn run_stress_test(
    base: BenchmarkConfig,
    max_users: usize,
    step_size: usize,
    step_duration: Duration,
) -> Result<StressReport, BenchError> {
    let plan = StressPlan::from_runtime(max_users, step_size, step_duration)?;
    run_stress_plan(base, plan, &Progress::new()).await
}

/// Runs the steps of `plan` from `base` (see the module documentation for
/// the rules), stopping at the first broken step. Before each step
/// `progress`'s stage is set to `step i/n: u users`, and `progress` follows
/// the step's run.
///
/// # Errors
///
/// [`BenchError::InvalidConfig`] naming the setting of `plan` out of range
/// (`max_users` below the base's users, `step_size` 0, `step_duration` 0,
/// `max_p95` 0, `max_error_rate` outside 0..=1), before anything is sent;
/// [`BenchError::Connect`] when the target refuses the first step's first
/// connection; [`BenchError::UserPanicked`] as for a single run.
pub async fn run_stress_plan(
    base: BenchmarkConfig,
    plan: StressPlan,
    progress: &Progress,
) -> Result<StressReport, BenchError> {
    plan.check(base.users)?;
    let steps_users = plan.step_users(base.users);
    let rate_per_user = base.rate.map(|rate| rate / base.users as f64);
    if let Some(per_user) = rate_per_user
        && !(per_user * plan.max_users as f64).is_finite()
    {
        return Err(BenchError::invalid(
            "max_users",
            "a number of users whose stepped-up rate stays finite",
            plan.max_users,
        ));
    }
    let settings = StressSettings {
        model: if base.rate.is_some() {
            LoadModel::Open
        } else {
            LoadModel::Closed
        },
        base_users: base.users,
        max_users: plan.max_users,
        step_size: plan.step_size,
        step_duration_ms: millis(plan.step_duration),
        ramp_up_ms: millis(base.ramp_up),
        rate_per_user,
        max_p95_us: u64::try_from(plan.max_p95.as_micros()).unwrap_or(u64::MAX),
        max_error_rate: plan.max_error_rate,
    };
    let started_at = now_rfc3339();
    let count = steps_users.len();
    let mut steps = Vec::with_capacity(count);
    let mut stop_reason = StopReason::MaxUsers;
    for (index, &users) in steps_users.iter().enumerate() {
        progress.set_stage(format!("step {}/{count}: {users} users", index + 1));
        let mut config = base.with_users(users)?.with_duration(plan.step_duration)?;
        // Checked finite above; positive as the base's rate is.
        config.rate = rate_per_user.map(|per_user| per_user * users as f64);
        let rate = config.rate;
        let step = match run_benchmark_with_progress(config, progress).await {
            Ok(report) => StressStep::measured(users, &report, &plan),
            Err(error @ BenchError::Connect { .. }) if index > 0 => {
                StressStep::unreachable(users, rate, &error)
            }
            Err(error) => return Err(error),
        };
        let broken = !step.sustainable;
        steps.push(step);
        if broken {
            stop_reason = StopReason::Broken;
            break;
        }
    }
    Ok(StressReport {
        schema_version: STRESS_SCHEMA_VERSION,
        name: base.name.clone(),
        target: base.target_display(),
        started_at,
        plan: settings,
        last_sustainable_users: steps
            .iter()
            .take_while(|step| step.sustainable)
            .last()
            .map(|step| step.users),
        knee_users: knee(&steps),
        steps,
        stop_reason,
    })
}

/// The knee of `steps` (see the module documentation).
fn knee(steps: &[StressStep]) -> Option<usize> {
    let first = steps.first()?;
    let per_user = first.successes_per_second / first.users as f64;
    if per_user.is_nan() || per_user <= 0.0 {
        return None;
    }
    steps.windows(2).find_map(|pair| {
        let (previous, next) = (&pair[0], &pair[1]);
        let added = next.users.saturating_sub(previous.users).max(1) as f64;
        let gain = (next.successes_per_second - previous.successes_per_second) / added;
        (gain < KNEE_GAIN_FRACTION * per_user).then_some(previous.users)
    })
}

/// The runtime configuration the default limits come from: the global
/// runtime's after `init`, else the two limit variables through `lookup`.
fn runtime_limits(lookup: impl Fn(&str) -> Option<String>) -> Result<PerfConfig, BenchError> {
    let runtime = crate::global();
    if !runtime.is_embedded_default() {
        return Ok(runtime.config().clone());
    }
    limits_from_lookup(lookup)
}

/// A configuration with the two limit variables read through `lookup`.
fn limits_from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<PerfConfig, BenchError> {
    // Only the limits: a malformed REDIS_PORT is no reason to refuse a
    // stress test.
    PerfConfig::from_lookup(|name| {
        if LIMIT_VARIABLES.contains(&name) {
            lookup(name)
        } else {
            None
        }
    })
    .map_err(|error| match error {
        ConfigError::Invalid {
            variable,
            value,
            expected,
        } => BenchError::InvalidConfig {
            field: variable,
            expected,
            found: value,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> StressPlan {
        StressPlan::new(10, 2, Duration::from_secs(1))
    }

    fn field_of(result: Result<(), BenchError>) -> &'static str {
        match result {
            Err(BenchError::InvalidConfig { field, .. }) => field,
            other => panic!("expected an invalid setting, got {other:?}"),
        }
    }

    fn step(users: usize, successes_per_second: f64) -> StressStep {
        StressStep {
            users,
            rate_per_second: None,
            requests: 1,
            successes: 1,
            requests_per_second: successes_per_second,
            successes_per_second,
            error_rate: 0.0,
            errors: ErrorCounts::default(),
            dropped: 0,
            latency: LatencySummary::default(),
            sustainable: true,
            broken: Vec::new(),
            failure: None,
        }
    }

    #[test]
    fn steps_go_from_the_base_by_step_size_and_end_at_max_users() {
        assert_eq!(plan().step_users(2), [2, 4, 6, 8, 10]);
        assert_eq!(plan().step_users(3), [3, 5, 7, 9, 10]);
        assert_eq!(plan().step_users(10), [10]);
        let seed = StressPlan::new(1000, 50, Duration::from_secs(60));
        let users = seed.step_users(50);
        assert_eq!(
            (users.len(), users[1], users.last()),
            (20, 100, Some(&1000))
        );
        assert!(plan().step_users(11).is_empty());
        assert_eq!(
            StressPlan::new(usize::MAX, usize::MAX, Duration::from_secs(1)).step_users(1),
            [1, usize::MAX]
        );
    }

    #[test]
    fn bad_plans_name_the_setting() {
        assert_eq!(
            field_of(StressPlan::new(4, 1, Duration::from_secs(1)).check(5)),
            "max_users"
        );
        assert_eq!(
            field_of(StressPlan::new(10, 0, Duration::from_secs(1)).check(5)),
            "step_size"
        );
        assert_eq!(
            field_of(StressPlan::new(10, 1, Duration::ZERO).check(5)),
            "step_duration"
        );
        assert_eq!(
            field_of(plan().with_max_p95(Duration::ZERO).check(1)),
            "max_p95"
        );
        for rate in [-0.1, 1.5, f64::NAN] {
            assert_eq!(
                field_of(plan().with_max_error_rate(rate).check(1)),
                "max_error_rate"
            );
        }
        assert!(plan().check(10).is_ok());
    }

    #[test]
    fn default_limits_are_the_runtime_defaults_and_follow_the_variables() {
        let defaults = plan();
        assert_eq!(defaults.max_p95, Duration::from_millis(500));
        assert_eq!(defaults.max_error_rate, 0.01);

        let config = limits_from_lookup(|name| match name {
            "RESPONSE_TIME_THRESHOLD" => Some("250".to_owned()),
            "ERROR_RATE_THRESHOLD" => Some("5".to_owned()),
            // Not a limit: never read, so never refused.
            "REDIS_PORT" => Some("not a port".to_owned()),
            _ => None,
        })
        .expect("valid limits");
        let plan = plan().with_limits_from(&config);
        assert_eq!(plan.max_p95, Duration::from_millis(250));
        assert_eq!(plan.max_error_rate, 0.05);

        let error =
            limits_from_lookup(|name| (name == "ERROR_RATE_THRESHOLD").then(|| "lots".to_owned()))
                .expect_err("malformed");
        assert!(
            matches!(
                error,
                BenchError::InvalidConfig {
                    field: "ERROR_RATE_THRESHOLD",
                    ..
                }
            ),
            "{error:?}"
        );
    }

    #[test]
    fn a_step_breaks_on_either_limit_and_lists_which() {
        let plan = plan()
            .with_max_p95(Duration::from_millis(100))
            .with_max_error_rate(0.01);
        let ms = Duration::from_millis;
        assert!(broken_limits(10, Some(ms(100)), 0.01, &plan).is_empty());
        assert_eq!(broken_limits(10, Some(ms(101)), 0.0, &plan), ["p95"]);
        assert_eq!(broken_limits(10, Some(ms(5)), 0.02, &plan), ["error_rate"]);
        assert_eq!(
            broken_limits(10, Some(ms(200)), 0.5, &plan),
            ["p95", "error_rate"]
        );
        // Every request failed without an answer: no p95, the error rate breaks.
        assert_eq!(broken_limits(10, None, 1.0, &plan), ["error_rate"]);
        assert_eq!(broken_limits(0, None, 0.0, &plan), ["no_requests"]);
    }

    #[test]
    fn the_knee_is_the_step_before_throughput_stops_growing() {
        // Four workers of 200 ms: 5/s per user up to 4 users, flat after.
        let steps = [step(2, 10.0), step(4, 20.0), step(6, 20.0), step(8, 20.0)];
        assert_eq!(knee(&steps), Some(4));
        // Still growing, if more slowly than at first, but above half.
        let steps = [step(2, 10.0), step(4, 18.0), step(6, 25.0)];
        assert_eq!(knee(&steps), None);
        // Latency growing with every request in flight: flat from the start.
        let steps = [step(1, 100.0), step(2, 100.0), step(3, 100.0)];
        assert_eq!(knee(&steps), Some(1));
        // Throughput that collapses counts as no gain.
        let steps = [step(2, 10.0), step(4, 20.0), step(6, 2.0)];
        assert_eq!(knee(&steps), Some(4));
        // Uneven last step: the gain is per added user.
        let steps = [step(2, 10.0), step(5, 25.0), step(6, 27.0)];
        assert_eq!(knee(&steps), Some(5));
        assert_eq!(knee(&[step(2, 10.0)]), None);
        assert_eq!(knee(&[step(2, 0.0), step(4, 10.0)]), None);
        assert_eq!(knee(&[]), None);
    }

    #[test]
    fn the_report_round_trips_through_json() {
        let report = StressReport {
            schema_version: STRESS_SCHEMA_VERSION,
            name: "stress".to_owned(),
            target: "http://127.0.0.1:1/".to_owned(),
            started_at: now_rfc3339(),
            plan: StressSettings {
                model: LoadModel::Closed,
                base_users: 2,
                max_users: 4,
                step_size: 2,
                step_duration_ms: 1000,
                ramp_up_ms: 0,
                rate_per_user: None,
                max_p95_us: 500_000,
                max_error_rate: 0.01,
            },
            steps: vec![step(2, 10.0), {
                let mut broken = step(4, 12.0);
                broken.sustainable = false;
                broken.broken = vec!["p95".to_owned()];
                broken
            }],
            last_sustainable_users: Some(2),
            knee_users: Some(2),
            stop_reason: StopReason::Broken,
        };
        let json = report.to_json();
        assert!(json.contains("\"stop_reason\": \"broken\""), "{json}");
        assert_eq!(StressReport::from_json(&json).expect("parses"), report);
        assert_eq!(report.broken_step().map(|step| step.users), Some(4));
    }
}
