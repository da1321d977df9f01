//! Shared helpers of the integration tests.

#![allow(dead_code, unreachable_pub)]

pub mod bench_servers;
pub mod fault_proxy;
pub mod http_server;
pub mod job_contract;
pub mod job_stores;
pub mod openai_server;
pub mod pg_pool;
pub mod pg_server;
pub mod redis_server;

use std::process::Command;

/// The value of `variable`, set by `scripts/test.sh` for the services it
/// starts. Under CI (`CI=true`) a missing service is a failure naming the
/// variable; elsewhere the test is skipped with a message saying how to run it.
pub fn service_url(variable: &str) -> Option<String> {
    match std::env::var(variable) {
        Ok(value) if !value.is_empty() => Some(value),
        _ if on_ci() => panic!(
            "{variable} is not set: this test needs the service it names; \
             run the tests through scripts/test.sh, which starts it"
        ),
        _ => {
            eprintln!("skipped: {variable} is not set (run scripts/test.sh to start the services)");
            None
        }
    }
}

/// A client of its own on `REDIS_URL` (as another process would have),
/// connected; `None` when the harness started no Redis (see
/// [`service_url`]).
pub async fn redis_client() -> Option<fred::prelude::Client> {
    use fred::prelude::{Builder, ClientLike, Config};
    let url = service_url("REDIS_URL")?;
    let config = Config::from_url(&url).expect("REDIS_URL parses");
    let client = Builder::from_config(config).build().expect("redis client");
    client.init().await.expect("redis connects");
    Some(client)
}

/// Whether we run under CI, where nothing may be skipped.
pub fn on_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// `url` with its port replaced: a service that is certainly not there.
pub fn with_dead_port(url: &str) -> String {
    let authority = url.find("://").map_or(0, |i| i + 3);
    let at = url[authority..]
        .rfind('@')
        .map_or(authority, |i| authority + i + 1);
    let host_end = url[at..].find('/').map_or(url.len(), |i| at + i);
    let colon = url[at..host_end]
        .rfind(':')
        .map(|i| at + i)
        .expect("url has a port");
    format!(
        "{}:{}{}",
        &url[..colon],
        free_port_that_nobody_listens_on(),
        &url[host_end..]
    )
}

fn free_port_that_nobody_listens_on() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
    // The listener closes here: connecting to the port is refused.
}

/// Runs `promtool check metrics` on `exposition` and returns its complaints.
/// `promtool` comes from Debian's `prometheus` package (installed by
/// `scripts/test.sh`); `PROMTOOL` may name it.
pub fn promtool_check(exposition: &str) -> Option<Result<(), String>> {
    use std::io::Write;
    let promtool = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".to_owned());
    let child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(error) if on_ci() => {
            panic!("cannot run {promtool}: {error} (install Debian's prometheus package)")
        }
        Err(error) => {
            eprintln!("skipped promtool check: cannot run {promtool}: {error}");
            return None;
        }
    };
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(exposition.as_bytes())
        .expect("write to promtool");
    let output = child.wait_with_output().expect("promtool finished");
    let complaints = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(if output.status.success() && complaints.trim().is_empty() {
        Ok(())
    } else {
        Err(complaints)
    })
}

/// Sends a request to `router` in process and returns status and body.
pub async fn call(
    router: &axum::Router,
    method: &str,
    uri: &str,
    body: Option<serde_json::Value>,
) -> (axum::http::StatusCode, String) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut request = axum::http::Request::builder().method(method).uri(uri);
    let body = match body {
        Some(json) => {
            request = request.header("content-type", "application/json");
            axum::body::Body::from(json.to_string())
        }
        None => axum::body::Body::empty(),
    };
    let response = router
        .clone()
        .oneshot(request.body(body).expect("request"))
        .await
        .expect("router answers");
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

/// The value of the sample `name{labels}` in Prometheus text, where every
/// `(key, value)` of `labels` must match (other labels may be present).
pub fn sample(exposition: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (series_name, rest) = series.split_once('{').unwrap_or((series, ""));
        if series_name != name {
            return None;
        }
        let all_match = labels.iter().all(|(key, value)| {
            let pair = format!("{key}=\"{value}\"");
            rest.starts_with(&pair) || rest.contains(&format!(",{pair}"))
        });
        all_match.then(|| value.parse().ok()).flatten()
    })
}

/// A number unique to this test run, so runs sharing a Redis never meet.
pub fn run_id() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
        % 1_000_000_000_000
}

/// Runs `redis-cli -u <redis> <args>` and returns what it printed.
pub fn redis_cli(redis: &str, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .arg("-u")
        .arg(redis)
        .args(args)
        .output()
        .expect("redis-cli (installed with redis-server)");
    String::from_utf8_lossy(&output.stdout).into_owned()
}
