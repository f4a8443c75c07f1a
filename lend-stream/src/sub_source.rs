//! [`SubSource`]: the source half of a sub-stream, which lends values.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pando_pull_stream::{Answer, Source, Termination};

use crate::machine::SubId;
use crate::shared::{Shared, poll_sub_ask};
use crate::sync::Arc;
use crate::{ConcurrentAsk, Lent, OwnedConcurrentAsk, Rejecter};

/// The source half of a sub-stream (`Sk O`): it lends values, each with its
/// id, and answers `done` when nothing more will be lent to it.
///
/// It is a [`Source`] (one ask at a time), and also accepts concurrent asks
/// through [`SubSource::ask`]. Terminating it (abort or fail) or dropping it
/// gives the values it holds back to the lender, which lends them again;
/// results for them are still accepted while they have none.
pub struct SubSource<T, R, E, F> {
    shared: Arc<Shared<T, R, E>>,
    k: SubId,
    ended: bool,
    termination: Option<Termination<F>>,
}

impl<T, R, E, F> SubSource<T, R, E, F> {
    pub(crate) fn new(shared: Arc<Shared<T, R, E>>, k: SubId) -> Self {
        SubSource {
            shared,
            k,
            ended: false,
            termination: None,
        }
    }

    /// A handle that reports failures of values this sub-stream holds (for
    /// example a worker's function error): see [`Rejecter::reject`].
    ///
    /// ```
    /// use pando_lend_stream::StreamLender;
    /// let lender = StreamLender::<u8, u8, ()>::new();
    /// let sub = lender.lend_stream::<()>();
    /// assert!(!sub.source.rejecter().reject(0, "bad")); // value #0 is not held by this sub-stream
    /// ```
    pub fn rejecter(&self) -> Rejecter<T, R, E> {
        Rejecter::new(self.shared.clone(), self.k)
    }

    /// The sub-stream's number (0 for the first sub-stream of a lender).
    ///
    /// ```
    /// use pando_lend_stream::StreamLender;
    /// let lender = StreamLender::<u8, u8, ()>::new();
    /// assert_eq!(lender.lend_stream::<()>().source.sub_stream(), 0);
    /// assert_eq!(lender.lend_stream::<()>().source.sub_stream(), 1);
    /// ```
    pub fn sub_stream(&self) -> u64 {
        self.k
    }

    pub(crate) fn is_ended(&self) -> bool {
        self.ended
    }

    pub(crate) fn shared(&self) -> &Shared<T, R, E> {
        &self.shared
    }
}

impl<T, R, E, F> SubSource<T, R, E, F>
where
    T: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    /// Makes an ask that may run concurrently with others on the same
    /// sub-stream (from several tasks, for example); asks are answered as
    /// values become available.
    ///
    /// The lender reads its input one value at a time, so that values get
    /// their ids in input order. That read belongs to the lender, not to the
    /// ask that started it: every ask that needs a new value is woken when
    /// the input is ready, and whichever is polled first gets the value. An
    /// ask that is never polled again (or is dropped) keeps no other ask,
    /// and no other sub-stream, waiting.
    ///
    /// ```
    /// use pando_lend_stream::StreamLender;
    /// use pando_pull_stream::{count, pull};
    ///
    /// # futures::executor::block_on(async {
    /// let lender = StreamLender::<u64, u64, ()>::new();
    /// let _output = pull!(count(5), lender.clone());
    /// let sub = lender.lend_stream::<()>();
    /// let (a, b) = futures::join!(sub.source.ask(), sub.source.ask());
    /// let mut ids = vec![a.into_option().unwrap().unwrap().id, b.into_option().unwrap().unwrap().id];
    /// ids.sort();
    /// assert_eq!(ids, [0, 1]);
    /// # });
    /// ```
    pub fn ask(&self) -> ConcurrentAsk<'_, T, R, E, F> {
        ConcurrentAsk::new(self)
    }

    /// Makes a concurrent ask, like [`ask`](SubSource::ask), with a future
    /// that owns a handle on the lender (`'static`), to store in a struct or
    /// move to another task. Once the sub-stream's source has ended
    /// (terminated, dropped, or its sink ended), it answers `done`.
    ///
    /// ```
    /// use pando_lend_stream::StreamLender;
    /// use pando_pull_stream::{Answer, count, pull};
    ///
    /// # futures::executor::block_on(async {
    /// let lender = StreamLender::<u64, u64, ()>::new();
    /// let _output = pull!(count(5), lender.clone());
    /// let sub = lender.lend_stream::<()>();
    /// let (a, b) = (sub.source.ask_owned(), sub.source.ask_owned());
    /// assert_eq!(a.await.into_option().unwrap().unwrap().id, 0);
    /// drop(sub); // the sub-stream fails: value #0 goes back to the lender
    /// assert_eq!(b.await, Answer::Done);
    /// # });
    /// ```
    pub fn ask_owned(&self) -> OwnedConcurrentAsk<T, R, E, F> {
        OwnedConcurrentAsk::new(self.shared.clone(), self.k)
    }

    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            let mut state = self.shared.lock();
            state.core.on_sub_source_end(self.k);
            state.wake();
        }
    }
}

impl<T, R, E, F> Unpin for SubSource<T, R, E, F> {}

impl<T, R, E, F> Source for SubSource<T, R, E, F>
where
    T: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    type Item = Lent<T>;
    type Error = F;

    fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<Lent<T>, F>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(Answer::Done);
        }
        let answer = ready!(poll_sub_ask(&this.shared, this.k, cx));
        if answer.is_terminal() {
            this.end();
        }
        Poll::Ready(answer)
    }

    fn terminate(mut self: Pin<&mut Self>, request: Termination<F>) {
        self.end();
        self.termination = Some(request);
    }

    fn poll_terminated(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), F>> {
        Poll::Ready(self.termination.take().map_or(Ok(()), Termination::confirm))
    }
}

impl<T, R, E, F> Drop for SubSource<T, R, E, F> {
    fn drop(&mut self) {
        if !self.ended {
            let mut state = self.shared.lock();
            state.core.on_sub_source_end(self.k);
            state.wake();
        }
    }
}

impl<T, R, E, F> fmt::Debug for SubSource<T, R, E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubSource")
            .field("sub_stream", &self.k)
            .field("ended", &self.ended)
            .finish()
    }
}
