//! The two halves of a sub-stream: [`SubSource`] lends values,
//! [`SubSink`] takes back their results.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pando_pull_stream::{Answer, AskNow, BoxSource, Connect, OwnedAsk, Source, Termination};
use pin_project_lite::pin_project;

use crate::lender::{Shared, State};
use crate::machine::{InputEnd, SubAsk, SubId};
use crate::sync::Arc;
use crate::{Lent, SubStreamError};

/// Where one ask of a sub-stream stands.
enum AskState<T, R, E> {
    /// Not started, or to be decided again.
    Idle,
    /// This ask is the lender's reader: it waits for the input's answer
    /// (`Input:ask⟨j⟩` was made).
    Reading(Reader<T, R, E>),
}

/// The lender's one read of its input in progress (see `State::reading`).
/// Dropped before its answer (the ask was cancelled), it first cancels its
/// Serializer ticket, so that the answer goes to the next reader, then
/// releases the role and wakes the asks waiting for it.
struct Reader<T, R, E> {
    ask: Option<OwnedAsk<BoxSource<'static, T, E>>>,
    shared: Arc<Shared<T, R, E>>,
    /// The answer was delivered and the role released with it.
    released: bool,
}

impl<T, R, E> Drop for Reader<T, R, E> {
    fn drop(&mut self) {
        drop(self.ask.take());
        if !self.released {
            self.shared.lock().end_read();
        }
    }
}

/// Hands the input's answer to the core: a value is lent to `k` (the answer
/// to its ask); the end of the input is recorded (the ask is decided again).
/// The read ends with it, in the same critical section, so that the next
/// value cannot overtake this one.
fn deliver<T, R, E, F>(
    state: &mut State<T, R, E>,
    k: SubId,
    answer: Answer<T, E>,
) -> Option<Answer<Lent<T>, F>>
where
    T: Clone,
{
    let lent = match answer {
        Answer::Value(v) => match state.core.on_input_value(k, v) {
            SubAsk::Lend(l) => Some(Answer::Value(l)),
            // `k` may not take a value now: the value waits for the next ask.
            SubAsk::Wait => None,
            _ => Some(Answer::Done),
        },
        Answer::Done => {
            state.core.on_input_end(InputEnd::Done);
            None
        }
        Answer::Error(e) => {
            if state.core.input_open() && state.input_error.is_none() {
                state.input_error = Some(e);
            }
            state.core.on_input_end(InputEnd::Error);
            None
        }
    };
    state.end_read();
    state.wake();
    lent
}

/// Polls one ask of sub-stream `k` (Algorithm 11, lines 34-50). The input is
/// polled without holding the lender's lock, so an input that reads from the
/// lender's own output (a feedback loop) cannot deadlock. One ask at a time
/// reads the input; the others wait for its answer, then decide again.
fn poll_sub_ask<T, R, E, F>(
    shared: &Arc<Shared<T, R, E>>,
    k: SubId,
    ask: &mut AskState<T, R, E>,
    cx: &mut Context<'_>,
) -> Poll<Answer<Lent<T>, F>>
where
    T: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    loop {
        if let AskState::Reading(reader) = ask {
            let reading = reader.ask.as_mut().expect("a reader has its ask");
            let answer = ready!(Pin::new(reading).poll(cx));
            let lent = {
                let mut state = shared.lock();
                reader.released = true;
                deliver(&mut state, k, answer)
            };
            *ask = AskState::Idle;
            if let Some(lent) = lent {
                return Poll::Ready(lent);
            }
        }
        let mut state = shared.lock();
        match state.core.sub_ask(k) {
            SubAsk::Lend(l) => {
                state.wake();
                return Poll::Ready(Answer::Value(l));
            }
            SubAsk::Done => return Poll::Ready(Answer::Done),
            SubAsk::Wait => {
                state.wait(cx);
                return Poll::Pending;
            }
            SubAsk::ReadInput => {
                let input = match state.input.clone() {
                    Some(input) if !state.reading => input,
                    // The lender's input is not connected yet, or another
                    // ask is reading it: wait for its answer.
                    _ => {
                        state.wait(cx);
                        return Poll::Pending;
                    }
                };
                state.reading = true;
                drop(state);
                // Ask the input without holding the lender's lock; in the
                // usual case the answer comes at once, with no allocation.
                match input.ask_now(cx) {
                    AskNow::Pending(reading) => {
                        *ask = AskState::Reading(Reader {
                            ask: Some(reading),
                            shared: shared.clone(),
                            released: false,
                        })
                    }
                    AskNow::Answered(answer) => {
                        let lent = deliver(&mut shared.lock(), k, answer);
                        if let Some(lent) = lent {
                            return Poll::Ready(lent);
                        }
                    }
                }
            }
        }
    }
}

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
    ask: AskState<T, R, E>,
    ended: bool,
    termination: Option<Termination<F>>,
}

impl<T, R, E, F> SubSource<T, R, E, F> {
    pub(crate) fn new(shared: Arc<Shared<T, R, E>>, k: SubId) -> Self {
        SubSource {
            shared,
            k,
            ask: AskState::Idle,
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
        Rejecter {
            shared: self.shared.clone(),
            k: self.k,
        }
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
    /// The lender reads its input for one ask at a time, so that values get
    /// their ids in input order; the other asks that need a new value wait
    /// for that read. A pending ask should therefore be polled when woken, or
    /// dropped (which hands its read on to the next ask).
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
        ConcurrentAsk {
            source: self,
            ask: AskState::Idle,
        }
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
        OwnedConcurrentAsk {
            shared: self.shared.clone(),
            k: self.k,
            ask: AskState::Idle,
            _error: PhantomData,
        }
    }

    fn end(&mut self) {
        if !self.ended {
            self.ended = true;
            self.ask = AskState::Idle;
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
        let answer = ready!(poll_sub_ask(&this.shared, this.k, &mut this.ask, cx));
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
            self.ask = AskState::Idle;
            let mut state = self.shared.lock();
            state.core.on_sub_source_end(self.k);
            state.wake();
        }
    }
}

/// Reports that processing a value failed, without ending the sub-stream.
/// Made by [`SubSource::rejecter`]; cloneable and `Send`.
pub struct Rejecter<T, R, E> {
    shared: Arc<Shared<T, R, E>>,
    k: SubId,
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
    /// See [`SubSource::rejecter`] and
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

/// The future returned by [`SubSource::ask`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct ConcurrentAsk<'a, T, R, E, F> {
    source: &'a SubSource<T, R, E, F>,
    ask: AskState<T, R, E>,
}

impl<T, R, E, F> Unpin for ConcurrentAsk<'_, T, R, E, F> {}

impl<T, R, E, F> Future for ConcurrentAsk<'_, T, R, E, F>
where
    T: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    type Output = Answer<Lent<T>, F>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if this.source.ended {
            return Poll::Ready(Answer::Done);
        }
        poll_sub_ask(&this.source.shared, this.source.k, &mut this.ask, cx)
    }
}

/// The future returned by [`SubSource::ask_owned`]: a concurrent ask that
/// owns a handle on the lender.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct OwnedConcurrentAsk<T, R, E, F> {
    shared: Arc<Shared<T, R, E>>,
    k: SubId,
    ask: AskState<T, R, E>,
    _error: PhantomData<fn() -> F>,
}

impl<T, R, E, F> Unpin for OwnedConcurrentAsk<T, R, E, F> {}

impl<T, R, E, F> Future for OwnedConcurrentAsk<T, R, E, F>
where
    T: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    type Output = Answer<Lent<T>, F>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // An ended source is not alive in the core: `sub_ask` answers `done`.
        let this = &mut *self;
        poll_sub_ask(&this.shared, this.k, &mut this.ask, cx)
    }
}

impl<T, R, E, F> fmt::Debug for OwnedConcurrentAsk<T, R, E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedConcurrentAsk")
            .field("sub_stream", &self.k)
            .finish()
    }
}

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

impl<T, R, E> Shared<T, R, E> {
    pub(crate) fn sink_ended(&self, k: SubId) {
        let mut state = self.lock();
        state.core.on_sub_sink_end(k);
        state.forget_sink(k);
        state.wake();
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
        loop {
            if !*this.stopping {
                let must_stop = {
                    let mut state = this.shared.lock();
                    let stop = state.core.sink_must_stop(*this.k);
                    if !stop {
                        state.wait_sink(*this.k, cx);
                    }
                    stop
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
                        Ok(()) => state.wake(),
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

impl<T, R, E, F> fmt::Debug for SubSource<T, R, E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubSource")
            .field("sub_stream", &self.k)
            .field("ended", &self.ended)
            .finish()
    }
}

impl<T, R, E, F> fmt::Debug for ConcurrentAsk<'_, T, R, E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrentAsk")
            .field("sub_stream", &self.source.k)
            .finish()
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
