//! The HTML report (`perf_runtime::bench::render_html`) of real runs
//! against loopback servers: a run with an injected delay and errors, a
//! stress test and an endurance run with a growing `/metrics`, all on one
//! page; and a run that got no answer at all. The page's structure is
//! checked against the reports' figures, then headless Chromium draws it and
//! the screenshot is checked: a PNG of the asked size, with the charts'
//! colours in it.
//!
//! Chromium is Debian's `chromium` package (`CHROMIUM` may name another
//! binary). Under CI (`CI=true`) a missing Chromium fails the test; elsewhere
//! the Chromium half is skipped with a message. `BENCH_HTML_KEEP=<dir>`
//! keeps the pages and screenshots there.

mod support;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use perf_runtime::bench::{
    AnalysisInput, BenchmarkConfig, EndurancePlan, HtmlReport, Progress, StressPlan, Threshold,
    analyze, compare_with_baseline, evaluate_thresholds, render_html, run_benchmark, run_endurance,
    run_stress_plan,
};
use support::http_server::{TestServer, text};
use support::on_ci;
use tokio::sync::Semaphore;

/// The screenshot's size: the width of a laptop browser, tall enough for
/// the whole page with every section.
const SCREEN: (u32, u32) = (1200, 6400);

/// Colours the charts draw with (`charts.rs`): the p95 lines, the
/// histogram's bars, the memory line.
const P95_ORANGE: [u8; 3] = [221, 107, 32];
const BAR_GREY: [u8; 3] = [160, 174, 192];
const MEMORY_PURPLE: [u8; 3] = [107, 70, 193];

/// The `data-value` of the summary figure `metric`.
fn figure<'a>(page: &'a str, metric: &str) -> &'a str {
    let marker = format!("data-metric=\"{metric}\" data-value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no figure {metric} in the page"))
        + marker.len();
    let end = start + page[start..].find('"').expect("closing quote");
    &page[start..end]
}

/// `text` as the page escapes it.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Tags that open must close: a cheap check that the page is not cut.
fn assert_balanced(page: &str) {
    for tag in [
        "table", "section", "svg", "figure", "tr", "ol", "dl", "header", "main",
    ] {
        let opened =
            page.matches(&format!("<{tag} ")).count() + page.matches(&format!("<{tag}>")).count();
        let closed = page.matches(&format!("</{tag}>")).count();
        assert_eq!(
            opened, closed,
            "<{tag}> opened {opened} times, closed {closed}"
        );
    }
}

/// Self-contained: nothing the browser would fetch.
fn assert_self_contained(page: &str) {
    for reference in [
        "<script", "<link", "<img", "<iframe", "src=", "href=", "url(", "@import",
    ] {
        assert!(!page.contains(reference), "the page references {reference}");
    }
}

/// A server answering after 15 ms (every 20th request after 80 ms), with a
/// 503 for every 10th request, and a `/metrics` whose resident memory grows
/// by 3 MiB with every scrape.
async fn delayed_server_with_errors() -> TestServer {
    let scrapes = Arc::new(AtomicU64::new(0));
    TestServer::start(move |request, hit| {
        let scrapes = Arc::clone(&scrapes);
        async move {
            if request.uri().path() == "/metrics" {
                let scrape = scrapes.fetch_add(1, Ordering::SeqCst);
                let bytes = (80 + 3 * scrape) * 1024 * 1024;
                return text(200, format!("process_resident_memory_bytes {bytes}\n"));
            }
            if hit.is_multiple_of(10) {
                return text(503, "busy");
            }
            let delay = if hit % 20 == 1 { 80 } else { 15 };
            tokio::time::sleep(Duration::from_millis(delay)).await;
            text(200, "ok")
        }
    })
    .await
}

/// A server with `workers` permits held `hold` each: past `workers` users,
/// requests queue (a knee for the stress curve).
async fn workers_server(workers: usize, hold: Duration) -> TestServer {
    let permits = Arc::new(Semaphore::new(workers));
    TestServer::start(move |_request, _hit| {
        let permits = Arc::clone(&permits);
        async move {
            let _permit = permits.acquire().await.expect("never closed");
            tokio::time::sleep(hold).await;
            text(200, "ok")
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_run_renders_a_self_contained_page_that_chromium_draws() {
    let server = delayed_server_with_errors().await;
    let name = "checkout <v2> & \"friends\"";
    let config = BenchmarkConfig::builder(name, server.url("/api/checkout"))
        .concurrent_users(4)
        .ramp_up(Duration::from_millis(300))
        .duration(Duration::from_secs(2))
        .window(Duration::from_millis(500))
        .build()
        .expect("valid config");
    let run = run_benchmark(config).await.expect("run");
    println!(
        "run: {} requests, {} errors, {:.0} req/s, p50 {:?} p95 {:?} p99 {:?}, {} windows, {} buckets",
        run.requests,
        run.errors.total(),
        run.requests_per_second,
        run.latency.p50(),
        run.latency.p95(),
        run.latency.p99(),
        run.windows.len(),
        run.latency_distribution.len()
    );
    assert!(run.errors.http_status > 0 && run.status_codes.contains_key(&503));
    assert!(run.latency.count > 0);

    let thresholds: Vec<Threshold> = ["p95<5s", "errors<1%", "rps>1"]
        .iter()
        .map(|text| text.parse().expect("valid threshold"))
        .collect();
    let results = evaluate_thresholds(&thresholds, &run);
    let findings = analyze(&AnalysisInput {
        report: &run,
        thresholds: &results,
        target_metrics: None,
    });
    // The last release: faster, and without errors.
    let mut last_release = run.clone();
    last_release.name = "release <1.4>".to_owned();
    last_release.latency.p50_us = run.latency.p50_us * 3 / 4;
    last_release.latency.p95_us = run.latency.p95_us * 3 / 4;
    last_release.errors.http_status = 0;
    let comparison = compare_with_baseline(&last_release, &run, 0.1);

    let stress_server = workers_server(3, Duration::from_millis(40)).await;
    let stress_base = BenchmarkConfig::builder("checkout stress", stress_server.url("/"))
        .concurrent_users(1)
        .duration(Duration::from_secs(30))
        .build()
        .expect("valid config");
    let plan = StressPlan::new(6, 1, Duration::from_millis(600))
        .with_max_p95(Duration::from_millis(70))
        .with_max_error_rate(0.05);
    let stress = run_stress_plan(stress_base, plan, &Progress::new())
        .await
        .expect("stress test");
    println!(
        "stress: {} steps, last sustainable {:?}, knee {:?}",
        stress.steps.len(),
        stress.last_sustainable_users,
        stress.knee_users
    );

    let endurance_config =
        BenchmarkConfig::builder("checkout endurance", server.url("/api/checkout"))
            .concurrent_users(2)
            .duration(Duration::from_millis(2500))
            .build()
            .expect("valid config");
    let endurance_plan = EndurancePlan::new()
        .with_window(Duration::from_millis(500))
        .with_metrics_url(server.url("/metrics"));
    let endurance = run_endurance(endurance_config, endurance_plan, &Progress::new())
        .await
        .expect("endurance run");
    println!(
        "endurance: {} windows, {} memory samples, drift {:?}",
        endurance.run.windows.len(),
        endurance.memory.len(),
        endurance
            .drift
            .iter()
            .map(|d| (&d.metric, d.flagged))
            .collect::<Vec<_>>()
    );
    assert!(endurance.memory.len() >= 2, "the memory was sampled");

    let page = render_html(&HtmlReport {
        run: Some(&run),
        thresholds: &results,
        findings: &findings,
        baseline: Some(&comparison),
        stress: Some(&stress),
        endurance: Some(&endurance),
    });
    println!("page: {} KiB", page.len() / 1024);

    // The name, escaped wherever it shows; never as markup.
    assert!(page.contains(&format!("<h1>Benchmark report: {}</h1>", escaped(name))));
    assert!(page.contains(&format!(
        "<title>Benchmark report: {}</title>",
        escaped(name)
    )));
    assert!(!page.contains("<v2>") && !page.contains("<1.4>"));
    assert!(page.contains(&escaped(&run.target)));
    assert!(page.contains(&run.started_at));
    // The summary's figures are the report's.
    let latency = &run.latency;
    let expected = [
        ("requests", run.requests.to_string()),
        ("successes", run.successes.to_string()),
        ("errors", run.errors.total().to_string()),
        ("error_rate", run.error_rate().to_string()),
        ("requests_per_second", run.requests_per_second.to_string()),
        ("warmup_requests", run.warmup_requests.to_string()),
        ("latency_count", latency.count.to_string()),
        ("min_us", latency.min_us.to_string()),
        ("p50_us", latency.p50_us.to_string()),
        ("p90_us", latency.p90_us.to_string()),
        ("p95_us", latency.p95_us.to_string()),
        ("p99_us", latency.p99_us.to_string()),
        ("p999_us", latency.p999_us.to_string()),
        ("max_us", latency.max_us.to_string()),
        ("mean_us", latency.mean_us.to_string()),
        ("errors_http_status", run.errors.http_status.to_string()),
        ("errors_connect", run.errors.connect.to_string()),
        ("errors_timeout", run.errors.timeout.to_string()),
    ];
    for (metric, value) in expected {
        assert_eq!(figure(&page, metric), value, "{metric}");
    }
    for (code, count) in &run.status_codes {
        assert_eq!(figure(&page, &format!("status_{code}")), count.to_string());
    }
    // The p95 shown in ms is the report's, to the hundredth.
    assert!(page.contains(&format!("{:.2} ms", latency.p95_us as f64 / 1000.0)));

    // Every chart is an inline SVG.
    for chart in [
        "Latency per window (p50, p95, p99)",
        "Throughput per window (requests/s, errors/s)",
        "Latency distribution (log-spaced buckets)",
        "Stress curve: throughput and p95 against users",
        "Resident memory of the target",
    ] {
        let svg = format!(
            "<svg class=\"chart\" role=\"img\" aria-label=\"{}\"",
            escaped(chart)
        );
        assert_eq!(page.matches(&svg).count(), 1, "chart {chart}");
    }
    assert!(!page.contains("no-data\""), "every chart has data");

    // Thresholds: one row each, the broken one (10 % errors) marked.
    assert_eq!(
        results.iter().filter(|r| !r.passed).count(),
        1,
        "{results:?}"
    );
    for result in &results {
        let verdict = if result.passed { "PASS" } else { "FAIL" };
        let class = if result.passed { "pass" } else { "fail" };
        assert!(page.contains(&format!(
            "<tr class=\"{class}\"><td><code>{}</code></td><td>{}</td>",
            escaped(&result.threshold),
            escaped(&result.measured)
        )));
        assert!(page.contains(&format!("<span class=\"badge {class}\">{verdict}</span>")));
    }
    assert!(page.contains("FAIL: 1 of 3 thresholds broken"));
    // Findings, baseline, stress steps and drift are all there.
    assert!(!findings.is_empty());
    for finding in &findings {
        assert!(page.contains(&escaped(&finding.title)), "{}", finding.title);
        assert!(page.contains(&escaped(&finding.recommendation)));
    }
    assert!(page.contains(&escaped(&comparison.baseline_name)));
    assert_eq!(
        page.matches("<tr class=\"fail\"><td>p95</td>").count(),
        1,
        "p95 regressed"
    );
    let stress_rows = page
        .split("<section id=\"stress\">")
        .nth(1)
        .expect("stress section")
        .matches("<tr class=")
        .count();
    assert_eq!(stress_rows, stress.steps.len());
    for drift in &endurance.drift {
        assert!(page.contains(&format!("<td>{}</td>", drift.metric)));
    }
    assert_balanced(&page);
    assert_self_contained(&page);

    let Some(chromium) = chromium() else { return };
    let files = Files::new("full");
    let shot = files.screenshot(&chromium, &page, SCREEN).await;
    println!(
        "screenshot {}: {} bytes, {} colours, {:.1} % not white, orange {} grey {} purple {}",
        files.png.display(),
        shot.bytes,
        shot.colours,
        shot.not_white * 100.0,
        shot.near(P95_ORANGE),
        shot.near(BAR_GREY),
        shot.near(MEMORY_PURPLE),
    );
    // Drawn, not blank: text, tables and charts in many colours, and the
    // charts' own colours in it (the p95 lines, the bars, the memory line).
    assert!(shot.colours > 200, "{} colours", shot.colours);
    assert!(shot.not_white > 0.03, "{:.3} not white", shot.not_white);
    assert!(shot.near(P95_ORANGE) > 200, "p95 lines drawn");
    assert!(shot.near(BAR_GREY) > 4000, "histogram bars drawn");
    assert!(shot.near(MEMORY_PURPLE) > 200, "memory line drawn");
    files.finish();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_without_any_answer_renders_no_data_boxes() {
    // Every request times out: nothing is answered in the whole run.
    let server = TestServer::start(|_request, _hit| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        text(200, "too late")
    })
    .await;
    let config = BenchmarkConfig::builder("<silent> server", server.url("/"))
        .concurrent_users(2)
        .request_timeout(Duration::from_millis(200))
        .duration(Duration::from_secs(1))
        .build()
        .expect("valid config");
    let run = run_benchmark(config).await.expect("run");
    println!(
        "no answers: {} requests, {:?}, {} windows",
        run.requests,
        run.errors,
        run.windows.len()
    );
    assert!(run.requests > 0);
    assert_eq!(run.latency.count, 0);
    assert!(run.errors.timeout > 0);
    assert_eq!(run.errors.total(), run.requests);
    assert_eq!(run.windows.len(), 1);
    let thresholds: Vec<Threshold> = vec!["p95<1s".parse().expect("valid")];
    let results = evaluate_thresholds(&thresholds, &run);
    let findings = analyze(&AnalysisInput {
        report: &run,
        thresholds: &results,
        target_metrics: None,
    });

    let page = render_html(&HtmlReport {
        run: Some(&run),
        thresholds: &results,
        findings: &findings,
        ..HtmlReport::default()
    });
    assert!(page.contains("<h1>Benchmark report: &lt;silent&gt; server</h1>"));
    // No latency to chart; the throughput (all failed) still is.
    assert_eq!(page.matches("<div class=\"chart no-data\"").count(), 2);
    assert_eq!(page.matches("<svg class=\"chart\"").count(), 1);
    assert_eq!(figure(&page, "requests"), run.requests.to_string());
    assert_eq!(
        figure(&page, "errors_timeout"),
        run.errors.timeout.to_string()
    );
    assert_eq!(figure(&page, "p99_us"), "0");
    assert_eq!(figure(&page, "error_rate"), "1");
    assert!(page.contains("<tr><td colspan=\"2\" class=\"muted\">no HTTP answers</td></tr>"));
    assert!(page.contains("FAIL: 1 of 1 thresholds broken"));
    assert_balanced(&page);
    assert_self_contained(&page);

    let Some(chromium) = chromium() else { return };
    let files = Files::new("no-answers");
    let shot = files.screenshot(&chromium, &page, (1200, 2400)).await;
    println!(
        "screenshot {}: {} bytes, {} colours, {:.1} % not white",
        files.png.display(),
        shot.bytes,
        shot.colours,
        shot.not_white * 100.0
    );
    assert!(shot.colours > 50 && shot.not_white > 0.01);
    files.finish();
}

/// The Chromium binary: `CHROMIUM`, else the first of the usual names that
/// runs. Missing: a failure under CI, a skip elsewhere.
fn chromium() -> Option<String> {
    let candidates: Vec<String> = match std::env::var("CHROMIUM") {
        Ok(binary) if !binary.is_empty() => vec![binary],
        _ => [
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ]
        .map(String::from)
        .to_vec(),
    };
    let found = candidates.iter().find(|binary| {
        std::process::Command::new(binary.as_str())
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    });
    match found {
        Some(binary) => Some(binary.clone()),
        None if on_ci() => panic!(
            "Chromium not found (tried {candidates:?}): install Debian's `chromium` package \
             (scripts/services.sh does) or set CHROMIUM"
        ),
        None => {
            eprintln!(
                "skipped the Chromium check: no Chromium (tried {candidates:?}); \
                 install Debian's `chromium` package or set CHROMIUM"
            );
            None
        }
    }
}

/// A page and its screenshot in a fresh temporary directory.
struct Files {
    dir: PathBuf,
    html: PathBuf,
    png: PathBuf,
    label: &'static str,
}

/// What a screenshot holds.
struct Shot {
    bytes: usize,
    /// Distinct colours (up to 10 000).
    colours: usize,
    /// The share of pixels that are not white.
    not_white: f64,
    pixels: Vec<[u8; 3]>,
}

impl Shot {
    /// Pixels within 12 of `colour` on every channel.
    fn near(&self, colour: [u8; 3]) -> usize {
        self.pixels
            .iter()
            .filter(|pixel| pixel.iter().zip(colour).all(|(&a, b)| a.abs_diff(b) <= 12))
            .count()
    }
}

impl Files {
    fn new(label: &'static str) -> Files {
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("perf-bench-html-{}-{unique}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temporary directory");
        Files {
            html: dir.join(format!("{label}.html")),
            png: dir.join(format!("{label}.png")),
            dir,
            label,
        }
    }

    /// Writes `page`, has Chromium screenshot it at `size`, and checks the
    /// PNG: its signature and header, the size asked for.
    async fn screenshot(&self, chromium: &str, page: &str, size: (u32, u32)) -> Shot {
        std::fs::write(&self.html, page).expect("write the page");
        let mut command = tokio::process::Command::new(chromium);
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--hide-scrollbars",
                "--force-device-scale-factor=1",
            ])
            .arg(format!(
                "--user-data-dir={}",
                self.dir.join("profile").display()
            ))
            .arg(format!("--screenshot={}", self.png.display()))
            .arg(format!("--window-size={},{}", size.0, size.1))
            .arg(format!("file://{}", self.html.display()))
            .stdin(Stdio::null())
            .kill_on_drop(true);
        // Not a speed check: a guard so a wedged browser fails the test
        // instead of hanging it.
        let output = tokio::time::timeout(Duration::from_secs(180), command.output())
            .await
            .expect("Chromium finished within 3 minutes")
            .expect("Chromium started");
        assert!(
            output.status.success() && self.png.exists(),
            "Chromium failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        let bytes = std::fs::read(&self.png).expect("read the screenshot");
        assert_eq!(png_size(&bytes), size, "the screenshot has the asked size");
        decode(&bytes)
    }

    /// Keeps the files in `BENCH_HTML_KEEP` if set; removes them.
    fn finish(self) {
        if let Ok(keep) = std::env::var("BENCH_HTML_KEEP") {
            let keep = Path::new(&keep);
            std::fs::create_dir_all(keep).expect("BENCH_HTML_KEEP directory");
            for file in [&self.html, &self.png] {
                let name = file.file_name().expect("file name");
                std::fs::copy(file, keep.join(name)).expect("copy");
            }
            println!(
                "kept {} page and screenshot in {}",
                self.label,
                keep.display()
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Width and height from a PNG's header, after checking its signature and
/// that the first chunk is IHDR.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(
        bytes.len() > 33,
        "too short for a PNG: {} bytes",
        bytes.len()
    );
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[8..12], [0, 0, 0, 13], "IHDR length");
    assert_eq!(&bytes[12..16], b"IHDR", "first chunk");
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    (word(16), word(20))
}

/// The screenshot's pixels as RGB.
fn decode(bytes: &[u8]) -> Shot {
    let mut decoder = png::Decoder::new(bytes);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a readable PNG");
    let mut buffer = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buffer).expect("a decodable PNG");
    let channels = frame.color_type.samples();
    let data = &buffer[..frame.buffer_size()];
    let pixels: Vec<[u8; 3]> = data
        .chunks_exact(channels)
        .map(|pixel| match channels {
            1 | 2 => [pixel[0]; 3],
            _ => [pixel[0], pixel[1], pixel[2]],
        })
        .collect();
    let mut colours = HashSet::new();
    for pixel in &pixels {
        if colours.len() >= 10_000 {
            break;
        }
        colours.insert(*pixel);
    }
    let not_white = pixels.iter().filter(|p| p.iter().any(|&c| c < 245)).count();
    Shot {
        bytes: bytes.len(),
        colours: colours.len(),
        not_white: not_white as f64 / pixels.len().max(1) as f64,
        pixels,
    }
}
