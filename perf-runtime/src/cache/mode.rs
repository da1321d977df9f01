//! How a function's return value maps to what is cached: a `Result` caches
//! its `Ok`, an `Option` its `Some` (or also `None` with `cache_none`), any
//! other type itself. The macro picks the mode from the return type.

/// What one call produced, as the cache sees it.
pub enum Split<V, R> {
    /// A value to cache (and to return).
    Cache(V),
    /// A failure: not cached; a stale value may be served instead.
    Error(R),
    /// Not cached, not a failure (`None`).
    Skip(R),
}

/// Maps a return type `R` to its cached value and back.
pub trait Mode<R> {
    /// What is stored.
    type Value;
    /// Classifies a fresh result.
    fn split(result: R) -> Split<Self::Value, R>;
    /// Rebuilds a result from a cached value.
    fn join(value: Self::Value) -> R;
}

/// `Result<T, E>`: `Ok` is cached, `Err` is an error.
pub struct ResultMode;
/// `Option<T>`: `Some` is cached, `None` is not.
pub struct OptionMode;
/// `Option<T>` with `cache_none`: both are cached.
pub struct OptionCacheNone;
/// Any other type: always cached.
pub struct PlainMode;

impl<T, E> Mode<Result<T, E>> for ResultMode {
    type Value = T;
    fn split(result: Result<T, E>) -> Split<T, Result<T, E>> {
        match result {
            Ok(value) => Split::Cache(value),
            error => Split::Error(error),
        }
    }
    fn join(value: T) -> Result<T, E> {
        Ok(value)
    }
}

impl<T> Mode<Option<T>> for OptionMode {
    type Value = T;
    fn split(result: Option<T>) -> Split<T, Option<T>> {
        match result {
            Some(value) => Split::Cache(value),
            None => Split::Skip(None),
        }
    }
    fn join(value: T) -> Option<T> {
        Some(value)
    }
}

impl<T> Mode<Option<T>> for OptionCacheNone {
    type Value = Option<T>;
    fn split(result: Option<T>) -> Split<Option<T>, Option<T>> {
        Split::Cache(result)
    }
    fn join(value: Option<T>) -> Option<T> {
        value
    }
}

impl<R> Mode<R> for PlainMode {
    type Value = R;
    fn split(result: R) -> Split<R, R> {
        Split::Cache(result)
    }
    fn join(value: R) -> R {
        value
    }
}
