//! [`StubbornError`]: how stubborn processing can fail on its own.

/// An error of stubborn processing itself (as opposed to an error of the
/// upstream or of the through, which are passed on unchanged).
///
/// The stream's error type `E` must implement `From<StubbornError>`: errors
/// travel both ways in a pipeline (a downstream `fail(e)` goes upstream as
/// is), so stubborn processing keeps one error type and converts its own
/// errors into it.
///
/// ```
/// use pando_stubborn::StubbornError;
///
/// #[derive(Debug, PartialEq, thiserror::Error)]
/// enum JobError {
///     #[error("download failed: {0}")]
///     Download(String),
///     #[error(transparent)]
///     Stubborn(#[from] StubbornError),
/// }
///
/// let e: JobError = StubbornError::RetriesExhausted { position: 7, attempts: 10 }.into();
/// assert_eq!(
///     e.to_string(),
///     "retries exhausted: the value at position 7 was submitted 10 times and never accepted"
/// );
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StubbornError {
    /// The value at `position` (from 0) was rejected by the tester on each of
    /// its `attempts` submissions, the configured maximum.
    #[error(
        "retries exhausted: the value at position {position} was submitted {attempts} times and never accepted"
    )]
    RetriesExhausted {
        /// The position of the value in the input stream, from 0.
        position: u64,
        /// The number of submissions made, each rejected.
        attempts: u32,
    },
    /// The through ended (answered `done`) while `unresolved` values were
    /// still waiting for an accepted result: it lost them.
    #[error("the through ended with {unresolved} values never accepted")]
    ThroughEnded {
        /// The number of values without an accepted result.
        unresolved: u64,
    },
}
