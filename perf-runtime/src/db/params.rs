//! [`Params`]: the values bound to `$1`, `$2`, … of a query, kept both as
//! the server's binary encoding and as cache-key bytes.

use serde::Serialize;
use sqlx::postgres::{PgArguments, Postgres};
use sqlx::{Arguments, Encode, Type};

use super::DbError;

/// Values for `$1`, `$2`, … in order.
///
/// ```
/// use perf_runtime::db::Params;
///
/// let params = Params::new().bind(42_i64).bind("en");
/// assert_eq!(params.len(), 2);
/// ```
///
/// Each value is also serialized (with its type name) into the key of
/// [`Db::cached_query`](super::Db::cached_query): two calls share a cached
/// result only when their values are equal and of the same type.
#[derive(Clone, Debug)]
#[must_use]
pub struct Params {
    arguments: PgArguments,
    /// `None` for values never used as a cache key (see [`Params::unkeyed`]).
    key_bytes: Option<Vec<u8>>,
    len: usize,
    /// The first value that failed to encode: reported when the query runs,
    /// so binding stays chainable.
    failed: Option<(usize, String)>,
}

impl Default for Params {
    fn default() -> Self {
        Params::new()
    }
}

impl Params {
    /// No values.
    pub fn new() -> Self {
        Params {
            arguments: PgArguments::default(),
            key_bytes: Some(Vec::new()),
            len: 0,
            failed: None,
        }
    }

    /// No values, and none kept as cache-key bytes: for the framework's own
    /// queries, whose results are never cached (a batch enqueue's 10,000
    /// jobs would otherwise be serialized a second time, for nothing).
    /// [`Db::cached_query`](super::Db::cached_query) does not cache such a
    /// query's result.
    pub(crate) fn unkeyed() -> Self {
        Params {
            key_bytes: None,
            ..Params::new()
        }
    }

    /// Adds the value of the next placeholder.
    pub fn bind<T>(mut self, value: T) -> Self
    where
        T: for<'q> Encode<'q, Postgres> + Type<Postgres> + Serialize + Send,
    {
        self.len += 1;
        if self.failed.is_some() {
            return self;
        }
        if let Some(key_bytes) = self.key_bytes.take() {
            let typed = (std::any::type_name::<T>(), &value);
            match postcard::to_extend(&typed, key_bytes) {
                Ok(bytes) => self.key_bytes = Some(bytes),
                Err(error) => {
                    // The key is not read once binding failed.
                    self.key_bytes = Some(Vec::new());
                    self.failed = Some((self.len, error.to_string()));
                    return self;
                }
            }
        }
        if let Err(error) = self.arguments.add(value) {
            self.failed = Some((self.len, error.to_string()));
        }
        self
    }

    /// How many values are bound.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no value is bound.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The encoded values, or the first that failed.
    pub(crate) fn into_arguments(self) -> Result<PgArguments, DbError> {
        match self.failed {
            Some((index, reason)) => Err(DbError::Bind { index, reason }),
            None => Ok(self.arguments),
        }
    }

    /// The values as key material: self-delimiting, typed; `None` when
    /// they were bound [`unkeyed`](Self::unkeyed).
    pub(crate) fn key_bytes(&self) -> Option<&[u8]> {
        self.key_bytes.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::Params;

    #[test]
    fn values_and_types_both_distinguish_keys() {
        let key = |params: Params| params.key_bytes().expect("keyed").to_vec();
        assert_eq!(
            key(Params::new().bind(1_i64)),
            key(Params::new().bind(1_i64))
        );
        assert_ne!(
            key(Params::new().bind(1_i64)),
            key(Params::new().bind(2_i64))
        );
        assert_ne!(
            key(Params::new().bind(1_i64)),
            key(Params::new().bind(1_i32))
        );
        assert_ne!(
            key(Params::new().bind("ab").bind("c")),
            key(Params::new().bind("a").bind("bc"))
        );
    }

    #[test]
    fn values_are_counted_and_encoded() {
        let params = Params::new().bind("x").bind(Some(3_i16));
        assert_eq!(params.len(), 2);
        assert!(params.into_arguments().is_ok());
        assert!(Params::new().is_empty());
    }

    #[test]
    fn unkeyed_values_are_encoded_but_give_no_key() {
        let params = Params::unkeyed().bind(vec![1_i64, 2]).bind("x");
        assert_eq!(params.len(), 2);
        assert_eq!(params.key_bytes(), None);
        assert!(params.into_arguments().is_ok());
    }
}
