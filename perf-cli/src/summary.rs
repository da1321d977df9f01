//! The summary printed when a run ends: the figures that matter in a few
//! aligned lines, then the verdict (thresholds, baseline, findings).

use std::fmt::Write as _;

use perf_runtime::bench::{
    BenchmarkReport, EnduranceReport, LoadModel, Severity, StopReason, StressReport,
};

use crate::format::{count, latency, micros, percent};
use crate::verdict::Verdict;

/// A run's figures.
pub(crate) fn run(report: &BenchmarkReport) -> String {
    let mut out = String::new();
    let settings = &report.settings;
    let model = match report.model {
        LoadModel::Open => format!(
            "open model at {} req/s",
            settings.rate_per_second.unwrap_or_default()
        ),
        _ => "closed model".to_owned(),
    };
    let _ = writeln!(
        out,
        "{} {} — {model}, {} users, {:.0}s measured",
        report.name,
        report.target,
        settings.users,
        settings.duration_ms as f64 / 1000.0
    );
    let l = &report.latency;
    let rows = [
        (
            "requests",
            format!(
                "{} ({} succeeded, {} dropped, {} late; {} in the ramp-up)",
                count(report.requests),
                count(report.successes),
                count(report.dropped),
                count(report.late),
                count(report.warmup_requests),
            ),
        ),
        (
            "throughput",
            format!("{:.1} req/s", report.requests_per_second),
        ),
        (
            "latency",
            if l.count == 0 {
                "no answers".to_owned()
            } else {
                format!(
                    "p50 {}  p90 {}  p95 {}  p99 {}  p99.9 {}  max {}",
                    micros(l.p50_us),
                    micros(l.p90_us),
                    micros(l.p95_us),
                    micros(l.p99_us),
                    micros(l.p999_us),
                    micros(l.max_us),
                )
            },
        ),
        (
            "status",
            report
                .status_codes
                .iter()
                .map(|(status, n)| format!("{status}: {}", count(*n)))
                .collect::<Vec<_>>()
                .join("  "),
        ),
        (
            "errors",
            format!(
                "{} ({}): connect {}, timeout {}, http status {}, other {}",
                count(report.errors.total()),
                percent(report.error_rate()),
                report.errors.connect,
                report.errors.timeout,
                report.errors.http_status,
                report.errors.other,
            ),
        ),
    ];
    for (label, value) in rows {
        let _ = writeln!(out, "  {label:<11} {value}");
    }
    if let Some(streams) = &report.streaming {
        let _ = writeln!(
            out,
            "  {:<11} {} streams, {} ended properly ({}), {} cut; first token p50 {} p95 {}; \
             per token p50 {}; {:.1} tokens/s",
            "streaming",
            count(streams.streams),
            count(streams.ended_properly),
            percent(streams.ended_properly_ratio),
            count(streams.cut),
            micros(streams.time_to_first_token.p50_us),
            micros(streams.time_to_first_token.p95_us),
            micros(streams.time_per_output_token.p50_us),
            streams.tokens_per_second,
        );
    }
    out
}

/// The verdict: thresholds, baseline changes, findings.
pub(crate) fn verdict(verdict: &Verdict) -> String {
    let mut out = String::new();
    if !verdict.thresholds.is_empty() {
        let _ = writeln!(out, "thresholds");
        for result in &verdict.thresholds {
            let mark = if result.passed { "pass" } else { "FAIL" };
            let _ = writeln!(
                out,
                "  {mark}  {:<16} measured {}",
                result.threshold, result.measured
            );
        }
    }
    if let Some(comparison) = &verdict.baseline {
        let _ = writeln!(
            out,
            "baseline ({} regression{})",
            comparison.regressions,
            if comparison.regressions == 1 { "" } else { "s" }
        );
        for change in &comparison.changes {
            let mark = if change.regressed { "WORSE" } else { "ok" };
            let _ = writeln!(
                out,
                "  {mark:<5} {:<20} {:>12.1} -> {:>12.1} ({:+.1}%)",
                change.metric,
                change.baseline,
                change.current,
                change.change * 100.0
            );
        }
    }
    if !verdict.findings.is_empty() {
        let _ = writeln!(out, "findings");
        for finding in &verdict.findings {
            match finding.severity {
                // A target met needs no advice: one line each.
                Severity::Info => {
                    let _ = writeln!(out, "  ok        {} ({})", finding.title, finding.figure);
                }
                severity => {
                    let label = if severity == Severity::Critical {
                        "CRITICAL"
                    } else {
                        "warning"
                    };
                    let _ = writeln!(
                        out,
                        "  {label:<9} {} ({})\n            {}",
                        finding.title, finding.figure, finding.recommendation
                    );
                }
            }
        }
    }
    out
}

/// A stress test's steps and where it broke.
pub(crate) fn stress(report: &StressReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} {} — stress test", report.name, report.target);
    let _ = writeln!(
        out,
        "  {:>6} {:>12} {:>10} {:>10} {:>8}  verdict",
        "users", "req/s", "p50", "p95", "errors"
    );
    for step in &report.steps {
        let _ = writeln!(
            out,
            "  {:>6} {:>12.1} {:>10} {:>10} {:>8}  {}",
            step.users,
            step.requests_per_second,
            latency(step.latency.p50()),
            latency(step.latency.p95()),
            percent(step.error_rate),
            if step.sustainable {
                "held".to_owned()
            } else {
                format!("broke: {}", step.broken.join(", "))
            }
        );
    }
    let sustainable = report.last_sustainable_users.map_or_else(
        || "none (the first step broke a limit)".to_owned(),
        |users| format!("{users} users"),
    );
    let knee = report.knee_users.map_or_else(
        || "none (throughput grew with every step)".to_owned(),
        |users| format!("{users} users"),
    );
    let stopped = match report.stop_reason {
        StopReason::MaxUsers => "at --max-users, every step held",
        _ => "at the first step that broke a limit",
    };
    let _ = writeln!(
        out,
        "  last sustainable step: {sustainable}\n  knee: {knee}\n  stopped {stopped}"
    );
    out
}

/// An endurance run: the run's figures, then drift.
pub(crate) fn endurance(report: &EnduranceReport) -> String {
    let mut out = run(&report.run);
    let _ = writeln!(out, "drift (first fifth of the run against the last)");
    for drift in &report.drift {
        let _ = writeln!(
            out,
            "  {}  {:<24} {:>14.1} -> {:>14.1} ({:+.1}%)",
            if drift.flagged { "DRIFT" } else { "ok   " },
            drift.metric,
            drift.first,
            drift.last,
            drift.change * 100.0
        );
    }
    if report.memory.is_empty() {
        let _ = writeln!(out, "  memory: not sampled (no /metrics on the target)");
    }
    out
}
