//! [`LenderState`]: a snapshot of the lender for monitoring.

/// A snapshot of a lender's counters, for monitoring.
///
/// ```
/// use pando_lend_stream::StreamLender;
/// let lender = StreamLender::<u32, u32, ()>::new();
/// let s = lender.state();
/// assert_eq!((s.read, s.in_flight, s.output, s.sub_streams_open), (0, 0, 0, 0));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LenderState {
    /// Values read from the input.
    pub read: u64,
    /// Values lent to sub-streams (re-lendings included).
    pub lent: u64,
    /// Values currently held by a sub-stream, without a result yet.
    pub in_flight: u64,
    /// Values taken back from failed sub-streams and waiting to be lent again.
    pub waiting_to_be_relent: u64,
    /// Re-lendings of values taken back from failed sub-streams.
    pub relent: u64,
    /// Results output.
    pub output: u64,
    /// Late results (from a sub-stream the value had been taken back from)
    /// accepted because the value still had no result.
    pub late_results_accepted: u64,
    /// Late results dropped because the value already had its result.
    pub late_results_dropped: u64,
    /// Results that broke the one-result-per-value contract (their
    /// sub-stream was ended).
    pub unexpected_results: u64,
    /// Sub-streams with a side still open.
    pub sub_streams_open: u64,
    /// Sub-streams created so far.
    pub sub_streams_created: u64,
    /// Whether the input has ended (done, error, or closed by the lender).
    pub input_ended: bool,
    /// Values rejected by the sub-stream that held them (for example a
    /// worker's function error); each was lent again or poisoned.
    pub rejected: u64,
    /// Values taken back from the sub-stream that held them without an
    /// answer (for example after a timeout, see
    /// [`Rejecter::reclaim`](crate::Rejecter::reclaim)); each was lent again or poisoned.
    pub reclaimed: u64,
    /// Poisoned values skipped from the output (policy `Skip`).
    pub skipped: u64,
    /// The id of the first value skipped, if any (to name it).
    pub first_skipped: Option<u64>,
    /// How many sub-streams compute each value (1: no replicas; see
    /// [`StreamLender::with_replicas`](crate::StreamLender::with_replicas)).
    pub replicas: u32,
    /// Copies of values (replicas) that wait because no live sub-stream may
    /// take them: each holds or has computed the value already. With fewer
    /// sub-streams than replicas, this is how the wait shows.
    pub replicas_waiting: u64,
    /// Answers that lost a vote: results different from the majority's,
    /// counted when the majority is reached (answers that come after it are
    /// dropped uncompared).
    pub disagreements: u64,
}
