//! The server runs on a thread of its own (one core), the clients on a
//! one-worker runtime (the other core).
//!
//! Requests to a loopback axum server through `perf_runtime::http::HttpClient`
//! against, in the same run, a bare `hyper-util` pooled client with the
//! same pool settings, and a new connection (TCP + HTTP/1 handshake) per
//! request. One task, and 32 concurrent tasks. What the framework adds per
//! request: the host's breaker, rate limit and connection cap, the retry
//! loop's bookkeeping and the metrics.
//!
//! Then the pooled cases again in interleaved rounds, wall time and process
//! CPU per request, whose medians give the ratios reported (criterion runs
//! the cases one after another, and this machine drifts more between them
//! than the difference measured).
//!
//! Run with: `cargo bench -p perf-benches --bench http_pool`

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::Criterion;
use http_body_util::{BodyExt, Empty, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use perf_runtime::http::HttpClient;

const TASKS: u64 = 32;
const CASES: &[&str] = &[
    "perf_http_client",
    "bare_hyper_util",
    "bare_hyper_util_tls_connector",
    "new_connection",
];
const POOL_IDLE: Duration = Duration::from_secs(90);
const MAX_IDLE_PER_HOST: usize = 64;

struct Clients {
    perf: HttpClient,
    bare: Client<HttpConnector, Full<Bytes>>,
    /// As `bare`, built as the framework builds its client (TLS-capable
    /// connector offering HTTP/1 and HTTP/2, hyper timers; plain http still):
    /// separates hyper-util's configuration from the framework's own work.
    bare_tls: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    addr: SocketAddr,
    url: String,
}

async fn one_request(case: &str, clients: &Clients) -> usize {
    match case {
        "perf_http_client" => {
            let response = clients.perf.get(&clients.url).await.expect("GET");
            response.bytes().await.expect("body").len()
        }
        "bare_hyper_util" | "bare_hyper_util_tls_connector" => {
            let uri: hyper::Uri = clients.url.parse().expect("uri");
            // The request `HttpClient::get` sends.
            let request = hyper::Request::get(uri)
                .header(hyper::header::ACCEPT, "application/json")
                .body(Full::new(Bytes::new()))
                .expect("request");
            let response = if case == "bare_hyper_util" {
                clients.bare.request(request).await
            } else {
                clients.bare_tls.request(request).await
            }
            .expect("GET");
            let body = response.into_body().collect().await.expect("body");
            body.to_bytes().len()
        }
        _ => {
            let stream = tokio::net::TcpStream::connect(clients.addr)
                .await
                .expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .expect("handshake");
            tokio::spawn(connection);
            let response = sender
                .send_request(
                    hyper::Request::get("/item")
                        .header(hyper::header::HOST, clients.addr.to_string())
                        .body(Empty::<Bytes>::new())
                        .expect("request"),
                )
                .await
                .expect("GET");
            let body = response.into_body().collect().await.expect("body");
            body.to_bytes().len()
        }
    }
}

fn run(
    runtime: &tokio::runtime::Runtime,
    clients: &'static Clients,
    case: &'static str,
    iters: u64,
    tasks: u64,
) -> Duration {
    runtime.block_on(async move {
        let started = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|task| {
                tokio::spawn(async move {
                    let per_task = iters / tasks + u64::from(task < iters % tasks);
                    for _ in 0..per_task {
                        std::hint::black_box(one_request(case, clients).await);
                    }
                })
            })
            .collect();
        for handle in handles {
            handle.await.expect("bench task");
        }
        started.elapsed()
    })
}

/// The loopback server, on a runtime and thread of its own, as if it were
/// another process: with client and server on one runtime, tokio placed a
/// connection's two ends on one worker for one client and on two for the
/// next, and that alone moved a one-task run by 30%.
fn serve_on_own_thread() -> SocketAddr {
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("bench-server".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let app = axum::Router::new().route(
                    "/item",
                    axum::routing::get(|| async {
                        r#"{"id":7,"name":"item-7","tags":["a","b","c"]}"#
                    }),
                );
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind loopback");
                sender
                    .send(listener.local_addr().expect("address"))
                    .expect("hand the address over");
                axum::serve(listener, app).await.expect("serve");
            });
        })
        .expect("server thread");
    receiver.recv().expect("server address")
}

/// Interleaved rounds, and requests per case and round (1 task, 32 tasks).
const ROUNDS: usize = 7;
const ROUND_REQUESTS: [u64; 2] = [20_000, 100_000];

fn interleaved(runtime: &tokio::runtime::Runtime, clients: &'static Clients) {
    let cells = [("http_pool_one_task", 1), ("http_pool_32_tasks", TASKS)];
    for ((title, tasks), calls) in cells.into_iter().zip(ROUND_REQUESTS) {
        let rows = perf_benches::interleave(ROUNDS, &CASES[..3], calls, |case, calls| {
            run(runtime, clients, case, calls, tasks);
        });
        perf_benches::print_interleaved(title, "bare_hyper_util", &rows);
    }
}

/// `HTTP_POOL_PROFILE=case[:tasks]`: only that case, 200,000 requests, for
/// running under `perf record` or `perf stat`.
fn profile(runtime: &tokio::runtime::Runtime, clients: &'static Clients, wanted: &str) {
    let (case, tasks) = wanted.split_once(':').unwrap_or((wanted, "32"));
    let case = CASES
        .iter()
        .find(|known| **known == case)
        .unwrap_or_else(|| panic!("HTTP_POOL_PROFILE: expected one of {CASES:?}, got {case:?}"));
    let tasks: u64 = tasks.parse().expect("HTTP_POOL_PROFILE: tasks, a number");
    let took = run(runtime, clients, case, 200_000, tasks);
    println!(
        "{case}, {tasks} tasks: {:.2} µs per request",
        took.as_secs_f64() * 5.0
    );
}

fn main() {
    let (runtime, _perf) = perf_benches::service_runtime(1);
    let clients: &'static Clients = runtime.block_on(async {
        let addr = serve_on_own_thread();
        let perf = HttpClient::builder()
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            .max_connections_per_host(TASKS as usize)
            .build()
            .expect("client");
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let bare = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            .pool_timer(TokioTimer::new())
            .build(connector);
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_root_certificates(rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        })
        .with_no_client_auth();
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(tcp);
        let bare_tls = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Box::leak(Box::new(Clients {
            perf,
            bare,
            bare_tls,
            addr,
            url: format!("http://{addr}/item"),
        }))
    });

    if let Ok(wanted) = std::env::var("HTTP_POOL_PROFILE") {
        return profile(&runtime, clients, &wanted);
    }
    let mut criterion = Criterion::default()
        .output_directory(&perf_benches::criterion_dir())
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    let cells = [("http_pool_one_task", 1), ("http_pool_32_tasks", TASKS)];
    for (group_name, tasks) in cells {
        let mut group = criterion.benchmark_group(group_name);
        for case in CASES {
            group.bench_function(*case, |b| {
                b.iter_custom(|iters| run(&runtime, clients, case, iters, tasks))
            });
        }
        group.finish();
    }
    criterion.final_summary();
    for (group_name, _) in cells {
        perf_benches::print_ratios(group_name, "bare_hyper_util", CASES);
    }
    interleaved(&runtime, clients);
}
