//! The runtime's Redis client (`fred`), with a command timeout (fred has
//! none by default, so a dead server would stall callers), reconnection with
//! capped exponential backoff, and a `PING` health check.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

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
    client: Client,
    url: SecretUrl,
    last_error: Arc<Mutex<Option<String>>>,
}

impl RedisBackend {
    /// Builds the client and starts connecting in the background.
    pub(crate) fn connect(url: &SecretUrl, _config: &PerfConfig) -> Result<Self, InitError> {
        let client = build_client(url).map_err(|e| InitError::Redis {
            url: url.redacted(),
            reason: url.scrub(&e.to_string()),
        })?;
        let last_error = Arc::new(Mutex::new(None));
        let errors = Arc::clone(&last_error);
        let scrubbing = url.clone();
        client.on_error(move |(error, _server)| {
            let reason = scrubbing.scrub(&error.to_string());
            *errors.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason);
            async { Ok(()) }
        });
        client.connect();
        Ok(RedisBackend {
            client,
            url: url.clone(),
            last_error,
        })
    }

    pub(crate) async fn wait_connected(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, self.client.wait_for_connect()).await;
    }

    /// The shared client (cheap to clone: one multiplexed connection).
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// A second client on the same server, for pub/sub (a subscribed
    /// connection cannot run other commands).
    pub(crate) fn subscriber(&self) -> Result<Client, fred::error::Error> {
        build_client(&self.url)
    }

    pub(crate) fn describe(&self) -> String {
        self.url.redacted()
    }

    pub(crate) fn health_check(&self) -> RedisHealth {
        RedisHealth {
            client: self.client.clone(),
            url: self.url.clone(),
            last_error: Arc::clone(&self.last_error),
        }
    }

    pub(crate) async fn close(&self) {
        if self.client.is_connected() {
            let _ = self.client.quit().await;
        }
    }
}

/// A client with the runtime's settings: command and connect timeouts, and
/// reconnection with capped exponential backoff, also for a server that is
/// down at start-up (the cache fails open; jobs report errors themselves),
/// instead of failing `init`.
fn build_client(url: &SecretUrl) -> Result<Client, fred::error::Error> {
    let mut config = Config::from_url(url.expose())?;
    config.fail_fast = false;
    Builder::from_config(config)
        .with_performance_config(|performance| {
            performance.default_command_timeout = COMMAND_TIMEOUT;
        })
        .with_connection_config(|connection| {
            connection.connection_timeout = CONNECT_TIMEOUT;
            connection.internal_command_timeout = CONNECT_TIMEOUT;
        })
        .set_policy(ReconnectPolicy::new_exponential(0, 100, 5_000, 2))
        .build()
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
