//! The wire protocol as two deterministic, sans-IO state machines, in the
//! manner of quinn-proto: [`MasterSession`] for the master's side of one
//! connection and [`WorkerSession`] for the worker's.
//!
//! A session core never touches a socket, a clock or a task. Its adapter
//! feeds it *events* — a frame received (`handle_frame`), bytes that are not
//! a frame (`handle_bad_frame`), the transport closed (`handle_closed`), a
//! timer fired (`handle_timeout`), and a value to send (master) or a result
//! computed (worker) — each with the current time, and drains its *effects*:
//! frames to send (`poll_transmit`), events for the application
//! (`poll_event`: results and failures for the lender, values for the
//! function, the session's end with its reason), and the next deadline
//! (`poll_timeout`). Tests step time by hand, without a runtime.
//!
//! The cores cover the handshake (version, join token, deadline), heartbeats
//! and liveness, the one-answer-per-value rule, per-value deadlines, `Done`
//! and `Error`, and the closing sequence. The adapters (`connection.rs` for
//! the master, [`Worker`](crate::Worker) for the worker) only move frames
//! between a transport, a [`Codec`](crate::codec::Codec) and the core.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::frame::{Frame, FrameError, Item, varint_len};

mod master;
mod worker;

pub use master::{MAX_NAME, MasterEvent, MasterSession};
pub use worker::{WorkerEvent, WorkerSession, WorkerSessionConfig};

/// Bytes a [`Frame::Value`] or [`Frame::Result`] adds around its payload, at
/// most: a value or result whose payload is within this many bytes of the
/// frame limit fails rather than being sent.
pub const RESULT_OVERHEAD: usize = 64;

/// Why a session ended abnormally, said of the peer ("the worker …", "the
/// master …"). Every variant names what the peer did or failed to do.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// The peer was refused during the handshake (wrong token, version, or a full master).
    #[error("was refused: {0}")]
    Refused(String),
    /// The peer did not complete the handshake in time.
    #[error("did not complete the handshake within {0:?}")]
    HandshakeTimeout(Duration),
    /// The peer sent bytes that are not a frame of the protocol.
    #[error("sent a malformed frame: {0}")]
    Malformed(FrameError),
    /// The peer sent a frame that is not allowed at this point.
    #[error("sent an unexpected {0} frame")]
    Unexpected(&'static str),
    /// The peer answered a value it does not hold.
    #[error("answered value #{0}, which it does not hold")]
    UnknownValue(u64),
    /// The peer sent a value it already holds.
    #[error("sent value #{0}, which it had already sent")]
    DuplicateValue(u64),
    /// The peer said it was done while it still held values.
    #[error("said it was done while holding {0} value(s)")]
    DoneEarly(usize),
    /// Nothing was heard from the peer for too long.
    #[error("sent nothing for {0:?} (heartbeat timeout)")]
    Silent(Duration),
    /// The peer did not read what was sent to it for too long.
    #[error("did not read from its connection for {0:?}")]
    NotReading(Duration),
    /// The peer closed the connection.
    #[error("disconnected")]
    Disconnected,
    /// The connection failed.
    #[error("lost its connection: {0}")]
    Transport(String),
    /// The peer stopped with an error of its own.
    #[error("stopped: {0}")]
    Remote(String),
}

/// A coalesced frame holds at most this many bytes (64 KiB), unless its first
/// item alone is larger (it then leaves alone, as a `Value` or `Result`
/// frame): enough to carry hundreds of small values in one message, small
/// enough not to hold the first of them back for long.
///
/// ```
/// use std::{sync::Arc, time::Instant};
/// use pando_distributed_map::{MapConfig, codec::Codec, frame::{Frame, PROTOCOL_VERSION}};
/// use pando_distributed_map::session::{COALESCE_BYTES, MasterSession};
///
/// let config = Arc::new(MapConfig::default());
/// let t0 = Instant::now();
/// let mut session = MasterSession::new(config.clone(), t0);
/// session.handle_frame(t0, Frame::Hello { version: PROTOCOL_VERSION, token: config.token.clone(), name: "w".into() });
/// session.admit(t0);
/// for id in 0..100 {
///     session.send_value(t0, id, vec![0; 1000]);
/// }
/// let sent: Vec<Frame> = std::iter::from_fn(|| session.poll_transmit(t0)).skip(1).collect();
/// assert_eq!(sent.len(), 2); // 100 KB of values in two messages
/// assert!(sent.iter().all(|f| Codec::Postcard.encode(f).len() <= COALESCE_BYTES));
/// ```
pub const COALESCE_BYTES: usize = 64 * 1024;

/// Which coalesced frame is being built.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Values,
    Results,
}

/// Frames waiting to be sent, each with the time it was queued, and the
/// keep-alive bookkeeping shared by both sides.
#[derive(Debug)]
struct Outbox {
    frames: VecDeque<(Frame, Instant)>,
    last_sent: Instant,
    last_heard: Instant,
}

impl Outbox {
    fn new(now: Instant) -> Self {
        Outbox {
            frames: VecDeque::new(),
            last_sent: now,
            last_heard: now,
        }
    }

    fn push(&mut self, frame: Frame, now: Instant) {
        self.frames.push_back((frame, now));
    }

    /// The next frame to send. A run of `Value` (or `Result`) frames at the
    /// front of the queue leaves as one `Values` (or `Results`) frame of at
    /// most `max_frame` bytes (and at most [`COALESCE_BYTES`], unless its
    /// first item alone is larger): one message, one header, one wake-up for
    /// the peer, instead of one each.
    fn pop(&mut self, now: Instant, max_frame: usize) -> Option<Frame> {
        let (frame, _) = self.frames.pop_front()?;
        self.last_sent = now;
        Some(match frame {
            Frame::Value { id, payload } => {
                match self.coalesce(Item { id, payload }, max_frame, Kind::Values) {
                    Ok(values) => Frame::Values { values },
                    Err(Item { id, payload }) => Frame::Value { id, payload },
                }
            }
            Frame::Result { id, payload } => {
                match self.coalesce(Item { id, payload }, max_frame, Kind::Results) {
                    Ok(results) => Frame::Results { results },
                    Err(Item { id, payload }) => Frame::Result { id, payload },
                }
            }
            other => other,
        })
    }

    /// `first` and the items of the same kind queued right behind it, as
    /// many as fit in one coalesced frame; `Err(first)` if none does.
    fn coalesce(&mut self, first: Item, max_frame: usize, kind: Kind) -> Result<Vec<Item>, Item> {
        let limit = max_frame.min(COALESCE_BYTES);
        let mut body = first.encoded_len();
        let mut first = Some(first);
        let mut items = Vec::new();
        while let Some((next, _)) = self.frames.front() {
            let size = match (kind, next) {
                (Kind::Values, Frame::Value { id, payload })
                | (Kind::Results, Frame::Result { id, payload }) => {
                    varint_len(*id) + varint_len(payload.len() as u64) + payload.len()
                }
                _ => break,
            };
            let count = items.len() as u64 + 2;
            if 1 + varint_len(count) + body + size > limit {
                break;
            }
            body += size;
            items.extend(first.take());
            match self.frames.pop_front() {
                Some((Frame::Value { id, payload } | Frame::Result { id, payload }, _)) => {
                    items.push(Item { id, payload });
                }
                _ => unreachable!("the front frame was just matched"),
            }
        }
        match first {
            Some(alone) => Err(alone),
            None => Ok(items),
        }
    }

    /// The liveness checks of a running session: the peer must be heard from
    /// and must read what is sent to it within `timeout`; a heartbeat is
    /// queued when nothing was sent for `heartbeat`.
    fn check(&mut self, now: Instant, heartbeat: Duration, timeout: Duration) -> Result<(), SessionError> {
        if now >= at(self.last_heard, timeout) {
            return Err(SessionError::Silent(timeout));
        }
        if let Some((_, queued)) = self.frames.front() {
            if now >= at(*queued, timeout) {
                return Err(SessionError::NotReading(timeout));
            }
        } else if now >= at(self.last_sent, heartbeat) {
            self.push(Frame::Heartbeat, now);
        }
        Ok(())
    }

    /// The next deadline of [`check`](Outbox::check).
    fn deadline(&self, heartbeat: Duration, timeout: Duration) -> Instant {
        let silent = at(self.last_heard, timeout);
        match self.frames.front() {
            Some((_, queued)) => silent.min(at(*queued, timeout)),
            None => silent.min(at(self.last_sent, heartbeat)),
        }
    }
}

/// `t + d`, saturating at a far future (durations near `u64::MAX` seconds
/// mean "never", not an overflow).
pub(crate) fn at(t: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    t.checked_add(d.min(FAR)).unwrap_or(t)
}

/// The earliest of two optional deadlines.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}
