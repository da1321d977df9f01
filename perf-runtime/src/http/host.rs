//! Per-host state: the connection cap, rate limit, breaker and retry budget
//! of each `host[:port]`, and its bounded metric label.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use metrics::SharedString;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tower::retry::budget::TpsBudget;

use super::breaker::{Breaker, BreakerPolicy};
use super::bucket::{RateLimit, TokenBucket};
use super::retry::RetryPolicy;

/// Hosts remembered at most; past it the longest idle is forgotten.
const MAX_HOSTS: usize = 4096;
/// A host unused this long is forgotten: its breaker and bucket start afresh.
const HOST_IDLE: Duration = Duration::from_secs(600);

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
    /// Seconds since the client's epoch at the last request (coarse).
    last_used: AtomicU64,
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
///
/// A plain map under a read-write lock: a request takes the read lock and
/// hashes its `host[:port]` without allocating; only a new (or forgotten)
/// host takes the write lock.
pub(super) struct Hosts {
    settings: HostSettings,
    /// foldhash: a host name is hashed on every request (SipHash cost a
    /// tenth of the client's own work); seeded per process.
    hosts: RwLock<HashMap<Arc<str>, Arc<Host>, foldhash::fast::RandomState>>,
    labels: Mutex<HashMap<Arc<str>, SharedString>>,
    epoch: Instant,
}

impl Hosts {
    pub(super) fn new(settings: HostSettings) -> Self {
        Hosts {
            hosts: RwLock::new(HashMap::default()),
            labels: Mutex::new(HashMap::new()),
            settings,
            epoch: Instant::now(),
        }
    }

    /// The state of `name` (`host[:port]`), created on first use; `now` is
    /// the request's start (read once for all its bookkeeping).
    pub(super) fn get(&self, name: &str, now: Instant) -> Arc<Host> {
        let now = self.secs(now);
        if let Some(host) = self.find_at(name, now) {
            return host;
        }
        let mut hosts = self.hosts.write().unwrap_or_else(PoisonError::into_inner);
        // Another request may have created it meanwhile.
        if let Some(host) = hosts.get(name).filter(|host| !self.idle(host, now)) {
            return Arc::clone(host);
        }
        if hosts.len() >= MAX_HOSTS {
            self.forget_idle(&mut hosts, now);
        }
        let name: Arc<str> = Arc::from(name);
        let host = Arc::new(self.create(Arc::clone(&name), now));
        hosts.insert(name, Arc::clone(&host));
        host
    }

    /// The host's state if it has been used (and not forgotten since).
    pub(super) fn find(&self, name: &str) -> Option<Arc<Host>> {
        self.find_at(name, self.secs(Instant::now()))
    }

    fn find_at(&self, name: &str, now: u64) -> Option<Arc<Host>> {
        let hosts = self.hosts.read().unwrap_or_else(PoisonError::into_inner);
        let host = hosts.get(name).filter(|host| !self.idle(host, now))?;
        // A shared line: written once a second at most, not per request.
        if host.last_used.load(Ordering::Relaxed) != now {
            host.last_used.store(now, Ordering::Relaxed);
        }
        Some(Arc::clone(host))
    }

    fn idle(&self, host: &Host, now: u64) -> bool {
        now.saturating_sub(host.last_used.load(Ordering::Relaxed)) >= HOST_IDLE.as_secs()
    }

    /// Makes room for one more: drops every idle host, or else the one
    /// unused longest.
    fn forget_idle(
        &self,
        hosts: &mut HashMap<Arc<str>, Arc<Host>, foldhash::fast::RandomState>,
        now: u64,
    ) {
        hosts.retain(|_, host| !self.idle(host, now));
        if hosts.len() >= MAX_HOSTS {
            let oldest = hosts
                .iter()
                .min_by_key(|(_, host)| host.last_used.load(Ordering::Relaxed))
                .map(|(name, _)| Arc::clone(name));
            if let Some(oldest) = oldest {
                hosts.remove(&oldest);
            }
        }
    }

    fn secs(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    fn create(&self, name: Arc<str>, now: u64) -> Host {
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
            last_used: AtomicU64::new(now),
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
            .field("known", &self.hosts.read().map_or(0, |hosts| hosts.len()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> HostSettings {
        HostSettings {
            max_connections: 1,
            rate_limit: None,
            breaker: None,
            retry: RetryPolicy::default(),
            labelled_hosts: Vec::new(),
            max_host_labels: 0,
        }
    }

    #[test]
    fn a_host_keeps_its_state_and_the_map_stays_bounded() {
        let hosts = Hosts::new(settings());
        let now = Instant::now();
        let first = hosts.get("a.example", now);
        assert!(
            Arc::ptr_eq(&first, &hosts.get("a.example", now)),
            "same state"
        );
        assert!(hosts.find("b.example").is_none(), "never used");
        for i in 0..MAX_HOSTS + 10 {
            hosts.get(&format!("h{i}.example"), now);
        }
        let known = hosts.hosts.read().expect("lock").len();
        assert_eq!(known, MAX_HOSTS, "one forgotten per host past the cap");
        assert!(hosts.find(&format!("h{}.example", MAX_HOSTS + 9)).is_some());
    }

    #[test]
    fn host_labels_are_bounded_with_configured_hosts_always_named() {
        let hosts = Hosts::new(HostSettings {
            labelled_hosts: vec!["api.example.com".to_owned()],
            max_host_labels: 2,
            ..settings()
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
