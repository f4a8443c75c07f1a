//! Errors of the lender's output and of its sub-streams.

use thiserror::Error;

/// An error on the lender's output.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum LendError<E> {
    /// The input answered `error`; every value read before it has its result
    /// on the output before this error.
    #[error("the lender's input failed: {0}")]
    Input(E),
    /// A value failed more than the retry cap allows (see
    /// [`StreamLender::with_max_retries`](crate::StreamLender::with_max_retries));
    /// every result before it was output first.
    #[error("value #{id} failed {failures} times, more than the retry cap allows (last failure: {reason})")]
    Poisoned {
        /// The value's position in the input, from 0.
        id: u64,
        /// How many times it failed.
        failures: u32,
        /// The reason of its last failure: the one given to
        /// [`Rejecter::reject`](crate::Rejecter::reject) or
        /// [`Rejecter::reclaim`](crate::Rejecter::reclaim), or for a
        /// sub-stream that ended holding it, the one set with
        /// [`Rejecter::set_end_reason`](crate::Rejecter::set_end_reason)
        /// (by default "the sub-stream holding it ended").
        reason: String,
    },
    /// The input panicked while it was polled: the panic was caught, and
    /// every value read before it has its result on the output before this error.
    #[error("the lender's input panicked: {message}")]
    InputPanicked {
        /// The panic's message (its `&str` or `String` payload), or "unknown panic".
        message: String,
    },
    /// The lender was closed with a deadline, and sub-streams still held
    /// values when it passed: they were cut off and these values have no result.
    #[error("the lender was closed before {unfinished} value(s) got a result (first: #{first})")]
    Closed {
        /// How many values have no result.
        unfinished: u64,
        /// The position of the first of them.
        first: u64,
    },
}

/// Why a sub-stream was ended by the lender or failed. Its values are lent
/// again to the other sub-streams in every case.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum SubStreamError<F> {
    /// The sub-stream returned a result for a value it does not hold (never
    /// lent to it, or already answered by it): it broke the one-result-per-value
    /// contract.
    #[error("sub-stream {sub} returned a result for value #{id}, which it does not hold")]
    UnexpectedResult {
        /// The sub-stream's number.
        sub: u64,
        /// The id of the result.
        id: u64,
    },
    /// The sub-stream's results ended with an error.
    #[error("sub-stream {sub} failed: {error}")]
    Failed {
        /// The sub-stream's number.
        sub: u64,
        /// The error.
        error: F,
    },
}
