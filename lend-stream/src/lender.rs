//! [`StreamLender`]: the async adapter around the [`machine`](crate::machine)
//! core, and its output.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use pando_pull_stream::{Answer, Connect, Duplex, Source, SourceExt, Termination};

use crate::input::InputCell;
use crate::machine::{Core, InputEnd, OutputStep};
use crate::shared::{Input, Shared};
use crate::sync::Arc;
use crate::{LendError, LenderState, SubSink, SubSource};

/// StreamLender (seed 000, Abstraction 2): lends the values of one stream to
/// any number of sub-streams, and outputs their results in input order.
///
/// A `StreamLender` is a through: connect it to its input (`pull!(input,
/// lender.clone(), …)`), and its output answers with the results. At any
/// time, [`lend_stream`](StreamLender::lend_stream) creates a sub-stream: a
/// [`Duplex`] whose source lends values ([`Lent`](crate::Lent) with their
/// id) and whose sink takes back one result per value, with the same id.
///
/// See the [crate documentation](crate) for the properties and an example.
pub struct StreamLender<T, R, E> {
    shared: Arc<Shared<T, R, E>>,
}

/// A sub-stream: a source of lent values, and a sink for their results.
pub type SubStream<T, R, E, F> = Duplex<SubSource<T, R, E, F>, SubSink<T, R, E, F>>;

impl<T, R, E> StreamLender<T, R, E>
where
    T: Clone + Send + 'static,
    R: Send,
    E: Clone + Send + 'static,
{
    /// A lender whose output is in input order.
    ///
    /// ```
    /// use pando_lend_stream::StreamLender;
    /// let lender = StreamLender::<u64, u64, ()>::new();
    /// assert_eq!(lender.state().sub_streams_created, 0);
    /// ```
    pub fn new() -> Self {
        Self::with_order(true)
    }

    /// A lender that outputs each result as soon as it arrives (opt-in; the
    /// seeds' future work), with the same fault tolerance and exactly-once
    /// results.
    ///
    /// ```
    /// use pando_lend_stream::StreamLender;
    /// let lender = StreamLender::<u64, u64, ()>::unordered();
    /// # let _ = lender;
    /// ```
    pub fn unordered() -> Self {
        Self::with_order(false)
    }

    /// Bounds the number of values read from the input and not yet output
    /// (at least 1): when the output is consumed slowly, sub-streams wait
    /// instead of reading ahead, so memory stays bounded whatever the
    /// consumer's speed. By default there is no bound, as in the seeds.
    ///
    /// ```
    /// use std::num::NonZeroU64;
    /// use pando_lend_stream::StreamLender;
    /// let lender = StreamLender::<u64, u64, ()>::new().with_read_ahead(NonZeroU64::new(1024).unwrap());
    /// # let _ = lender;
    /// ```
    pub fn with_read_ahead(self, bound: std::num::NonZeroU64) -> Self {
        self.shared.lock().core.set_read_ahead(Some(bound.get()));
        self
    }

    /// Caps how many times each value may fail (its sub-stream ended, was
    /// dropped, or rejected it with [`SubSource::rejecter`](crate::SubSource::rejecter)):
    /// a value that fails more than `max_retries` times is not lent again.
    /// With [`PoisonPolicy::Fail`](crate::PoisonPolicy::Fail) the output then ends with
    /// [`LendError::Poisoned`] naming it (after the results before it); with
    /// [`PoisonPolicy::Skip`](crate::PoisonPolicy::Skip) it is left out of the output and counted in
    /// [`LenderState::skipped`]. Without a cap, values are retried forever.
    ///
    /// ```
    /// use pando_lend_stream::{LendError, PoisonPolicy, StreamLender};
    /// use pando_pull_stream::{SourceExt, count, pull};
    ///
    /// # futures::executor::block_on(async {
    /// let lender = StreamLender::<u64, u64, ()>::new().with_max_retries(1, PoisonPolicy::Fail);
    /// let mut output = pull!(count(3), lender.clone());
    /// let mut sub = lender.lend_stream::<()>();
    /// let reject = sub.source.rejecter();
    /// for _ in 0..2 {
    ///     let lent = sub.source.ask().await.into_option().unwrap().unwrap();
    ///     assert_eq!(lent.id, 0); // the same value, lent again after its first failure
    ///     assert!(reject.reject(lent.id, "bad value"));
    /// }
    /// assert_eq!(
    ///     output.ask().await.into_option(),
    ///     Some(Err(LendError::Poisoned { id: 0, failures: 2, reason: "bad value".into() }))
    /// );
    /// # });
    /// ```
    pub fn with_max_retries(self, max_retries: u32, policy: crate::PoisonPolicy) -> Self {
        self.shared
            .lock()
            .core
            .set_max_retries(Some((max_retries, policy)));
        self
    }

    /// Majority voting (the seeds' future work, seed 000 lines 1570-1580):
    /// each value is lent to `k` different sub-streams, and a result is
    /// accepted once `⌊k/2⌋+1` of their answers are equal (`PartialEq`;
    /// [`with_replicas_by`](Self::with_replicas_by) takes another
    /// comparison). A value without a majority once its copies are answered
    /// is charged a failure and lent to sub-streams that have not computed
    /// it yet, up to the retry cap. No sub-stream ever gets a value twice:
    /// with fewer sub-streams than `k`, no new value is read, and copies wait
    /// ([`LenderState::replicas_waiting`]). Answers that lose a vote are
    /// counted ([`LenderState::disagreements`],
    /// [`Rejecter::count_disagreements`](crate::Rejecter::count_disagreements)).
    /// `k = 1` (the default) is the lender of the seeds. The *conservative*
    /// property becomes: a value is held by at most `k` live sub-streams at
    /// a time, never twice by one.
    ///
    /// Replicas defend against independent faulty or lying sub-streams, not
    /// against one party holding several of them (see `docs/SECURITY.md`).
    ///
    /// # Panics
    ///
    /// If the lender has read a value already: replicas are chosen before.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use pando_lend_stream::{Lent, StreamLender};
    /// use pando_pull_stream::{async_map, collect, count, pull};
    ///
    /// # futures::executor::block_on(async {
    /// let lender = StreamLender::new().with_replicas(NonZeroU32::new(3).unwrap());
    /// let output = pull!(count::<()>(4), lender.clone(), collect::<Vec<_>>());
    /// let worker = |lie: bool| {
    ///     let sub = lender.lend_stream::<()>();
    ///     pull!(
    ///         sub.source,
    ///         async_map(move |l: Lent<u64>| async move { Ok(l.map(|x| if lie { 0 } else { x * x })) }),
    ///         sub.sink,
    ///     )
    /// };
    /// let (results, a, b, c) = futures::join!(output, worker(false), worker(true), worker(false));
    /// assert_eq!(results, Ok(vec![1, 4, 9, 16])); // the liar is outvoted
    /// assert!(a.is_ok() && b.is_ok() && c.is_ok());
    /// assert_eq!(lender.state().disagreements, 4);
    /// # });
    /// ```
    pub fn with_replicas(self, k: std::num::NonZeroU32) -> Self
    where
        R: PartialEq,
    {
        self.with_replicas_by(k, R::eq)
    }

    /// [`with_replicas`](Self::with_replicas) with answers compared by
    /// `same` (for example results equal up to a rounding error, or by a key).
    ///
    /// # Panics
    ///
    /// If the lender has read a value already: replicas are chosen before.
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use pando_lend_stream::StreamLender;
    /// let lender = StreamLender::<u64, f64, ()>::new()
    ///     .with_replicas_by(NonZeroU32::new(3).unwrap(), |a, b| (a - b).abs() < 1e-9);
    /// assert_eq!(lender.state().replicas, 3);
    /// ```
    pub fn with_replicas_by(self, k: std::num::NonZeroU32, same: fn(&R, &R) -> bool) -> Self {
        self.shared.lock().core.set_replicas(k.get(), same);
        self
    }

    fn with_order(ordered: bool) -> Self {
        StreamLender {
            shared: Arc::new(Shared::new(Core::new(ordered))),
        }
    }

    /// `lendStream`: a new sub-stream, which may be created at any time
    /// (before the input is connected, while values flow, or after the input
    /// ended: then it helps with the values of sub-streams that fail).
    ///
    /// The sub-stream's source lends values; its sink must get back exactly
    /// one result per value, with the value's id. `F` is the error type of
    /// the modules between them. Both halves are `Send`. Dropping either half
    /// before it ends counts as the sub-stream's failure: the values it holds
    /// are lent again.
    ///
    /// ```
    /// use pando_lend_stream::{Lent, StreamLender};
    /// use pando_pull_stream::{collect, count, map, pull};
    ///
    /// # futures::executor::block_on(async {
    /// let lender = StreamLender::new();
    /// let output = pull!(count::<()>(3), lender.clone(), collect::<Vec<_>>());
    /// let sub = lender.lend_stream::<()>();
    /// let worker = pull!(sub.source, map(|l: Lent<u64>| l.map(|x| x * 10)), sub.sink);
    /// let (results, worked) = futures::join!(output, worker);
    /// assert_eq!(results, Ok(vec![10, 20, 30]));
    /// assert_eq!(worked, Ok(()));
    /// # });
    /// ```
    pub fn lend_stream<F>(&self) -> SubStream<T, R, E, F> {
        let k = self.shared.lock().core.lend_stream();
        Duplex::new(
            SubSource::new(self.shared.clone(), k),
            SubSink::new(self.shared.clone(), k),
        )
    }

    /// A snapshot of the lender's counters.
    ///
    /// See [`LenderState`] for an example.
    pub fn state(&self) -> LenderState {
        self.shared.lock().core.state()
    }

    /// Closes the lender gracefully: its input is aborted (no more values are
    /// read), the values already read are still processed, and the output
    /// ends with `done` after their results. Resolves to the input's answer
    /// to the abort.
    ///
    /// A sub-stream that hangs keeps the output waiting; see
    /// [`cut_off`](StreamLender::cut_off) and, with the `tokio` feature,
    /// `close_within`.
    ///
    /// ```
    /// use pando_lend_stream::StreamLender;
    /// use pando_pull_stream::{Answer, collect, count, pull, values};
    ///
    /// # futures::executor::block_on(async {
    /// let lender = StreamLender::new();
    /// let output = pull!(count::<()>(u64::MAX), lender.clone(), collect::<Vec<_>>());
    /// let mut sub = lender.lend_stream::<()>();
    /// let Answer::Value(lent) = sub.source.ask().await else { unreachable!() };
    /// lender.close().await.unwrap(); // the infinite input is aborted
    /// // The value already lent still gets its result…
    /// assert_eq!(pull!(values([lent.map(|x| x * 2)]), sub.sink).await, Ok(()));
    /// // …and there is nothing more to lend.
    /// assert_eq!(sub.source.ask().await, Answer::Done);
    /// assert_eq!(output.await, Ok(vec![2]));
    /// # });
    /// ```
    pub fn close(&self) -> CloseFuture<T, E> {
        let input = {
            let mut state = self.shared.lock();
            // An input that panicked is not touched again.
            let input = self.shared.input_handle(&state);
            state.core.on_input_end(InputEnd::Closed);
            state.wake();
            // The read in progress, if parked, is given up.
            state.drop_stale_read();
            input
        };
        CloseFuture {
            input,
            started: false,
        }
    }

    /// Cuts every sub-stream off: their sources answer `done`, their sinks
    /// abort the modules they read. Values without a result then end the
    /// output with [`LendError::Closed`], after the results before them.
    ///
    /// ```
    /// use pando_lend_stream::{LendError, StreamLender};
    /// use pando_pull_stream::{SourceExt, count, pull};
    ///
    /// # futures::executor::block_on(async {
    /// let lender = StreamLender::<u64, u64, ()>::new();
    /// let mut output = pull!(count(10), lender.clone());
    /// let mut sub = lender.lend_stream::<()>();
    /// assert_eq!(sub.source.ask().await.into_option().unwrap().unwrap().id, 0);
    /// lender.cut_off(); // the sub-stream hangs: give up on it
    /// assert_eq!(output.ask().await.into_option(), Some(Err(LendError::Closed { unfinished: 1, first: 0 })));
    /// # });
    /// ```
    pub fn cut_off(&self) {
        let mut state = self.shared.lock();
        state.core.cut_off();
        state.wake();
    }

    /// Resolves when every value read has its result (or the lender was
    /// terminated or cut off) and the input has ended.
    ///
    /// ```
    /// use pando_lend_stream::StreamLender;
    /// use pando_pull_stream::{count, pull};
    /// # futures::executor::block_on(async {
    /// let lender = StreamLender::<u64, u64, ()>::new();
    /// let _output = pull!(count(0), lender.clone());
    /// lender.close().await.unwrap();
    /// lender.settled().await;
    /// # });
    /// ```
    pub fn settled(&self) -> Settled<T, R, E> {
        Settled {
            shared: self.shared.clone(),
        }
    }

    /// Closes the lender (see [`close`](StreamLender::close)) and, if values
    /// still have no result after `deadline`, cuts the sub-streams off (see
    /// [`cut_off`](StreamLender::cut_off)). Uses tokio's clock.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pando_lend_stream::{LendError, StreamLender};
    /// use pando_pull_stream::{SourceExt, count, pull};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let lender = StreamLender::<u64, u64, ()>::new();
    /// let mut output = pull!(count(10), lender.clone());
    /// let mut hung = lender.lend_stream::<()>();
    /// let _ = hung.source.ask().await; // holds value #0 and never answers
    /// lender.close_within(Duration::from_secs(5)).await.unwrap();
    /// assert_eq!(output.ask().await.into_option(), Some(Err(LendError::Closed { unfinished: 1, first: 0 })));
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn close_within(&self, deadline: std::time::Duration) -> Result<(), E> {
        let closed = self.close().await;
        if tokio::time::timeout(deadline, self.settled()).await.is_err() {
            self.cut_off();
        }
        closed
    }
}

impl<T, R, E> Default for StreamLender<T, R, E>
where
    T: Clone + Send + 'static,
    R: Send,
    E: Clone + Send + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<T, R, E> Clone for StreamLender<T, R, E> {
    /// Another handle on the same lender.
    fn clone(&self) -> Self {
        StreamLender {
            shared: self.shared.clone(),
        }
    }
}

impl<S, T, R, E> Connect<S> for StreamLender<T, R, E>
where
    S: Source<Item = T, Error = E> + Send + 'static,
    T: Clone + Send + 'static,
    R: Send,
    E: Clone + Send + 'static,
{
    type Output = LenderOutput<T, R, E>;

    /// Connects the lender's input. The sub-streams' concurrent asks make one
    /// request at a time of it (values get their ids in input order), and it
    /// is never polled under the lender's lock.
    ///
    /// # Panics
    ///
    /// If the lender's input is already connected: a lender has one input.
    fn connect(self, input: S) -> LenderOutput<T, R, E> {
        self.shared.connect(Arc::new(InputCell::new(input.boxed())));
        LenderOutput {
            shared: self.shared,
            termination: None,
            input: None,
            aborting: None,
        }
    }
}

/// The output of a [`StreamLender`]: a source of results, in input order (or
/// in arrival order for [`StreamLender::unordered`]).
///
/// * An input `error` is answered after the results of every value read
///   before it ([`LendError::Input`]), and so is `done`.
/// * Terminating the output (abort or fail) stops the lender: its sub-streams
///   get `done`, their sinks abort the modules they read, and the input is
///   terminated; the answer comes once the input has confirmed.
/// * [`LendError::Poisoned`] ends the output (policy
///   [`Fail`](crate::PoisonPolicy::Fail)): the lender aborts its input
///   itself, and answers the error once the input has confirmed (the
///   input's answer to that abort is not reported); the lender then stops
///   as if the output were terminated (its sub-streams get `done`, their
///   sinks abort the modules they read, the values they hold are dropped).
///   The consumer has nothing to terminate.
#[must_use = "a lender's output does nothing unless asked (connect it to a sink)"]
pub struct LenderOutput<T, R, E> {
    shared: Arc<Shared<T, R, E>>,
    termination: Option<Termination<LendError<E>>>,
    input: Option<Input<T, E>>,
    /// The input, aborted by the lender before it answers a poisoned value's
    /// error (which ends the output), until it confirms.
    aborting: Option<Input<T, E>>,
}

impl<T, R, E> Unpin for LenderOutput<T, R, E> {}

impl<T, R, E> Source for LenderOutput<T, R, E>
where
    T: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    type Item = R;
    type Error = LendError<E>;

    fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<R, LendError<E>>> {
        if let Some(input) = self.aborting.as_mut() {
            // The error that ends the output waits for the input's confirmation.
            let _ = ready!(input.poll_terminated(cx));
            self.aborting = None;
        }
        let mut state = self.shared.lock();
        let step = state.core.poll_output();
        state.wake();
        Poll::Ready(match step {
            OutputStep::AbortInput => {
                let input = self.shared.input_handle(&state);
                state.drop_stale_read();
                drop(state);
                if let Some(input) = input {
                    input.terminate(Termination::Abort);
                    self.aborting = Some(input);
                }
                return self.poll_ask(cx);
            }
            OutputStep::Value(r) => Answer::Value(r),
            OutputStep::Done => Answer::Done,
            OutputStep::InputError => match state.input_error.clone() {
                Some(e) => Answer::Error(LendError::Input(e)),
                None => Answer::Done,
            },
            OutputStep::InputPanicked => Answer::Error(LendError::InputPanicked {
                message: state.input_panic.clone().unwrap_or_default(),
            }),
            OutputStep::Poisoned { id, failures, reason } => {
                Answer::Error(LendError::Poisoned { id, failures, reason })
            }
            OutputStep::Closed { unfinished, first } => {
                Answer::Error(LendError::Closed { unfinished, first })
            }
            OutputStep::Pending => {
                state.wait_output(cx);
                return Poll::Pending;
            }
        })
    }

    fn terminate(mut self: Pin<&mut Self>, request: Termination<LendError<E>>) {
        if let Some(aborting) = self.aborting.take() {
            // Terminated while the lender was aborting its input: the
            // termination is confirmed once the input has confirmed.
            self.input = Some(aborting);
        }
        let input = {
            let mut state = self.shared.lock();
            let input_open = state.core.input_open();
            state.core.terminate_output();
            state.wake();
            state.drop_stale_read();
            if input_open {
                self.shared.input.get().cloned()
            } else {
                None
            }
        };
        if let Some(input) = input {
            let upstream = match &request {
                Termination::Fail(LendError::Input(e)) => Termination::Fail(e.clone()),
                _ => Termination::Abort,
            };
            input.terminate(upstream);
            self.input = Some(input);
        }
        self.termination = Some(request);
    }

    fn poll_terminated(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), LendError<E>>> {
        let upstream = match self.input.as_mut() {
            Some(input) => ready!(input.poll_terminated(cx)),
            None => Ok(()),
        };
        self.input = None;
        Poll::Ready(match self.termination.take() {
            Some(Termination::Fail(e)) => Err(e),
            _ => upstream.map_err(LendError::Input),
        })
    }
}

/// The future returned by [`StreamLender::close`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct CloseFuture<T, E> {
    input: Option<Input<T, E>>,
    started: bool,
}

impl<T, E> Unpin for CloseFuture<T, E> {}

impl<T, E: Clone> Future for CloseFuture<T, E> {
    type Output = Result<(), E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        let this = &mut *self;
        let Some(input) = this.input.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        if !this.started {
            this.started = true;
            if input.is_ended() {
                this.input = None;
                return Poll::Ready(Ok(()));
            }
            input.terminate(Termination::Abort);
        }
        let end = ready!(input.poll_terminated(cx));
        this.input = None;
        Poll::Ready(end)
    }
}

/// The future returned by [`StreamLender::settled`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Settled<T, R, E> {
    shared: Arc<Shared<T, R, E>>,
}

impl<T: Clone, R, E> Future for Settled<T, R, E> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = self.shared.lock();
        let s = state.core.state();
        if s.input_ended && s.in_flight == 0 && s.waiting_to_be_relent == 0 {
            return Poll::Ready(());
        }
        state.wait(cx);
        Poll::Pending
    }
}

impl<T, R, E> fmt::Debug for StreamLender<T, R, E>
where
    T: Clone,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamLender")
            .field("state", &self.shared.lock().core.state())
            .finish()
    }
}

impl<T: Clone, R, E> fmt::Debug for LenderOutput<T, R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LenderOutput")
            .field("state", &self.shared.lock().core.state())
            .field("terminating", &self.termination.is_some())
            .finish()
    }
}

impl<T, E> fmt::Debug for CloseFuture<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloseFuture")
            .field("started", &self.started)
            .finish()
    }
}

impl<T, R, E> fmt::Debug for Settled<T, R, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settled").finish()
    }
}
