//! [`scope`]: profile a block by name, without an attribute.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use super::{CallGuard, Outcome, ProfileSite};

/// Sites made by [`scope`], one per name. Names are `&'static str`, so the
/// map is bounded by the names written in the program.
static SCOPES: RwLock<Option<HashMap<&'static str, &'static ProfileSite>>> = RwLock::new(None);

/// The `module` label of sites made by [`scope`].
pub(crate) const SCOPE_MODULE: &str = "scope";

/// Starts profiling a block under `name` (the seed's
/// `profiler.profile("my_operation")`). The block counts as `ok` when the
/// guard is dropped, `error` if [`ProfileScope::fail`] was called or
/// [`ProfileScope::record`] saw an `Err`, and `panic` when dropped while
/// unwinding.
///
/// ```
/// use perf_runtime::profile;
///
/// fn rebuild_index(docs: &[&str]) -> Result<usize, String> {
///     let mut call = profile::scope("rebuild_index");
///     let result = if docs.is_empty() { Err("nothing to index".to_owned()) } else { Ok(docs.len()) };
///     call.record(&result);
///     result
/// }
/// # assert_eq!(rebuild_index(&["a"]), Ok(1));
/// ```
///
/// Each call looks the name up in a shared map; for a hot block, declare a
/// `static` [`ProfileSite`] instead.
pub fn scope(name: &'static str) -> ProfileScope {
    let site = site_named(name);
    ProfileScope {
        span: tracing::info_span!("perf.scope", name),
        call: Some(site.start()),
        outcome: Outcome::Ok,
    }
}

fn site_named(name: &'static str) -> &'static ProfileSite {
    if let Some(site) = SCOPES
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(|sites| sites.get(name))
    {
        return site;
    }
    let mut sites = SCOPES.write().unwrap_or_else(PoisonError::into_inner);
    sites
        .get_or_insert_with(HashMap::new)
        .entry(name)
        .or_insert_with(|| Box::leak(Box::new(ProfileSite::new(name, SCOPE_MODULE))))
}

/// A block being profiled; see [`scope`].
#[must_use = "the scope measures until it is dropped"]
pub struct ProfileScope {
    span: tracing::Span,
    call: Option<CallGuard>,
    outcome: Outcome,
}

impl ProfileScope {
    /// Marks the block as failed.
    pub fn fail(&mut self) {
        self.outcome = Outcome::Error;
    }

    /// Marks the block as failed when `result` is an `Err`.
    pub fn record<T, E>(&mut self, result: &Result<T, E>) {
        if result.is_err() {
            self.fail();
        }
    }

    /// The block's span (`perf.scope`, with a `name` field), to enter or to
    /// instrument futures with.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Runs `f` inside the block's span.
    pub fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        self.span.in_scope(f)
    }
}

impl Drop for ProfileScope {
    fn drop(&mut self) {
        if let Some(call) = self.call.take() {
            let outcome = if std::thread::panicking() {
                Outcome::Panic
            } else {
                self.outcome
            };
            call.finish(outcome);
        }
    }
}

impl std::fmt::Debug for ProfileScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProfileScope")
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}
