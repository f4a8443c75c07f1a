//! The [`Serializer`] (seed 000, Algorithm 13): concurrent asks in, one
//! outstanding upstream request at a time out.
//!
//! One file a public type, as in futures-util: the serializer here, its
//! futures ([`SerialAsk`], [`OwnedAsk`], [`Close`]), [`AskNow`], and the module
//! form ([`SerializerModule`], made by [`serialize`]); the state they share is
//! in `inner.rs`.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::sync::{Arc, Mutex, MutexGuard};
use crate::{Answer, Source, Termination};

mod ask_now;
mod close;
mod inner;
mod module;
mod owned_ask;
mod serial_ask;

pub use ask_now::AskNow;
pub use close::Close;
use inner::{Inner, State, lock};
pub use module::{SerializerModule, serialize};
pub use owned_ask::OwnedAsk;
pub use serial_ask::SerialAsk;

/// A shared handle on a source that accepts *concurrent* asks.
///
/// Any number of handles (clones) and tasks may ask at the same time with
/// [`Serializer::ask`]. The serializer turns these asks into a sequence:
///
/// * **one request at a time**: it makes at most one outstanding request on
///   its upstream, so the upstream sees a protocol-compliant consumer
///   (invariant 4) however many asks are pending;
/// * **in order**: asks are answered in the order in which they were made (the
///   order of the calls to `ask`), each exactly once;
/// * **no request after termination**: once the upstream answered `done` or
///   `error`, or was terminated, every pending and later ask is answered
///   without touching the upstream — `done`, or a clone of the error.
///
/// A `Serializer` is also a [`Source`] itself (each handle making one ask at
/// a time), so it can sit in a pipeline: `pull!(source, serialize(), …)`.
///
/// StreamLender puts a serializer on its input, so that sub-streams can ask
/// for values concurrently.
///
/// Any ask that is polled drives the upstream, on behalf of the asks made
/// before it if need be (their answers wait for them), so one ask that is
/// never polled cannot stall the others. Dropping a [`SerialAsk`] future
/// before it resolves cancels that ask; an answer already obtained for it goes
/// to the next ask, and an upstream request in progress is continued, not
/// repeated, so no value is lost.
///
/// ```
/// use pando_pull_stream::{Answer, Serializer, count};
///
/// # futures::executor::block_on(async {
/// let serializer = Serializer::new(count::<()>(2));
/// // Three concurrent asks, answered in order, with one upstream request at a time.
/// let (a, b, c) = futures::join!(serializer.ask(), serializer.ask(), serializer.ask());
/// assert_eq!((a, b, c), (Answer::Value(1), Answer::Value(2), Answer::Done));
/// // After `done`, asks are answered without asking upstream again.
/// assert_eq!(serializer.ask().await, Answer::Done);
/// assert_eq!(serializer.upstream_requests(), 3);
/// # });
/// ```
#[must_use = "sources do nothing unless asked"]
pub struct Serializer<S: Source> {
    shared: Arc<Mutex<Inner<S>>>,
    /// The ask this handle is making through its `Source` implementation.
    own_ticket: Option<u64>,
}

impl<S: Source> Serializer<S> {
    /// Wraps `upstream`. This is the only allocation: asks allocate nothing
    /// beyond the amortized growth of the queue of pending asks.
    ///
    /// ```
    /// use pando_pull_stream::{Serializer, values};
    /// let s = Serializer::new(values::<_, ()>([1, 2]));
    /// assert_eq!(s.pending_asks(), 0);
    /// ```
    pub fn new(upstream: S) -> Self {
        Serializer {
            shared: Arc::new(Mutex::new(Inner::new(upstream))),
            own_ticket: None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        lock(&self.shared)
    }

    /// Makes an ask; the future resolves to its answer. Asks are answered in
    /// the order of the calls to `ask`.
    ///
    /// ```
    /// use pando_pull_stream::{Answer, Serializer, values};
    /// # futures::executor::block_on(async {
    /// let s = Serializer::new(values::<_, ()>(["x"]));
    /// let first = s.ask();
    /// let second = s.ask();
    /// // Awaiting `second` drives the upstream for `first` too, and the answers
    /// // follow the order of the `ask` calls.
    /// assert_eq!(second.await, Answer::Done);
    /// assert_eq!(first.await, Answer::Value("x"));
    /// # });
    /// ```
    pub fn ask(&self) -> SerialAsk<'_, S> {
        let ticket = self.lock().new_ticket();
        SerialAsk {
            serializer: self,
            ticket: Some(ticket),
        }
    }

    /// Makes an ask, like [`ask`](Serializer::ask), with a future that owns a
    /// handle on the serializer (`'static` when the source is), to store in
    /// a struct or move to another task.
    ///
    /// ```
    /// use pando_pull_stream::{Answer, Serializer, count};
    /// # futures::executor::block_on(async {
    /// let s = Serializer::new(count::<()>(5));
    /// let ask = s.ask_owned();
    /// drop(s); // the future keeps the serializer alive
    /// assert_eq!(ask.await, Answer::Value(1));
    /// # });
    /// ```
    pub fn ask_owned(&self) -> OwnedAsk<S> {
        let ticket = self.lock().new_ticket();
        OwnedAsk {
            shared: Arc::clone(&self.shared),
            ticket: Some(ticket),
        }
    }

    /// Makes an ask and polls it at once: if it can be answered right away
    /// (the usual case for a fast upstream with no other ask pending), the
    /// answer comes without any allocation; otherwise the pending ask is
    /// returned as an [`OwnedAsk`] to poll later (it continues the same
    /// request).
    ///
    /// ```
    /// use core::task::{Context, Waker};
    /// use pando_pull_stream::{Answer, AskNow, Serializer, count};
    /// let s = Serializer::new(count::<()>(1));
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert!(matches!(s.ask_now(&mut cx), AskNow::Answered(Answer::Value(1))));
    /// ```
    pub fn ask_now(&self, cx: &mut Context<'_>) -> AskNow<S>
    where
        S::Error: Clone,
    {
        let mut inner = self.lock();
        let ticket = inner.new_ticket();
        match inner.poll_ticket(ticket, cx) {
            Poll::Ready(answer) => AskNow::Answered(answer),
            Poll::Pending => {
                drop(inner);
                AskNow::Pending(OwnedAsk {
                    shared: Arc::clone(&self.shared),
                    ticket: Some(ticket),
                })
            }
        }
    }

    /// The number of asks made and not yet answered or cancelled, over all handles.
    ///
    /// ```
    /// use pando_pull_stream::{Serializer, count};
    /// let s = Serializer::new(count::<()>(1));
    /// let _a = s.ask();
    /// let _b = s.ask();
    /// assert_eq!(s.pending_asks(), 2);
    /// ```
    pub fn pending_asks(&self) -> usize {
        self.lock().tickets.len()
    }

    /// The number of requests made upstream so far (asks, and a termination).
    ///
    /// ```
    /// use pando_pull_stream::{Serializer, Termination, count};
    /// # futures::executor::block_on(async {
    /// let s = Serializer::new(count::<()>(5));
    /// s.ask().await;
    /// s.close(Termination::Abort).await.unwrap();
    /// assert_eq!(s.upstream_requests(), 2); // one ask, one abort
    /// # });
    /// ```
    pub fn upstream_requests(&self) -> u64 {
        self.lock().upstream_requests
    }

    /// Whether the upstream has ended (`done`, `error`) or been terminated.
    ///
    /// ```
    /// use pando_pull_stream::{Serializer, empty};
    /// # futures::executor::block_on(async {
    /// let s = Serializer::new(empty::<u8, ()>());
    /// assert!(!s.is_ended());
    /// s.ask().await;
    /// assert!(s.is_ended());
    /// # });
    /// ```
    pub fn is_ended(&self) -> bool {
        !matches!(self.lock().state, State::Open)
    }

    /// Terminates the upstream with `request` (abort or fail), unless it has
    /// already ended; resolves to the confirmation. Pending asks are answered
    /// `done`, before the termination is confirmed.
    ///
    /// If the upstream had already ended or been terminated, the termination
    /// is confirmed at once: `Ok(())` for an abort, the error for a fail.
    ///
    /// ```
    /// use pando_pull_stream::{Answer, Serializer, Termination, count};
    /// # futures::executor::block_on(async {
    /// let s = Serializer::new(count::<()>(u64::MAX));
    /// assert_eq!(s.ask().await, Answer::Value(1));
    /// assert_eq!(s.close(Termination::Abort).await, Ok(()));
    /// assert_eq!(s.ask().await, Answer::Done);
    /// # });
    /// ```
    pub fn close(&self, request: Termination<S::Error>) -> Close<'_, S> {
        Close {
            serializer: self,
            request: Some(request),
        }
    }
}

impl<S: Source> Clone for Serializer<S> {
    /// Another handle on the same serializer.
    fn clone(&self) -> Self {
        Serializer {
            shared: Arc::clone(&self.shared),
            own_ticket: None,
        }
    }
}

impl<S: Source> Drop for Serializer<S> {
    fn drop(&mut self) {
        if let Some(ticket) = self.own_ticket {
            self.lock().cancel(ticket);
        }
    }
}

/// Each handle is a source making one ask at a time; terminating a handle
/// terminates the shared upstream (see [`Serializer::close`]).
impl<S: Source> Source for Serializer<S>
where
    S::Error: Clone,
{
    type Item = S::Item;
    type Error = S::Error;

    fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>> {
        let this = &mut *self;
        let mut inner = lock(&this.shared);
        let ticket = *this.own_ticket.get_or_insert_with(|| inner.new_ticket());
        let answer = std::task::ready!(inner.poll_ticket(ticket, cx));
        this.own_ticket = None;
        Poll::Ready(answer)
    }

    fn terminate(mut self: Pin<&mut Self>, request: Termination<S::Error>) {
        let this = &mut *self;
        let mut inner = lock(&this.shared);
        if let Some(ticket) = this.own_ticket.take() {
            inner.cancel(ticket);
        }
        if let Some(local) = inner.terminate(request) {
            // Nothing upstream to terminate: remember the local answer.
            inner.state = match (local, &inner.state) {
                (Termination::Fail(e), _) => State::Ended(Some(e)),
                (Termination::Abort, State::Ended(Some(_))) => State::Ended(None),
                (Termination::Abort, _) => State::Terminated,
            };
        }
    }

    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        let mut inner = self.lock();
        if let State::Ended(Some(e)) = &inner.state {
            return Poll::Ready(Err(e.clone()));
        }
        inner.poll_terminating(cx)
    }
}

impl<S: Source> fmt::Debug for Serializer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        let state = match inner.state {
            State::Open => "open",
            State::Ended(None) => "done",
            State::Ended(Some(_)) => "error",
            State::Terminating => "terminating",
            State::Terminated => "terminated",
        };
        f.debug_struct("Serializer")
            .field("state", &state)
            .field("pending_asks", &inner.tickets.len())
            .field("answers_waiting", &inner.ready.len())
            .field("upstream_requests", &inner.upstream_requests)
            .finish()
    }
}
