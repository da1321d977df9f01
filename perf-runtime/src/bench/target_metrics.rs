//! What the loaded service says about itself: its `/metrics` (Prometheus
//! text, as a service built on this runtime serves it), read before and
//! after a run so the analysis can speak of the cache hit rate and memory
//! *during the run*.
//!
//! The cache hit rate is defined per call, not per lookup. A call of a
//! cached function is looked up in L1 and, on an L1 miss, in L2: counting
//! every tier's lookups would make an L1 miss followed by an L2 hit one
//! hit in two lookups (50 %), although the call was served from the cache.
//! So:
//! - *cached calls* of a function: its L1 lookups (`perf_cache_requests_total`
//!   with `tier="l1"`, every outcome but `stale`, which is counted in
//!   addition to the miss that found the stale entry), or, for an L2-only
//!   function, its L2 lookups;
//! - *calls served from the cache*: cached calls minus the calls whose body
//!   ran (`perf_cache_origin_calls_total`). An L2 hit and a caller that
//!   joined another caller's computation (single flight) are served from
//!   the cache; a stale value served while the body runs again is not.
//!
//! The hit rate is served over cached calls, summed over the functions.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT, HOST};
use http::{HeaderValue, Request};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;

use super::error::BenchError;
use crate::monitor::names;

/// The process metric of resident memory (from the `metrics-process` crate).
pub const RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
/// The process metric of CPU time (from the `metrics-process` crate).
pub const CPU_SECONDS: &str = "process_cpu_seconds_total";

/// The cache counters of one cached function.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CacheCounters {
    /// L1 lookups that found a fresh value.
    pub l1_hits: f64,
    /// L1 lookups that found none (or only a stale one).
    pub l1_misses: f64,
    /// L2 lookups that found a value.
    pub l2_hits: f64,
    /// L2 lookups of any outcome (hit, miss, error, skipped).
    pub l2_lookups: f64,
    /// Calls whose body ran.
    pub origin_calls: f64,
}

impl CacheCounters {
    /// Calls of the function: its L1 lookups, or its L2 lookups when it
    /// has no L1 tier.
    pub fn calls(&self) -> f64 {
        let l1 = self.l1_hits + self.l1_misses;
        if l1 > 0.0 { l1 } else { self.l2_lookups }
    }

    /// Calls served without running the body.
    pub fn served_from_cache(&self) -> f64 {
        (self.calls() - self.origin_calls).max(0.0)
    }

    fn since(&self, earlier: &CacheCounters) -> CacheCounters {
        CacheCounters {
            l1_hits: delta(self.l1_hits, earlier.l1_hits),
            l1_misses: delta(self.l1_misses, earlier.l1_misses),
            l2_hits: delta(self.l2_hits, earlier.l2_hits),
            l2_lookups: delta(self.l2_lookups, earlier.l2_lookups),
            origin_calls: delta(self.origin_calls, earlier.origin_calls),
        }
    }
}

/// Figures read from a target's `/metrics`. Counters are totals since the
/// target started; [`since`](Self::since) turns two scrapes into the
/// figures of the time between them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TargetMetrics {
    /// Resident memory of the target process (`process_resident_memory_bytes`).
    pub resident_memory_bytes: Option<f64>,
    /// CPU seconds the target process used (`process_cpu_seconds_total`).
    pub cpu_seconds: Option<f64>,
    /// Calls of cached functions served from the cache (see the module
    /// documentation for why per call, not per lookup).
    pub cache_hits: f64,
    /// Calls of cached functions.
    pub cache_lookups: f64,
    /// Calls of cached functions whose body ran.
    pub cache_origin_calls: f64,
    /// L1 entries evicted because the cache was full
    /// (`perf_cache_evictions_total{cause="size"}`).
    pub cache_size_evictions: f64,
    /// The counters of each cached function, by name.
    pub cache_functions: BTreeMap<String, CacheCounters>,
    /// Samples in the text: 0 means it was not Prometheus text at all.
    pub samples: usize,
}

impl TargetMetrics {
    /// Reads the Prometheus text exposition `text`. Unknown metrics are
    /// ignored; lines that are not samples are skipped.
    pub fn parse(text: &str) -> TargetMetrics {
        let lines = text.lines().map(|line| Ok(line.to_owned()));
        // Cannot fail: the lines come from a string, not from I/O.
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap_or(prometheus_parse::Scrape {
            docs: Default::default(),
            samples: Vec::new(),
        });
        let mut metrics = TargetMetrics {
            samples: scrape.samples.len(),
            ..TargetMetrics::default()
        };
        for sample in &scrape.samples {
            let value = match sample.value {
                prometheus_parse::Value::Counter(value)
                | prometheus_parse::Value::Gauge(value)
                | prometheus_parse::Value::Untyped(value) => value,
                _ => continue,
            };
            if !value.is_finite() {
                continue;
            }
            let label = |name: &str| sample.labels.get(name).unwrap_or_default();
            match sample.metric.as_str() {
                RESIDENT_MEMORY => metrics.resident_memory_bytes = Some(value),
                CPU_SECONDS => metrics.cpu_seconds = Some(value),
                names::CACHE_REQUESTS => {
                    let counters = metrics
                        .cache_functions
                        .entry(label("function").to_owned())
                        .or_default();
                    match (label("tier"), label("outcome")) {
                        ("l1", "hit") => counters.l1_hits += value,
                        ("l1", "miss") => counters.l1_misses += value,
                        // Counted on top of the miss that found the entry.
                        ("l1", _) => {}
                        ("l2", outcome) => {
                            counters.l2_lookups += value;
                            if outcome == "hit" {
                                counters.l2_hits += value;
                            }
                        }
                        _ => {}
                    }
                }
                names::CACHE_ORIGIN_CALLS => {
                    metrics
                        .cache_functions
                        .entry(label("function").to_owned())
                        .or_default()
                        .origin_calls += value;
                }
                names::CACHE_EVICTIONS if label("cause") == "size" => {
                    metrics.cache_size_evictions += value;
                }
                _ => {}
            }
        }
        metrics.sum_cache();
        metrics
    }

    /// Calls of cached functions served from the cache, over all calls of
    /// cached functions; `None` without any call.
    pub fn cache_hit_rate(&self) -> Option<f64> {
        (self.cache_lookups > 0.0).then(|| self.cache_hits / self.cache_lookups)
    }

    /// The figures of the time between `earlier` and `self`: counters as
    /// differences (a counter that went down means the target restarted,
    /// and counts from 0 again), gauges as read in `self`.
    pub fn since(&self, earlier: &TargetMetrics) -> TargetMetrics {
        let none = CacheCounters::default();
        let cache_functions = self
            .cache_functions
            .iter()
            .map(|(function, now)| {
                let before = earlier.cache_functions.get(function).unwrap_or(&none);
                (function.clone(), now.since(before))
            })
            .collect();
        let mut metrics = TargetMetrics {
            resident_memory_bytes: self.resident_memory_bytes,
            cpu_seconds: match (self.cpu_seconds, earlier.cpu_seconds) {
                (Some(now), Some(before)) => Some(delta(now, before)),
                (now, _) => now,
            },
            cache_size_evictions: delta(self.cache_size_evictions, earlier.cache_size_evictions),
            cache_functions,
            samples: self.samples,
            ..TargetMetrics::default()
        };
        metrics.sum_cache();
        metrics
    }

    /// The cached functions with calls, lowest hit rate first (ties by name).
    pub fn cache_functions_by_hit_rate(&self) -> Vec<(&str, &CacheCounters)> {
        let mut functions: Vec<(&str, &CacheCounters)> = self
            .cache_functions
            .iter()
            .filter(|(_, counters)| counters.calls() > 0.0)
            .map(|(name, counters)| (name.as_str(), counters))
            .collect();
        let rate = |counters: &CacheCounters| counters.served_from_cache() / counters.calls();
        functions.sort_by(|a, b| rate(a.1).total_cmp(&rate(b.1)));
        functions
    }

    fn sum_cache(&mut self) {
        let functions = self.cache_functions.values();
        self.cache_lookups = functions.clone().map(CacheCounters::calls).sum();
        self.cache_hits = functions
            .clone()
            .map(CacheCounters::served_from_cache)
            .sum();
        self.cache_origin_calls = functions.map(|counters| counters.origin_calls).sum();
    }
}

/// A counter's increase from `before` to `now`; a counter that went down
/// was reset (the target restarted), so it grew by `now` since.
fn delta(now: f64, before: f64) -> f64 {
    if now >= before { now - before } else { now }
}

/// The `/metrics` URL of the service behind `target_url`: same scheme,
/// host and port, path `/metrics`, no credentials, query or fragment.
/// `None` for a URL that is not `http` or `https` with a host.
///
/// ```
/// use perf_runtime::bench::metrics_url_for;
/// assert_eq!(
///     metrics_url_for("http://user:pw@127.0.0.1:8000/api/chat?x=1").as_deref(),
///     Some("http://127.0.0.1:8000/metrics")
/// );
/// ```
pub fn metrics_url_for(target_url: &str) -> Option<String> {
    let mut url = url::Url::parse(target_url).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    url.set_path("/metrics");
    url.set_query(None);
    url.set_fragment(None);
    // Cannot fail on an http(s) URL with a host.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    Some(url.into())
}

/// Reads the target's metrics at `metrics_url` (plain `http://`), within
/// `timeout` for the whole exchange.
///
/// # Errors
///
/// [`BenchError::TargetMetrics`], naming the URL: not an `http://` URL, no
/// connection, no complete answer within `timeout`, a status other than
/// 2xx, or an answer that is not Prometheus text.
pub async fn scrape_target_metrics(
    metrics_url: &str,
    timeout: Duration,
) -> Result<TargetMetrics, BenchError> {
    let failed = |reason: String| BenchError::TargetMetrics {
        url: metrics_url.to_owned(),
        reason,
    };
    let url =
        url::Url::parse(metrics_url).map_err(|error| failed(format!("not a URL: {error}")))?;
    if url.scheme() != "http" {
        return Err(failed(format!(
            "only http:// is supported, found {}://",
            url.scheme()
        )));
    }
    let host = url
        .host_str()
        .ok_or_else(|| failed("the URL has no host".to_owned()))?;
    let port = url.port_or_known_default().unwrap_or(80);
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let exchange = get(format!("{host}:{port}"), authority, path);
    let text = match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result.map_err(failed)?,
        Err(_) => {
            return Err(failed(format!(
                "no complete answer within {} ms",
                timeout.as_millis()
            )));
        }
    };
    let metrics = TargetMetrics::parse(&text);
    if metrics.samples == 0 {
        return Err(failed(
            "the answer holds no Prometheus sample (is this the service's /metrics?)".to_owned(),
        ));
    }
    Ok(metrics)
}

/// One GET over a fresh HTTP/1.1 connection; the body as text.
async fn get(address: String, authority: String, path: String) -> Result<String, String> {
    let stream = TcpStream::connect(&address)
        .await
        .map_err(|error| format!("cannot connect to {address}: {error}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| format!("HTTP handshake failed: {error}"))?;
    let connection = tokio::spawn(async move {
        let _ = connection.await;
    });
    let mut request = Request::new(Empty::<Bytes>::new());
    *request.uri_mut() = path
        .parse()
        .map_err(|error| format!("bad path `{path}`: {error}"))?;
    let headers = request.headers_mut();
    if let Ok(host) = HeaderValue::from_str(&authority) {
        headers.insert(HOST, host);
    }
    headers.insert(ACCEPT, HeaderValue::from_static("text/plain"));
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(|error| format!("request failed: {error}"))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| format!("the answer was cut: {error}"))?
            .to_bytes();
        if !status.is_success() {
            return Err(format!("answered {status}"));
        }
        String::from_utf8(body.to_vec()).map_err(|_| "the answer is not UTF-8 text".to_owned())
    }
    .await;
    drop(sender);
    connection.abort();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a runtime with an L1 function, an L1+L2 function and an L2-only
    /// function renders (the shape of `metrics-exporter-prometheus`).
    const EXPOSITION: &str = r#"# HELP perf_cache_requests_total Cache lookups by tier and outcome.
# TYPE perf_cache_requests_total counter
perf_cache_requests_total{function="profile",tier="l1",outcome="hit"} 90
perf_cache_requests_total{function="profile",tier="l1",outcome="miss"} 10
perf_cache_requests_total{function="settings",tier="l1",outcome="hit"} 40
perf_cache_requests_total{function="settings",tier="l1",outcome="miss"} 60
perf_cache_requests_total{function="settings",tier="l1",outcome="stale"} 5
perf_cache_requests_total{function="settings",tier="l2",outcome="hit"} 50
perf_cache_requests_total{function="settings",tier="l2",outcome="miss"} 10
perf_cache_requests_total{function="remote",tier="l2",outcome="hit"} 3
perf_cache_requests_total{function="remote",tier="l2",outcome="miss"} 1
# TYPE perf_cache_origin_calls_total counter
perf_cache_origin_calls_total{function="profile"} 10
perf_cache_origin_calls_total{function="settings"} 10
perf_cache_origin_calls_total{function="remote"} 1
# TYPE perf_cache_evictions_total counter
perf_cache_evictions_total{function="profile",cause="size"} 7
perf_cache_evictions_total{function="profile",cause="expired"} 2
# TYPE perf_cache_l2_lookup_duration_seconds histogram
perf_cache_l2_lookup_duration_seconds_bucket{function="settings",le="0.005"} 60
perf_cache_l2_lookup_duration_seconds_bucket{function="settings",le="+Inf"} 60
perf_cache_l2_lookup_duration_seconds_sum{function="settings"} 0.03
perf_cache_l2_lookup_duration_seconds_count{function="settings"} 60
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 52428800
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
"#;

    #[test]
    fn calls_served_from_either_tier_are_hits_once() {
        let metrics = TargetMetrics::parse(EXPOSITION);
        let profile = &metrics.cache_functions["profile"];
        assert_eq!(
            (profile.calls(), profile.served_from_cache()),
            (100.0, 90.0)
        );
        // 100 calls: 40 L1 hits, 60 L1 misses of which 50 hit L2; 10 ran.
        // An L2 hit after an L1 miss is one hit of one call, not 1 in 2.
        let settings = &metrics.cache_functions["settings"];
        assert_eq!(
            (settings.calls(), settings.served_from_cache()),
            (100.0, 90.0)
        );
        assert_eq!((settings.l2_hits, settings.l2_lookups), (50.0, 60.0));
        // No L1: the L2 lookups are the calls.
        let remote = &metrics.cache_functions["remote"];
        assert_eq!((remote.calls(), remote.served_from_cache()), (4.0, 3.0));

        assert_eq!(metrics.cache_lookups, 204.0);
        assert_eq!(metrics.cache_hits, 183.0);
        assert_eq!(metrics.cache_origin_calls, 21.0);
        assert_eq!(metrics.cache_hit_rate(), Some(183.0 / 204.0));
        assert_eq!(metrics.cache_size_evictions, 7.0);
        assert_eq!(metrics.resident_memory_bytes, Some(52_428_800.0));
        assert_eq!(metrics.cpu_seconds, Some(12.5));
        assert!(metrics.samples > 15, "{}", metrics.samples);
    }

    #[test]
    fn since_gives_the_figures_of_the_run() {
        let before = TargetMetrics::parse(
            "perf_cache_requests_total{function=\"profile\",tier=\"l1\",outcome=\"hit\"} 50\n\
             perf_cache_requests_total{function=\"profile\",tier=\"l1\",outcome=\"miss\"} 5\n\
             perf_cache_origin_calls_total{function=\"profile\"} 5\n\
             process_resident_memory_bytes 1000\n\
             process_cpu_seconds_total 2.5\n",
        );
        let after = TargetMetrics::parse(EXPOSITION);
        let run = after.since(&before);
        // profile: 40 more hits, 5 more misses, 5 more origin calls.
        assert_eq!(run.cache_functions["profile"].calls(), 45.0);
        assert_eq!(run.cache_functions["profile"].served_from_cache(), 40.0);
        // Functions first seen after `before` count from 0.
        assert_eq!(run.cache_functions["settings"].calls(), 100.0);
        assert_eq!(run.cache_lookups, 45.0 + 100.0 + 4.0);
        assert_eq!(run.cache_hits, 40.0 + 90.0 + 3.0);
        assert_eq!(run.cpu_seconds, Some(10.0));
        // A gauge is what it is now.
        assert_eq!(run.resident_memory_bytes, Some(52_428_800.0));
        // The worst function first.
        let order: Vec<&str> = run
            .cache_functions_by_hit_rate()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert_eq!(order, ["remote", "profile", "settings"]);

        // A restarted target: its counters start again from 0.
        let restarted = before.since(&after);
        assert_eq!(restarted.cache_functions["profile"].calls(), 55.0);
        assert_eq!(restarted.cpu_seconds, Some(2.5));
    }

    #[test]
    fn text_without_cache_metrics_has_no_hit_rate() {
        let metrics = TargetMetrics::parse("process_resident_memory_bytes 4096\n");
        assert_eq!(metrics.cache_hit_rate(), None);
        assert_eq!(metrics.resident_memory_bytes, Some(4096.0));
        let html = TargetMetrics::parse("<html>\n<body>not metrics</body>\n</html>\n");
        assert_eq!(html.samples, 0);
        assert_eq!(html, TargetMetrics::default());
    }

    #[test]
    fn the_metrics_url_keeps_scheme_host_and_port() {
        for (target, metrics) in [
            (
                "http://127.0.0.1:8000/api/chat",
                Some("http://127.0.0.1:8000/metrics"),
            ),
            (
                "https://chat.example.com/v1?q=1#x",
                Some("https://chat.example.com/metrics"),
            ),
            ("http://[::1]:9000/", Some("http://[::1]:9000/metrics")),
            ("http://u:p@h:1/a", Some("http://h:1/metrics")),
            ("ftp://h/a", None),
            ("not a url", None),
        ] {
            assert_eq!(metrics_url_for(target).as_deref(), metrics, "{target}");
        }
    }

    #[tokio::test]
    async fn scrape_errors_name_the_url() {
        let https = scrape_target_metrics("https://127.0.0.1:1/metrics", Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(
            https.to_string().contains("https://127.0.0.1:1/metrics"),
            "{https}"
        );
        assert!(https.to_string().contains("only http://"), "{https}");

        // A port nothing listens on.
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/metrics");
        let refused = scrape_target_metrics(&url, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, BenchError::TargetMetrics { url: named, .. } if *named == url),
            "{refused:?}"
        );
        assert!(refused.to_string().contains("cannot connect"), "{refused}");
    }
}
