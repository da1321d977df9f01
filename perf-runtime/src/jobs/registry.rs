//! Job handlers, registered at compile time: every `#[async_job]` linked
//! into the binary submits one, so a worker knows each job type by name
//! without a registration call.

use std::collections::HashMap;
use std::fmt::Display;
use std::sync::LazyLock;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;

use super::model::JobSpec;

/// How one run of a job ended, as the handler sees it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum JobOutcome {
    /// Done.
    Done,
    /// Failed with this message: retried while attempts remain.
    Failed(String),
    /// Run again after this wait without spending an attempt (a provider's
    /// 429, say).
    Snooze(Duration),
    /// The payload could not be decoded: not retried (it would fail the
    /// same way), straight to the dead-letter queue.
    Malformed(String),
}

/// What a job function may return: `()`, or `Result<(), E>` with a
/// displayable `E`, or a [`JobOutcome`] to snooze.
#[diagnostic::on_unimplemented(
    message = "an #[async_job] function must return `()`, `Result<(), E>` with `E: Display`, or `JobOutcome`; found `{Self}`",
    label = "not a job result"
)]
pub trait IntoJobOutcome {
    /// The outcome.
    fn into_outcome(self) -> JobOutcome;
}

impl IntoJobOutcome for () {
    fn into_outcome(self) -> JobOutcome {
        JobOutcome::Done
    }
}

impl<E: Display> IntoJobOutcome for Result<(), E> {
    fn into_outcome(self) -> JobOutcome {
        match self {
            Ok(()) => JobOutcome::Done,
            Err(error) => JobOutcome::Failed(error.to_string()),
        }
    }
}

impl IntoJobOutcome for JobOutcome {
    fn into_outcome(self) -> JobOutcome {
        self
    }
}

/// Runs a job from its stored payload.
pub type RunFn = fn(&[u8]) -> BoxFuture<'static, JobOutcome>;

/// One job type: its spec and how to run it from a payload.
#[derive(Debug)]
pub struct JobHandler {
    /// What `#[async_job]` fixed.
    pub spec: &'static JobSpec,
    /// Decodes the payload and runs the body.
    pub run: RunFn,
    /// `cron = "…"` of the attribute: the job runs on this schedule.
    pub cron: Option<&'static str>,
}

inventory::collect!(JobHandler);

/// Every handler linked into the binary, by name, and the names two or
/// more of them share.
struct Registry {
    /// Looked up for every job run: foldhash, not SipHash.
    handlers: HashMap<&'static str, &'static JobHandler, foldhash::fast::RandomState>,
    /// Sorted. Such a name has no handler: which body a stored job would
    /// run depends on link order, so it runs none (see [`check`]).
    shared: Vec<&'static str>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| {
    let mut handlers = HashMap::default();
    let mut shared = Vec::new();
    for handler in inventory::iter::<JobHandler> {
        if handlers.insert(handler.spec.name, handler).is_some() {
            shared.push(handler.spec.name);
        }
    }
    shared.sort_unstable();
    shared.dedup();
    for name in &shared {
        handlers.remove(name);
    }
    Registry { handlers, shared }
});

/// `Err` with the job names two or more linked `#[async_job]` functions
/// share (functions of one name in two modules, or one `name = "…"` given
/// twice). Worker pools refuse to start and enqueues of those names fail
/// with it: before, the first handler linked won, so jobs on the other's
/// queue were never claimed and their handles waited forever.
pub(super) fn check() -> Result<(), Vec<&'static str>> {
    if REGISTRY.shared.is_empty() {
        Ok(())
    } else {
        Err(REGISTRY.shared.clone())
    }
}

/// True when two or more linked `#[async_job]` functions go by `name`.
pub(super) fn is_shared(name: &str) -> bool {
    // The empty check first: enqueue asks on every call.
    !REGISTRY.shared.is_empty() && REGISTRY.shared.contains(&name)
}

/// The handler registered under `name`.
pub(super) fn handler(name: &str) -> Option<&'static JobHandler> {
    REGISTRY.handlers.get(name).copied()
}

/// Every registered job name.
pub(super) fn names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = REGISTRY.handlers.keys().copied().collect();
    names.sort_unstable();
    names
}

/// The spec of every registered job.
pub(super) fn specs() -> impl Iterator<Item = &'static JobSpec> {
    REGISTRY.handlers.values().map(|handler| handler.spec)
}

/// Every registered job with a `cron` schedule, by name.
pub(super) fn recurring() -> Vec<&'static JobHandler> {
    let mut recurring: Vec<&'static JobHandler> = REGISTRY
        .handlers
        .values()
        .copied()
        .filter(|handler| handler.cron.is_some())
        .collect();
    recurring.sort_unstable_by_key(|handler| handler.spec.name);
    recurring
}

/// Every queue a registered job goes to, and `default`.
pub(super) fn queues() -> Vec<String> {
    let mut queues: Vec<String> = REGISTRY
        .handlers
        .values()
        .map(|handler| handler.spec.queue.to_owned())
        .chain(std::iter::once("default".to_owned()))
        .collect();
    queues.sort_unstable();
    queues.dedup();
    queues
}

/// Largest payload decoded (untrusted bytes never allocate past a bound).
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;

/// Encodes a job's arguments.
pub(super) fn encode<A: serde::Serialize>(args: &A) -> Result<Vec<u8>, String> {
    rmp_serde::to_vec(args).map_err(|error| error.to_string())
}

/// Decodes a job's arguments; `Err` names what is wrong, for the
/// dead-letter queue.
pub fn decode<A: DeserializeOwned>(payload: &[u8]) -> Result<A, String> {
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(format!(
            "payload of {} bytes exceeds {MAX_PAYLOAD_BYTES}",
            payload.len()
        ));
    }
    rmp_serde::from_slice(payload).map_err(|error| format!("payload does not decode: {error}"))
}
