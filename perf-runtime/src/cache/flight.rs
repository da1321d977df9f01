//! Single-flight: concurrent misses on one key look it up in L2 and run
//! the body once in this process. The first caller leads; the others wait
//! for the value it publishes (or, if it fails or is cancelled, take the lead
//! in turn). The leader's slot is released by a drop guard, so a cancelled
//! leader never strands its followers.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use tokio::sync::watch;

use super::key::CacheKey;

/// The flights in progress, each with the channel its value comes through.
pub(crate) struct Flights<V> {
    running: Mutex<HashMap<CacheKey, watch::Receiver<Option<V>>>>,
}

impl<V> Default for Flights<V> {
    fn default() -> Self {
        Flights {
            running: Mutex::default(),
        }
    }
}

pub(crate) enum Role<'a, V> {
    Leader(LeaderGuard<'a, V>),
    Follower(watch::Receiver<Option<V>>),
}

impl<V> Flights<V> {
    pub(crate) fn join(&self, key: CacheKey) -> Role<'_, V> {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(done) = running.get(&key) {
            return Role::Follower(done.clone());
        }
        let (sender, receiver) = watch::channel(None);
        running.insert(key, receiver);
        Role::Leader(LeaderGuard {
            flights: self,
            key,
            value: sender,
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
pub(crate) struct LeaderGuard<'a, V> {
    flights: &'a Flights<V>,
    key: CacheKey,
    value: watch::Sender<Option<V>>,
}

impl<V> LeaderGuard<'_, V> {
    /// Hands `value` to every follower (now and until the guard drops).
    pub(crate) fn publish(&self, value: V) {
        self.value.send_replace(Some(value));
    }
}

impl<V> Drop for LeaderGuard<'_, V> {
    fn drop(&mut self) {
        self.flights
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
        // `value` drops after this: followers' `changed()` returns an error.
    }
}

/// Waits for the leader: its value, or `None` when it ended without one.
pub(crate) async fn wait<V: Clone>(mut done: watch::Receiver<Option<V>>) -> Option<V> {
    loop {
        if let Some(value) = done.borrow_and_update().as_ref() {
            return Some(value.clone());
        }
        if done.changed().await.is_err() {
            return done.borrow().clone();
        }
    }
}
