//! In-memory channels and connections: [`channel`] (one direction) and
//! [`duplex_pair`] (two connected duplex ends, like a socket pair).

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};

use pin_project_lite::pin_project;

use crate::{Answer, Connect, Duplex, Source, Termination};

enum Writer<E> {
    /// The sink half exists but is not connected yet.
    Idle,
    /// The sink half is connected and pulling from its upstream.
    Writing,
    /// The upstream ended: `done` (`Ok`) or `error`; taken by the reader once.
    Ended(Option<Result<(), E>>),
    /// The writer stopped and its upstream confirmed termination.
    Closed,
    /// The sink half (or its future) was dropped before the upstream ended.
    Dropped,
}

enum Reader<E> {
    Reading,
    Terminated(Option<Termination<E>>),
    Gone,
}

struct State<T, E> {
    queue: VecDeque<T>,
    capacity: usize,
    writer: Writer<E>,
    reader: Reader<E>,
    /// Set when the writer's own connection end was closed (its source half terminated).
    writer_closed: bool,
    reader_waker: Option<Waker>,
    writer_waker: Option<Waker>,
}

type Shared<T, E> = Arc<Mutex<State<T, E>>>;

fn lock<T, E>(shared: &Mutex<State<T, E>>) -> MutexGuard<'_, State<T, E>> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

fn wake(slot: &mut Option<Waker>) {
    if let Some(w) = slot.take() {
        w.wake();
    }
}

impl<T, E> State<T, E> {
    fn writer_finished(&self) -> bool {
        matches!(self.writer, Writer::Ended(_) | Writer::Closed | Writer::Dropped)
    }

    fn writer_must_stop(&self) -> bool {
        self.writer_closed || !matches!(self.reader, Reader::Reading)
    }
}

/// Closes the sink half of a connection end when its source half is terminated.
trait CloseWriter: Send + Sync {
    fn close_writer(&self);
}

impl<T: Send, E: Send> CloseWriter for Mutex<State<T, E>> {
    fn close_writer(&self) {
        let mut state = lock(self);
        state.writer_closed = true;
        wake(&mut state.writer_waker);
    }
}

/// The receiving half of a [`channel`]: a source of what the sink half sends.
pub struct ChannelSource<T, E> {
    shared: Shared<T, E>,
    /// The sink half of the same connection end, closed with this one.
    sibling: Option<Arc<dyn CloseWriter>>,
}

/// The sending half of a [`channel`]: a sink that pulls from its upstream into
/// the channel, up to `capacity` values ahead of the reader.
pub struct ChannelSink<T, E> {
    shared: Option<Shared<T, E>>,
}

/// A bounded in-memory channel, as a pull-stream sink half and source half.
///
/// * The sink half pulls values from its upstream only while fewer than
///   `capacity` values are waiting (bounded memory; at least 1).
/// * `done` and `error` from the upstream reach the reader after the values
///   before them.
/// * When the reader terminates (abort or fail), the values in the channel are
///   dropped, the writer aborts its upstream, and the reader's termination is
///   confirmed once the upstream has confirmed.
/// * If the sink half is dropped before its upstream ended, the reader gets
///   `done` after the values already sent.
///
/// ```
/// use pando_pull_stream::{Connect, SourceExt, channel, count};
///
/// # futures::executor::block_on(async {
/// let (tx, rx) = channel::<u64, ()>(2);
/// let sending = tx.connect(count(5));
/// let (sent, got) = futures::join!(sending, rx.collect::<Vec<_>>());
/// assert_eq!((sent, got), (Ok(()), Ok(vec![1, 2, 3, 4, 5])));
/// # });
/// ```
pub fn channel<T, E>(capacity: usize) -> (ChannelSink<T, E>, ChannelSource<T, E>) {
    let shared = Arc::new(Mutex::new(State {
        queue: VecDeque::with_capacity(capacity.max(1)),
        capacity: capacity.max(1),
        writer: Writer::Idle,
        reader: Reader::Reading,
        writer_closed: false,
        reader_waker: None,
        writer_waker: None,
    }));
    (
        ChannelSink {
            shared: Some(shared.clone()),
        },
        ChannelSource {
            shared,
            sibling: None,
        },
    )
}

/// One end of an in-memory connection made by [`duplex_pair`]: it receives
/// `R` and sends `S`.
pub type DuplexEnd<R, S, E> = Duplex<ChannelSource<R, E>, ChannelSink<S, E>>;

/// Two connected duplex ends, like a socket pair: what one end's sink half
/// sends, the other end's source half receives, through a bounded channel of
/// `capacity` values in each direction.
///
/// Like closing a socket, terminating an end's source half also stops that
/// end's sink half (it aborts its upstream), and the other end's source half
/// then ends with `done`. This is the in-process transport used for tests and
/// local workers.
///
/// ```
/// use pando_pull_stream::{SourceExt, collect, duplex_pair, infinite, pull};
///
/// # futures::executor::block_on(async {
/// let (mut a, b) = duplex_pair::<u8, u8, ()>(8);
/// let echo = b.loopback();
/// let sending = pull!(infinite(|| 7u8), a.sink);
/// let reading = async {
///     assert_eq!(a.source.ask().await.into_option(), Some(Ok(7)));
///     a.source.abort().await // closes the connection: the infinite upstream is aborted
/// };
/// let (echoed, sent, read) = futures::join!(echo, sending, reading);
/// assert_eq!((echoed, sent, read), (Ok(()), Ok(()), Ok(())));
/// # });
/// ```
pub fn duplex_pair<A, B, E>(capacity: usize) -> (DuplexEnd<B, A, E>, DuplexEnd<A, B, E>)
where
    A: Send + 'static,
    B: Send + 'static,
    E: Send + 'static,
{
    let (a_tx, a_rx) = channel::<A, E>(capacity);
    let (b_tx, b_rx) = channel::<B, E>(capacity);
    let a_writer: Arc<dyn CloseWriter> = a_tx.shared.clone().expect("new sink half");
    let b_writer: Arc<dyn CloseWriter> = b_tx.shared.clone().expect("new sink half");
    let first = Duplex::new(b_rx.with_sibling(a_writer), a_tx);
    let second = Duplex::new(a_rx.with_sibling(b_writer), b_tx);
    (first, second)
}

impl<T, E> ChannelSource<T, E> {
    fn with_sibling(mut self, sibling: Arc<dyn CloseWriter>) -> Self {
        self.sibling = Some(sibling);
        self
    }

    fn close_sibling(&self) {
        if let Some(sibling) = &self.sibling {
            sibling.close_writer();
        }
    }

    /// The number of values sent and not yet read.
    ///
    /// ```
    /// use pando_pull_stream::{Connect, channel, count};
    /// # futures::executor::block_on(async {
    /// let (tx, rx) = channel::<u64, ()>(3);
    /// let _ = futures::poll!(std::pin::pin!(tx.connect(count(10))));
    /// assert_eq!(rx.len(), 3);
    /// # });
    /// ```
    pub fn len(&self) -> usize {
        lock(&self.shared).queue.len()
    }

    /// Whether no value is waiting to be read.
    ///
    /// ```
    /// use pando_pull_stream::channel;
    /// let (_tx, rx) = channel::<u64, ()>(3);
    /// assert!(rx.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T, E> Unpin for ChannelSource<T, E> {}

impl<T, E> Source for ChannelSource<T, E> {
    type Item = T;
    type Error = E;

    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<T, E>> {
        let mut state = lock(&self.shared);
        if let Some(v) = state.queue.pop_front() {
            wake(&mut state.writer_waker);
            return Poll::Ready(Answer::Value(v));
        }
        match &mut state.writer {
            Writer::Ended(end) => Poll::Ready(match end.take() {
                Some(Err(e)) => Answer::Error(e),
                _ => Answer::Done,
            }),
            Writer::Closed | Writer::Dropped => Poll::Ready(Answer::Done),
            Writer::Idle | Writer::Writing => {
                register(&mut state.reader_waker, cx);
                Poll::Pending
            }
        }
    }

    fn terminate(self: Pin<&mut Self>, request: Termination<E>) {
        {
            let mut state = lock(&self.shared);
            state.reader = Reader::Terminated(Some(request));
            state.queue.clear();
            wake(&mut state.writer_waker);
        }
        self.close_sibling();
    }

    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        let mut state = lock(&self.shared);
        if !state.writer_finished() {
            register(&mut state.reader_waker, cx);
            return Poll::Pending;
        }
        match &mut state.reader {
            Reader::Terminated(request) => Poll::Ready(request.take().map_or(Ok(()), Termination::confirm)),
            _ => Poll::Ready(Ok(())),
        }
    }
}

impl<T, E> Drop for ChannelSource<T, E> {
    fn drop(&mut self) {
        {
            let mut state = lock(&self.shared);
            if matches!(state.reader, Reader::Reading) {
                state.reader = Reader::Gone;
                state.queue.clear();
                wake(&mut state.writer_waker);
            }
        }
        self.close_sibling();
    }
}

impl<T, E> Drop for ChannelSink<T, E> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let mut state = lock(&shared);
            state.writer = Writer::Dropped;
            wake(&mut state.reader_waker);
        }
    }
}

impl<S, T, E> Connect<S> for ChannelSink<T, E>
where
    S: Source<Item = T, Error = E>,
{
    type Output = SendFuture<S, T, E>;

    fn connect(mut self, upstream: S) -> SendFuture<S, T, E> {
        let shared = self.shared.take().expect("a sink half is connected once");
        lock(&shared).writer = Writer::Writing;
        SendFuture {
            upstream,
            shared,
            aborting: false,
            finished: false,
        }
    }
}

pin_project! {
    /// The future made by connecting a [`ChannelSink`] to a source: it pulls
    /// values into the channel. It resolves to `Ok(())` when the upstream has
    /// ended (its `done` or `error` is passed to the reader) or, after the
    /// reader stopped, when the upstream has confirmed its abort.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct SendFuture<S, T, E> {
        #[pin]
        upstream: S,
        shared: Shared<T, E>,
        aborting: bool,
        finished: bool,
    }

    impl<S, T, E> PinnedDrop for SendFuture<S, T, E> {
        fn drop(this: Pin<&mut Self>) {
            if !this.finished {
                let mut state = lock(&this.shared);
                state.writer = Writer::Dropped;
                wake(&mut state.reader_waker);
            }
        }
    }
}

impl<S, T, E> Future for SendFuture<S, T, E>
where
    S: Source<Item = T, Error = E>,
{
    type Output = Result<(), E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        let mut this = self.project();
        if *this.finished {
            return Poll::Ready(Ok(()));
        }
        loop {
            // Decide under the lock, but never hold it while polling upstream:
            // the upstream may read from this very channel (a loopback).
            let stop = {
                let mut state = lock(this.shared);
                register(&mut state.writer_waker, cx);
                let stop = state.writer_must_stop();
                if !stop && state.queue.len() >= state.capacity {
                    return Poll::Pending;
                }
                stop
            };
            if stop {
                if !*this.aborting {
                    *this.aborting = true;
                    this.upstream.as_mut().terminate(Termination::Abort);
                }
                // The reader asked to stop: the upstream's answer to our abort is ours alone.
                let _ = ready!(this.upstream.as_mut().poll_terminated(cx));
                let mut state = lock(this.shared);
                state.writer = Writer::Closed;
                *this.finished = true;
                wake(&mut state.reader_waker);
                return Poll::Ready(Ok(()));
            }
            let answer = ready!(this.upstream.as_mut().poll_ask(cx));
            let mut state = lock(this.shared);
            match answer {
                Answer::Value(v) => {
                    if !state.writer_must_stop() {
                        state.queue.push_back(v);
                        wake(&mut state.reader_waker);
                    }
                }
                Answer::Done | Answer::Error(_) => {
                    let end = match answer {
                        Answer::Error(e) => Err(e),
                        _ => Ok(()),
                    };
                    state.writer = Writer::Ended(Some(end));
                    *this.finished = true;
                    wake(&mut state.reader_waker);
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

impl<T, E> fmt::Debug for ChannelSource<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelSource")
            .field("waiting", &self.len())
            .finish()
    }
}

impl<T, E> fmt::Debug for ChannelSink<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelSink")
            .field("connected", &self.shared.is_none())
            .finish()
    }
}

impl<S: fmt::Debug, T, E> fmt::Debug for SendFuture<S, T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendFuture")
            .field("upstream", &self.upstream)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
