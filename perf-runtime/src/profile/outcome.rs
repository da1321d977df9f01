//! How a call ended, and how the expansion of `#[profile]` tells a returned
//! `Err` from any other value without knowing the type in advance.
//!
//! The trick is autoref specialisation: `(&OutcomeProbe(&value)).perf_outcome()`
//! picks [`ResultOutcome`] when `value` is a `Result` (its method takes
//! `&OutcomeProbe<Result<..>>` directly) and falls back to [`OtherOutcome`]
//! (whose method needs one more `&`) for everything else. Method resolution
//! happens where the macro expands, on the concrete return type.

/// How one profiled call ended. A bounded label value (`outcome`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Returned normally (a `Result` returned `Ok`).
    Ok,
    /// Returned `Err`, or was marked failed on a manual scope.
    Error,
    /// Unwound with a panic.
    Panic,
    /// Its future was dropped before it finished (a client went away, a timeout fired).
    Cancelled,
}

impl Outcome {
    /// Every outcome, in label order.
    pub const ALL: [Outcome; 4] = [
        Outcome::Ok,
        Outcome::Error,
        Outcome::Panic,
        Outcome::Cancelled,
    ];

    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Panic => "panic",
            Outcome::Cancelled => "cancelled",
        }
    }

    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// Wraps a reference to a call's return value for outcome detection.
#[doc(hidden)]
pub struct OutcomeProbe<'a, T: ?Sized>(pub &'a T);

/// Chosen for `Result`: `Err` is an error.
#[doc(hidden)]
pub trait ResultOutcome {
    fn perf_outcome(&self) -> Outcome;
}

impl<T, E> ResultOutcome for OutcomeProbe<'_, Result<T, E>> {
    #[inline]
    fn perf_outcome(&self) -> Outcome {
        match self.0 {
            Ok(_) => Outcome::Ok,
            Err(_) => Outcome::Error,
        }
    }
}

/// Chosen for every other type: returning is success.
#[doc(hidden)]
pub trait OtherOutcome {
    fn perf_outcome(&self) -> Outcome;
}

impl<T: ?Sized> OtherOutcome for &OutcomeProbe<'_, T> {
    #[inline]
    fn perf_outcome(&self) -> Outcome {
        Outcome::Ok
    }
}

#[cfg(test)]
// The extra `&` is the point: it is what selects the fallback impl.
#[allow(clippy::needless_borrow)]
mod tests {
    use super::*;

    #[test]
    fn results_are_told_apart_from_other_values() {
        let ok: Result<u8, String> = Ok(1);
        let err: Result<u8, String> = Err("no".into());
        assert_eq!((&OutcomeProbe(&ok)).perf_outcome(), Outcome::Ok);
        assert_eq!((&OutcomeProbe(&err)).perf_outcome(), Outcome::Error);
        assert_eq!((&OutcomeProbe(&42_u32)).perf_outcome(), Outcome::Ok);
        assert_eq!((&OutcomeProbe(&())).perf_outcome(), Outcome::Ok);
        let none: Option<u8> = None;
        assert_eq!((&OutcomeProbe(&none)).perf_outcome(), Outcome::Ok);
    }
}
