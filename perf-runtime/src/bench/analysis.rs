//! Findings and recommendations from what a run measured, each with the
//! figure that triggered it, so a reader can check the claim.
//!
//! [`analyze`] looks at:
//! - every broken threshold ([`Severity::Critical`], code `threshold_broken`);
//! - the seed guide's performance targets (p50 < 100 ms, p95 < 500 ms,
//!   p99 < 1000 ms, ≥ 500 requests/s, error rate < 0.5 %, success rate >
//!   99.5 %), each met ([`Severity::Info`]) or not ([`Severity::Warning`]),
//!   codes `target_p50` … `target_success_rate`;
//! - error bursts: windows whose error rate is at least 5 % and 5 times the
//!   rest of the run's (`error_burst`, naming when);
//! - open-model requests sent late or never (`dropped_requests`);
//! - latency rising across the run: the last third's p95 against the
//!   first third's (`latency_rising`);
//! - the target's cache hit rate during the run, from its `/metrics`
//!   (`low_cache_hit_rate` below 80 %, else `cache_hit_rate`).
//!
//! The target's memory is not judged here: one run says little about it;
//! an endurance run follows its drift.

use serde::{Deserialize, Serialize};

use super::report::{BenchmarkReport, LoadModel};
use super::run::LATE_AFTER;
use super::target_metrics::TargetMetrics;
use super::threshold::{ThresholdResult, human_latency, human_percent};

/// How much a finding matters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing: a target met, a figure for the record.
    Info,
    /// Worth looking at: a target missed, a trend, a measurement caveat.
    Warning,
    /// A threshold the run had to hold is broken.
    Critical,
}

/// One thing the analysis found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Finding {
    /// How much it matters.
    pub severity: Severity,
    /// A stable identifier (`threshold_broken`, `target_p95`,
    /// `error_burst`, `dropped_requests`, `latency_rising`,
    /// `low_cache_hit_rate`, ...), for tools that filter findings.
    pub code: String,
    /// One line: what was found.
    pub title: String,
    /// The measured figure that triggered it.
    pub figure: String,
    /// What to do about it.
    pub recommendation: String,
}

/// What the analysis reads.
#[derive(Clone, Copy, Debug)]
pub struct AnalysisInput<'a> {
    /// The run.
    pub report: &'a BenchmarkReport,
    /// The thresholds evaluated on it (may be empty).
    pub thresholds: &'a [ThresholdResult],
    /// The target's metrics over the run: the scrape after the run
    /// [`since`](TargetMetrics::since) the scrape before it.
    pub target_metrics: Option<&'a TargetMetrics>,
}

/// A window must have this many requests to be called a burst: two
/// failures out of three requests are no pattern.
const BURST_MIN_REQUESTS: u64 = 20;
/// A burst window's error rate is at least this...
const BURST_MIN_RATE: f64 = 0.05;
/// ...and this many times the rest of the run's.
const BURST_FACTOR: f64 = 5.0;
/// Latency is rising when the last third's p95 is this many times the
/// first third's...
const RISING_FACTOR: f64 = 1.5;
/// ...and higher by at least this (microseconds): 1 ms to 2 ms on loopback
/// is noise, not a trend.
const RISING_MIN_US: f64 = 5_000.0;
/// A window counts for the trend with this many answers.
const RISING_MIN_ANSWERS: u64 = 5;
/// Fewer cached calls than this say nothing about the hit rate.
const CACHE_MIN_CALLS: f64 = 20.0;
/// Below this hit rate the cache is called low.
const CACHE_LOW_HIT_RATE: f64 = 0.8;

/// The findings about `input`, the most severe first (in a fixed order
/// within a severity).
pub fn analyze(input: &AnalysisInput<'_>) -> Vec<Finding> {
    let report = input.report;
    let mut findings: Vec<Finding> = input
        .thresholds
        .iter()
        .filter(|result| !result.passed)
        .map(|result| broken_threshold(report, result))
        .collect();
    findings.extend(error_bursts(report));
    findings.extend(dropped_requests(report));
    findings.extend(latency_rising(report));
    if let Some(metrics) = input.target_metrics {
        findings.extend(cache_hit_rate(metrics));
    }
    findings.extend(seed_targets(report));
    // Stable: the order above is kept within a severity.
    findings.sort_by_key(|finding| std::cmp::Reverse(finding.severity));
    findings
}

fn finding(
    severity: Severity,
    code: &str,
    title: String,
    figure: String,
    recommendation: String,
) -> Finding {
    Finding {
        severity,
        code: code.to_owned(),
        title,
        figure,
        recommendation,
    }
}

const SLOW_TAIL: &str = "The slowest requests wait somewhere: look for contention \
    (pool waits in perf_db_pool_acquire_duration_seconds, refusals of a concurrency limit), \
    slow dependencies (perf_http_client_request_duration_seconds) and cold cache keys, and \
    compare the windows to see whether the slow requests cluster in time.";
const SLOW_ALL: &str = "Most requests are slow, not only the tail: profile the handler \
    (#[profile]) to find the slow step, and cache repeated work (#[fast_endpoint]).";
const FAILING: &str = "Look at the status codes and error kinds of the report and fix the \
    failing path first: fast failures also make the latency figures look better than they are.";
const NO_ANSWERS: &str = "No request got an answer: check that the target is up and the URL \
    right (the report's error kinds say whether connects or timeouts failed).";

fn latency_advice(metric: &str) -> &'static str {
    match metric {
        "p50" | "mean" => SLOW_ALL,
        _ => SLOW_TAIL,
    }
}

fn throughput_advice(report: &BenchmarkReport, wanted: f64) -> String {
    match report.settings.rate_per_second {
        Some(rate) if rate < wanted => format!(
            "The run's rate was {rate}/s, below {wanted}/s: it did not try. Run at {wanted}/s or \
             more to know whether the service keeps up."
        ),
        _ => format!(
            "With {users} users the run measures the load those users sent, not the service's \
             capacity: run `perf stress` to find where throughput stops growing. If the service \
             is already saturated (latency up, CPU busy), profile the busiest handler.",
            users = report.settings.users
        ),
    }
}

fn broken_threshold(report: &BenchmarkReport, result: &ThresholdResult) -> Finding {
    let metric = result.metric.as_str();
    let (figure, recommendation) = match result.measured.as_str() {
        "no answers" => (
            format!("{metric}: no request got an answer"),
            NO_ANSWERS.to_owned(),
        ),
        "no requests" => (
            format!("{metric}: no request was sent"),
            NO_ANSWERS.to_owned(),
        ),
        measured => (
            format!("{metric} was {measured}"),
            match metric {
                "errors" => FAILING.to_owned(),
                "rps" => throughput_advice(report, result.limit_value),
                _ => latency_advice(metric).to_owned(),
            },
        ),
    };
    finding(
        Severity::Critical,
        "threshold_broken",
        format!("Threshold {} broken", result.threshold),
        figure,
        recommendation,
    )
}

/// The seed guide's "Performance Targets".
fn seed_targets(report: &BenchmarkReport) -> Vec<Finding> {
    let latency = &report.latency;
    let answered = latency.count > 0;
    let mut findings = Vec::new();
    for (code, name, measured_us, limit_ms) in [
        ("target_p50", "p50", latency.p50_us, 100),
        ("target_p95", "p95", latency.p95_us, 500),
        ("target_p99", "p99", latency.p99_us, 1000),
    ] {
        let met = answered && (measured_us as f64) < limit_ms as f64 * 1e3;
        let figure = if answered {
            format!("{name} was {}", human_latency(measured_us as f64))
        } else {
            format!("{name}: no request got an answer")
        };
        let recommendation = advice(met, answered, latency_advice(name));
        findings.push(target(
            code,
            &format!("{name} under {limit_ms}ms"),
            met,
            figure,
            recommendation,
        ));
    }

    let rps = report.requests_per_second;
    let met = rps >= 500.0;
    findings.push(target(
        "target_rps",
        "at least 500 requests/s",
        met,
        format!("{rps:.1} requests/s with {} users", report.settings.users),
        if met {
            keep_it()
        } else {
            throughput_advice(report, 500.0)
        },
    ));

    let sent = report.requests > 0;
    let error_percent = report.error_rate() * 100.0;
    let met = sent && error_percent < 0.5;
    findings.push(target(
        "target_error_rate",
        "error rate under 0.5%",
        met,
        if sent {
            format!(
                "{} of {} requests failed ({})",
                report.errors.total(),
                report.requests,
                human_percent(error_percent)
            )
        } else {
            "no request was sent".to_owned()
        },
        advice(met, sent, FAILING),
    ));

    let success_percent = if sent {
        report.successes as f64 / report.requests as f64 * 100.0
    } else {
        0.0
    };
    let met = sent && success_percent > 99.5;
    findings.push(target(
        "target_success_rate",
        "success rate over 99.5%",
        met,
        if sent {
            format!(
                "{} of {} requests succeeded ({})",
                report.successes,
                report.requests,
                human_percent(success_percent)
            )
        } else {
            "no request was sent".to_owned()
        },
        advice(met, sent, FAILING),
    ));
    findings
}

/// A seed target's recommendation: keep it when met, `missed` when the
/// run measured it and missed, and say nothing was measured otherwise.
fn advice(met: bool, measured: bool, missed: &str) -> String {
    if met {
        keep_it()
    } else if measured {
        missed.to_owned()
    } else {
        NO_ANSWERS.to_owned()
    }
}

fn keep_it() -> String {
    "Keep it that way: save this run's JSON and pass it as the baseline of the next runs \
     (--baseline), so CI notices a regression."
        .to_owned()
}

fn target(code: &str, what: &str, met: bool, figure: String, recommendation: String) -> Finding {
    let (severity, verdict) = if met {
        (Severity::Info, "met")
    } else {
        (Severity::Warning, "not met")
    };
    finding(
        severity,
        code,
        format!("Target {what} (seed guide): {verdict}"),
        figure,
        recommendation,
    )
}

/// `2s`, `2.5s`: a time into the measured period.
fn at(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

fn error_bursts(report: &BenchmarkReport) -> Vec<Finding> {
    let windows = &report.windows;
    let total_requests: u64 = windows.iter().map(|w| w.requests).sum();
    let total_errors: u64 = windows.iter().map(|w| w.errors).sum();
    let rest_rate = |requests: u64, errors: u64| {
        let rest = total_requests - requests;
        if rest == 0 {
            None
        } else {
            Some((total_errors - errors) as f64 / rest as f64)
        }
    };
    let bursting: Vec<bool> = windows
        .iter()
        .map(|window| {
            if window.requests < BURST_MIN_REQUESTS {
                return false;
            }
            let rate = window.errors as f64 / window.requests as f64;
            rate >= BURST_MIN_RATE
                && rest_rate(window.requests, window.errors)
                    .is_some_and(|rest| rate >= rest * BURST_FACTOR)
        })
        .collect();

    let mut findings = Vec::new();
    let mut index = 0;
    while index < windows.len() {
        if !bursting[index] {
            index += 1;
            continue;
        }
        let first = index;
        while index < windows.len() && bursting[index] {
            index += 1;
        }
        let span = &windows[first..index];
        let requests: u64 = span.iter().map(|w| w.requests).sum();
        let errors: u64 = span.iter().map(|w| w.errors).sum();
        // A "burst" as long as the run is a steady error rate: the error
        // threshold and target speak of it.
        let Some(rest) = rest_rate(requests, errors) else {
            continue;
        };
        let start = span[0].start_ms;
        let end = span[span.len() - 1].start_ms + span[span.len() - 1].duration_ms;
        let when = format!("{}–{} into the run", at(start), at(end));
        findings.push(finding(
            Severity::Warning,
            "error_burst",
            format!("Error burst {when}"),
            format!(
                "{when}: {errors} of {requests} requests failed ({}), against {} in the rest \
                 of the run",
                human_percent(errors as f64 / requests as f64 * 100.0),
                human_percent(rest * 100.0)
            ),
            "Errors cluster in time: look at the target's logs for that moment (a restart, a \
             deploy, a dependency that went away, a pool or a rate limit that filled up). A \
             retry with backoff and a circuit breaker on the dependency (perf_runtime::http) \
             keep one outage from failing every request."
                .to_owned(),
        ));
    }
    findings
}

fn dropped_requests(report: &BenchmarkReport) -> Option<Finding> {
    if report.model != LoadModel::Open || report.dropped + report.late == 0 {
        return None;
    }
    let due = report.requests + report.dropped;
    let share = (report.dropped + report.late) as f64 / due.max(1) as f64;
    let severity = if share >= 0.01 {
        Severity::Warning
    } else {
        Severity::Info
    };
    let users = report.settings.users;
    let p99_s = report.latency.p99_us as f64 / 1e6;
    let (rate_text, advice) = match report.settings.rate_per_second {
        Some(rate) => {
            // Little's law: users busy at once = rate x time each request takes.
            let needed = (rate * p99_s * 1.5).ceil() as usize;
            let suggested = needed.max(users * 2);
            (
                format!(" at {rate}/s"),
                format!(
                    "Run with {suggested} users or more (about rate × p99 = {rate}/s × {}, with \
                     room to spare), or lower the rate.",
                    human_latency(report.latency.p99_us as f64)
                ),
            )
        }
        None => (
            String::new(),
            "Run with more users, or lower the rate.".to_owned(),
        ),
    };
    Some(finding(
        severity,
        "dropped_requests",
        "The load generator could not keep the rate: every user was busy".to_owned(),
        format!(
            "{} of {due} due requests never sent, {} sent more than {} ms late; {users} users{rate_text}, p99 {}",
            report.dropped,
            report.late,
            LATE_AFTER.as_millis(),
            human_latency(report.latency.p99_us as f64)
        ),
        format!(
            "{advice} Late requests' latency counts from when they were due, so the \
             percentiles stay honest; dropped requests are in no figure."
        ),
    ))
}

fn latency_rising(report: &BenchmarkReport) -> Option<Finding> {
    let windows: Vec<_> = report
        .windows
        .iter()
        .filter(|w| w.latency.count >= RISING_MIN_ANSWERS)
        .collect();
    let third = windows.len() / 3;
    if third == 0 {
        return None;
    }
    // The median of the windows' p95: one stalled window is a burst, not a trend.
    let median_p95 = |part: &[&super::window::WindowReport]| {
        let mut p95s: Vec<u64> = part.iter().map(|w| w.latency.p95_us).collect();
        p95s.sort_unstable();
        p95s[p95s.len() / 2] as f64
    };
    let first = &windows[..third];
    let last = &windows[windows.len() - third..];
    let (before, after) = (median_p95(first), median_p95(last));
    if after < before * RISING_FACTOR || after - before < RISING_MIN_US {
        return None;
    }
    let span = |part: &[&super::window::WindowReport]| {
        let end = part[part.len() - 1];
        format!(
            "{}–{}",
            at(part[0].start_ms),
            at(end.start_ms + end.duration_ms)
        )
    };
    Some(finding(
        Severity::Warning,
        "latency_rising",
        "Latency rose during the run".to_owned(),
        format!(
            "p95 (median of the windows) went from {} in the first third ({}) to {} in the last \
             third ({}), ×{:.2}",
            human_latency(before),
            span(first),
            human_latency(after),
            span(last),
            after / before.max(1.0)
        ),
        "Under a steady load latency should stay flat: something builds up. Look for queues \
         (a pool, a concurrency limit or a job queue too small for the load), growing caches \
         or memory, and run `perf endurance` to see whether it keeps growing."
            .to_owned(),
    ))
}

fn cache_hit_rate(metrics: &TargetMetrics) -> Option<Finding> {
    let calls = metrics.cache_lookups;
    if calls < CACHE_MIN_CALLS {
        return None;
    }
    let rate = metrics.cache_hits / calls;
    let mut figure = format!(
        "{} of {calls:.0} cached calls served from the cache ({:.0} ran the function body)",
        human_percent(rate * 100.0),
        metrics.cache_origin_calls
    );
    let functions = metrics.cache_functions_by_hit_rate();
    if functions.len() > 1
        && let Some((name, worst)) = functions.first()
    {
        figure.push_str(&format!(
            "; lowest: {name}, {} of {:.0} calls",
            human_percent(worst.served_from_cache() / worst.calls() * 100.0),
            worst.calls()
        ));
    }
    if metrics.cache_size_evictions > 0.0 {
        figure.push_str(&format!(
            "; {:.0} L1 entries evicted for size",
            metrics.cache_size_evictions
        ));
    }
    if rate >= CACHE_LOW_HIT_RATE {
        return Some(finding(
            Severity::Info,
            "cache_hit_rate",
            format!(
                "Cache hit rate {} during the run",
                human_percent(rate * 100.0)
            ),
            figure,
            keep_it(),
        ));
    }
    let capacity = if metrics.cache_size_evictions > 0.0 {
        "Entries were evicted because L1 was full: raise max_entries (or max_bytes). "
    } else {
        ""
    };
    Some(finding(
        Severity::Warning,
        "low_cache_hit_rate",
        format!(
            "Low cache hit rate: {} during the run (under {:.0}%)",
            human_percent(rate * 100.0),
            CACHE_LOW_HIT_RATE * 100.0
        ),
        figure,
        format!(
            "{capacity}Most calls ran the function body. Check the key: an argument that differs on \
             every call (a timestamp, a request id) makes every key new; key on what matters \
             with `key = \"...\"`. Raise cache_ttl if entries expire between calls. A load \
             test whose requests never repeat measures the cold path only."
        ),
    ))
}

/// Reports to test with, built from JSON (as a tool outside the crate
/// would) so that fields added to the report do not break the tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use serde_json::json;

    use crate::bench::histogram::LatencySummary;
    use crate::bench::report::{BenchmarkReport, ErrorCounts};
    use crate::bench::window::WindowReport;

    /// A closed HTTP run of 10 users with no request.
    pub(crate) fn report() -> BenchmarkReport {
        let value = json!({
            "schema_version": crate::bench::SCHEMA_VERSION,
            "name": "fixture",
            "kind": "http",
            "target": "http://127.0.0.1:8000/api/chat",
            "model": "closed",
            "started_at": "2026-01-01T00:00:00.000Z",
            "settings": {
                "users": 10, "duration_ms": 10_000, "ramp_up_ms": 0, "think_time_ms": 0,
                "request_timeout_ms": 30_000, "rate_per_second": null, "method": "GET",
                "window_ms": 1000
            },
            "wall_time_ms": 10_000,
            "requests": 0, "successes": 0, "warmup_requests": 0, "dropped": 0, "late": 0,
            "requests_per_second": 0.0,
            "latency": serde_json::to_value(LatencySummary::default()).unwrap(),
            "status_codes": {},
            "errors": serde_json::to_value(ErrorCounts::default()).unwrap(),
            "windows": [],
        });
        serde_json::from_value(value).expect("the fixture matches the report's schema")
    }

    /// A one-second window starting `second` seconds in.
    pub(crate) fn window(second: u64, requests: u64, errors: u64, p95_us: u64) -> WindowReport {
        let latency = LatencySummary {
            count: requests,
            p50_us: p95_us / 2,
            p95_us,
            p99_us: p95_us,
            max_us: p95_us,
            ..LatencySummary::default()
        };
        let value = json!({
            "start_ms": second * 1000,
            "duration_ms": 1000,
            "requests": requests,
            "errors": errors,
            "requests_per_second": requests as f64,
            "latency": serde_json::to_value(latency).unwrap(),
        });
        serde_json::from_value(value).expect("the fixture matches the window's schema")
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{report, window};
    use super::*;
    use crate::bench::threshold::{Threshold, evaluate_thresholds};

    /// A healthy run: 10 windows of 600 requests, p95 50 ms, no error.
    fn healthy() -> BenchmarkReport {
        let mut run = report();
        run.windows = (0..10).map(|s| window(s, 600, 0, 50_000)).collect();
        run.requests = 6000;
        run.successes = 6000;
        run.requests_per_second = 600.0;
        run.latency.count = 6000;
        run.latency.p50_us = 20_000;
        run.latency.p95_us = 50_000;
        run.latency.p99_us = 80_000;
        run.latency.max_us = 120_000;
        run
    }

    fn analyse(
        run: &BenchmarkReport,
        thresholds: &[&str],
        metrics: Option<&TargetMetrics>,
    ) -> Vec<Finding> {
        let thresholds: Vec<Threshold> = thresholds.iter().map(|t| t.parse().unwrap()).collect();
        let results = evaluate_thresholds(&thresholds, run);
        analyze(&AnalysisInput {
            report: run,
            thresholds: &results,
            target_metrics: metrics,
        })
    }

    fn codes(findings: &[Finding], severity: Severity) -> Vec<&str> {
        findings
            .iter()
            .filter(|f| f.severity == severity)
            .map(|f| f.code.as_str())
            .collect()
    }

    fn find<'a>(findings: &'a [Finding], code: &str) -> &'a Finding {
        findings
            .iter()
            .find(|f| f.code == code)
            .unwrap_or_else(|| panic!("no {code} in {findings:#?}"))
    }

    #[test]
    fn a_healthy_run_meets_every_target_and_breaks_nothing() {
        let run = healthy();
        let findings = analyse(&run, &["p95<500ms", "errors<1%"], None);
        assert_eq!(codes(&findings, Severity::Critical), Vec::<&str>::new());
        assert_eq!(codes(&findings, Severity::Warning), Vec::<&str>::new());
        assert_eq!(
            codes(&findings, Severity::Info),
            [
                "target_p50",
                "target_p95",
                "target_p99",
                "target_rps",
                "target_error_rate",
                "target_success_rate"
            ]
        );
        let p95 = find(&findings, "target_p95");
        assert_eq!(p95.figure, "p95 was 50.0ms");
        assert!(p95.title.ends_with(": met"), "{}", p95.title);
    }

    #[test]
    fn broken_thresholds_come_first_with_the_measured_figure() {
        let mut run = healthy();
        run.latency.p95_us = 734_200;
        run.errors.http_status = 60;
        run.successes = 5940;
        let findings = analyse(&run, &["p95<500ms", "errors<0.5%", "rps>100"], None);
        assert_eq!(
            codes(&findings, Severity::Critical),
            ["threshold_broken"; 2]
        );
        assert_eq!(findings[0].title, "Threshold p95<500ms broken");
        assert_eq!(findings[0].figure, "p95 was 734.2ms");
        assert_eq!(findings[1].title, "Threshold errors<0.5% broken");
        assert_eq!(
            findings[1].figure,
            "errors was 1.00% (60 of 6000 requests failed)"
        );
        assert!(findings[1].recommendation.contains("status codes"));
        // The seed's targets: p95 and the error and success rates missed.
        assert_eq!(
            codes(&findings, Severity::Warning),
            ["target_p95", "target_error_rate", "target_success_rate"]
        );
        assert_eq!(
            find(&findings, "target_success_rate").figure,
            "5940 of 6000 requests succeeded (99.00%)"
        );
    }

    #[test]
    fn a_run_without_answers_breaks_latency_thresholds_and_targets() {
        let mut run = report();
        run.requests = 50;
        run.errors.connect = 50;
        run.requests_per_second = 5.0;
        let findings = analyse(&run, &["p95<500ms"], None);
        let broken = find(&findings, "threshold_broken");
        assert_eq!(broken.figure, "p95: no request got an answer");
        assert!(broken.recommendation.contains("target is up"));
        assert_eq!(find(&findings, "target_p50").severity, Severity::Warning);
        assert_eq!(
            find(&findings, "target_p50").figure,
            "p50: no request got an answer"
        );
    }

    #[test]
    fn an_error_burst_names_its_seconds() {
        let mut run = healthy();
        // Seconds 3 and 4: 90 % errors; a trickle elsewhere (0.5 %).
        for (index, window) in run.windows.iter_mut().enumerate() {
            window.errors = if index == 3 || index == 4 { 540 } else { 3 };
        }
        run.errors.http_status = run.windows.iter().map(|w| w.errors).sum();
        let findings = analyse(&run, &[], None);
        let burst = find(&findings, "error_burst");
        assert_eq!(burst.title, "Error burst 3s–5s into the run");
        assert_eq!(
            burst.figure,
            "3s–5s into the run: 1080 of 1200 requests failed (90.00%), against 0.50% in the rest of the run"
        );
        assert_eq!(
            findings.iter().filter(|f| f.code == "error_burst").count(),
            1
        );

        // The same errors spread evenly: no burst.
        let mut steady = healthy();
        for window in &mut steady.windows {
            window.errors = 120;
        }
        assert!(
            analyse(&steady, &[], None)
                .iter()
                .all(|f| f.code != "error_burst")
        );
        // Nor in a window too small to say anything.
        let mut small = healthy();
        small.windows[9].requests = 10;
        small.windows[9].errors = 10;
        assert!(
            analyse(&small, &[], None)
                .iter()
                .all(|f| f.code != "error_burst")
        );
        // A lone window holding all the errors of a 2-window run is a burst...
        let mut two = healthy();
        two.windows.truncate(2);
        two.windows[1].errors = 600;
        assert_eq!(
            find(&analyse(&two, &[], None), "error_burst").title,
            "Error burst 1s–2s into the run"
        );
        // ...but errors in every window are not.
        two.windows[0].errors = 600;
        assert!(
            analyse(&two, &[], None)
                .iter()
                .all(|f| f.code != "error_burst")
        );
    }

    #[test]
    fn dropped_and_late_requests_suggest_more_users() {
        let mut run = healthy();
        run.model = LoadModel::Open;
        run.settings.rate_per_second = Some(1000.0);
        run.settings.users = 10;
        run.requests = 6000;
        run.dropped = 4000;
        run.late = 2500;
        run.latency.p99_us = 200_000;
        let findings = analyse(&run, &[], None);
        let dropped = find(&findings, "dropped_requests");
        assert_eq!(dropped.severity, Severity::Warning);
        assert_eq!(
            dropped.figure,
            "4000 of 10000 due requests never sent, 2500 sent more than 10 ms late; 10 users at 1000/s, p99 200.0ms"
        );
        // 1000/s × 0.2 s × 1.5 = 300 users.
        assert!(
            dropped.recommendation.starts_with("Run with 300 users"),
            "{}",
            dropped.recommendation
        );

        // A closed run never has any.
        assert!(
            analyse(&healthy(), &[], None)
                .iter()
                .all(|f| f.code != "dropped_requests")
        );
        // A handful late out of many: worth knowing, no more.
        run.dropped = 0;
        run.late = 5;
        assert_eq!(
            find(&analyse(&run, &[], None), "dropped_requests").severity,
            Severity::Info
        );
    }

    #[test]
    fn latency_rising_compares_the_thirds() {
        let mut run = healthy();
        // p95 20 ms for three seconds, then climbing to 80 ms.
        let p95s = [20, 21, 19, 30, 40, 50, 60, 75, 80, 78];
        for (window, p95) in run.windows.iter_mut().zip(p95s) {
            window.latency.p95_us = p95 * 1000;
        }
        let findings = analyse(&run, &[], None);
        let rising = find(&findings, "latency_rising");
        assert_eq!(
            rising.figure,
            "p95 (median of the windows) went from 20.0ms in the first third (0s–3s) to 78.0ms \
             in the last third (7s–10s), ×3.90"
        );
        // Flat with one stalled window: no trend.
        let mut stall = healthy();
        stall.windows[9].latency.p95_us = 2_000_000;
        assert!(
            analyse(&stall, &[], None)
                .iter()
                .all(|f| f.code != "latency_rising")
        );
        // Doubling from 1 ms to 2 ms: noise on loopback.
        let mut fast = healthy();
        for (index, window) in fast.windows.iter_mut().enumerate() {
            window.latency.p95_us = if index < 5 { 1000 } else { 2000 };
        }
        assert!(
            analyse(&fast, &[], None)
                .iter()
                .all(|f| f.code != "latency_rising")
        );
    }

    #[test]
    fn the_cache_hit_rate_comes_from_the_targets_metrics() {
        let text = |hits: u32, misses: u32, origin: u32| {
            format!(
                "perf_cache_requests_total{{function=\"profile\",tier=\"l1\",outcome=\"hit\"}} {hits}\n\
                 perf_cache_requests_total{{function=\"profile\",tier=\"l1\",outcome=\"miss\"}} {misses}\n\
                 perf_cache_origin_calls_total{{function=\"profile\"}} {origin}\n\
                 perf_cache_evictions_total{{function=\"profile\",cause=\"size\"}} 40\n"
            )
        };
        let before = TargetMetrics::parse(&text(100, 10, 10));
        let after = TargetMetrics::parse(&text(160, 110, 110));
        let run_metrics = after.since(&before);
        let findings = analyse(&healthy(), &[], Some(&run_metrics));
        let low = find(&findings, "low_cache_hit_rate");
        assert_eq!(low.severity, Severity::Warning);
        assert_eq!(
            low.figure,
            "37.50% of 160 cached calls served from the cache (100 ran the function body)"
        );
        let good = TargetMetrics::parse(&text(900, 100, 100));
        let findings = analyse(&healthy(), &[], Some(&good));
        let fine = find(&findings, "cache_hit_rate");
        assert_eq!(fine.severity, Severity::Info);
        assert!(
            fine.figure.ends_with("; 40 L1 entries evicted for size"),
            "{}",
            fine.figure
        );
        // Too few calls to judge.
        let few = TargetMetrics::parse(&text(5, 5, 5));
        let findings = analyse(&healthy(), &[], Some(&few));
        assert!(findings.iter().all(|f| !f.code.contains("cache")));
    }

    #[test]
    fn findings_round_trip_through_json() {
        let findings = analyse(&healthy(), &["p95<1ms"], None);
        let json = serde_json::to_string(&findings).unwrap();
        assert!(json.contains(r#""severity":"critical""#), "{json}");
        let back: Vec<Finding> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, findings);
    }
}
