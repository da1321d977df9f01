//! The runtime's Redis connections (`fred`): a pool of multiplexed clients
//! (see [`pool_size`]), handed out round-robin (preferring connected ones),
//! with a command timeout (fred has none by default, so a dead server would
//! stall callers), reconnection with capped exponential backoff, and a
//! `PING` health check.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fred::clients::Pool;
use fred::prelude::{Builder, Client, ClientLike, Config, EventInterface, ReconnectPolicy};
use futures_util::future::BoxFuture;

use crate::config::{PerfConfig, SecretUrl};
use crate::lifecycle::InitError;
use crate::monitor::HealthCheck;

/// Longest a Redis command may wait for its answer.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest a TCP connect (and handshake) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) struct RedisBackend {
    pool: Pool,
    url: SecretUrl,
    last_error: Arc<Mutex<Option<String>>>,
}

impl RedisBackend {
    /// Builds the pool and starts connecting in the background.
    pub(crate) fn connect(url: &SecretUrl, config: &PerfConfig) -> Result<Self, InitError> {
        let size = pool_size(config.redis_max_connections);
        let pool = builder(url)
            .and_then(|builder| builder.build_pool(size))
            .map_err(|e| InitError::Redis {
                url: url.redacted(),
                reason: url.scrub(&e.to_string()),
            })?;
        let last_error = Arc::new(Mutex::new(None));
        for client in pool.clients() {
            let errors = Arc::clone(&last_error);
            let scrubbing = url.clone();
            client.on_error(move |(error, _server)| {
                let reason = scrubbing.scrub(&error.to_string());
                *errors.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
                async { Ok(()) }
            });
        }
        pool.connect();
        Ok(RedisBackend {
            pool,
            url: url.clone(),
            last_error,
        })
    }

    pub(crate) async fn wait_connected(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.pool.wait_for_connect()).await;
    }

    /// A client of the pool (cheap to clone), the next connected one in turn.
    pub(crate) fn client(&self) -> &Client {
        self.pool.next_connected()
    }

    /// A second client on the same server, for pub/sub (a subscribed
    /// connection cannot run other commands).
    pub(crate) fn subscriber(&self) -> Result<Client, fred::error::Error> {
        builder(&self.url)?.build()
    }

    pub(crate) fn describe(&self) -> String {
        self.url.redacted()
    }

    pub(crate) fn health_check(&self) -> RedisHealth {
        RedisHealth {
            client: self.pool.next_connected().clone(),
            url: self.url.clone(),
            last_error: Arc::clone(&self.last_error),
        }
    }

    /// `perf_redis_connections` by state: how many of the pool's
    /// connections are up right now.
    pub(crate) fn publish_metrics(&self) {
        let clients = self.pool.clients();
        let connected = clients.iter().filter(|c| c.is_connected()).count();
        let gauge = |state: &'static str, n: usize| {
            metrics::gauge!(crate::monitor::names::REDIS_CONNECTIONS, "state" => state)
                .set(n as f64);
        };
        gauge("connected", connected);
        gauge("disconnected", clients.len() - connected);
    }

    pub(crate) async fn close(&self) {
        if self.pool.is_connected() {
            let _ = self.pool.quit().await;
        }
    }
}

/// Connections in the pool: REDIS_MAX_CONNECTIONS is a cap, and the pool
/// stops at two per CPU core below it. Each connection is multiplexed (many
/// commands in flight on one socket), so past the cores more connections
/// add sockets, not throughput: with 64 tasks on 2 cores, L2 hits went from
/// 550k/s on one connection to 659k/s on four (docs/PERFORMANCE.md).
fn pool_size(cap: u32) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    (cap.max(1) as usize).min(2 * cores)
}

/// A client builder with the runtime's settings: command and connect timeouts, and
/// reconnection with capped exponential backoff, also for a server that is
/// down at start-up (the cache fails open; jobs report errors themselves),
/// instead of failing `init`.
fn builder(url: &SecretUrl) -> Result<Builder, fred::error::Error> {
    let mut config = Config::from_url(url.expose())?;
    config.fail_fast = false;
    let mut builder = Builder::from_config(config);
    builder
        .with_performance_config(|performance| {
            performance.default_command_timeout = COMMAND_TIMEOUT;
        })
        .with_connection_config(|connection| {
            connection.connection_timeout = CONNECT_TIMEOUT;
            connection.internal_command_timeout = CONNECT_TIMEOUT;
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2));
    Ok(builder)
}

/// `PING`, answered with a clear reason when the connection is down.
pub(crate) struct RedisHealth {
    client: Client,
    url: SecretUrl,
    last_error: Arc<Mutex<Option<String>>>,
}

impl HealthCheck for RedisHealth {
    fn name(&self) -> &str {
        "redis"
    }

    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let target = self.url.redacted();
            if !self.client.is_connected() {
                let last = self
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
                    .unwrap_or_else(|| "no connection yet".to_owned());
                return Err(format!("not connected to {target}: {last}"));
            }
            self.client
                .ping::<String>(None)
                .await
                .map(|_| ())
                .map_err(|e| {
                    format!(
                        "PING to {target} failed: {}",
                        self.url.scrub(&e.to_string())
                    )
                })
        })
    }
}
