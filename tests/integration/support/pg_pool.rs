//! The runtime's PostgreSQL pool as the outage tests use it: started from a
//! configuration, probed with one tiny parameterised query, and pointed
//! through the fault proxy.

use std::net::SocketAddr;

use perf_runtime::db::{Db, DbError, Params};
use perf_runtime::{Perf, PerfConfig};

/// A non-global runtime for `config` (which must set a database) and its pool.
pub async fn start_pool(config: PerfConfig) -> (Perf, Db) {
    let perf = Perf::start(config).await.expect("start");
    let db = perf.db().expect("a database is configured");
    (perf, db)
}

/// `SELECT $1::int4` with 1: the smallest parameterised round trip.
pub async fn one(db: &Db) -> Result<Option<(i32,)>, DbError> {
    db.fetch_optional("SELECT $1::int4", Params::new().bind(1_i32))
        .await
}

/// The `host:port` of a `postgres://user:password@host:port/db` url.
pub fn upstream(url: &str) -> SocketAddr {
    let (_, rest) = url.rsplit_once('@').expect("url with credentials");
    let (host_port, _) = rest.split_once('/').expect("url with a database");
    host_port.parse().expect("an IP address and port")
}

/// `url` with its `host:port` replaced by `addr`.
pub fn through(url: &str, addr: SocketAddr) -> String {
    let (scheme_and_user, rest) = url.rsplit_once('@').expect("url with credentials");
    let (_, path) = rest.split_once('/').expect("url with a database");
    format!("{scheme_and_user}@{addr}/{path}")
}
