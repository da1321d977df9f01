//! From the command line's target arguments to a checked
//! [`BenchmarkConfig`]: every value the engine would refuse is caught
//! here or by the engine's own checks, before a request is sent.

use std::time::Duration;

use http::Method;
use perf_runtime::bench::BenchmarkConfig;

use crate::args::TargetArgs;
use crate::failure::Failure;

/// The configuration of a run of `duration` (at `rate`, when given) that
/// `target` describes, named `default_name` unless `--name` was given.
pub(crate) fn benchmark_config(
    default_name: &str,
    target: &TargetArgs,
    duration: Duration,
    rate: Option<f64>,
) -> Result<BenchmarkConfig, Failure> {
    let method = Method::from_bytes(target.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| Failure::Method(target.method.clone()))?;
    let name = target
        .name
        .clone()
        .unwrap_or_else(|| default_name.to_owned());
    let mut builder = BenchmarkConfig::builder(name, &target.url)
        .concurrent_users(target.users)
        .duration(duration)
        .method(method)
        .request_timeout(target.timeout)
        .ramp_up(target.ramp_up)
        .think_time(target.think_time);
    if let Some(json) = &target.json {
        let value: serde_json::Value = serde_json::from_str(json).map_err(Failure::Payload)?;
        builder = builder.json_payload(&value);
    }
    if let Some(body) = &target.body {
        builder = builder.payload(body.clone().into_bytes());
    }
    for header in &target.headers {
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| Failure::Header(first_word(header)))?;
        builder = builder.header(name.trim(), value.trim());
    }
    if let Some(rate) = rate {
        builder = builder.rate(rate);
    }
    Ok(builder.build()?)
}

/// The first word of a header given without a colon: enough to find it
/// on the command line, without echoing what may be a credential.
fn first_word(header: &str) -> String {
    header
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .chars()
        .take(40)
        .collect()
}
