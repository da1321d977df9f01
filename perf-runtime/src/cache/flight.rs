//! Single-flight: concurrent misses on one key run the body once in this
//! process. The first caller leads; the others wait until it is done (or
//! cancelled) and then look again. The leader's slot is released by a drop
//! guard, so a cancelled leader never strands its followers.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::sync::watch;

use super::key::CacheKey;

#[derive(Default)]
pub(crate) struct Flights {
    running: Mutex<HashMap<CacheKey, watch::Receiver<()>>>,
}

pub(crate) enum Role<'a> {
    Leader(LeaderGuard<'a>),
    Follower(watch::Receiver<()>),
}

impl Flights {
    pub(crate) fn join(&self, key: CacheKey) -> Role<'_> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(done) = running.get(&key) {
            return Role::Follower(done.clone());
        }
        let (sender, receiver) = watch::channel(());
        running.insert(key, receiver);
        Role::Leader(LeaderGuard {
            flights: self,
            key,
            _done: sender,
        })
    }

    pub(crate) fn is_running(&self, key: &CacheKey) -> bool {
        self.running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(key)
    }
}

/// Held by the leader; dropping it (done or cancelled) wakes the followers.
pub(crate) struct LeaderGuard<'a> {
    flights: &'a Flights,
    key: CacheKey,
    _done: watch::Sender<()>,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        self.flights
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
        // `_done` drops after this: followers' `changed()` returns an error.
    }
}

/// Waits until the leader is gone.
pub(crate) async fn wait(mut done: watch::Receiver<()>) {
    while done.changed().await.is_ok() {}
}
