//! The `perf` command as a user meets it: the built binary run against a
//! loopback server written here, checked on its exit status, what it
//! prints and the files it writes. Figures are checked against what the
//! server was told to do (a fixed delay), never against this machine's
//! speed.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};

/// The loopback server, started once for every test of this file.
fn server() -> SocketAddr {
    static ADDRESS: OnceLock<SocketAddr> = OnceLock::new();
    *ADDRESS.get_or_init(|| {
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let app = Router::new()
                    .route("/fast", get(|| async { "ok" }))
                    .route(
                        "/slow",
                        get(|| async {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            "ok"
                        }),
                    )
                    .route("/chat", post(|body: String| async move { body }));
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                sender
                    .send(listener.local_addr().expect("address"))
                    .expect("send");
                axum::serve(listener, app).await.expect("serve");
            });
        });
        receiver.recv().expect("the server started")
    })
}

fn url(path: &str) -> String {
    format!("http://{}{path}", server())
}

/// A fresh directory for a test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("perf-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn perf(args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_perf"))
        .args(args)
        .output()
        .expect("perf runs");
    println!(
        "$ perf {}\n[exit {:?}]\n{}{}",
        args.join(" "),
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn path(path: &Path) -> &str {
    path.to_str().expect("utf-8 temp path")
}

#[test]
fn a_load_run_that_holds_its_thresholds_exits_0_and_writes_json_and_html() {
    let dir = scratch("load");
    let (json, html) = (dir.join("run.json"), dir.join("run.html"));
    let target = url("/chat");
    let output = perf(&[
        "load",
        &target,
        "-c",
        "4",
        "-d",
        "1s",
        "-X",
        "POST",
        "--json",
        r#"{"message":"hi"}"#,
        "-t",
        "p95<5s",
        "-t",
        "errors<1%",
        "--out",
        path(&json),
        "--html",
        path(&html),
        "--no-progress",
    ]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert!(text.contains("closed model, 4 users"), "{text}");
    assert!(text.contains("pass  p95<5s"), "{text}");
    assert!(text.contains("pass  errors<1%"), "{text}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json written")).expect("json");
    assert!(report["requests"].as_u64() > Some(0));
    assert_eq!(report["requests"], report["successes"]);
    assert_eq!(report["settings"]["method"], "POST");
    let page = std::fs::read_to_string(&html).expect("html written");
    assert!(page.starts_with("<!DOCTYPE html>") || page.starts_with("<!doctype html>"));
    assert!(page.contains("<svg"));

    // The saved report reads back, and judged again it still passes.
    let again = perf(&["report", path(&json), "-t", "p95<5s"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(stdout(&again).contains("pass  p95<5s"));
}

#[test]
fn a_broken_threshold_exits_1_and_says_which() {
    let target = url("/slow");
    let output = perf(&[
        "load",
        &target,
        "-c",
        "2",
        "-d",
        "1s",
        "-t",
        "p50<1ms",
        "-t",
        "errors<1%",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.contains("FAIL  p50<1ms"), "{text}");
    assert!(text.contains("pass  errors<1%"), "{text}");
}

#[test]
fn a_regression_against_the_baseline_exits_1() {
    let dir = scratch("baseline");
    let (fast, slow) = (dir.join("fast.json"), dir.join("slow.json"));
    let fast_url = url("/fast");
    let slow_url = url("/slow");
    let base = perf(&["load", &fast_url, "-c", "2", "-d", "1s", "-o", path(&fast)]);
    assert_eq!(base.status.code(), Some(0));
    let run = perf(&[
        "load",
        &slow_url,
        "-c",
        "2",
        "-d",
        "1s",
        "-o",
        path(&slow),
        "--baseline",
        path(&fast),
    ]);
    assert_eq!(
        run.status.code(),
        Some(1),
        "20 ms against ~0.1 ms is a regression"
    );
    assert!(stdout(&run).contains("WORSE"), "{}", stdout(&run));
    // The other way round is no regression.
    let back = perf(&["report", path(&fast), "--baseline", path(&slow)]);
    assert_eq!(back.status.code(), Some(0));
}

#[test]
fn a_bad_url_is_a_usage_error_naming_the_setting() {
    let output = perf(&["load", "localhost:8000/api/chat", "-d", "1s"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("http:// URL"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_refused_connection_stops_before_any_load_with_status_3() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let target = format!("http://127.0.0.1:{port}/api/chat");
    let output = perf(&["load", &target, "-d", "1s"]);
    assert_eq!(output.status.code(), Some(3));
    let message = stderr(&output);
    assert!(
        message.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{message}"
    );
    assert!(
        message.contains("is the server running there?"),
        "{message}"
    );
}

#[test]
fn a_malformed_json_payload_is_refused_before_the_run() {
    let target = url("/chat");
    let output = perf(&["load", &target, "-X", "POST", "--json", "{message: hi}"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("not valid JSON"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn bad_thresholds_durations_and_headers_explain_the_expected_form() {
    let target = url("/fast");
    let threshold = perf(&["load", &target, "-t", "p95<500"]);
    assert_eq!(threshold.status.code(), Some(2));
    assert!(
        stderr(&threshold).contains("unit"),
        "{}",
        stderr(&threshold)
    );

    let duration = perf(&["load", &target, "-d", "ten"]);
    assert_eq!(duration.status.code(), Some(2));
    assert!(
        stderr(&duration).contains("such as 500ms, 30s"),
        "{}",
        stderr(&duration)
    );

    let header = perf(&["load", &target, "-d", "1s", "-H", "Bearer secret-token"]);
    assert_eq!(header.status.code(), Some(2));
    let message = stderr(&header);
    assert!(message.contains("expected \"Name: value\""), "{message}");
    assert!(
        !message.contains("secret-token"),
        "a header's value is not echoed: {message}"
    );
}

#[test]
fn a_stress_run_steps_up_to_max_users_and_prints_each_step() {
    let dir = scratch("stress");
    let json = dir.join("stress.json");
    let target = url("/slow");
    let output = perf(&[
        "stress",
        &target,
        "-c",
        "1",
        "--step",
        "1",
        "--max-users",
        "3",
        "--step-duration",
        "500ms",
        "--max-p95",
        "5s",
        "-o",
        path(&json),
    ]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert!(text.contains("last sustainable step: 3 users"), "{text}");
    assert!(text.contains("stopped at --max-users"), "{text}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("json");
    assert_eq!(report["steps"].as_array().map(Vec::len), Some(3));
    let again = perf(&["report", path(&json)]);
    assert_eq!(again.status.code(), Some(0));
}

#[test]
fn an_endurance_run_reports_drift_per_figure() {
    let target = url("/fast");
    let output = perf(&[
        "endurance",
        &target,
        "-c",
        "2",
        "-d",
        "2s",
        "--window",
        "1s",
        "--metrics",
        "none",
    ]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).contains("drift"), "{}", stdout(&output));
}
