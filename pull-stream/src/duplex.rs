//! Duplexes: a source plus a sink, such as a connection (seed 000, Figure 4.4).

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::closing::Closing;
use crate::{Answer, Connect, Source, Termination};

/// A duplex: a `source` half that produces values and a `sink` half that
/// consumes a source, such as the two directions of a connection.
///
/// * Connecting the sink half (`duplex.sink.connect(upstream)`) gives the
///   future that drives it, for example the task that writes to a socket.
/// * A duplex is also a through: `pull!(upstream, duplex, downstream)` sends
///   upstream's values into the sink half and answers downstream's asks from
///   the source half, driving the sink half whenever the through is polled
///   (no task is spawned). See [`DuplexSource`].
/// * [`loopback`](Duplex::loopback) connects a duplex to itself: what it
///   receives it sends back (an echo).
///
/// Like a connection, the sink half of a duplex is expected to stop (abort its
/// upstream and complete) when the source half ends or is terminated; the
/// in-memory [`duplex_pair`](crate::duplex_pair) does.
///
/// ```
/// use pando_pull_stream::{collect, count, duplex_pair, map, pull};
///
/// # futures::executor::block_on(async {
/// // Two connected ends, like a socket pair.
/// let (client, server) = duplex_pair::<u64, u64, ()>(4);
/// // The server squares what it receives and sends it back.
/// let serve = pull!(server.source, map(|x: u64| x * x), server.sink);
/// // The client uses its end as a through: values out, results back.
/// let ask = pull!(count(3), client, collect::<Vec<_>>());
/// let (served, got) = futures::join!(serve, ask);
/// assert_eq!(got, Ok(vec![1, 4, 9]));
/// assert_eq!(served, Ok(()));
/// # });
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use = "duplexes do nothing until connected"]
pub struct Duplex<So, Si> {
    /// The half that produces values (reads the connection).
    pub source: So,
    /// The half that consumes a source (writes the connection).
    pub sink: Si,
}

impl<So, Si> Duplex<So, Si> {
    /// Pairs a source half and a sink half.
    ///
    /// ```
    /// use pando_pull_stream::{Duplex, drain, empty};
    /// let d = Duplex::new(empty::<u8, ()>(), drain());
    /// let (_source, _sink) = d.into_parts();
    /// ```
    pub fn new(source: So, sink: Si) -> Self {
        Duplex { source, sink }
    }

    /// The two halves.
    ///
    /// See [`Duplex::new`] for an example.
    pub fn into_parts(self) -> (So, Si) {
        (self.source, self.sink)
    }

    /// Connects the duplex to itself (`duplex.sink(duplex.source)` in the
    /// seeds' Figure 4.4): an echo. Returns the future that runs it.
    ///
    /// ```
    /// use pando_pull_stream::{collect, duplex_pair, pull, values};
    ///
    /// # futures::executor::block_on(async {
    /// let (near, far) = duplex_pair::<&str, &str, ()>(1);
    /// let echo = far.loopback();
    /// let got = pull!(values(["ping", "pong"]), near, collect::<Vec<_>>());
    /// let (echoed, got) = futures::join!(echo, got);
    /// assert_eq!(got, Ok(vec!["ping", "pong"]));
    /// assert_eq!(echoed, Ok(()));
    /// # });
    /// ```
    pub fn loopback(self) -> Si::Output
    where
        Si: Connect<So>,
    {
        self.sink.connect(self.source)
    }
}

impl<S, So, Si, F> Connect<S> for Duplex<So, Si>
where
    S: Source,
    So: Source,
    Si: Connect<S, Output = F>,
    F: Future<Output = Result<(), So::Error>>,
{
    type Output = DuplexSource<So, F>;

    fn connect(self, upstream: S) -> DuplexSource<So, F> {
        DuplexSource {
            source: self.source,
            sending: Some(self.sink.connect(upstream)),
            sink_error: None,
            held: None,
            terminated: None,
            closing: Closing::Open,
        }
    }
}

pin_project! {
    /// A duplex used as a through: its sink half consumes the upstream, its
    /// source half answers downstream.
    ///
    /// Every poll drives the sink half's future too, so the pipeline needs no
    /// extra task. When the source half ends (answers `done`/`error`, or is
    /// terminated), the answer is held until the sink half has finished, so
    /// that the upstream is terminated and confirmed before the downstream
    /// learns that the stream ended. If the sink half fails with `e`, the
    /// source half is aborted and the downstream gets `error(e)`.
    #[must_use = "sources do nothing unless asked"]
    pub struct DuplexSource<So: Source, F> {
        #[pin]
        source: So,
        #[pin]
        sending: Option<F>,
        sink_error: Option<So::Error>,
        held: Option<Answer<So::Item, So::Error>>,
        terminated: Option<Result<(), So::Error>>,
        closing: Closing<So::Error>,
    }
}

impl<So: Source, F> DuplexSource<So, F>
where
    F: Future<Output = Result<(), So::Error>>,
{
    /// Polls the sink half; records its error. Returns whether it has finished.
    fn poll_sending(
        sending: &mut Pin<&mut Option<F>>,
        sink_error: &mut Option<So::Error>,
        cx: &mut Context<'_>,
    ) -> bool {
        if let Some(running) = sending.as_mut().as_pin_mut() {
            match running.poll(cx) {
                Poll::Pending => return false,
                Poll::Ready(result) => {
                    sending.set(None);
                    if let Err(e) = result {
                        *sink_error = Some(e);
                    }
                }
            }
        }
        true
    }
}

impl<So: Source, F> Source for DuplexSource<So, F>
where
    F: Future<Output = Result<(), So::Error>>,
{
    type Item = So::Item;
    type Error = So::Error;

    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<So::Item, So::Error>> {
        let mut this = self.project();
        loop {
            let sink_finished = Self::poll_sending(&mut this.sending, this.sink_error, cx);
            if this.sink_error.is_some() {
                if this.held.is_none() {
                    this.closing
                        .close_for_ask(this.source.as_mut(), Termination::Abort);
                    let _ = ready!(this.closing.poll_closed_for_ask(this.source.as_mut(), cx));
                }
                *this.held = None;
                return Poll::Ready(this.sink_error.take().map_or(Answer::Done, Answer::Error));
            }
            if this.held.is_some() {
                if !sink_finished {
                    return Poll::Pending;
                }
                return Poll::Ready(this.held.take().expect("checked above"));
            }
            if !this.closing.is_open() {
                return Poll::Ready(Answer::Done);
            }
            let answer = ready!(this.source.as_mut().poll_ask(cx));
            if !answer.is_terminal() {
                return Poll::Ready(answer);
            }
            this.closing.ended();
            *this.held = Some(answer);
        }
    }

    fn terminate(self: Pin<&mut Self>, request: Termination<So::Error>) {
        let this = self.project();
        *this.held = None;
        this.closing.terminate(this.source, request);
    }

    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), So::Error>> {
        let mut this = self.project();
        // Drive the sink half while waiting for the source half's confirmation:
        // the other end of a connection may wait for our sink half to stop
        // before it confirms (as `duplex_pair` does).
        let sink_finished = Self::poll_sending(&mut this.sending, this.sink_error, cx);
        if this.terminated.is_none() {
            let end = ready!(this.closing.poll_terminated(this.source.as_mut(), cx));
            *this.terminated = Some(end);
        }
        if !sink_finished && !Self::poll_sending(&mut this.sending, this.sink_error, cx) {
            return Poll::Pending;
        }
        Poll::Ready(this.terminated.take().unwrap_or(Ok(())))
    }
}

impl<So: Source + fmt::Debug, F> fmt::Debug for DuplexSource<So, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DuplexSource")
            .field("source", &self.source)
            .field("sink_running", &self.sending.is_some())
            .finish_non_exhaustive()
    }
}
