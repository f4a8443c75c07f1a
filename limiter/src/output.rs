//! [`Limited`]: the Limiter's output (the seeds' `Output`, Algorithm 8).

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pando_pull_stream::{Answer, Source, Termination};
use pin_project_lite::pin_project;

use crate::LimitHandle;
use crate::state::Shared;

pin_project! {
    /// The output of a limited module: the wrapped module's output, counted.
    ///
    /// Requests and answers pass through unchanged. Each value output lowers
    /// the number in process by one (and may release an ask waiting for the
    /// limit) and is counted for the flow rate.
    ///
    /// ```
    /// use pando_limiter::limit;
    /// use pando_pull_stream::{Answer, SourceExt, count, map, pull};
    ///
    /// # futures::executor::block_on(async {
    /// let mut limited = pull!(count::<()>(5), limit(map(|x: u64| x * 2), 2)?);
    /// assert_eq!(limited.ask().await, Answer::Value(2));
    /// assert_eq!(limited.handle().results(), 1);
    /// assert_eq!(limited.abort().await, Ok(()));
    /// # Ok::<(), pando_limiter::LimitError>(())
    /// # }).unwrap();
    /// ```
    #[must_use = "sources do nothing unless asked"]
    pub struct Limited<O> {
        #[pin]
        inner: O,
        shared: Arc<Shared>,
    }
}

impl<O> Limited<O> {
    pub(crate) fn new(inner: O, shared: Arc<Shared>) -> Self {
        Limited { inner, shared }
    }

    /// A handle on the limit and the flow-rate measurement of this output.
    ///
    /// ```
    /// use pando_limiter::limit;
    /// use pando_pull_stream::{count, map, pull};
    ///
    /// let limited = pull!(count::<()>(5), limit(map(|x: u64| x), 3).unwrap());
    /// assert_eq!(limited.handle().limit(), 3);
    /// ```
    pub fn handle(&self) -> LimitHandle {
        LimitHandle::new(self.shared.clone())
    }
}

impl<O: Source> Source for Limited<O> {
    type Item = O::Item;
    type Error = O::Error;

    /// `upon Output:ask` → `NLOutput:ask`; `upon NLOutput:value` → `k ← k − 1`
    /// then `Output:value`; `done` and `error` pass through.
    #[inline]
    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<O::Item, O::Error>> {
        let this = self.project();
        let answer = ready!(this.inner.poll_ask(cx));
        if answer.is_terminal() {
            this.shared.apply(|s| s.close());
        } else {
            this.shared.apply(|s| s.value_out());
        }
        Poll::Ready(answer)
    }

    /// `upon Output:abort/fail` → `NLOutput:abort/fail`.
    fn terminate(self: Pin<&mut Self>, request: Termination<O::Error>) {
        let this = self.project();
        this.shared.apply(|s| s.close());
        this.inner.terminate(request);
    }

    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), O::Error>> {
        self.project().inner.poll_terminated(cx)
    }
}

impl<O: fmt::Debug> fmt::Debug for Limited<O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limited")
            .field("inner", &self.inner)
            .field("state", &self.shared)
            .finish()
    }
}
