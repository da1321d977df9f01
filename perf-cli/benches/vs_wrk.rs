//! `perf load` against `wrk` on the same loopback server, in the same run:
//! the server pinned to core 0, each load generator in turn pinned to core
//! 1 (`taskset`), the same connections and duration, rounds alternating.
//! For each: requests/s and CPU time per request (user + system, from GNU
//! `time`), and the generator's peak memory. Then the memory of a
//! 1,000-user `perf load` run.
//!
//! Needs Debian's `wrk`, `time` and `util-linux` (taskset). Run with:
//! `cargo bench -p perf-cli --bench vs_wrk` (about 3 minutes; set
//! `VS_WRK_MEMORY_SECONDS` to shorten the 60 s memory run).
//!
//! The server is this same executable, started again with `VS_WRK_SERVE`
//! set: a hyper HTTP/1.1 server on one thread answering "ok", so neither
//! generator is measured against a server that competes with it for a core.

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

const ROUNDS: usize = 3;
const CONNECTIONS: u32 = 50;
const SECONDS: u32 = 10;
const MEMORY_USERS: u32 = 1000;
const SERVE: &str = "VS_WRK_SERVE";

fn main() {
    if let Some(address_file) = std::env::var_os(SERVE) {
        serve(Path::new(&address_file));
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // we need: this bench only runs in full when asked for by name.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let server = Server::start();
    let url = format!("http://{}/", server.address);
    let mut wrk_runs = Vec::new();
    let mut perf_runs = Vec::new();
    for round in 1..=ROUNDS {
        let wrk = wrk(&url);
        println!("round {round}: wrk  {wrk}");
        let perf = perf(&url, CONNECTIONS, SECONDS);
        println!("round {round}: perf {perf}");
        wrk_runs.push(wrk);
        perf_runs.push(perf);
    }
    println!(
        "\n| round | wrk req/s | perf req/s | ratio | wrk CPU µs/req | perf CPU µs/req | ratio | wrk peak RSS | perf peak RSS |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (round, (wrk, perf)) in wrk_runs.iter().zip(&perf_runs).enumerate() {
        println!(
            "| {} | {:.0} | {:.0} | {:.2} | {:.1} | {:.1} | {:.2} | {} KiB | {} KiB |",
            round + 1,
            wrk.per_second(),
            perf.per_second(),
            perf.per_second() / wrk.per_second(),
            wrk.cpu_per_request_us(),
            perf.cpu_per_request_us(),
            perf.cpu_per_request_us() / wrk.cpu_per_request_us(),
            wrk.peak_kib,
            perf.peak_kib,
        );
    }
    let seconds = std::env::var("VS_WRK_MEMORY_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let memory = perf(&url, MEMORY_USERS, seconds);
    println!(
        "\nperf load -c {MEMORY_USERS} -d {seconds}s: {memory}; peak RSS {:.1} MiB",
        memory.peak_kib as f64 / 1024.0
    );
}

/// What one generator run did.
struct Run {
    requests: u64,
    wall: f64,
    cpu: f64,
    peak_kib: u64,
}

impl Run {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.wall
    }

    fn cpu_per_request_us(&self) -> f64 {
        self.cpu / self.requests as f64 * 1e6
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests, {:.0} req/s, {:.1} µs CPU/request, peak RSS {} KiB",
            self.requests,
            self.per_second(),
            self.cpu_per_request_us(),
            self.peak_kib
        )
    }
}

/// Runs `command` pinned to core 1 under GNU time: its stdout, and CPU
/// seconds (user + system) and peak RSS from time's last stderr line.
fn timed(program: &str, args: &[String]) -> (String, f64, u64) {
    let output = Command::new("taskset")
        .args(["-c", "1", "/usr/bin/time", "-f", "%U %S %M", program])
        .args(args)
        .output()
        .expect("run taskset and /usr/bin/time (Debian: util-linux, time)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    let fields: Vec<f64> = last
        .split_whitespace()
        .filter_map(|field| field.parse().ok())
        .collect();
    assert_eq!(
        fields.len(),
        3,
        "no `user system maxrss` line from time:\n{stderr}"
    );
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        fields[0] + fields[1],
        fields[2] as u64,
    )
}

fn wrk(url: &str) -> Run {
    let args = [
        "-t1".to_owned(),
        format!("-c{CONNECTIONS}"),
        format!("-d{SECONDS}s"),
        url.to_owned(),
    ];
    let (stdout, cpu, peak_kib) = timed("wrk", &args);
    // "  612345 requests in 10.00s, 44.9MB read"
    let (requests, wall) = stdout
        .lines()
        .find_map(|line| {
            let (count, rest) = line.trim().split_once(" requests in ")?;
            let seconds = rest.split(',').next()?.trim().strip_suffix('s')?;
            Some((count.parse().ok()?, seconds.parse().ok()?))
        })
        .unwrap_or_else(|| panic!("no request count in wrk's output:\n{stdout}"));
    assert!(
        !stdout.contains("Non-2xx"),
        "errors from the server:\n{stdout}"
    );
    Run {
        requests,
        wall,
        cpu,
        peak_kib,
    }
}

fn perf(url: &str, users: u32, seconds: u32) -> Run {
    let report = scratch().join(format!("perf-{users}.json"));
    let args = [
        "load".to_owned(),
        url.to_owned(),
        "-c".to_owned(),
        users.to_string(),
        "-d".to_owned(),
        format!("{seconds}s"),
        "--no-progress".to_owned(),
        "--metrics".to_owned(),
        "none".to_owned(),
        "-o".to_owned(),
        report.display().to_string(),
    ];
    let (_stdout, cpu, peak_kib) = timed(env!("CARGO_BIN_EXE_perf"), &args);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).expect("perf wrote its report"))
            .expect("a JSON report");
    assert_eq!(json["errors"]["connect"], 0, "{json}");
    Run {
        requests: json["requests"].as_u64().expect("requests"),
        // The measured period: what wrk's own count is over too.
        wall: f64::from(seconds),
        cpu,
        peak_kib,
    }
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("perf-vs-wrk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// This executable again, as the server, pinned to core 0.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start() -> Server {
        let address_file = scratch().join("address");
        let child = Command::new("taskset")
            .args(["-c", "0"])
            .arg(std::env::current_exe().expect("own path"))
            .env(SERVE, &address_file)
            .stdout(Stdio::null())
            .spawn()
            .expect("start the server");
        // Owned before anything can panic, so that Drop kills and reaps it.
        let mut server = Server {
            child,
            address: String::new(),
        };
        for _ in 0..100 {
            if let Ok(address) = std::fs::read_to_string(&address_file)
                && !address.is_empty()
            {
                server.address = address;
                return server;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server did not write its address in 5 s");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server: one thread, HTTP/1.1 keep-alive, "ok" to everything.
fn serve(address_file: &Path) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        let partial = address_file.with_extension("partial");
        std::fs::write(&partial, address).expect("write the address");
        std::fs::rename(&partial, address_file).expect("publish the address");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = service_fn(|_request: Request<hyper::body::Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
