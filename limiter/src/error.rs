//! [`LimitError`]: the configuration errors of the Limiter.

/// A rejected Limiter configuration.
///
/// Returned by [`limit`](crate::limit), [`LimitHandle::update_limit`](crate::LimitHandle::update_limit)
/// and [`Limit::flow_window`](crate::Limit::flow_window) instead of panicking.
///
/// ```
/// use pando_limiter::{LimitError, limit};
/// use pando_pull_stream::map;
///
/// let err = limit(map(|x: u64| x), 0).unwrap_err();
/// assert_eq!(err, LimitError::Zero);
/// assert!(err.to_string().contains("limit of 0"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// A limit of 0 was requested: the wrapped module could never be given a value.
    #[error(
        "a Limiter limit of 0 was requested: the limit (the number of values in process) must be at least 1, \
         or the wrapped module could never be given a value"
    )]
    Zero,
    /// A flow-rate window of zero length was requested.
    #[error("a Limiter flow-rate window of zero length was requested: the window must be longer than zero")]
    ZeroWindow,
}
