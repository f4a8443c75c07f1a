//! [`Rejecter`]: reports the failures of values a sub-stream holds, without ending it.

use std::fmt;

use crate::machine::SubId;
use crate::shared::Shared;
use crate::sync::Arc;

/// Reports that processing a value failed, without ending the sub-stream.
/// Made by [`SubSource::rejecter`](crate::SubSource::rejecter); cloneable and `Send`.
pub struct Rejecter<T, R, E> {
    shared: Arc<Shared<T, R, E>>,
    k: SubId,
}

impl<T, R, E> Rejecter<T, R, E> {
    pub(crate) fn new(shared: Arc<Shared<T, R, E>>, k: SubId) -> Self {
        Rejecter { shared, k }
    }
}

impl<T, R, E> Rejecter<T, R, E> {
    /// The sub-stream *answers* that processing value `id` failed (for
    /// example the worker's function returned an error), with the reason:
    /// the lender takes the value back, charges it a failure of its own, and
    /// lends it again (or poisons it past the retry cap, naming `reason`). A
    /// later result for `id` from this sub-stream breaks the contract.
    /// Returns `false`, and changes nothing, if the sub-stream does not hold
    /// `id`: a contract violation the caller should treat like an unexpected
    /// result. A rejection that arrives after the value was taken back
    /// without an answer (the sub-stream had ended a side, or the value was
    /// reclaimed) is accepted, changes nothing, and returns `true`.
    ///
    /// See [`SubSource::rejecter`](crate::SubSource::rejecter) and
    /// [`StreamLender::with_max_retries`](crate::StreamLender::with_max_retries) for examples.
    pub fn reject(&self, id: u64, reason: impl Into<String>) -> bool {
        let mut state = self.shared.lock();
        let held = state.core.on_sub_reject(self.k, id, reason.into()).is_ok();
        state.wake();
        held
    }

    /// Takes value `id` back from this sub-stream *without an answer* (for
    /// example it timed out), with the reason: it counts as a failure of the
    /// value's own and the value is lent again (or poisoned past the retry
    /// cap). A late result from this sub-stream is still accepted once if
    /// the value has no result yet, and dropped otherwise (never treated as
    /// unexpected). Returns `false`, and changes nothing, if the sub-stream
    /// never held `id` (or answered it already).
    ///
    /// ```
    /// use pando_lend_stream::{Lent, StreamLender};
    /// use pando_pull_stream::{Answer, SourceExt, count, pull, values};
    ///
    /// # futures::executor::block_on(async {
    /// let lender = StreamLender::<u64, u64, ()>::new();
    /// let mut output = pull!(count(1), lender.clone());
    /// let (mut slow, mut other) = (lender.lend_stream::<()>(), lender.lend_stream::<()>());
    /// let Answer::Value(lent) = slow.source.ask().await else { unreachable!() };
    /// assert!(slow.source.rejecter().reclaim(lent.id, "timed out after 30s"));
    /// // Lent again to the other sub-stream…
    /// assert_eq!(other.source.ask().await, Answer::Value(Lent::new(0, 1)));
    /// // …but the slow one answers first: its late result is accepted.
    /// assert_eq!(pull!(values([Lent::new(0, 10)]), slow.sink).await, Ok(()));
    /// assert_eq!(output.ask().await, Answer::Value(10));
    /// # });
    /// ```
    pub fn reclaim(&self, id: u64, reason: impl Into<String>) -> bool {
        let mut state = self.shared.lock();
        let held = state.core.on_sub_reclaim(self.k, id, reason.into()).is_ok();
        state.wake();
        held
    }

    /// The reason charged to the values this sub-stream holds if it ends
    /// (for example "worker laptop (10.0.0.2:5000) disconnected"), named by
    /// [`LendError::Poisoned`](crate::LendError::Poisoned) if one of them is
    /// poisoned; by default "the sub-stream holding it ended".
    ///
    /// ```
    /// use pando_lend_stream::{LendError, PoisonPolicy, StreamLender};
    /// use pando_pull_stream::{SourceExt, count, pull};
    ///
    /// # futures::executor::block_on(async {
    /// let lender = StreamLender::<u64, u64, ()>::new().with_max_retries(0, PoisonPolicy::Fail);
    /// let mut output = pull!(count(1), lender.clone());
    /// let mut sub = lender.lend_stream::<()>();
    /// let _ = sub.source.ask().await;
    /// sub.source.rejecter().set_end_reason("worker laptop (10.0.0.2:5000) disconnected");
    /// drop(sub);
    /// assert_eq!(
    ///     output.ask().await.into_option(),
    ///     Some(Err(LendError::Poisoned {
    ///         id: 0,
    ///         failures: 1,
    ///         reason: "worker laptop (10.0.0.2:5000) disconnected".into()
    ///     }))
    /// );
    /// # });
    /// ```
    pub fn set_end_reason(&self, reason: impl Into<String>) {
        self.shared.lock().core.set_end_reason(self.k, reason.into());
    }

    /// With replicas ([`StreamLender::with_replicas`](crate::StreamLender::with_replicas)),
    /// counts in `counter` this sub-stream's answers that lose a vote (a
    /// majority of other sub-streams answered differently); the counter
    /// outlives the sub-stream (for example a worker's statistics).
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use pando_lend_stream::StreamLender;
    /// let lender = StreamLender::<u64, u64, ()>::new().with_replicas(NonZeroU32::new(3).unwrap());
    /// let sub = lender.lend_stream::<()>();
    /// let counter = Arc::new(AtomicU64::new(0));
    /// sub.source.rejecter().count_disagreements(counter.clone());
    /// assert_eq!(counter.load(Ordering::Relaxed), 0);
    /// ```
    pub fn count_disagreements(&self, counter: std::sync::Arc<std::sync::atomic::AtomicU64>) {
        self.shared.lock().core.count_disagreements(self.k, counter);
    }
}

impl<T, R, E> Clone for Rejecter<T, R, E> {
    fn clone(&self) -> Self {
        Rejecter {
            shared: self.shared.clone(),
            k: self.k,
        }
    }
}

impl<T, R, E> fmt::Debug for Rejecter<T, R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejecter").field("sub_stream", &self.k).finish()
    }
}
