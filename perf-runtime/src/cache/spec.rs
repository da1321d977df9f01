//! What `#[fast_endpoint]` fixes at compile time for one function.

use std::time::Duration;

/// Which tiers a function's values live in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Tier {
    /// In-process only.
    L1,
    /// Redis only (shared by every instance).
    L2,
    /// Both: L1 in front of L2.
    L1L2,
}

impl Tier {
    /// Whether the in-process tier is used.
    pub const fn has_l1(self) -> bool {
        matches!(self, Tier::L1 | Tier::L1L2)
    }

    /// Whether the Redis tier is used.
    pub const fn has_l2(self) -> bool {
        matches!(self, Tier::L2 | Tier::L1L2)
    }
}

/// How long values stay fresh, and how long a stale one may still serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ttl {
    /// Served as fresh for this long.
    pub fresh: Duration,
    /// After that, served stale while one background refresh runs.
    pub stale_while_revalidate: Duration,
    /// After that (from the end of freshness), served when the body fails.
    pub stale_if_error: Duration,
}

impl Ttl {
    /// Fresh for `fresh`, no stale serving.
    pub const fn fresh(fresh: Duration) -> Self {
        Ttl {
            fresh,
            stale_while_revalidate: Duration::ZERO,
            stale_if_error: Duration::ZERO,
        }
    }

    /// How long past freshness an entry is kept at all.
    pub(crate) fn stale_window(&self) -> Duration {
        self.stale_while_revalidate.max(self.stale_if_error)
    }
}

/// The fixed description of one cached function.
#[derive(Debug)]
pub struct CacheSpec {
    /// The `function` label (the function's name or `name = ".."`).
    pub name: &'static str,
    /// Module path and function: separates functions in keys.
    pub namespace: &'static str,
    /// Bumped when the value type changes, so old entries are never read.
    pub schema_version: u32,
    /// `key_seed(namespace, schema_version)`, computed once.
    pub key_seed: u64,
    /// Freshness and stale windows.
    pub ttl: Ttl,
    /// Tiers used.
    pub tier: Tier,
    /// L1 capacity in entries (when `max_bytes` is zero).
    pub max_entries: u64,
    /// L1 capacity in bytes of encoded values; zero bounds L1 by entries.
    pub max_bytes: u64,
    /// With L2: how long a cold miss waits for another instance computing
    /// the same key (through a Redis lock) before computing itself; zero
    /// turns the lock off.
    pub lock: Duration,
}
