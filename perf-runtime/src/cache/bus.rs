//! The invalidation bus: every instance sharing Redis subscribes to one
//! channel and drops from its L1 what others invalidated. Pub/sub delivers
//! at most once, so when the subscription connection drops, the instance
//! flushes its whole L1 (it may have missed messages), then resubscribes.

use super::key::CacheKey;

/// The channel every instance listens on.
pub const CHANNEL: &str = "perf:invalidate";

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
const SEPARATOR: char = '\u{1f}';

/// One invalidation, as sent between instances.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "redis"), allow(dead_code))]
pub(crate) enum Invalidation {
    Key { namespace: String, key: CacheKey },
    Function { namespace: String },
    Tag { tag: String },
    Everything,
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl Invalidation {
    pub(crate) fn encode(&self) -> String {
        match self {
            Invalidation::Key { namespace, key } => {
                format!("k{SEPARATOR}{namespace}{SEPARATOR}{:032x}", key.as_u128())
            }
            Invalidation::Function { namespace } => format!("f{SEPARATOR}{namespace}"),
            Invalidation::Tag { tag } => format!("t{SEPARATOR}{tag}"),
            Invalidation::Everything => "a".to_owned(),
        }
    }

    pub(crate) fn decode(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, SEPARATOR);
        match (parts.next()?, parts.next(), parts.next()) {
            ("k", Some(namespace), Some(hex)) => Some(Invalidation::Key {
                namespace: namespace.to_owned(),
                key: CacheKey::from_u128(u128::from_str_radix(hex, 16).ok()?),
            }),
            ("f", Some(namespace), None) => Some(Invalidation::Function {
                namespace: namespace.to_owned(),
            }),
            ("t", Some(tag), None) => Some(Invalidation::Tag {
                tag: tag.to_owned(),
            }),
            ("a", None, None) => Some(Invalidation::Everything),
            _ => None,
        }
    }
}

#[cfg(feature = "redis")]
pub(crate) use listener::listen;

#[cfg(feature = "redis")]
mod listener {
    use fred::interfaces::{ClientLike, EventInterface, PubsubInterface};
    use fred::prelude::Client;
    use tokio::sync::watch;

    use super::{CHANNEL, Invalidation};
    use crate::cache::registry;

    /// Subscribes `subscriber` and applies messages until `stop` changes.
    /// Every wait races `stop`, so shutdown never hangs on a Redis that is
    /// down or unreachable.
    pub(crate) async fn listen(subscriber: Client, mut stop: watch::Receiver<bool>) {
        let mut messages = subscriber.message_rx();
        let mut reconnects = subscriber.reconnect_rx();
        subscriber.connect();
        let subscribed = async {
            subscriber.wait_for_connect().await?;
            subscriber.subscribe(CHANNEL).await
        };
        tokio::select! {
            result = subscribed => if let Err(error) = result {
                tracing::warn!(%error, "cache invalidation bus: subscribe failed; retrying on reconnect");
            },
            _ = stop.changed() => return close(subscriber).await,
        }
        loop {
            tokio::select! {
                message = messages.recv() => match message {
                    Ok(message) => {
                        let text: Option<String> = message.value.convert().ok();
                        if let Some(invalidation) = text.as_deref().and_then(Invalidation::decode) {
                            registry::apply(&invalidation).await;
                        }
                    }
                    // Lagged: messages were lost, so everything may be stale.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        registry::apply(&Invalidation::Everything).await;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                reconnected = reconnects.recv() => {
                    if reconnected.is_err() {
                        break;
                    }
                    // Messages sent while we were away are gone: start clean.
                    registry::apply(&Invalidation::Everything).await;
                    tokio::select! {
                        result = subscriber.subscribe(CHANNEL) => if let Err(error) = result {
                            tracing::warn!(%error, "cache invalidation bus: resubscribe failed");
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
        let quit = subscriber.quit();
        if tokio::time::timeout(std::time::Duration::from_secs(1), quit)
            .await
            .is_err()
        {
            // Not connected: nothing to say goodbye to.
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        for message in [
            Invalidation::Key {
                namespace: "app::users::get".into(),
                key: CacheKey::from_u128(0xdead_beef),
            },
            Invalidation::Function {
                namespace: "app::users::get".into(),
            },
            Invalidation::Tag {
                tag: "user:42".into(),
            },
            Invalidation::Everything,
        ] {
            assert_eq!(Invalidation::decode(&message.encode()), Some(message));
        }
        assert_eq!(Invalidation::decode("x"), None);
        assert_eq!(Invalidation::decode("k\u{1f}ns\u{1f}nothex"), None);
    }
}
