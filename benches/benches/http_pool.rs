//! Requests to a loopback axum server through `perf_runtime::http::HttpClient`
//! against, in the same run, a bare `hyper-util` pooled client with the
//! same pool settings, and a new connection (TCP + HTTP/1 handshake) per
//! request. One task, and 32 concurrent tasks. What the framework adds per
//! request: the host's breaker, rate limit and connection cap, the retry
//! loop's bookkeeping and the metrics.
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
            let request = hyper::Request::get(uri)
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

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let clients: &'static Clients = runtime.block_on(async {
        // As in a service: the runtime started, the Prometheus recorder installed.
        let config = perf_runtime::PerfConfig::builder()
            .enable_monitoring(false)
            .build()
            .expect("valid config");
        perf_runtime::init(config).await.expect("init");
        let app = axum::Router::new().route(
            "/item",
            axum::routing::get(|| async { r#"{"id":7,"name":"item-7","tags":["a","b","c"]}"# }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move { axum::serve(listener, app).await });
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
        if let Some(ns) = perf_benches::median_ns(group_name, "perf_http_client") {
            println!("perf_http_client: {:.0} requests/s", 1e9 / ns);
        }
    }
}
