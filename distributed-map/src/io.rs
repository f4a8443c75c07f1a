//! The thin adapter between a transport and a session core: it reads
//! frames into the core, writes the core's frames, and arms its timer. It
//! takes no protocol decision; the master's and the worker's adapters share it.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::time::Sleep;

use crate::codec::Codec;
use crate::frame::{Frame, FrameError};
use crate::session::{MasterSession, WorkerSession};
use crate::transport::{Connection, FrameSink, FrameStream, TransportError};

/// The events and effects every session core has.
pub(crate) trait SessionCore {
    fn handle_frame(&mut self, now: Instant, frame: Frame);
    fn handle_bad_frame(&mut self, now: Instant, error: FrameError);
    fn handle_closed(&mut self, now: Instant, error: Option<String>);
    fn handle_timeout(&mut self, now: Instant);
    fn poll_transmit(&mut self, now: Instant) -> Option<Frame>;
    fn poll_timeout(&self) -> Option<Instant>;
    fn is_closed(&self) -> bool;
    fn is_done_sending(&self) -> bool;
}

macro_rules! session_core {
    ($t:ty) => {
        impl SessionCore for $t {
            fn handle_frame(&mut self, now: Instant, frame: Frame) {
                <$t>::handle_frame(self, now, frame)
            }
            fn handle_bad_frame(&mut self, now: Instant, error: FrameError) {
                <$t>::handle_bad_frame(self, now, error)
            }
            fn handle_closed(&mut self, now: Instant, error: Option<String>) {
                <$t>::handle_closed(self, now, error)
            }
            fn handle_timeout(&mut self, now: Instant) {
                <$t>::handle_timeout(self, now)
            }
            fn poll_transmit(&mut self, now: Instant) -> Option<Frame> {
                <$t>::poll_transmit(self, now)
            }
            fn poll_timeout(&self) -> Option<Instant> {
                <$t>::poll_timeout(self)
            }
            fn is_closed(&self) -> bool {
                <$t>::is_closed(self)
            }
            fn is_done_sending(&self) -> bool {
                <$t>::is_done_sending(self)
            }
        }
    };
}
session_core!(MasterSession);
session_core!(WorkerSession);

/// The current time on tokio's clock (paused in tests), as the cores' `Instant`.
pub(crate) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SinkState {
    Open,
    /// Closed by us, or broken: never polled again (a sink that failed once
    /// may panic if polled again).
    Gone,
}

/// At most this many frames are read in one round, so that a fast peer
/// cannot starve the rest of the task.
const READ_BUDGET: usize = 64;

/// A connection's two halves, its codec, and the core's timer.
pub(crate) struct FrameIo {
    pub(crate) peer: String,
    sink: FrameSink,
    stream: FrameStream,
    codec: Codec,
    max_frame: usize,
    timer: Pin<Box<Sleep>>,
    armed: Option<Instant>,
    /// The waker the timer was polled with since it was last set (it holds it).
    registered: Option<std::task::Waker>,
    sink_state: SinkState,
    read_closed: bool,
    /// Frames were given to the sink since its last flush.
    unflushed: bool,
    /// The task woke itself to let the other tasks add frames before a flush.
    pending_yield: bool,
}

impl FrameIo {
    pub(crate) fn new(connection: Connection, codec: Codec, max_frame: usize) -> Self {
        let Connection { peer, sink, stream } = connection;
        FrameIo {
            peer,
            sink,
            stream,
            codec,
            max_frame,
            timer: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
            armed: None,
            registered: None,
            sink_state: SinkState::Open,
            read_closed: false,
            unflushed: false,
            pending_yield: false,
        }
    }

    pub(crate) fn codec(&self) -> Codec {
        self.codec
    }

    /// One round of I/O for `core`: frames read, timers fired, frames
    /// written. Returns `Ready` once the session is over and the transport
    /// closed (or given up); the caller handles the core's events after
    /// each round, and calls again while they produce frames.
    pub(crate) fn poll_round<C: SessionCore>(&mut self, core: &mut C, cx: &mut Context<'_>) -> Poll<()> {
        let now = now();
        self.read(core, now, cx);
        self.fire_timer(core, now, cx);
        self.write(core, now, cx);
        if core.is_closed() {
            return Poll::Ready(());
        }
        if core.is_done_sending() && self.sink_state == SinkState::Open {
            match self.sink.as_mut().poll_close(cx) {
                Poll::Ready(_) => {
                    self.sink_state = SinkState::Gone;
                    return Poll::Ready(());
                }
                Poll::Pending => {}
            }
        }
        if core.is_done_sending() && self.sink_state == SinkState::Gone {
            return Poll::Ready(());
        }
        self.arm(core, now, cx);
        Poll::Pending
    }

    fn read<C: SessionCore>(&mut self, core: &mut C, now: Instant, cx: &mut Context<'_>) {
        for _ in 0..READ_BUDGET {
            if self.read_closed || core.is_closed() || core.is_done_sending() {
                return;
            }
            match self.stream.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => match self.codec.decode(&bytes, self.max_frame) {
                    Ok(frame) => core.handle_frame(now, frame),
                    Err(e) => core.handle_bad_frame(now, e),
                },
                Poll::Ready(Some(Err(TransportError::Closed { .. }))) => {
                    self.read_closed = true;
                    core.handle_closed(now, None);
                }
                Poll::Ready(Some(Err(e))) => {
                    self.read_closed = true;
                    core.handle_closed(now, Some(e.to_string()));
                }
                Poll::Ready(None) => {
                    self.read_closed = true;
                    core.handle_closed(now, None);
                }
                Poll::Pending => return,
            }
        }
        // More may be waiting: come back after the others had their turn.
        cx.waker().wake_by_ref();
    }

    fn fire_timer<C: SessionCore>(&mut self, core: &mut C, now: Instant, cx: &mut Context<'_>) {
        // A deadline that passed fires; the core then sets a later one.
        for _ in 0..4 {
            let Some(deadline) = core.poll_timeout() else {
                return;
            };
            if !self.poll_deadline(deadline, now, cx) {
                return;
            }
            self.armed = None;
            core.handle_timeout(now);
        }
        cx.waker().wake_by_ref();
    }

    /// Arms the timer for the core's next deadline after a round.
    fn arm<C: SessionCore>(&mut self, core: &C, now: Instant, cx: &mut Context<'_>) {
        if let Some(deadline) = core.poll_timeout() {
            if self.poll_deadline(deadline, now, cx) {
                cx.waker().wake_by_ref();
            }
        }
    }

    /// Sets the timer to `deadline` unless it is set to an earlier time
    /// already (the core's deadlines move later with every frame sent or
    /// heard; a timer that fires early costs one harmless `handle_timeout`,
    /// while resetting it for every frame costs a timer-wheel update each),
    /// and tells whether it has passed. A timer that is not due yet is polled
    /// once after it is set, to hold the task's waker, and not again while
    /// the waker is the same, so a busy connection does not pay a timer poll
    /// for every frame.
    fn poll_deadline(&mut self, deadline: Instant, now: Instant, cx: &mut Context<'_>) -> bool {
        if self.armed.is_none_or(|armed| armed > deadline) {
            self.timer
                .as_mut()
                .reset(tokio::time::Instant::from_std(deadline));
            self.armed = Some(deadline);
            self.registered = None;
        }
        let holds = self.registered.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if holds && self.armed.is_some_and(|armed| now < armed) {
            return false;
        }
        self.registered = Some(cx.waker().clone());
        self.timer.as_mut().poll(cx).is_ready()
    }

    fn write<C: SessionCore>(&mut self, core: &mut C, now: Instant, cx: &mut Context<'_>) {
        if self.sink_state != SinkState::Open {
            // Nothing can be sent any more: what the core queues is dropped.
            while core.poll_transmit(now).is_some() {}
            return;
        }
        let broken = loop {
            match self.sink.as_mut().poll_ready(cx) {
                Poll::Ready(Ok(())) => match core.poll_transmit(now) {
                    Some(frame) => {
                        self.unflushed = true;
                        if let Err(e) = self.sink.as_mut().start_send(self.codec.encode(&frame)) {
                            break Some(e);
                        }
                    }
                    None => break None,
                },
                Poll::Ready(Err(e)) => break Some(e),
                Poll::Pending => break None,
            }
        };
        let broken = broken.or_else(|| {
            if !self.unflushed || !self.yielded(cx) {
                return None;
            }
            match self.sink.as_mut().poll_flush(cx) {
                Poll::Ready(Err(e)) => Some(e),
                Poll::Ready(Ok(())) => {
                    self.unflushed = false;
                    None
                }
                Poll::Pending => None,
            }
        });
        if let Some(e) = broken {
            self.sink_state = SinkState::Gone;
            core.handle_closed(now, Some(e.to_string()));
        }
    }
}

impl FrameIo {
    /// Whether the task has yielded once since frames were queued, so that
    /// the other tasks had their turn to queue more before one flush.
    fn yielded(&mut self, cx: &mut Context<'_>) -> bool {
        if self.pending_yield {
            self.pending_yield = false;
            true
        } else {
            self.pending_yield = true;
            cx.waker().wake_by_ref();
            false
        }
    }
}

/// What an adapter's handling of the core's events came to, after a round.
pub(crate) enum Step<R> {
    /// The adapter is done, with this.
    Done(R),
    /// Events were handled (they may have produced frames): go round again.
    Progressed,
    /// Nothing happened: wait to be woken.
    Idle,
}

impl FrameIo {
    /// Goes round (I/O, then `step`, which handles the core's events and is
    /// told whether the session is over) until `step` is done, or nothing
    /// happens. `None` once the session is over and `step` did not finish.
    pub(crate) fn drive<C: SessionCore, R>(
        &mut self,
        core: &mut C,
        cx: &mut Context<'_>,
        mut step: impl FnMut(&mut C, &mut Context<'_>, bool) -> Step<R>,
    ) -> Poll<Option<R>> {
        loop {
            let finished = self.poll_round(core, cx).is_ready();
            match step(core, cx, finished) {
                Step::Done(r) => return Poll::Ready(Some(r)),
                _ if finished => return Poll::Ready(None),
                Step::Progressed => {}
                Step::Idle => return Poll::Pending,
            }
        }
    }
}

impl std::fmt::Debug for FrameIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameIo")
            .field("peer", &self.peer)
            .field("codec", &self.codec)
            .finish_non_exhaustive()
    }
}
