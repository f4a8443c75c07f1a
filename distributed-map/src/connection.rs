//! The master's side of one worker connection, as a pull-stream duplex:
//! [`FromWorker`] (a source of results) and [`ToWorker`] (a sink of values).
//! The master wraps the pair in a Limiter (the batch size) and attaches it
//! to a StreamLender sub-stream: `Sk O ⇒ Limiter(duplex) ⇒ Sk I`.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pando_lend_stream::{Lent, Rejecter};
use pando_pull_stream::closing::Closing;
use pando_pull_stream::{Answer, Connect, Source, Termination};
use pin_project_lite::pin_project;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::{Instant, Sleep};

use crate::error::WorkerError;
use crate::frame::{Frame, decode_payload, encode_payload};
use crate::link::Link;
use crate::stats::WorkerStats;
use crate::transport::{FrameSink, FrameStream};

/// What the worker answered for one value: its result, or why it failed.
pub(crate) type Outcome<Out> = Result<Out, String>;

/// The results a worker sends: a source of `Lent<Outcome<Out>>`.
///
/// `Failed` frames are answers too (so the Limiter counts the value as out
/// of process); [`Rejections`], after the Limiter, reports them to the
/// lender. Heartbeats only keep the connection alive; anything unexpected
/// ends the connection with an error naming the worker.
pub(crate) struct FromWorker<Out> {
    pub(crate) stream: FrameStream,
    pub(crate) worker: String,
    pub(crate) link: Link,
    pub(crate) deadline: Pin<Box<Sleep>>,
    pub(crate) timeout: Duration,
    pub(crate) max_frame: usize,
    pub(crate) stats: Arc<WorkerStats>,
    pub(crate) ended: bool,
    pub(crate) termination: Option<Termination<WorkerError>>,
    pub(crate) _out: PhantomData<fn() -> Out>,
}

impl<Out> FromWorker<Out> {
    fn end(
        &mut self,
        answer: Answer<Lent<Outcome<Out>>, WorkerError>,
    ) -> Poll<Answer<Lent<Outcome<Out>>, WorkerError>> {
        self.ended = true;
        self.link.close();
        if let Answer::Error(e) = &answer {
            tracing::warn!(worker = %self.worker, error = %e, "worker connection ended; its values are lent again");
        }
        Poll::Ready(answer)
    }

    /// Ends with the error `make` builds from the worker's name (cloned only here).
    fn fail(
        &mut self,
        make: impl FnOnce(String) -> WorkerError,
    ) -> Poll<Answer<Lent<Outcome<Out>>, WorkerError>> {
        let worker = self.worker.clone();
        self.end(Answer::Error(make(worker)))
    }
}

impl<Out> Unpin for FromWorker<Out> {}

impl<Out: DeserializeOwned> Source for FromWorker<Out> {
    type Item = Lent<Outcome<Out>>;
    type Error = WorkerError;

    fn poll_ask(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Answer<Lent<Outcome<Out>>, WorkerError>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(Answer::Done);
        }
        loop {
            let frame = match this.stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => bytes,
                Poll::Ready(Some(Err(source))) => {
                    return this.fail(|worker| WorkerError::Transport { worker, source });
                }
                Poll::Ready(None) => return this.fail(|worker| WorkerError::Disconnected { worker }),
                Poll::Pending => {
                    if this.deadline.as_mut().poll(cx).is_ready() {
                        let after_ms = this.timeout.as_millis() as u64;
                        return this.fail(|worker| WorkerError::Timeout { worker, after_ms });
                    }
                    return Poll::Pending;
                }
            };
            this.deadline.as_mut().reset(Instant::now() + this.timeout);
            match Frame::decode(&frame, this.max_frame) {
                Err(source) => return this.fail(|worker| WorkerError::Malformed { worker, source }),
                Ok(Frame::Result { id, payload }) => match decode_payload::<Out>(&payload) {
                    Ok(out) => {
                        this.stats.result();
                        return Poll::Ready(Answer::Value(Lent::new(id, Ok(out))));
                    }
                    Err(source) => return this.fail(|worker| WorkerError::Malformed { worker, source }),
                },
                Ok(Frame::Failed { id, reason }) => {
                    this.stats.failure();
                    return Poll::Ready(Answer::Value(Lent::new(id, Err(reason))));
                }
                Ok(Frame::Heartbeat) => {}
                Ok(Frame::Done) => return this.end(Answer::Done),
                Ok(Frame::Error { message }) => {
                    return this.fail(|worker| WorkerError::Remote { worker, message });
                }
                Ok(other) => {
                    let frame = other.name();
                    return this.fail(|worker| WorkerError::Unexpected { worker, frame });
                }
            }
        }
    }

    fn terminate(mut self: Pin<&mut Self>, request: Termination<WorkerError>) {
        self.ended = true;
        self.link.close();
        self.termination = Some(request);
    }

    fn poll_terminated(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WorkerError>> {
        Poll::Ready(self.termination.take().map_or(Ok(()), Termination::confirm))
    }
}

/// The values sent to a worker: a pull-stream sink of `Lent<In>`.
pub(crate) struct ToWorker<In> {
    pub(crate) sink: FrameSink,
    pub(crate) worker: String,
    pub(crate) link: Link,
    pub(crate) heartbeat: Duration,
    pub(crate) stats: Arc<WorkerStats>,
    pub(crate) _in: PhantomData<fn(In)>,
}

impl<S, In> Connect<S> for ToWorker<In>
where
    S: Source<Item = Lent<In>, Error = WorkerError>,
    In: Serialize,
{
    type Output = ToWorkerFuture<S>;

    fn connect(self, upstream: S) -> ToWorkerFuture<S> {
        ToWorkerFuture {
            upstream,
            sink: self.sink,
            worker: self.worker,
            link: self.link,
            idle: Box::pin(tokio::time::sleep(self.heartbeat)),
            heartbeat: self.heartbeat,
            stats: self.stats,
            pending: None,
            state: SendState::Sending,
            error: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SendState {
    /// Forwarding values.
    Sending,
    /// The values ended (`Done` or `Error` sent or being sent); heartbeats
    /// go on until the worker's side ends.
    Draining,
    /// The connection is closing: the upstream is being aborted.
    Aborting,
    /// Closing the frame sink.
    Closing,
}

pin_project! {
    /// The future that sends values to one worker.
    pub(crate) struct ToWorkerFuture<S> {
        #[pin]
        upstream: S,
        sink: FrameSink,
        worker: String,
        link: Link,
        idle: Pin<Box<Sleep>>,
        heartbeat: Duration,
        stats: Arc<WorkerStats>,
        pending: Option<Vec<u8>>,
        state: SendState,
        error: Option<WorkerError>,
    }
}

impl<S, In> Future for ToWorkerFuture<S>
where
    S: Source<Item = Lent<In>, Error = WorkerError>,
    In: Serialize,
{
    type Output = Result<(), WorkerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WorkerError>> {
        let mut this = self.project();
        loop {
            if matches!(*this.state, SendState::Sending | SendState::Draining) && this.link.poll_closed(cx) {
                // The worker's side ended: stop asking for values, so the
                // ones we hold go back to the lender.
                if *this.state == SendState::Sending {
                    this.upstream.as_mut().terminate(Termination::Abort);
                    *this.state = SendState::Aborting;
                } else {
                    *this.state = SendState::Closing;
                }
            }
            match *this.state {
                SendState::Aborting => {
                    let _ = ready!(this.upstream.as_mut().poll_terminated(cx));
                    *this.state = SendState::Closing;
                }
                SendState::Closing => {
                    // Best effort: the connection may already be broken.
                    let _ = ready!(this.sink.as_mut().poll_close(cx));
                    return Poll::Ready(this.error.take().map_or(Ok(()), Err));
                }
                SendState::Sending | SendState::Draining => {
                    if this.pending.is_some() {
                        // Only take the frame once the sink can accept it: a
                        // frame taken while the sink is full would be lost.
                        let sent = ready!(this.sink.as_mut().poll_ready(cx)).and_then(|()| {
                            let frame = this.pending.take().expect("checked above");
                            this.sink.as_mut().start_send(frame)
                        });
                        if let Err(source) = sent {
                            *this.error = Some(broken(this.link, this.worker, this.state, source));
                            continue;
                        }
                        this.idle.as_mut().reset(Instant::now() + *this.heartbeat);
                    }
                    if *this.state == SendState::Sending {
                        match this.upstream.as_mut().poll_ask(cx) {
                            Poll::Ready(Answer::Value(lent)) => {
                                this.stats.sent();
                                let payload = encode_payload(&lent.value);
                                *this.pending = Some(Frame::Value { id: lent.id, payload }.encode());
                                continue;
                            }
                            Poll::Ready(Answer::Done) => {
                                *this.pending = Some(Frame::Done.encode());
                                *this.state = SendState::Draining;
                                continue;
                            }
                            Poll::Ready(Answer::Error(e)) => {
                                *this.pending = Some(
                                    Frame::Error {
                                        message: e.to_string(),
                                    }
                                    .encode(),
                                );
                                *this.state = SendState::Draining;
                                continue;
                            }
                            Poll::Pending => {}
                        }
                    }
                    if let Poll::Ready(Err(source)) = this.sink.as_mut().poll_flush(cx) {
                        *this.error = Some(broken(this.link, this.worker, this.state, source));
                        continue;
                    }
                    if this.idle.as_mut().poll(cx).is_ready() {
                        *this.pending = Some(Frame::Heartbeat.encode());
                        continue;
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

/// The connection broke while sending: close the link, so that the results
/// side stops and this side aborts its upstream (the values it holds go back
/// to the lender) on the next turn of the loop.
fn broken(
    link: &Link,
    worker: &str,
    state: &mut SendState,
    source: crate::transport::TransportError,
) -> WorkerError {
    link.close();
    if *state == SendState::Draining {
        *state = SendState::Closing;
    }
    tracing::warn!(worker = %worker, error = %source, "sending to worker failed");
    WorkerError::Transport {
        worker: worker.to_string(),
        source,
    }
}

pin_project! {
    /// After the Limiter: reports the values a worker failed to the lender
    /// (they are lent again, or poisoned past the retry cap) and passes the
    /// results on. A failure for a value the worker does not hold ends the
    /// connection with [`WorkerError::UnknownValue`].
    pub(crate) struct Rejections<S, In, Out, E> {
        #[pin]
        upstream: S,
        rejecter: Rejecter<In, Out, E>,
        worker: String,
        failure: Option<WorkerError>,
        closing: Closing<WorkerError>,
    }
}

/// The module form of [`Rejections`], for `pull!`.
pub(crate) struct RejectFailures<In, Out, E> {
    pub(crate) rejecter: Rejecter<In, Out, E>,
    pub(crate) worker: String,
}

impl<S, In, Out, E> Connect<S> for RejectFailures<In, Out, E>
where
    S: Source<Item = Lent<Outcome<Out>>, Error = WorkerError>,
{
    type Output = Rejections<S, In, Out, E>;

    fn connect(self, upstream: S) -> Self::Output {
        Rejections {
            upstream,
            rejecter: self.rejecter,
            worker: self.worker,
            failure: None,
            closing: Closing::Open,
        }
    }
}

impl<S, In, Out, E> Source for Rejections<S, In, Out, E>
where
    S: Source<Item = Lent<Outcome<Out>>, Error = WorkerError>,
{
    type Item = Lent<Out>;
    type Error = WorkerError;

    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<Lent<Out>, WorkerError>> {
        let mut this = self.project();
        loop {
            if this.failure.is_some() {
                let _ = ready!(this.closing.poll_closed_for_ask(this.upstream.as_mut(), cx));
                return Poll::Ready(this.failure.take().map_or(Answer::Done, Answer::Error));
            }
            if !this.closing.is_open() {
                return Poll::Ready(Answer::Done);
            }
            match ready!(this.upstream.as_mut().poll_ask(cx)) {
                Answer::Value(Lent { id, value: Ok(out) }) => {
                    return Poll::Ready(Answer::Value(Lent::new(id, out)));
                }
                Answer::Value(Lent {
                    id,
                    value: Err(reason),
                }) => {
                    if this.rejecter.reject(id, reason.to_string()) {
                        tracing::info!(worker = %this.worker, id, reason = %reason, "value failed on a worker; it is lent again");
                    } else {
                        *this.failure = Some(WorkerError::UnknownValue {
                            worker: this.worker.clone(),
                            id,
                        });
                        this.closing
                            .close_for_ask(this.upstream.as_mut(), Termination::Abort);
                    }
                }
                Answer::Done => {
                    this.closing.ended();
                    return Poll::Ready(Answer::Done);
                }
                Answer::Error(e) => {
                    this.closing.ended();
                    return Poll::Ready(Answer::Error(e));
                }
            }
        }
    }

    fn terminate(self: Pin<&mut Self>, request: Termination<WorkerError>) {
        let this = self.project();
        *this.failure = None;
        this.closing.terminate(this.upstream, request);
    }

    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WorkerError>> {
        let this = self.project();
        this.closing.poll_terminated(this.upstream, cx)
    }
}
