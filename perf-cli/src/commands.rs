//! Each subcommand from start to exit status: build the configuration,
//! run with a live bar, judge, print, save.

use std::process::ExitCode;

use perf_runtime::bench::{
    BenchmarkReport, EndurancePlan, EnduranceReport, HtmlReport, Progress, StressPlan,
    StressReport, render_html, run_benchmark_with_progress, run_endurance, run_stress_plan,
};

use crate::args::{
    CheckArgs, Command, EnduranceArgs, LoadArgs, OutputArgs, ReportArgs, StressArgs,
};
use crate::bar::LiveBar;
use crate::failure::Failure;
use crate::output::{SavedReport, read_saved, write, write_json};
use crate::request::benchmark_config;
use crate::summary;
use crate::verdict::{MetricsProbe, Verdict};

/// Exit status: every threshold held (or none was given).
const EXIT_PASSED: u8 = 0;
/// Exit status: a threshold broke, or the run regressed against the baseline.
const EXIT_FAILED_CHECK: u8 = 1;

/// Runs `command`; its exit status.
pub(crate) async fn run(command: Command) -> Result<ExitCode, Failure> {
    match command {
        Command::Load(args) => load(args).await,
        Command::Stress(args) => stress(args).await,
        Command::Endurance(args) => endurance(args).await,
        Command::Report(args) => report(args).await,
    }
}

async fn load(args: LoadArgs) -> Result<ExitCode, Failure> {
    let config = benchmark_config("load", &args.target, args.duration, args.rate)?;
    let probe = MetricsProbe::before(&args.target.url, args.check.metrics.as_deref()).await;
    let progress = Progress::new();
    let bar = LiveBar::start(&progress, !args.output.no_progress);
    let report = run_benchmark_with_progress(config, &progress).await;
    bar.finish();
    let report = report?;
    let metrics = match probe {
        Some(probe) => probe.after().await,
        None => None,
    };
    let verdict = judge(&report, &args.check, metrics.as_ref())?;
    print!("{}{}", summary::run(&report), summary::verdict(&verdict));
    save(
        &args.output,
        &report,
        &page(Some(&report), &verdict, None, None),
    )?;
    Ok(exit_status(&verdict))
}

async fn stress(args: StressArgs) -> Result<ExitCode, Failure> {
    let base = benchmark_config("stress", &args.target, args.step_duration, None)?;
    let mut plan = StressPlan::from_runtime(args.max_users, args.step, args.step_duration)?;
    if let Some(p95) = args.max_p95 {
        plan = plan.with_max_p95(p95);
    }
    if let Some(errors) = args.max_errors {
        plan = plan.with_max_error_rate(errors);
    }
    let progress = Progress::new();
    let bar = LiveBar::start(&progress, !args.output.no_progress);
    let report = run_stress_plan(base, plan, &progress).await;
    bar.finish();
    let report: StressReport = report?;
    print!("{}", summary::stress(&report));
    save(
        &args.output,
        &report,
        &HtmlReport {
            run: None,
            thresholds: &[],
            findings: &[],
            baseline: None,
            stress: Some(&report),
            endurance: None,
        },
    )?;
    Ok(ExitCode::from(EXIT_PASSED))
}

async fn endurance(args: EnduranceArgs) -> Result<ExitCode, Failure> {
    let config = benchmark_config("endurance", &args.target, args.duration, None)?;
    let metrics_url = match args.check.metrics.as_deref() {
        Some("none") => None,
        Some(url) => Some(url.to_owned()),
        None => perf_runtime::bench::metrics_url_for(&args.target.url),
    };
    let mut plan = EndurancePlan::new().with_drift_tolerance(args.drift_tolerance);
    if let Some(window) = args.window {
        plan = plan.with_window(window);
    }
    if let Some(url) = metrics_url {
        plan = plan.with_metrics_url(url);
    }
    let progress = Progress::new();
    let bar = LiveBar::start(&progress, !args.output.no_progress);
    let report = run_endurance(config, plan, &progress).await;
    bar.finish();
    let report: EnduranceReport = report?;
    let verdict = judge(&report.run, &args.check, None)?;
    print!(
        "{}{}",
        summary::endurance(&report),
        summary::verdict(&verdict)
    );
    save(
        &args.output,
        &report,
        &page(Some(&report.run), &verdict, None, Some(&report)),
    )?;
    Ok(exit_status(&verdict))
}

async fn report(args: ReportArgs) -> Result<ExitCode, Failure> {
    let check = CheckArgs {
        thresholds: args.thresholds,
        baseline: args.baseline,
        tolerance: args.tolerance,
        metrics: None,
    };
    let saved = read_saved(&args.input)?;
    let (text, html, status) = match &saved {
        SavedReport::Load(run) => {
            let verdict = judge(run, &check, None)?;
            let text = summary::run(run) + &summary::verdict(&verdict);
            let html = args
                .html
                .as_ref()
                .map(|_| render_html(&page(Some(run), &verdict, None, None)));
            (text, html, exit_status(&verdict))
        }
        SavedReport::Endurance(endurance) => {
            let verdict = judge(&endurance.run, &check, None)?;
            let text = summary::endurance(endurance) + &summary::verdict(&verdict);
            let html = args
                .html
                .as_ref()
                .map(|_| render_html(&page(Some(&endurance.run), &verdict, None, Some(endurance))));
            (text, html, exit_status(&verdict))
        }
        SavedReport::Stress(stress) => {
            let html = args.html.as_ref().map(|_| {
                render_html(&HtmlReport {
                    run: None,
                    thresholds: &[],
                    findings: &[],
                    baseline: None,
                    stress: Some(stress),
                    endurance: None,
                })
            });
            (summary::stress(stress), html, ExitCode::from(EXIT_PASSED))
        }
    };
    print!("{text}");
    if let (Some(path), Some(html)) = (&args.html, html) {
        write(path, &html)?;
    }
    Ok(status)
}

fn judge(
    report: &BenchmarkReport,
    check: &CheckArgs,
    metrics: Option<&perf_runtime::bench::TargetMetrics>,
) -> Result<Verdict, Failure> {
    Verdict::of(
        report,
        &check.thresholds,
        check.baseline.as_deref(),
        check.tolerance,
        metrics,
    )
}

fn page<'a>(
    run: Option<&'a BenchmarkReport>,
    verdict: &'a Verdict,
    stress: Option<&'a StressReport>,
    endurance: Option<&'a EnduranceReport>,
) -> HtmlReport<'a> {
    HtmlReport {
        run,
        thresholds: &verdict.thresholds,
        findings: &verdict.findings,
        baseline: verdict.baseline.as_ref(),
        stress,
        endurance,
    }
}

/// Writes the JSON and the HTML the user asked for.
fn save(
    output: &OutputArgs,
    report: &impl serde::Serialize,
    html: &HtmlReport<'_>,
) -> Result<(), Failure> {
    if let Some(path) = &output.out {
        write_json(path, report)?;
        eprintln!("JSON report: {}", path.display());
    }
    if let Some(path) = &output.html {
        write(path, &render_html(html))?;
        eprintln!("HTML report: {}", path.display());
    }
    Ok(())
}

fn exit_status(verdict: &Verdict) -> ExitCode {
    ExitCode::from(if verdict.passed() {
        EXIT_PASSED
    } else {
        EXIT_FAILED_CHECK
    })
}
