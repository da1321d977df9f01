//! A durable job store for tests whose workers run in child processes: the
//! kind is handed to the children as text, and every process connects to
//! the same store.

use std::sync::Arc;

use perf_runtime::db::Db;
use perf_runtime::jobs::{JobStore, PostgresStore, RedisStore};
use perf_runtime::{Perf, PerfConfig};

/// Where the jobs of a run live: PostgreSQL (the logs' database), or a
/// namespace of a Redis server.
#[derive(Clone, Debug)]
pub enum StoreKind {
    Postgres,
    Redis { url: String, namespace: String },
}

impl StoreKind {
    /// The text a child process gets in its environment.
    pub fn to_env(&self) -> String {
        match self {
            StoreKind::Postgres => "postgres".to_owned(),
            StoreKind::Redis { url, namespace } => format!("redis {url} {namespace}"),
        }
    }

    /// Reads what [`to_env`](Self::to_env) wrote in `variable`.
    pub fn from_env(variable: &str) -> StoreKind {
        let text = std::env::var(variable).unwrap_or_else(|_| panic!("{variable} is not set"));
        match text.split(' ').collect::<Vec<_>>().as_slice() {
            ["postgres"] => StoreKind::Postgres,
            ["redis", url, namespace] => StoreKind::Redis {
                url: (*url).to_owned(),
                namespace: (*namespace).to_owned(),
            },
            _ => panic!("{variable}={text}: expected postgres or redis URL NAMESPACE"),
        }
    }

    /// `postgres` or `redis`, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            StoreKind::Postgres => "postgres",
            StoreKind::Redis { .. } => "redis",
        }
    }
}

/// A runtime on the database `url` (with up to `connections` connections,
/// and on Redis for a Redis run), its pool, and the store of the run.
pub async fn connect(
    url: &str,
    kind: &StoreKind,
    connections: u32,
) -> (Perf, Db, Arc<dyn JobStore>) {
    let mut config = PerfConfig::builder()
        .database_url(url)
        .db_max_connections(connections)
        .enable_monitoring(false);
    if let StoreKind::Redis { url, .. } = kind {
        config = config.redis_url(url);
    }
    let (perf, db) = super::pg_pool::start_pool(config.build().expect("valid config")).await;
    let store: Arc<dyn JobStore> = match kind {
        StoreKind::Postgres => Arc::new(PostgresStore::connect(db.clone()).await.expect("store")),
        StoreKind::Redis { namespace, .. } => {
            Arc::new(RedisStore::from_perf(&perf, namespace.as_str()).expect("Redis is configured"))
        }
    };
    (perf, db, store)
}
