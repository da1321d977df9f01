//! Pass/fail thresholds on a run's figures, for CI: `p95<500ms`,
//! `errors<1%`, `rps>=500`.
//!
//! A [`Threshold`] is parsed from text (the `--threshold` of the `perf`
//! command, a JSON file) and shown back in one canonical form, so that
//! `p95 < 0.5 s` and `p95<500ms` print the same. [`Threshold::evaluate`]
//! reads the figure from a [`BenchmarkReport`] and says whether it held,
//! with the measured value in words and as a number.
//!
//! Grammar: `metric op limit`, spaces allowed around each part.
//! - metric: `p50` (`median`), `p90`, `p95`, `p99`, `p99.9` (`p999`), `max`,
//!   `mean` (`avg`); `errors` (`error_rate`); `rps` (`requests_per_second`).
//! - op: `<`, `<=`, `>`, `>=`.
//! - limit: a latency with a unit (`us`, `ms`, `s`); an error rate as a
//!   percent (`1%`) or a fraction (`0.01`); requests per second as a number.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::BenchError;
use super::report::BenchmarkReport;

/// The figure of a run a threshold is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ThresholdMetric {
    /// The median latency.
    P50,
    /// The 90th percentile latency.
    P90,
    /// The 95th percentile latency.
    P95,
    /// The 99th percentile latency.
    P99,
    /// The 99.9th percentile latency.
    P999,
    /// The slowest answer.
    Max,
    /// The mean latency.
    Mean,
    /// Failed requests over requests sent.
    Errors,
    /// Requests sent per second of the measured period.
    RequestsPerSecond,
}

/// Every metric name accepted, canonical name first (for the error that
/// lists them).
const METRICS: &[(&str, ThresholdMetric)] = &[
    ("p50", ThresholdMetric::P50),
    ("median", ThresholdMetric::P50),
    ("p90", ThresholdMetric::P90),
    ("p95", ThresholdMetric::P95),
    ("p99", ThresholdMetric::P99),
    ("p99.9", ThresholdMetric::P999),
    ("p999", ThresholdMetric::P999),
    ("max", ThresholdMetric::Max),
    ("mean", ThresholdMetric::Mean),
    ("avg", ThresholdMetric::Mean),
    ("errors", ThresholdMetric::Errors),
    ("error_rate", ThresholdMetric::Errors),
    ("rps", ThresholdMetric::RequestsPerSecond),
    ("requests_per_second", ThresholdMetric::RequestsPerSecond),
];

const KNOWN_METRICS: &str = "p50 (or median), p90, p95, p99, p99.9, max, mean, \
                             errors (or error_rate), rps (or requests_per_second)";

impl ThresholdMetric {
    /// The canonical name, as [`Threshold`]'s `Display` writes it.
    pub fn name(self) -> &'static str {
        match self {
            ThresholdMetric::P50 => "p50",
            ThresholdMetric::P90 => "p90",
            ThresholdMetric::P95 => "p95",
            ThresholdMetric::P99 => "p99",
            ThresholdMetric::P999 => "p99.9",
            ThresholdMetric::Max => "max",
            ThresholdMetric::Mean => "mean",
            ThresholdMetric::Errors => "errors",
            ThresholdMetric::RequestsPerSecond => "rps",
        }
    }

    /// Whether the metric is a latency (its limit takes a unit).
    pub fn is_latency(self) -> bool {
        !matches!(
            self,
            ThresholdMetric::Errors | ThresholdMetric::RequestsPerSecond
        )
    }

    /// The unit of [`ThresholdResult::measured_value`] and
    /// [`ThresholdResult::limit_value`]: `ms`, `%` or `req/s`.
    pub fn unit(self) -> &'static str {
        match self {
            ThresholdMetric::Errors => "%",
            ThresholdMetric::RequestsPerSecond => "req/s",
            _ => "ms",
        }
    }

    fn from_name(name: &str) -> Option<ThresholdMetric> {
        let name = name.to_ascii_lowercase().replace('-', "_");
        METRICS
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, metric)| *metric)
    }

    /// The latency this metric names, in microseconds.
    fn latency_us(self, report: &BenchmarkReport) -> f64 {
        let latency = &report.latency;
        match self {
            ThresholdMetric::P50 => latency.p50_us as f64,
            ThresholdMetric::P90 => latency.p90_us as f64,
            ThresholdMetric::P95 => latency.p95_us as f64,
            ThresholdMetric::P99 => latency.p99_us as f64,
            ThresholdMetric::P999 => latency.p999_us as f64,
            ThresholdMetric::Max => latency.max_us as f64,
            ThresholdMetric::Mean => latency.mean_us,
            ThresholdMetric::Errors | ThresholdMetric::RequestsPerSecond => 0.0,
        }
    }
}

/// How the measured figure must compare with the limit to pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Comparison {
    /// `<`
    Less,
    /// `<=`
    LessOrEqual,
    /// `>`
    Greater,
    /// `>=`
    GreaterOrEqual,
}

impl Comparison {
    /// The operator as written: `<`, `<=`, `>`, `>=`.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparison::Less => "<",
            Comparison::LessOrEqual => "<=",
            Comparison::Greater => ">",
            Comparison::GreaterOrEqual => ">=",
        }
    }

    fn holds(self, measured: f64, limit: f64) -> bool {
        match self {
            Comparison::Less => measured < limit,
            Comparison::LessOrEqual => measured <= limit,
            Comparison::Greater => measured > limit,
            Comparison::GreaterOrEqual => measured >= limit,
        }
    }
}

/// The limit, in the form that keeps the canonical text exact: whole
/// nanoseconds for a latency (so `1.1ms` does not print as
/// `1100.0000000000002us`), a percent rounded to 1e-9 for errors.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Limit {
    Latency(Duration),
    Percent(f64),
    PerSecond(f64),
}

/// A pass/fail condition on one figure of a run, such as `p95<500ms`.
///
/// Parse it with [`str::parse`]; `Display` gives the canonical form
/// (`p95<500ms`, `errors<1%`, `rps>=500`), which parses back to the same
/// threshold. Serialised as that string.
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    metric: ThresholdMetric,
    comparison: Comparison,
    limit: Limit,
}

impl Threshold {
    /// `metric` must stay below `limit` (strictly): `p95<500ms`. For a
    /// latency metric only; see [`max_error_rate`](Self::max_error_rate).
    fn latency_below(metric: ThresholdMetric, limit: Duration) -> Threshold {
        Threshold {
            metric,
            comparison: Comparison::Less,
            limit: Limit::Latency(limit),
        }
    }

    /// Errors must stay below `percent` %: `errors<1%`.
    fn max_error_rate(percent: f64) -> Threshold {
        Threshold {
            metric: ThresholdMetric::Errors,
            comparison: Comparison::Less,
            limit: Limit::Percent(round_percent(percent)),
        }
    }

    /// The figure it is about.
    pub fn metric(&self) -> ThresholdMetric {
        self.metric
    }

    /// How the figure must compare with the limit.
    pub fn comparison(&self) -> Comparison {
        self.comparison
    }

    /// The limit in the unit of [`ThresholdMetric::unit`]: milliseconds,
    /// percent, or requests per second.
    pub fn limit_value(&self) -> f64 {
        match self.limit {
            Limit::Latency(limit) => limit.as_nanos() as f64 / 1e6,
            Limit::Percent(percent) => percent,
            Limit::PerSecond(rate) => rate,
        }
    }

    /// Reads the figure from `report` and checks it.
    ///
    /// A latency threshold fails on a run in which no request got an
    /// answer (measured: "no answers"), and an error threshold on a run
    /// that sent no request ("no requests"): there is nothing to vouch for.
    pub fn evaluate(&self, report: &BenchmarkReport) -> ThresholdResult {
        let (measured, measured_value, passed) = match self.limit {
            Limit::Latency(limit) => {
                if report.latency.count == 0 {
                    ("no answers".to_owned(), 0.0, false)
                } else {
                    let us = self.metric.latency_us(report);
                    let limit_us = limit.as_nanos() as f64 / 1e3;
                    (
                        human_latency(us),
                        us / 1e3,
                        self.comparison.holds(us, limit_us),
                    )
                }
            }
            Limit::Percent(limit) => {
                if report.requests == 0 {
                    ("no requests".to_owned(), 0.0, false)
                } else {
                    let percent = report.error_rate() * 100.0;
                    (
                        format!(
                            "{} ({} of {} requests failed)",
                            human_percent(percent),
                            report.errors.total(),
                            report.requests
                        ),
                        percent,
                        self.comparison.holds(percent, limit),
                    )
                }
            }
            Limit::PerSecond(limit) => {
                let rate = report.requests_per_second;
                (
                    format!("{rate:.1} req/s"),
                    rate,
                    self.comparison.holds(rate, limit),
                )
            }
        };
        ThresholdResult {
            threshold: self.to_string(),
            metric: self.metric.name().to_owned(),
            measured,
            measured_value,
            limit_value: self.limit_value(),
            unit: self.metric.unit().to_owned(),
            passed,
        }
    }
}

/// What a [`Threshold`] found in a report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ThresholdResult {
    /// The threshold, canonical form (`p95<500ms`).
    pub threshold: String,
    /// The metric's canonical name (`p95`, `errors`, `rps`).
    pub metric: String,
    /// The measured figure in words: `734.2ms`, `1.25% (5 of 400 requests
    /// failed)`, `no answers`.
    pub measured: String,
    /// The measured figure in `unit`; 0 when nothing was measured (then
    /// `measured` says so and `passed` is false).
    pub measured_value: f64,
    /// The limit in `unit`.
    pub limit_value: f64,
    /// `ms` for latencies, `%` for errors, `req/s` for throughput.
    pub unit: String,
    /// Whether the threshold held.
    pub passed: bool,
}

/// Evaluates every threshold against `report`, in order.
pub fn evaluate_thresholds(
    thresholds: &[Threshold],
    report: &BenchmarkReport,
) -> Vec<ThresholdResult> {
    thresholds
        .iter()
        .map(|threshold| threshold.evaluate(report))
        .collect()
}

/// The thresholds the runtime configuration stands for: `p95 <
/// response_time` (`RESPONSE_TIME_THRESHOLD`, the slowest acceptable
/// response) and `errors < error_rate_percent %` (`ERROR_RATE_THRESHOLD`,
/// percent of calls, 0–100).
///
/// ```
/// # use std::time::Duration;
/// let defaults = perf_runtime::bench::default_thresholds(Duration::from_millis(500), 1.0);
/// let texts: Vec<String> = defaults.iter().map(ToString::to_string).collect();
/// assert_eq!(texts, ["p95<500ms", "errors<1%"]);
/// ```
pub fn default_thresholds(response_time: Duration, error_rate_percent: f64) -> Vec<Threshold> {
    vec![
        Threshold::latency_below(ThresholdMetric::P95, response_time),
        Threshold::max_error_rate(error_rate_percent),
    ]
}

impl FromStr for Threshold {
    type Err = BenchError;

    fn from_str(input: &str) -> Result<Threshold, BenchError> {
        parse(input).map_err(|reason| BenchError::InvalidThreshold {
            input: input.to_owned(),
            reason,
        })
    }
}

fn parse(input: &str) -> Result<Threshold, String> {
    let text = input.trim();
    if text.is_empty() {
        return Err("it is empty; expected e.g. p95<500ms or errors<1%".to_owned());
    }
    let Some(at) = text.find(['<', '>']) else {
        return Err(
            "no comparison: expected `<`, `<=`, `>` or `>=` between the metric and the limit, \
             e.g. p95<500ms"
                .to_owned(),
        );
    };
    let name = text[..at].trim();
    let rest = &text[at..];
    let (comparison, value) = match rest.as_bytes() {
        [b'<', b'=', ..] => (Comparison::LessOrEqual, &rest[2..]),
        [b'>', b'=', ..] => (Comparison::GreaterOrEqual, &rest[2..]),
        [b'<', ..] => (Comparison::Less, &rest[1..]),
        _ => (Comparison::Greater, &rest[1..]),
    };
    let value = value.trim();
    if name.is_empty() {
        return Err(format!(
            "no metric before `{}`; known metrics: {KNOWN_METRICS}",
            comparison.symbol()
        ));
    }
    let metric = ThresholdMetric::from_name(name)
        .ok_or_else(|| format!("unknown metric `{name}`; known metrics: {KNOWN_METRICS}"))?;
    if value.is_empty() {
        return Err(format!("no limit after `{}`", comparison.symbol()));
    }
    let limit = match metric {
        ThresholdMetric::Errors => Limit::Percent(parse_error_rate(value)?),
        ThresholdMetric::RequestsPerSecond => Limit::PerSecond(parse_rate(value)?),
        _ => Limit::Latency(parse_latency(value)?),
    };
    Ok(Threshold {
        metric,
        comparison,
        limit,
    })
}

/// Splits `500 ms` into `500` and `ms`: the number is the longest prefix
/// made of a sign, digits, a `.` and an exponent (`1e3`).
fn split_number(value: &str) -> Result<(f64, &str), String> {
    let bytes = value.as_bytes();
    let digits_from = |mut at: usize| {
        while at < bytes.len() && (bytes[at].is_ascii_digit() || bytes[at] == b'.') {
            at += 1;
        }
        at
    };
    let mut end = digits_from(usize::from(matches!(bytes.first(), Some(b'-' | b'+'))));
    if end < bytes.len() && matches!(bytes[end], b'e' | b'E') {
        let sign = usize::from(matches!(bytes.get(end + 1), Some(b'-' | b'+')));
        if bytes.get(end + 1 + sign).is_some_and(u8::is_ascii_digit) {
            end = digits_from(end + 1 + sign);
        }
    }
    let (number, unit) = value.split_at(end);
    let parsed: f64 = number
        .parse()
        .map_err(|_| format!("`{value}` does not start with a number"))?;
    if !parsed.is_finite() {
        return Err(format!("`{number}` is not a finite number"));
    }
    if parsed < 0.0 {
        return Err(format!("the limit `{value}` is negative"));
    }
    Ok((parsed, unit.trim()))
}

fn parse_latency(value: &str) -> Result<Duration, String> {
    let (number, unit) = split_number(value)?;
    let nanos_per_unit = match unit {
        "" => return Err("a latency needs a unit: ms, s or us".to_owned()),
        "us" | "µs" | "μs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        other => {
            return Err(format!(
                "unknown unit `{other}`: a latency takes ms, s or us"
            ));
        }
    };
    let nanos = (number * nanos_per_unit).round();
    if nanos >= u64::MAX as f64 {
        return Err(format!("the latency `{value}` is too large"));
    }
    Ok(Duration::from_nanos(nanos as u64))
}

/// Percent (0–100) from `1%` or `0.01`.
fn parse_error_rate(value: &str) -> Result<f64, String> {
    let (number, unit) = split_number(value)?;
    let percent = match unit {
        "%" => number,
        "" if number <= 1.0 => number * 100.0,
        "" => {
            return Err(format!(
                "an error rate without % is a fraction from 0 to 1; for percent write {number}%"
            ));
        }
        other => {
            return Err(format!(
                "unknown unit `{other}`: an error rate is a percent (1%) or a fraction (0.01)"
            ));
        }
    };
    if percent > 100.0 {
        return Err(format!(
            "an error rate cannot exceed 100%, found {percent}%"
        ));
    }
    Ok(round_percent(percent))
}

fn parse_rate(value: &str) -> Result<f64, String> {
    let (number, unit) = split_number(value)?;
    match unit {
        "" | "/s" | "req/s" => Ok(number),
        other => Err(format!(
            "unknown unit `{other}`: requests per second is a plain number, e.g. rps>500"
        )),
    }
}

/// Rounds a percent to 1e-9, so `0.07` (a fraction) shows as `7%`, not
/// `7.000000000000001%`.
fn round_percent(percent: f64) -> f64 {
    (percent * 1e9).round() / 1e9
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.metric.name(), self.comparison.symbol())?;
        match self.limit {
            Limit::Latency(limit) => {
                let nanos = limit.as_nanos();
                if nanos != 0 && nanos % 1_000_000_000 == 0 {
                    write!(f, "{}s", nanos / 1_000_000_000)
                } else if nanos % 1_000_000 == 0 {
                    write!(f, "{}ms", nanos / 1_000_000)
                } else if nanos % 1_000 == 0 {
                    write!(f, "{}us", nanos / 1_000)
                } else {
                    write!(f, "{}us", nanos as f64 / 1e3)
                }
            }
            Limit::Percent(percent) => write!(f, "{percent}%"),
            Limit::PerSecond(rate) => write!(f, "{rate}"),
        }
    }
}

impl Serialize for Threshold {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Threshold, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A latency in microseconds in words: `850us`, `23.4ms`, `1.25s`.
pub(crate) fn human_latency(us: f64) -> String {
    if us < 1e3 {
        format!("{us:.0}us")
    } else if us < 1e6 {
        format!("{:.1}ms", us / 1e3)
    } else {
        format!("{:.2}s", us / 1e6)
    }
}

/// A percent in words, with enough digits for small rates: `1.25%`,
/// `0.031%`, `0%`.
pub(crate) fn human_percent(percent: f64) -> String {
    if percent == 0.0 {
        "0%".to_owned()
    } else if percent < 0.1 {
        format!("{percent:.3}%")
    } else {
        format!("{percent:.2}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::analysis::fixtures::report;

    fn parsed(text: &str) -> Threshold {
        text.parse()
            .unwrap_or_else(|error| panic!("{text}: {error}"))
    }

    fn reason(text: &str) -> String {
        match text.parse::<Threshold>() {
            Err(BenchError::InvalidThreshold { input, reason }) => {
                assert_eq!(input, text);
                reason
            }
            other => panic!("{text}: expected InvalidThreshold, got {other:?}"),
        }
    }

    #[test]
    fn every_documented_form_parses_to_its_canonical_text() {
        for (input, canonical) in [
            ("p50<100ms", "p50<100ms"),
            ("p95<500ms", "p95<500ms"),
            ("p99<=1s", "p99<=1s"),
            ("max<2s", "max<2s"),
            ("mean<50ms", "mean<50ms"),
            ("errors<1%", "errors<1%"),
            ("error_rate<0.01", "errors<1%"),
            ("rps>500", "rps>500"),
            ("requests_per_second>=500", "rps>=500"),
            (" P95 < 0.5 s ", "p95<500ms"),
            ("median<1500us", "p50<1500us"),
            ("p99.9 <= 2.5s", "p99.9<=2500ms"),
            ("p999<250 µs", "p99.9<250us"),
            ("p90>1.1ms", "p90>1100us"),
            ("p95<0.5us", "p95<0.5us"),
            ("error-rate <= 0.07", "errors<=7%"),
            ("errors < 0.5 %", "errors<0.5%"),
            ("rps >= 1e3", "rps>=1000"),
            ("avg<20ms", "mean<20ms"),
        ] {
            let threshold = parsed(input);
            assert_eq!(threshold.to_string(), canonical, "{input}");
            // The canonical form is a fixed point.
            assert_eq!(parsed(canonical), threshold, "{canonical}");
        }
        let p99 = parsed("p99<=1s");
        assert_eq!(p99.metric(), ThresholdMetric::P99);
        assert_eq!(p99.comparison(), Comparison::LessOrEqual);
        assert_eq!(p99.limit_value(), 1000.0);
        assert_eq!(parsed("errors<0.01").limit_value(), 1.0);
    }

    #[test]
    fn mistakes_are_explained() {
        assert_eq!(reason("p95<500"), "a latency needs a unit: ms, s or us");
        assert_eq!(
            reason("p95<500m"),
            "unknown unit `m`: a latency takes ms, s or us"
        );
        let unknown = reason("p42<1s");
        assert!(unknown.starts_with("unknown metric `p42`"), "{unknown}");
        for known in ["p50", "p95", "p99", "max", "mean", "errors", "rps"] {
            assert!(unknown.contains(known), "{unknown} lacks {known}");
        }
        assert!(reason("p95 500ms").starts_with("no comparison"));
        assert!(reason("").starts_with("it is empty"));
        assert!(reason("<500ms").starts_with("no metric before `<`"));
        assert_eq!(reason("p95<"), "no limit after `<`");
        assert!(reason("p95<fast").contains("does not start with a number"));
        assert!(reason("p95<-5ms").contains("negative"));
        assert!(reason("errors<5").contains("for percent write 5%"));
        assert!(reason("errors<150%").contains("cannot exceed 100%"));
        assert!(reason("errors<1ms").contains("unknown unit `ms`"));
        assert!(reason("rps>500ms").contains("plain number"));
        assert!(reason("p95<nan ms").contains("does not start with a number"));
        // The error names the input and the reason.
        let error = "p95<500".parse::<Threshold>().unwrap_err().to_string();
        assert!(
            error.contains("p95<500") && error.contains("needs a unit"),
            "{error}"
        );
    }

    #[test]
    fn latency_thresholds_read_the_reports_percentiles() {
        let mut run = report();
        run.latency.count = 100;
        run.latency.p50_us = 20_000;
        run.latency.p95_us = 499_999;
        run.latency.p99_us = 800_000;
        run.latency.max_us = 1_000_000;
        run.latency.mean_us = 25_500.0;

        let p95 = parsed("p95<500ms").evaluate(&run);
        assert!(p95.passed, "{p95:?}");
        assert_eq!(p95.measured, "500.0ms");
        assert_eq!(p95.measured_value, 499.999);
        assert_eq!((p95.limit_value, p95.unit.as_str()), (500.0, "ms"));
        assert_eq!(p95.threshold, "p95<500ms");
        assert!(!parsed("p95<499ms").evaluate(&run).passed);
        // The bounds: strict and not.
        assert!(!parsed("max<1s").evaluate(&run).passed);
        assert!(parsed("max<=1s").evaluate(&run).passed);
        assert!(parsed("p50>=20ms").evaluate(&run).passed);
        assert!(!parsed("p50>20ms").evaluate(&run).passed);
        let mean = parsed("mean<25ms").evaluate(&run);
        assert!(!mean.passed);
        assert_eq!(mean.measured, "25.5ms");
        assert!(parsed("p99<=800ms").evaluate(&run).passed);

        // Nothing answered: a latency threshold cannot pass.
        run.latency = Default::default();
        let none = parsed("p95<500ms").evaluate(&run);
        assert!(!none.passed);
        assert_eq!(none.measured, "no answers");
    }

    #[test]
    fn error_and_throughput_thresholds_read_the_counts() {
        let mut run = report();
        run.requests = 400;
        run.successes = 395;
        run.errors.http_status = 4;
        run.errors.timeout = 1;
        run.requests_per_second = 523.44;

        let errors = parsed("errors<1%").evaluate(&run);
        assert_eq!(errors.measured_value, 1.25);
        assert_eq!(errors.measured, "1.25% (5 of 400 requests failed)");
        assert!(!errors.passed);
        assert!(parsed("error_rate<=0.0125").evaluate(&run).passed);
        assert!(parsed("errors<2%").evaluate(&run).passed);

        let rps = parsed("rps>=500").evaluate(&run);
        assert!(rps.passed);
        assert_eq!(
            (rps.measured.as_str(), rps.unit.as_str()),
            ("523.4 req/s", "req/s")
        );
        assert!(!parsed("rps>600").evaluate(&run).passed);

        // No request sent: an error threshold cannot vouch for anything.
        run.requests = 0;
        run.successes = 0;
        run.errors = Default::default();
        let none = parsed("errors<1%").evaluate(&run);
        assert!(!none.passed);
        assert_eq!(none.measured, "no requests");
    }

    #[test]
    fn defaults_are_the_runtime_configs_thresholds() {
        let config = crate::PerfConfig::default();
        let defaults =
            default_thresholds(config.response_time_threshold, config.error_rate_threshold);
        let texts: Vec<String> = defaults.iter().map(ToString::to_string).collect();
        assert_eq!(texts, ["p95<500ms", "errors<1%"]);
        let odd: Vec<String> = default_thresholds(Duration::from_micros(250_500), 0.25)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(odd, ["p95<250500us", "errors<0.25%"]);
    }

    #[test]
    fn thresholds_serialise_as_their_text_and_results_round_trip() {
        let thresholds = vec![parsed("p95 < 0.5s"), parsed("error_rate<0.02")];
        let json = serde_json::to_string(&thresholds).unwrap();
        assert_eq!(json, r#"["p95<500ms","errors<2%"]"#);
        let back: Vec<Threshold> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, thresholds);
        let bad = serde_json::from_str::<Threshold>(r#""p95<500""#).unwrap_err();
        assert!(bad.to_string().contains("needs a unit"), "{bad}");

        let results = evaluate_thresholds(&thresholds, &report());
        assert_eq!(results.len(), 2);
        let json = serde_json::to_string(&results).unwrap();
        let back: Vec<ThresholdResult> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, results);
    }

    #[test]
    fn human_figures_pick_a_readable_unit() {
        assert_eq!(human_latency(850.0), "850us");
        assert_eq!(human_latency(23_400.0), "23.4ms");
        assert_eq!(human_latency(1_250_000.0), "1.25s");
        assert_eq!(human_percent(0.0), "0%");
        assert_eq!(human_percent(0.03125), "0.031%");
        assert_eq!(human_percent(12.5), "12.50%");
    }
}
