//! Connections to the shared services the runtime uses when configured:
//! Redis (`redis` feature) and PostgreSQL (`postgres` feature). Each brings
//! its health check. Connecting never blocks start-up: a service that is
//! down shows as down in the health report, and the client reconnects by
//! itself when it comes back.

#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(feature = "redis")]
pub(crate) mod redis;
#[cfg(feature = "redis")]
pub(crate) mod redis_script;
#[cfg(feature = "redis")]
pub(crate) mod redis_subscribe;

use std::sync::Arc;

use crate::config::PerfConfig;
use crate::lifecycle::InitError;
use crate::monitor::{ComponentStatus, HealthCheck};

/// The connected services of one runtime.
#[derive(Default)]
pub(crate) struct Backends {
    #[cfg(feature = "redis")]
    redis: Option<redis::RedisBackend>,
    #[cfg(feature = "postgres")]
    postgres: Option<postgres::PostgresBackend>,
}

impl Backends {
    /// Connects what `config` names (unless connection pooling is off).
    /// A URL whose backend feature is off is an error, not a silent skip.
    pub(crate) fn connect(config: &PerfConfig) -> Result<Self, InitError> {
        #[cfg(not(feature = "redis"))]
        if config.redis.is_some() {
            return Err(InitError::FeatureMissing {
                setting: "REDIS_URL",
                feature: "redis",
            });
        }
        #[cfg(not(feature = "postgres"))]
        if config.database.is_some() {
            return Err(InitError::FeatureMissing {
                setting: "DATABASE_URL",
                feature: "postgres",
            });
        }
        #[allow(unused_mut)]
        let mut backends = Backends::default();
        if !config.enable_connection_pooling {
            return Ok(backends);
        }
        #[cfg(feature = "redis")]
        if let Some(url) = &config.redis {
            backends.redis = Some(redis::RedisBackend::connect(url, config)?);
        }
        #[cfg(feature = "postgres")]
        if let Some(url) = &config.database {
            backends.postgres = Some(postgres::PostgresBackend::connect(url, config)?);
        }
        Ok(backends)
    }

    /// Waits up to `limit` for the first connections; never fails (a
    /// service that is down is reported by its health check).
    pub(crate) async fn wait_connected(&self, limit: std::time::Duration) {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            redis.wait_connected(limit).await;
        }
        let _ = limit;
    }

    /// The Redis connection, when one is configured.
    #[cfg(feature = "redis")]
    pub(crate) fn redis(&self) -> Option<&redis::RedisBackend> {
        self.redis.as_ref()
    }

    /// The PostgreSQL query API, when a database is configured.
    #[cfg(feature = "postgres")]
    pub(crate) fn db(&self) -> Option<&crate::db::Db> {
        self.postgres.as_ref().map(postgres::PostgresBackend::db)
    }

    /// A health check per connected service.
    #[allow(clippy::vec_init_then_push)]
    pub(crate) fn health_checks(&self) -> Vec<Arc<dyn HealthCheck>> {
        #[allow(unused_mut)]
        let mut checks: Vec<Arc<dyn HealthCheck>> = Vec::new();
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            checks.push(Arc::new(redis.health_check()));
        }
        #[cfg(feature = "postgres")]
        if let Some(postgres) = &self.postgres {
            checks.push(Arc::new(postgres.health_check()));
        }
        checks
    }

    /// One status line per backend this build knows.
    // Each push is behind a feature, so the vector cannot be a literal.
    #[allow(clippy::vec_init_then_push)]
    pub(crate) fn components(&self, config: &PerfConfig) -> Vec<ComponentStatus> {
        let _ = config;
        #[allow(unused_mut)]
        let mut components = Vec::new();
        #[cfg(feature = "redis")]
        components.push(match &self.redis {
            Some(redis) => ComponentStatus::new("redis", true, redis.describe()),
            None => ComponentStatus::new(
                "redis",
                false,
                off_reason(config.redis.is_some(), config, "REDIS_URL"),
            ),
        });
        #[cfg(feature = "postgres")]
        components.push(match &self.postgres {
            Some(postgres) => ComponentStatus::new("postgres", true, postgres.describe()),
            None => ComponentStatus::new(
                "postgres",
                false,
                off_reason(config.database.is_some(), config, "DATABASE_URL"),
            ),
        });
        components
    }

    /// Publishes the connection and pool gauges of each backend.
    pub(crate) fn publish_metrics(&self) {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            redis.publish_metrics();
        }
        #[cfg(feature = "postgres")]
        if let Some(postgres) = &self.postgres {
            postgres.db().publish_pool_gauges();
        }
    }

    /// Closes every connection.
    pub(crate) async fn close(&self) {
        #[cfg(feature = "redis")]
        if let Some(redis) = &self.redis {
            redis.close().await;
        }
        #[cfg(feature = "postgres")]
        if let Some(postgres) = &self.postgres {
            postgres.close().await;
        }
    }
}

#[cfg(any(feature = "redis", feature = "postgres"))]
fn off_reason(configured: bool, config: &PerfConfig, variable: &str) -> String {
    if configured && !config.enable_connection_pooling {
        "connection pooling is switched off".to_owned()
    } else {
        format!("{variable} is not set")
    }
}
