//! The [`Serializer`] (seed 000, Algorithm 13): concurrent asks in, one
//! outstanding upstream request at a time out.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::sync::{Arc, Mutex, MutexGuard};
use crate::{Answer, Connect, Source, Termination};

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
pub struct Serializer<S: Source> {
    shared: Arc<Mutex<Inner<S>>>,
    /// The ask this handle is making through its `Source` implementation.
    own_ticket: Option<u64>,
}

/// The module form of [`Serializer`], for [`pull!`](crate::pull!). See [`serialize`].
#[derive(Clone, Copy, Debug, Default)]
#[must_use = "modules do nothing until connected"]
pub struct Serialize;

/// A through that wraps its upstream in a [`Serializer`].
///
/// ```
/// use pando_pull_stream::{SourceExt, collect, count, pull, serialize};
///
/// # futures::executor::block_on(async {
/// let serializer = pull!(count::<()>(3), serialize());
/// let other_handle = serializer.clone();
/// assert_eq!(other_handle.ask().await, pando_pull_stream::Answer::Value(1));
/// assert_eq!(serializer.collect::<Vec<_>>().await, Ok(vec![2, 3]));
/// # });
/// ```
pub fn serialize() -> Serialize {
    Serialize
}

impl<S: Source> Connect<S> for Serialize {
    type Output = Serializer<S>;

    fn connect(self, source: S) -> Serializer<S> {
        Serializer::new(source)
    }
}

enum State<E> {
    /// The upstream can be asked.
    Open,
    /// The upstream answered `done` (`None`) or `error` (`Some`).
    Ended(Option<E>),
    /// A termination was forwarded upstream; its confirmation is pending.
    Terminating,
    /// The upstream was terminated and confirmed.
    Terminated,
}

struct Inner<S: Source> {
    upstream: Pin<Box<S>>,
    state: State<S::Error>,
    /// The live (not answered, not cancelled) asks, in request order, with
    /// the waker of the task waiting on each.
    tickets: VecDeque<(u64, Option<Waker>)>,
    /// Answers obtained from upstream and not yet delivered: `ready[i]` is
    /// the answer of `tickets[i]`.
    ready: VecDeque<Answer<S::Item, S::Error>>,
    next_ticket: u64,
    upstream_requests: u64,
    /// Whether an upstream ask is outstanding.
    asking: bool,
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
            shared: Arc::new(Mutex::new(Inner {
                upstream: Box::pin(upstream),
                state: State::Open,
                tickets: VecDeque::new(),
                ready: VecDeque::new(),
                next_ticket: 0,
                upstream_requests: 0,
                asking: false,
            })),
            own_ticket: None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        // A panic while holding the lock leaves consistent state: every
        // mutation below completes before anything that can panic.
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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
    /// See [`Serializer`] for an example.
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

impl<S: Source> Inner<S> {
    fn new_ticket(&mut self) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.tickets.push_back((ticket, None));
        ticket
    }

    /// Wakes the asks at positions `from..` that have an answer waiting.
    fn wake_ready(&mut self, from: usize) {
        let until = self.ready.len().min(self.tickets.len());
        for (_, waker) in self.tickets.range_mut(from.min(until)..until) {
            if let Some(w) = waker.take() {
                w.wake();
            }
        }
    }

    fn cancel(&mut self, ticket: u64) {
        if let Ok(p) = self.tickets.binary_search_by_key(&ticket, |(t, _)| *t) {
            self.tickets.remove(p);
            // Answers already obtained move on to the next asks: nothing is lost.
            self.wake_ready(p);
            // The upstream request in progress may hold the waker of the
            // cancelled ask only (the last one to poll it): wake the next
            // ask waiting for an answer, so that it polls the upstream with
            // its own waker. Without this, that ask could wait forever (found
            // by the interleaving checker through StreamLender, seed 413).
            if self.asking {
                if let Some((_, waker)) = self.tickets.get_mut(self.ready.len()) {
                    if let Some(w) = waker.take() {
                        w.wake();
                    }
                }
            }
        }
    }

    fn poll_ticket(&mut self, ticket: u64, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>>
    where
        S::Error: Clone,
    {
        let p = self
            .tickets
            .binary_search_by_key(&ticket, |(t, _)| *t)
            .expect("a live ask has a ticket");
        loop {
            if p < self.ready.len() {
                let answer = self.ready.remove(p).expect("checked above");
                self.tickets.remove(p);
                return Poll::Ready(answer);
            }
            // The asks before this one are answered first, in order: any
            // polled ask drives the upstream on their behalf.
            let answer = match &self.state {
                State::Open => {
                    if !self.asking {
                        self.asking = true;
                        self.upstream_requests += 1;
                    }
                    let answer = match self.upstream.as_mut().poll_ask(cx) {
                        Poll::Pending => {
                            match &mut self.tickets[p].1 {
                                Some(w) if w.will_wake(cx.waker()) => {}
                                w => *w = Some(cx.waker().clone()),
                            }
                            return Poll::Pending;
                        }
                        Poll::Ready(answer) => answer,
                    };
                    self.asking = false;
                    match &answer {
                        Answer::Value(_) => {}
                        Answer::Done => self.state = State::Ended(None),
                        Answer::Error(e) => self.state = State::Ended(Some(e.clone())),
                    }
                    answer
                }
                State::Ended(Some(e)) => Answer::Error(e.clone()),
                State::Ended(None) | State::Terminating | State::Terminated => Answer::Done,
            };
            self.ready.push_back(answer);
            self.wake_ready(self.ready.len() - 1);
        }
    }

    fn terminate(&mut self, request: Termination<S::Error>) -> Option<Termination<S::Error>> {
        match self.state {
            State::Open => {
                self.upstream.as_mut().terminate(request);
                self.upstream_requests += 1;
                self.asking = false;
                self.state = State::Terminating;
                // Pending asks are answered by the termination.
                for waker in self.tickets.iter_mut().filter_map(|(_, w)| w.take()) {
                    waker.wake();
                }
                None
            }
            _ => Some(request),
        }
    }
}

/// The future returned by [`Serializer::ask`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct SerialAsk<'a, S: Source> {
    serializer: &'a Serializer<S>,
    ticket: Option<u64>,
}

impl<S: Source> Future for SerialAsk<'_, S>
where
    S::Error: Clone,
{
    type Output = Answer<S::Item, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let ticket = self.ticket.expect("SerialAsk polled after completion");
        let answer = std::task::ready!(self.serializer.lock().poll_ticket(ticket, cx));
        self.ticket = None;
        Poll::Ready(answer)
    }
}

impl<S: Source> Drop for SerialAsk<'_, S> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket {
            self.serializer.lock().cancel(ticket);
        }
    }
}

/// What [`Serializer::ask_now`] gives: the answer, or the pending ask.
#[derive(Debug)]
pub enum AskNow<S: Source> {
    /// The ask was answered at once.
    Answered(Answer<S::Item, S::Error>),
    /// The ask is pending; poll this future for its answer (the current
    /// task was registered to be woken).
    Pending(OwnedAsk<S>),
}

/// The future returned by [`Serializer::ask_owned`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct OwnedAsk<S: Source> {
    shared: Arc<Mutex<Inner<S>>>,
    ticket: Option<u64>,
}

impl<S: Source> Unpin for OwnedAsk<S> {}

impl<S: Source> Future for OwnedAsk<S>
where
    S::Error: Clone,
{
    type Output = Answer<S::Item, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let ticket = self.ticket.expect("OwnedAsk polled after completion");
        let answer = {
            let mut inner = self.shared.lock().unwrap_or_else(|p| p.into_inner());
            std::task::ready!(inner.poll_ticket(ticket, cx))
        };
        self.ticket = None;
        Poll::Ready(answer)
    }
}

impl<S: Source> Drop for OwnedAsk<S> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket {
            self.shared
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .cancel(ticket);
        }
    }
}

impl<S: Source> fmt::Debug for OwnedAsk<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedAsk").field("ticket", &self.ticket).finish()
    }
}

/// The future returned by [`Serializer::close`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Close<'a, S: Source> {
    serializer: &'a Serializer<S>,
    request: Option<Termination<S::Error>>,
}

impl<S: Source> Unpin for Close<'_, S> {}

impl<S: Source> Future for Close<'_, S> {
    type Output = Result<(), S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut inner = self.serializer.lock();
        if let Some(request) = self.request.take() {
            if let Some(local) = inner.terminate(request) {
                return Poll::Ready(local.confirm());
            }
        }
        match inner.state {
            State::Terminating => {
                let end = std::task::ready!(inner.upstream.as_mut().poll_terminated(cx));
                inner.state = State::Terminated;
                Poll::Ready(end)
            }
            _ => Poll::Ready(Ok(())),
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
        let mut inner = this.shared.lock().unwrap_or_else(|p| p.into_inner());
        let ticket = *this.own_ticket.get_or_insert_with(|| inner.new_ticket());
        let answer = std::task::ready!(inner.poll_ticket(ticket, cx));
        this.own_ticket = None;
        Poll::Ready(answer)
    }

    fn terminate(mut self: Pin<&mut Self>, request: Termination<S::Error>) {
        let this = &mut *self;
        let mut inner = this.shared.lock().unwrap_or_else(|p| p.into_inner());
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
        let mut inner = self.shared.lock().unwrap_or_else(|p| p.into_inner());
        match &inner.state {
            State::Terminating => {
                let end = std::task::ready!(inner.upstream.as_mut().poll_terminated(cx));
                inner.state = State::Terminated;
                Poll::Ready(end)
            }
            State::Ended(Some(e)) => Poll::Ready(Err(e.clone())),
            _ => Poll::Ready(Ok(())),
        }
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

impl<S: Source> fmt::Debug for SerialAsk<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SerialAsk").field("ticket", &self.ticket).finish()
    }
}

impl<S: Source> fmt::Debug for Close<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Close")
            .field("started", &self.request.is_none())
            .finish()
    }
}
