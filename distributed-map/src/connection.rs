//! The master's adapter for one worker connection: it moves frames between
//! the transport and the [`MasterSession`] core, and exposes the session to
//! the lender as a pull-stream duplex, [`FromWorker`] (a source of results)
//! and [`ToWorker`] (a sink of values). The master wraps the pair in a
//! Limiter (the batch size) and attaches it to a StreamLender sub-stream:
//! `Sk O ⇒ Limiter(Duplex(FromWorker, ToWorker)) ⇒ Rejections ⇒ Sk I`.
//!
//! Everything here is plumbing; every protocol decision is the core's.

use std::collections::VecDeque;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use pando_lend_stream::{Lent, Rejecter};
use pando_pull_stream::closing::Closing;
use pando_pull_stream::{Answer, Connect, Source, Termination};
use pin_project_lite::pin_project;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::WorkerError;
use crate::io::{FrameIo, Step, now};
use crate::session::{MasterEvent, MasterSession, SessionError};
use crate::stats::WorkerStats;

/// What the worker answered for one value: its result, or why it failed.
pub(crate) type Outcome<Out> = Result<Out, String>;

/// The state one connection's parts share (all in one task).
pub(crate) struct Conn<Out> {
    pub(crate) session: MasterSession,
    /// The worker's name and address, once known, for logs and errors.
    pub(crate) worker: String,
    /// The name it gave in its `Hello`.
    pub(crate) name: String,
    /// Answers for the source half, in arrival order.
    answers: VecDeque<Lent<Outcome<Out>>>,
    /// How the session ended, once it has.
    ended: Option<Result<(), SessionError>>,
    /// Takes back values the worker kept past the backstop deadline.
    reclaim: Option<Box<dyn Fn(u64, String) + Send>>,
    /// Tells the lender why the values this worker holds come back.
    end_reason: Option<Box<dyn Fn(String) + Send>>,
    stats: Option<Arc<WorkerStats>>,
    /// The driver changed something the pipeline must see (an answer, the
    /// end): the connection's task polls the pipeline again. The parts all
    /// run in that one task, so they need no wakers between them.
    for_pipeline: bool,
    /// The pipeline changed something the driver must see (a value to send,
    /// the end of the values, a close): the task polls the driver again.
    for_driver: bool,
}

/// Which parts of a connection's task have something new to see.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Work {
    /// The pipeline (the lender's side).
    pub(crate) pipeline: bool,
    /// The driver (the session's I/O).
    pub(crate) driver: bool,
}

impl<Out> Conn<Out> {
    pub(crate) fn new(session: MasterSession, peer: &str) -> Self {
        Conn {
            session,
            worker: peer.to_string(),
            name: String::new(),
            answers: VecDeque::new(),
            ended: None,
            reclaim: None,
            end_reason: None,
            stats: None,
            for_pipeline: false,
            for_driver: false,
        }
    }

    /// Tells the connection's task to poll the driver again.
    fn touch(&mut self) {
        self.for_driver = true;
    }

    /// Which parts have something new to see since the last call.
    pub(crate) fn take_work(&mut self) -> Work {
        Work {
            pipeline: std::mem::take(&mut self.for_pipeline),
            driver: std::mem::take(&mut self.for_driver),
        }
    }

    /// How the session ended, if it has.
    pub(crate) fn ended(&self) -> Option<&Result<(), SessionError>> {
        self.ended.as_ref()
    }

    /// Connects the session to its lender sub-stream: its statistics, how to
    /// take back a timed-out value, and how to say why the values it holds
    /// come back when it ends.
    pub(crate) fn attach(
        &mut self,
        stats: Arc<WorkerStats>,
        reclaim: impl Fn(u64, String) + Send + 'static,
        end_reason: impl Fn(String) + Send + 'static,
    ) {
        self.stats = Some(stats);
        self.reclaim = Some(Box::new(reclaim));
        self.end_reason = Some(Box::new(end_reason));
    }
}

/// A connection's shared state.
pub(crate) type SharedConn<Out> = Arc<Mutex<Conn<Out>>>;

pub(crate) fn lock<Out>(conn: &SharedConn<Out>) -> MutexGuard<'_, Conn<Out>> {
    conn.lock().unwrap_or_else(|p| p.into_inner())
}

/// Drives the connection's I/O and hands the core's events on: results and
/// failures to the source half, timed-out values to the lender, the `Hello`
/// to `admit` (which returns `Err(reason)` to refuse). Resolves when the
/// session is over, or, with `until_joined`, as soon as the worker is admitted.
pub(crate) fn poll_drive<Out: DeserializeOwned>(
    conn: &SharedConn<Out>,
    io: &mut FrameIo,
    admit: &mut dyn FnMut(&str) -> Result<(), String>,
    until_joined: bool,
    cx: &mut Context<'_>,
) -> Poll<()> {
    let mut guard = lock(conn);
    let c = &mut *guard;
    let Conn {
        session,
        worker,
        name,
        answers,
        ended,
        reclaim,
        end_reason,
        stats,
        for_pipeline,
        for_driver: _,
    } = c;
    let peer = io.peer.clone();
    let codec = io.codec();
    let done = io.drive(session, cx, |session, _, finished| {
        let mut step = Step::Idle;
        while let Some(event) = session.poll_event() {
            step = Step::Progressed;
            let now = now();
            match event {
                MasterEvent::Hello { name: given } => {
                    *worker = format!("{given} ({peer})");
                    name.clone_from(&given);
                    match admit(&given) {
                        Ok(()) => {
                            session.admit(now);
                            tracing::info!("worker {worker} joined");
                        }
                        Err(reason) => session.refuse(now, reason),
                    }
                }
                MasterEvent::Result { id, payload } => match codec.decode_payload::<Out>(&payload) {
                    Ok(out) => {
                        if let Some(stats) = stats {
                            stats.result();
                        }
                        answers.push_back(Lent::new(id, Ok(out)));
                        *for_pipeline = true;
                    }
                    Err(e) => session.handle_bad_frame(now, e),
                },
                MasterEvent::Failed { id, reason } => {
                    if let Some(stats) = stats {
                        stats.failure();
                    }
                    answers.push_back(Lent::new(id, Err(reason)));
                    *for_pipeline = true;
                }
                MasterEvent::TimedOut { id, reason } => {
                    tracing::warn!("value #{id} timed out on worker {worker}: {reason}; it is lent again");
                    if let Some(reclaim) = reclaim {
                        reclaim(id, format!("worker {worker}: {reason}"));
                    }
                }
                MasterEvent::Slow { id, held } => {
                    tracing::warn!(
                        "value #{id} (input no. {}) has been held by worker {worker} for {held:.0?} without a result; \
                         a value timeout (pando --timeout, MapConfig::value_timeout) would give up on it",
                        id + 1,
                    );
                }
                MasterEvent::Closed(result) => {
                    if let (Err(reason), Some(end_reason)) = (&result, &end_reason) {
                        end_reason(format!("worker {worker} {reason}"));
                    }
                    *ended = Some(result);
                    *for_pipeline = true;
                }
            }
        }
        if !finished && until_joined && session.is_running() {
            return Step::Done(());
        }
        step
    });
    done.map(|_| ())
}

/// The results a worker sends: a source of `Lent<Outcome<Out>>`.
///
/// `Failed` answers are answers too (so the Limiter counts the value as out
/// of process); [`Rejections`], after the Limiter, reports them to the
/// lender. When the session ends abnormally, the source ends with the
/// [`WorkerError`] naming the worker.
pub(crate) struct FromWorker<Out> {
    pub(crate) conn: SharedConn<Out>,
    pub(crate) termination: Option<Termination<WorkerError>>,
}

impl<Out> Unpin for FromWorker<Out> {}

impl<Out> Source for FromWorker<Out> {
    type Item = Lent<Outcome<Out>>;
    type Error = WorkerError;

    fn poll_ask(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Answer<Lent<Outcome<Out>>, WorkerError>> {
        let mut c = lock(&self.conn);
        if let Some(answer) = c.answers.pop_front() {
            return Poll::Ready(Answer::Value(answer));
        }
        match &c.ended {
            Some(Ok(())) => Poll::Ready(Answer::Done),
            Some(Err(reason)) => Poll::Ready(Answer::Error(WorkerError {
                worker: c.worker.clone(),
                reason: reason.clone(),
            })),
            // The driver's next answer (or the end) makes the task go round.
            None => Poll::Pending,
        }
    }

    fn terminate(mut self: Pin<&mut Self>, request: Termination<WorkerError>) {
        {
            // The lender stops taking results from this worker: the session ends.
            let mut c = lock(&self.conn);
            c.session.close(now(), None);
            c.touch();
        }
        self.termination = Some(request);
    }

    fn poll_terminated(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WorkerError>> {
        Poll::Ready(self.termination.take().map_or(Ok(()), Termination::confirm))
    }
}

/// The values sent to a worker: a pull-stream sink of `Lent<In>`.
pub(crate) struct ToWorker<In, Out> {
    pub(crate) conn: SharedConn<Out>,
    pub(crate) codec: crate::codec::Codec,
    pub(crate) _in: PhantomData<fn(In)>,
}

impl<S, In, Out> Connect<S> for ToWorker<In, Out>
where
    S: Source<Item = Lent<In>, Error = WorkerError>,
    In: Serialize,
{
    type Output = ToWorkerFuture<S, Out>;

    fn connect(self, upstream: S) -> ToWorkerFuture<S, Out> {
        ToWorkerFuture {
            upstream,
            conn: self.conn,
            codec: self.codec,
            aborting: false,
        }
    }
}

pin_project! {
    /// The future that hands values to the session. It polls its ask
    /// whenever it is woken, whatever the state of the socket: values wait
    /// in the session (at most the batch size, thanks to the Limiter), so a
    /// worker that stops reading never holds up the lender's input.
    pub(crate) struct ToWorkerFuture<S, Out> {
        #[pin]
        upstream: S,
        conn: SharedConn<Out>,
        codec: crate::codec::Codec,
        aborting: bool,
    }
}

impl<S, In, Out> Future for ToWorkerFuture<S, Out>
where
    S: Source<Item = Lent<In>, Error = WorkerError>,
    In: Serialize,
{
    type Output = Result<(), WorkerError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WorkerError>> {
        let mut this = self.project();
        loop {
            if *this.aborting {
                let _ = ready!(this.upstream.as_mut().poll_terminated(cx));
                return Poll::Ready(Ok(()));
            }
            {
                let c = lock(this.conn);
                if !c.session.is_running() {
                    // The session ended: stop asking, so the values this
                    // worker holds go back to the lender.
                    drop(c);
                    this.upstream.as_mut().terminate(Termination::Abort);
                    *this.aborting = true;
                    continue;
                }
            }
            let answer = ready!(this.upstream.as_mut().poll_ask(cx));
            let mut c = lock(this.conn);
            let now = now();
            match answer {
                Answer::Value(lent) => {
                    let payload = this.codec.encode_payload(&lent.value);
                    if let Some(stats) = &c.stats {
                        stats.sent();
                    }
                    c.session.send_value(now, lent.id, payload);
                    c.touch();
                }
                Answer::Done => {
                    c.session.end_values(now, None);
                    c.touch();
                    return Poll::Ready(Ok(()));
                }
                Answer::Error(e) => {
                    c.session.end_values(now, Some(e.to_string()));
                    c.touch();
                    return Poll::Ready(Ok(()));
                }
            }
        }
    }
}

pin_project! {
    /// After the Limiter: reports the values a worker failed to the lender
    /// (they are lent again, or poisoned past the retry cap) and passes the
    /// results on. A failure for a value the lender does not consider held
    /// by this worker ends the connection.
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
                    tracing::info!("value #{id} failed on worker {}: {reason}", this.worker);
                    if !this
                        .rejecter
                        .reject(id, format!("worker {}: {reason}", this.worker))
                    {
                        *this.failure = Some(WorkerError {
                            worker: this.worker.clone(),
                            reason: SessionError::UnknownValue(id),
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
