//! [`SubSink`]: the sink half of a sub-stream, which takes back the results.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pando_pull_stream::{Answer, Connect, Source, Termination};
use pin_project_lite::pin_project;

use crate::machine::SubId;
use crate::shared::Shared;
use crate::sync::Arc;
use crate::{Lent, SubStreamError};

/// The sink half of a sub-stream (`Sk I`): connect it to the module that
/// produces the results; the resulting future pulls them into the lender.
///
/// Each result must carry the id of a value lent to this sub-stream, once. A
/// result that breaks that contract ends the sub-stream with
/// [`SubStreamError::UnexpectedResult`] (the module is aborted and the
/// values the sub-stream holds are lent again); it never reaches the output.
pub struct SubSink<T, R, E, F> {
    shared: Option<Arc<Shared<T, R, E>>>,
    k: SubId,
    _types: PhantomData<fn() -> F>,
}

impl<T, R, E, F> SubSink<T, R, E, F> {
    pub(crate) fn new(shared: Arc<Shared<T, R, E>>, k: SubId) -> Self {
        SubSink {
            shared: Some(shared),
            k,
            _types: PhantomData,
        }
    }
}

impl<S, T, R, E, F> Connect<S> for SubSink<T, R, E, F>
where
    S: Source<Item = Lent<R>, Error = F>,
    T: Clone,
{
    type Output = SubSinkFuture<S, T, R, E>;

    fn connect(mut self, results: S) -> Self::Output {
        let shared = self.shared.take().expect("a sub-stream's sink is connected once");
        SubSinkFuture {
            results,
            shared,
            k: self.k,
            stopping: false,
            finished: false,
            error: None,
        }
    }
}

impl<T, R, E, F> Drop for SubSink<T, R, E, F> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.sink_ended(self.k);
        }
    }
}

pin_project! {
    /// The future made by connecting a [`SubSink`]: it pulls results into the
    /// lender until the module ends, the lender stops the sub-stream, or the
    /// module breaks the contract.
    ///
    /// It resolves to `Ok(())` when the module answered `done` or was aborted
    /// by the lender, and to an error naming the sub-stream otherwise. In all
    /// cases the values the sub-stream still held are lent again.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct SubSinkFuture<S: Source, T, R, E> {
        #[pin]
        results: S,
        shared: Arc<Shared<T, R, E>>,
        k: SubId,
        stopping: bool,
        finished: bool,
        error: Option<SubStreamError<S::Error>>,
    }

    impl<S: Source, T, R, E> PinnedDrop for SubSinkFuture<S, T, R, E> {
        fn drop(this: Pin<&mut Self>) {
            if !this.finished {
                this.shared.sink_ended(this.k);
            }
        }
    }
}

impl<S, T, R, E> Future for SubSinkFuture<S, T, R, E>
where
    S: Source<Item = Lent<R>>,
    T: Clone,
{
    type Output = Result<(), SubStreamError<S::Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if *this.finished {
            return Poll::Ready(Ok(()));
        }
        // Whether the sink must stop, decided (and, if not, its waker
        // registered) under the lock taken for the last result: one lock per
        // result instead of two.
        let mut decided: Option<bool> = None;
        let mut registered = false;
        loop {
            if !*this.stopping {
                let must_stop = match decided.take() {
                    Some(stop) => stop,
                    None => this
                        .shared
                        .lock()
                        .sink_must_stop_or_wait(*this.k, cx, &mut registered),
                };
                if must_stop {
                    *this.stopping = true;
                    this.results.as_mut().terminate(Termination::Abort);
                }
            }
            if *this.stopping {
                // The lender (or the contract) ends the module: its answer is not ours to report.
                let _ = ready!(this.results.as_mut().poll_terminated(cx));
                this.shared.sink_ended(*this.k);
                *this.finished = true;
                return Poll::Ready(this.error.take().map_or(Ok(()), Err));
            }
            match ready!(this.results.as_mut().poll_ask(cx)) {
                Answer::Value(Lent { id, value }) => {
                    let mut state = this.shared.lock();
                    match state.core.on_sub_result(*this.k, id, value) {
                        Ok(()) => {
                            state.wake();
                            decided = Some(state.sink_must_stop_or_wait(*this.k, cx, &mut registered));
                        }
                        Err(unexpected) => {
                            state.core.on_sub_sink_end(*this.k);
                            state.wake();
                            drop(state);
                            *this.error = Some(SubStreamError::UnexpectedResult {
                                sub: unexpected.sub,
                                id: unexpected.id,
                            });
                            *this.stopping = true;
                            this.results.as_mut().terminate(Termination::Abort);
                        }
                    }
                }
                Answer::Done => {
                    this.shared.sink_ended(*this.k);
                    *this.finished = true;
                    return Poll::Ready(Ok(()));
                }
                Answer::Error(error) => {
                    this.shared.sink_ended(*this.k);
                    *this.finished = true;
                    return Poll::Ready(Err(SubStreamError::Failed { sub: *this.k, error }));
                }
            }
        }
    }
}

impl<T, R, E, F> fmt::Debug for SubSink<T, R, E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubSink").field("sub_stream", &self.k).finish()
    }
}

impl<S: Source + fmt::Debug, T, R, E> fmt::Debug for SubSinkFuture<S, T, R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubSinkFuture")
            .field("sub_stream", &self.k)
            .field("results", &self.results)
            .field("stopping", &self.stopping)
            .finish()
    }
}
