//! A pooled connection on loan, handed back with a bounded check.
//!
//! sqlx tests a connection when it goes back to the pool (a ping, in a task
//! it spawns) with no time limit. A connection whose server vanished
//! without a reset (a network that swallows packets) never answers that
//! ping, so its slot in the pool is lost until the kernel gives up on the
//! socket, many minutes later, and closing the pool waits for it. Handing
//! it back ourselves bounds the check: a connection that does not answer
//! within the acquire timeout is dropped, and its slot freed.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnection, Postgres};

pub(super) struct Lent {
    conn: Option<PoolConnection<Postgres>>,
    check_limit: Duration,
}

impl Lent {
    pub(super) fn new(conn: PoolConnection<Postgres>, check_limit: Duration) -> Self {
        Lent {
            conn: Some(conn),
            check_limit,
        }
    }
}

impl Lent {
    /// Drops the connection instead of handing it back (its slot is freed):
    /// for a connection left in the middle of a query.
    pub(super) fn discard(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Detached from the pool, the connection closes on drop.
            drop(conn.detach());
        }
    }
}

impl Deref for Lent {
    type Target = PgConnection;

    fn deref(&self) -> &PgConnection {
        self.conn.as_ref().expect("present until dropped")
    }
}

impl DerefMut for Lent {
    fn deref_mut(&mut self) -> &mut PgConnection {
        self.conn.as_mut().expect("present until dropped")
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let (Some(mut conn), Ok(runtime)) =
            (self.conn.take(), tokio::runtime::Handle::try_current())
        else {
            return; // Outside a runtime sqlx's own drop does what it can.
        };
        // `return_to_pool` is sqlx's drop handler run by hand (hidden from
        // its docs, public): dropping its future on the timeout drops the
        // connection and frees its slot.
        let give_back = conn.return_to_pool();
        let limit = self.check_limit;
        runtime.spawn(async move {
            let _ = tokio::time::timeout(limit, give_back).await;
        });
    }
}
