//! Interoperability with the `futures` traits, both ways:
//!
//! * any [`futures_core::Stream`] is a source ([`from_stream`], [`from_try_stream`]);
//! * any source is a [`futures_core::Stream`] ([`IntoStream`], via [`SourceExt::into_stream`](crate::SourceExt));
//! * any [`futures_sink::Sink`] is a pull-stream sink ([`into_sink`]).
//!
//! All conversions are zero-cost wrappers: no allocation per item.

use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context, Poll, ready};

use futures_core::{FusedStream, Stream};
use futures_sink::Sink;
use pin_project_lite::pin_project;

use crate::closing::Closing;
use crate::{Answer, Connect, Source, Termination};

pin_project! {
    /// A source reading a [`Stream`]. See [`from_stream`] and [`from_try_stream`].
    #[must_use = "sources do nothing unless asked"]
    pub struct FromStream<St, E, M> {
        #[pin]
        stream: Option<St>,
        termination: Option<Termination<E>>,
        _mode: PhantomData<fn() -> (E, M)>,
    }
}

/// Marker for [`from_stream`]: every item is a value.
#[derive(Debug)]
pub enum Items {}

/// Marker for [`from_try_stream`]: `Ok` items are values, an `Err` ends the stream.
#[derive(Debug)]
pub enum TryItems {}

/// Uses any [`Stream`] as a source: each ask polls the stream once for its
/// next item; `None` answers `done`.
///
/// Terminating the source drops the stream (releasing its resources) and
/// confirms at once.
///
/// ```
/// use pando_pull_stream::{SourceExt, from_stream};
///
/// # futures::executor::block_on(async {
/// let s = futures::stream::iter(vec![1, 2, 3]);
/// assert_eq!(from_stream::<_, ()>(s).collect::<Vec<_>>().await, Ok(vec![1, 2, 3]));
/// # });
/// ```
pub fn from_stream<St: Stream, E>(stream: St) -> FromStream<St, E, Items> {
    FromStream {
        stream: Some(stream),
        termination: None,
        _mode: PhantomData,
    }
}

/// Uses a [`Stream`] of `Result`s as a source: `Ok(v)` answers `value(v)`,
/// `Err(e)` answers `error(e)` and ends the stream.
///
/// ```
/// use pando_pull_stream::{SourceExt, from_try_stream};
///
/// # futures::executor::block_on(async {
/// let s = futures::stream::iter(vec![Ok(1), Err("broken"), Ok(3)]);
/// let mut got = vec![];
/// assert_eq!(from_try_stream(s).for_each(|x| got.push(x)).await, Err("broken"));
/// assert_eq!(got, [1]);
/// # });
/// ```
pub fn from_try_stream<St, T, E>(stream: St) -> FromStream<St, E, TryItems>
where
    St: Stream<Item = Result<T, E>>,
{
    FromStream {
        stream: Some(stream),
        termination: None,
        _mode: PhantomData,
    }
}

impl<St: Stream, E> Source for FromStream<St, E, Items> {
    type Item = St::Item;
    type Error = E;

    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<St::Item, E>> {
        let mut this = self.project();
        let Some(stream) = this.stream.as_mut().as_pin_mut() else {
            return Poll::Ready(Answer::Done);
        };
        match ready!(stream.poll_next(cx)) {
            Some(v) => Poll::Ready(Answer::Value(v)),
            None => {
                this.stream.set(None);
                Poll::Ready(Answer::Done)
            }
        }
    }

    fn terminate(self: Pin<&mut Self>, request: Termination<E>) {
        let mut this = self.project();
        this.stream.set(None);
        *this.termination = Some(request);
    }

    fn poll_terminated(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), E>> {
        Poll::Ready(
            self.project()
                .termination
                .take()
                .map_or(Ok(()), Termination::confirm),
        )
    }
}

impl<St, T, E> Source for FromStream<St, E, TryItems>
where
    St: Stream<Item = Result<T, E>>,
{
    type Item = T;
    type Error = E;

    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<T, E>> {
        let mut this = self.project();
        let Some(stream) = this.stream.as_mut().as_pin_mut() else {
            return Poll::Ready(Answer::Done);
        };
        let answer = Answer::from(ready!(stream.poll_next(cx)));
        if answer.is_terminal() {
            this.stream.set(None);
        }
        Poll::Ready(answer)
    }

    fn terminate(self: Pin<&mut Self>, request: Termination<E>) {
        let mut this = self.project();
        this.stream.set(None);
        *this.termination = Some(request);
    }

    fn poll_terminated(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), E>> {
        Poll::Ready(
            self.project()
                .termination
                .take()
                .map_or(Ok(()), Termination::confirm),
        )
    }
}

impl<St: fmt::Debug, E, M> fmt::Debug for FromStream<St, E, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FromStream")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// A source used as a [`Stream`] of `Result<Item, Error>`: `value(v)` is
    /// `Some(Ok(v))`, `error(e)` is `Some(Err(e))` and then `None`, `done` is `None`.
    ///
    /// Made by [`into_stream`] or [`SourceExt::into_stream`](crate::SourceExt).
    /// Dropping it drops the source without an abort request; call
    /// [`IntoStream::into_inner`] to terminate the source explicitly instead.
    #[must_use = "streams do nothing unless polled"]
    pub struct IntoStream<S> {
        #[pin]
        source: S,
        ended: bool,
    }
}

/// Uses a source as a [`Stream`]. See [`IntoStream`].
///
/// ```
/// use futures::StreamExt;
/// use pando_pull_stream::{count, into_stream};
///
/// # futures::executor::block_on(async {
/// let squares: Vec<_> = into_stream(count::<()>(3)).map(|r| r.map(|x| x * x)).collect().await;
/// assert_eq!(squares, vec![Ok(1), Ok(4), Ok(9)]);
/// # });
/// ```
pub fn into_stream<S: Source>(source: S) -> IntoStream<S> {
    IntoStream { source, ended: false }
}

impl<S> IntoStream<S> {
    /// Gives back the source, for example to abort it.
    ///
    /// ```
    /// use futures::StreamExt;
    /// use pando_pull_stream::{SourceExt, count, into_stream};
    /// # futures::executor::block_on(async {
    /// let mut stream = into_stream(count::<()>(10));
    /// assert_eq!(stream.next().await, Some(Ok(1)));
    /// assert_eq!(stream.into_inner().abort().await, Ok(()));
    /// # });
    /// ```
    pub fn into_inner(self) -> S {
        self.source
    }
}

impl<S: Source> Stream for IntoStream<S> {
    type Item = Result<S::Item, S::Error>;

    #[inline]
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        if *this.ended {
            return Poll::Ready(None);
        }
        let answer = ready!(this.source.poll_ask(cx));
        *this.ended = answer.is_terminal();
        Poll::Ready(answer.into_option())
    }
}

impl<S: Source> FusedStream for IntoStream<S> {
    fn is_terminated(&self) -> bool {
        self.ended
    }
}

impl<S: fmt::Debug> fmt::Debug for IntoStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoStream")
            .field("source", &self.source)
            .field("ended", &self.ended)
            .finish()
    }
}

/// The pull-stream sink made from a [`Sink`]. See [`into_sink`].
#[must_use = "modules do nothing until connected"]
pub struct IntoSink<Si> {
    sink: Si,
}

/// Uses any [`Sink`] as a pull-stream sink: values are sent into it as they
/// are asked for, and it is closed when the source answers `done`.
///
/// The resulting future resolves to `Ok(())` once the sink is closed. If the
/// source answers `error(e)`, the sink is closed and the future resolves to
/// `Err(e)`. If the sink fails with `e`, the source is aborted and, once it
/// confirms, the future resolves to `Err(e.into())`.
///
/// ```
/// use pando_pull_stream::{count, into_sink, pull};
///
/// # futures::executor::block_on(async {
/// let (tx, rx) = futures::channel::mpsc::unbounded::<u64>();
/// let sent = pull!(count::<futures::channel::mpsc::SendError>(3), into_sink(tx)).await;
/// assert!(sent.is_ok());
/// assert_eq!(futures::StreamExt::collect::<Vec<_>>(rx).await, vec![1, 2, 3]);
/// # });
/// ```
pub fn into_sink<Si>(sink: Si) -> IntoSink<Si> {
    IntoSink { sink }
}

impl<S, Si> Connect<S> for IntoSink<Si>
where
    S: Source,
    Si: Sink<S::Item>,
    S::Error: From<Si::Error>,
{
    type Output = IntoSinkFuture<S, Si>;

    fn connect(self, source: S) -> Self::Output {
        IntoSinkFuture {
            source,
            sink: self.sink,
            buffered: None,
            state: SinkState::Sending,
            closing: Closing::Open,
        }
    }
}

enum SinkState<E> {
    Sending,
    /// Closing the sink after the source ended with this answer.
    Closing(Result<(), E>),
    /// The sink failed: aborting the source, then resolving to this error.
    Failing(Option<E>),
    Finished,
}

pin_project! {
    /// The future made by connecting [`into_sink`] to a source.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct IntoSinkFuture<S: Source, Si> {
        #[pin]
        source: S,
        #[pin]
        sink: Si,
        buffered: Option<S::Item>,
        state: SinkState<S::Error>,
        closing: Closing<S::Error>,
    }
}

impl<S, Si> Future for IntoSinkFuture<S, Si>
where
    S: Source,
    Si: Sink<S::Item>,
    S::Error: From<Si::Error>,
{
    type Output = Result<(), S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state {
                SinkState::Sending => {
                    if this.buffered.is_some() {
                        match ready!(this.sink.as_mut().poll_ready(cx)) {
                            Ok(()) => {
                                let item = this.buffered.take().expect("checked above");
                                if let Err(e) = this.sink.as_mut().start_send(item) {
                                    *this.state = SinkState::Failing(Some(e.into()));
                                    continue;
                                }
                            }
                            Err(e) => {
                                *this.state = SinkState::Failing(Some(e.into()));
                                continue;
                            }
                        }
                    }
                    match this.source.as_mut().poll_ask(cx) {
                        Poll::Ready(Answer::Value(v)) => *this.buffered = Some(v),
                        Poll::Ready(Answer::Done) => *this.state = SinkState::Closing(Ok(())),
                        Poll::Ready(Answer::Error(e)) => *this.state = SinkState::Closing(Err(e)),
                        Poll::Pending => {
                            // Push what was sent so far while waiting for more.
                            if let Err(e) = ready!(this.sink.as_mut().poll_flush(cx)) {
                                *this.state = SinkState::Failing(Some(e.into()));
                                continue;
                            }
                            return Poll::Pending;
                        }
                    }
                    if !matches!(this.state, SinkState::Sending) {
                        this.closing.ended();
                    }
                }
                SinkState::Closing(_) => {
                    let closed = ready!(this.sink.as_mut().poll_close(cx));
                    let SinkState::Closing(end) = core::mem::replace(this.state, SinkState::Finished) else {
                        unreachable!()
                    };
                    return Poll::Ready(end.and(closed.map_err(Into::into)));
                }
                SinkState::Failing(e) => {
                    this.closing
                        .close_for_ask(this.source.as_mut(), Termination::Abort);
                    let _ = ready!(this.closing.poll_closed_for_ask(this.source.as_mut(), cx));
                    let e = e.take().expect("failing holds its error");
                    *this.state = SinkState::Finished;
                    return Poll::Ready(Err(e));
                }
                SinkState::Finished => return Poll::Ready(Ok(())),
            }
        }
    }
}

impl<Si: fmt::Debug> fmt::Debug for IntoSink<Si> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoSink").field("sink", &self.sink).finish()
    }
}

impl<S: Source + fmt::Debug, Si: fmt::Debug> fmt::Debug for IntoSinkFuture<S, Si> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoSinkFuture")
            .field("source", &self.source)
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}
