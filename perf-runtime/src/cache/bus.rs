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
    use fred::prelude::Client;
    use tokio::sync::watch;

    use super::{CHANNEL, Invalidation};
    use crate::backends::redis_subscribe::{Delivery, follow};
    use crate::cache::registry;

    /// Subscribes `subscriber` and applies messages until `stop` changes.
    /// Messages that may have been lost (a reconnect, a lag) flush the
    /// whole L1: any entry may be stale.
    pub(crate) async fn listen(subscriber: Client, stop: watch::Receiver<bool>) {
        let apply = |delivery: Delivery| async move {
            match delivery {
                Delivery::Message(text) => {
                    if let Some(invalidation) = text.as_deref().and_then(Invalidation::decode) {
                        registry::apply(&invalidation).await;
                    }
                }
                Delivery::Missed => registry::apply(&Invalidation::Everything).await,
            }
        };
        follow(
            subscriber,
            CHANNEL.to_owned(),
            "cache invalidation bus",
            stop,
            apply,
        )
        .await;
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
