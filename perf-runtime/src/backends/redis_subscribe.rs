//! Following a Redis pub/sub channel on a connection of its own: the
//! subscription is made again after every reconnect, and the follower is
//! told when messages may have been lost (pub/sub delivers at most once:
//! nothing sent while the connection was down, or while the follower lagged
//! behind, comes back).
//!
//! Used by the cache's invalidation bus and by the Redis job store's
//! wake-ups.

use std::future::Future;

use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
use fred::prelude::Client;
use tokio::sync::watch;

/// What the follower of a channel is told.
#[derive(Debug)]
pub(crate) enum Delivery {
    /// A message, as text (`None` when it was not text).
    Message(Option<String>),
    /// Messages may have been lost: the connection came back, or the
    /// follower fell behind the client's buffer.
    Missed,
}

/// Subscribes `subscriber` (a client of its own, not yet connected) to
/// `channel` and hands every delivery to `deliver`, until `stop` changes
/// or its sender is dropped. Every wait races `stop`, so stopping never
/// hangs on a Redis that is down. `what` names the follower in logs.
pub(crate) async fn follow<F, Fut>(
    subscriber: Client,
    channel: String,
    what: &'static str,
    mut stop: watch::Receiver<bool>,
    mut deliver: F,
) where
    F: FnMut(Delivery) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut messages = subscriber.message_rx();
    let mut reconnects = subscriber.reconnect_rx();
    subscriber.connect();
    let subscribed = async {
        subscriber.wait_for_connect().await?;
        subscriber.subscribe(channel.as_str()).await
    };
    tokio::select! {
        result = subscribed => if let Err(error) = result {
            tracing::warn!(%error, "{what}: subscribe failed; retrying on reconnect");
        },
        _ = stop.changed() => return close(subscriber).await,
    }
    loop {
        tokio::select! {
            message = messages.recv() => match message {
                Ok(message) => deliver(Delivery::Message(message.value.convert().ok())).await,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    deliver(Delivery::Missed).await;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            reconnected = reconnects.recv() => {
                if reconnected.is_err() {
                    break;
                }
                deliver(Delivery::Missed).await;
                tokio::select! {
                    result = subscriber.subscribe(channel.as_str()) => if let Err(error) = result {
                        tracing::warn!(%error, "{what}: resubscribe failed");
                    },
                    _ = stop.changed() => break,
                }
            }
            _ = stop.changed() => break,
        }
    }
    close(subscriber).await;
}

async fn close(subscriber: Client) {
    // Not connected, it has no one to say goodbye to: do not wait for it.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), subscriber.quit()).await;
}
