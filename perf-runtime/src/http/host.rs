//! Per-host state: the connection cap, rate limit, breaker and retry budget
//! of each `host[:port]`, and its bounded metric label.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use metrics::SharedString;
use tokio::sync::Semaphore;
use tower::retry::budget::TpsBudget;

use super::breaker::{Breaker, BreakerPolicy};
use super::bucket::{RateLimit, TokenBucket};
use super::retry::RetryPolicy;

/// Label for hosts past the cap, so a client fed arbitrary URLs cannot
/// grow the metric series without bound.
pub(super) const OTHER_HOST: &str = "other";

/// What one host gets; shared by every request to it.
#[derive(Debug)]
pub(super) struct Host {
    /// `host[:port]`, for errors and logs.
    pub(super) name: Arc<str>,
    /// The metric label: `name`, or [`OTHER_HOST`].
    pub(super) label: SharedString,
    /// `HTTP_MAX_CONNECTIONS`: requests (hence connections) in flight.
    pub(super) connections: Arc<Semaphore>,
    pub(super) bucket: Option<TokenBucket>,
    pub(super) breaker: Option<Breaker>,
    pub(super) budget: TpsBudget,
    /// Its request series, by status class.
    pub(super) attempts: super::metrics::AttemptSeries,
}

/// What every host is built from.
#[derive(Clone, Debug)]
pub(super) struct HostSettings {
    pub(super) max_connections: usize,
    pub(super) rate_limit: Option<RateLimit>,
    pub(super) breaker: Option<BreakerPolicy>,
    pub(super) retry: RetryPolicy,
    /// Hosts always labelled by name.
    pub(super) labelled_hosts: Vec<String>,
    /// Further hosts labelled by name, first come first served.
    pub(super) max_host_labels: usize,
}

/// Every host seen, bounded: idle hosts are forgotten (their breaker and
/// bucket start afresh if they come back), so per-host state cannot leak.
pub(super) struct Hosts {
    settings: HostSettings,
    hosts: moka::future::Cache<Arc<str>, Arc<Host>>,
    labels: Mutex<HashMap<Arc<str>, SharedString>>,
}

impl Hosts {
    pub(super) fn new(settings: HostSettings) -> Self {
        Hosts {
            hosts: moka::future::Cache::builder()
                .max_capacity(4096)
                .time_to_idle(Duration::from_secs(600))
                .build(),
            labels: Mutex::new(HashMap::new()),
            settings,
        }
    }

    pub(super) async fn get(&self, name: &str) -> Arc<Host> {
        let name: Arc<str> = Arc::from(name);
        self.hosts
            .get_with_by_ref(&name, async { Arc::new(self.create(Arc::clone(&name))) })
            .await
    }

    /// The host's state if it has been used (and not forgotten since).
    pub(super) async fn find(&self, name: &str) -> Option<Arc<Host>> {
        self.hosts.get(name).await
    }

    fn create(&self, name: Arc<str>) -> Host {
        let settings = &self.settings;
        let retry = &settings.retry;
        let label = self.label(&name);
        if settings.breaker.is_some() {
            // Published from the start, so "closed" is a 0 and not a gap.
            super::metrics::breaker_state(&label, super::BreakerState::Closed);
        }
        Host {
            label,
            connections: Arc::new(Semaphore::new(settings.max_connections)),
            bucket: settings.rate_limit.map(TokenBucket::new),
            breaker: settings.breaker.clone().map(Breaker::new),
            budget: TpsBudget::new(
                retry.budget_window,
                retry.budget_min_per_second,
                retry.budget_ratio,
            ),
            attempts: Default::default(),
            name,
        }
    }

    /// The host's label, fixed the first time it is seen.
    fn label(&self, name: &Arc<str>) -> SharedString {
        let mut labels = self.labels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(label) = labels.get(name) {
            return label.clone();
        }
        let configured = self.settings.labelled_hosts.iter().any(|h| **h == **name);
        let extra = labels.len()
            - self
                .settings
                .labelled_hosts
                .iter()
                .filter(|h| labels.contains_key(h.as_str()))
                .count();
        if configured || extra < self.settings.max_host_labels {
            let label = SharedString::from(Arc::clone(name));
            labels.insert(Arc::clone(name), label.clone());
            label
        } else {
            SharedString::const_str(OTHER_HOST)
        }
    }
}

impl std::fmt::Debug for Hosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hosts")
            .field("settings", &self.settings)
            .field("known", &self.hosts.entry_count())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_labels_are_bounded_with_configured_hosts_always_named() {
        let hosts = Hosts::new(HostSettings {
            max_connections: 1,
            rate_limit: None,
            breaker: None,
            retry: RetryPolicy::default(),
            labelled_hosts: vec!["api.example.com".to_owned()],
            max_host_labels: 2,
        });
        let label = |name: &str| hosts.label(&Arc::from(name)).to_string();
        assert_eq!(label("a.example"), "a.example");
        assert_eq!(label("b.example:8080"), "b.example:8080");
        assert_eq!(label("c.example"), OTHER_HOST, "past the cap");
        assert_eq!(label("api.example.com"), "api.example.com", "configured");
        assert_eq!(label("d.example"), OTHER_HOST);
        assert_eq!(
            label("a.example"),
            "a.example",
            "a label, once given, stays"
        );
    }
}
