//! The wire protocol's frames (see `docs/PROTOCOL.md`): a versioned
//! handshake, then values, results, failures, done, error and heartbeats.
//!
//! A [`Frame`] is plain data: the session cores ([`session`](crate::session))
//! see frames, never bytes, and a [`Codec`](crate::codec::Codec) turns them
//! into bytes and back. The user's values and results travel inside
//! [`Frame::Value`] and [`Frame::Result`] as payloads encoded by the same codec.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The version of the wire protocol. A peer with another version is rejected
/// during the handshake, before any value is sent.
///
/// Version 2 added `heartbeat_timeout_ms`, `value_timeout_ms` and `max_frame`
/// to [`Frame::Welcome`]; version 3 added its `mode` ([`CommandMode`]).
pub const PROTOCOL_VERSION: u16 = 3;

/// The largest frame accepted by default (16 MiB). Larger frames are refused
/// by the transports and by the codecs.
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// How a worker that runs the master's command (`pando work`) runs it: the
/// master tells each worker in [`Frame::Welcome`], so that the worker needs
/// no matching flag. Library workers, which apply their own function, may
/// ignore it.
///
/// On the wire it is an enum: its variant index, a one-byte varint
/// (`PerValue` 0, `Lines` 1, `Pipe` 2).
///
/// ```
/// use pando_distributed_map::CommandMode;
/// use pando_distributed_map::codec::Codec;
///
/// assert_eq!(CommandMode::default(), CommandMode::PerValue);
/// assert_eq!(Codec::Postcard.encode_payload(&CommandMode::Lines), [1]);
/// assert_eq!(Codec::Postcard.encode_payload(&CommandMode::Pipe), [2]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CommandMode {
    /// The command runs once per value: the value is its standard input,
    /// its standard output is the result (the default).
    #[default]
    PerValue,
    /// The command is a line filter, run once per worker (`pando --lines`):
    /// each value is written to it as one line, and it answers each input
    /// line with one output line, in order, without waiting for more input.
    Lines,
    /// Each value is a block of whole lines (`pando --pipe`): the command
    /// runs once per block, with the block as its standard input, and its
    /// whole standard output is the block's result.
    Pipe,
}

/// One message of the wire protocol.
///
/// A connection starts with the worker's [`Frame::Hello`], answered by the
/// master's [`Frame::Welcome`] or [`Frame::Reject`]. Then the master sends
/// [`Frame::Value`]s and the worker answers each with one [`Frame::Result`]
/// or [`Frame::Failed`] with the same id. Both sides send
/// [`Frame::Heartbeat`]s while idle; the master ends with [`Frame::Done`]
/// (the worker answers what it holds, then sends its own `Done`), and either
/// side stops at once with [`Frame::Error`].
///
/// The variants are numbered in this order on the wire (postcard's variant
/// index): `Hello` 0, `Welcome` 1, `Reject` 2, `Value` 3, `Result` 4,
/// `Failed` 5, `Done` 6, `Error` 7, `Heartbeat` 8.
///
/// ```
/// use pando_distributed_map::codec::Codec;
/// use pando_distributed_map::frame::{Frame, PROTOCOL_VERSION, DEFAULT_MAX_FRAME};
///
/// let hello = Frame::Hello { version: PROTOCOL_VERSION, token: "s3cret".into(), name: "laptop".into() };
/// let bytes = Codec::Postcard.encode(&hello);
/// assert_eq!(Codec::Postcard.decode(&bytes, DEFAULT_MAX_FRAME).unwrap(), hello);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// Worker → master, first frame: the protocol version, the join token,
    /// and a name for monitoring.
    Hello {
        /// The worker's [`PROTOCOL_VERSION`].
        version: u16,
        /// The join token from the join URL.
        token: String,
        /// A human-readable name for the worker (host name, for example).
        name: String,
    },
    /// Master → worker: the handshake succeeded.
    Welcome {
        /// The master's [`PROTOCOL_VERSION`].
        version: u16,
        /// The heartbeat interval, in milliseconds: each side sends a
        /// heartbeat when it has sent nothing for that long.
        heartbeat_ms: u64,
        /// How long, in milliseconds, each side waits without hearing
        /// anything from the other before it gives the connection up.
        heartbeat_timeout_ms: u64,
        /// The per-value deadline in milliseconds, if any: the worker gives
        /// up on a value that it has been processing for that long, and
        /// reports it as [`Frame::Failed`].
        value_timeout_ms: Option<u64>,
        /// The largest frame the master accepts, in bytes: a worker whose
        /// result would make a larger frame reports the value as
        /// [`Frame::Failed`] instead.
        max_frame: u64,
        /// The command the master runs on each value, for workers that run
        /// the master's command (`pando work`) and must show it to the volunteer.
        command: Vec<String>,
        /// How the worker runs the command (per value, as a line filter, or
        /// once per block of lines).
        mode: CommandMode,
    },
    /// Master → worker: the handshake failed; the connection is closed.
    Reject {
        /// Why, in one line.
        reason: String,
    },
    /// Master → worker: a value to process.
    Value {
        /// The value's id (its position in the master's input, from 0).
        id: u64,
        /// The value, encoded by the connection's codec.
        payload: Vec<u8>,
    },
    /// Worker → master: the result for value `id`.
    Result {
        /// The id of the value.
        id: u64,
        /// The result, encoded by the connection's codec.
        payload: Vec<u8>,
    },
    /// Worker → master: processing value `id` failed; it counts towards the
    /// value's retries.
    Failed {
        /// The id of the value.
        id: u64,
        /// Why, in one line.
        reason: String,
    },
    /// Master: no more values will follow. Worker: every value received has
    /// its answer, and no more frames will follow.
    Done,
    /// The sender stops because of an error; the connection closes.
    Error {
        /// Why, in one line.
        message: String,
    },
    /// Keep-alive, sent when idle.
    Heartbeat,
}

/// Bytes that cannot be decoded into a frame or a payload.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// The frame is larger than the limit.
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The frame's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not a frame of this protocol.
    #[error("malformed frame ({size} bytes): {reason}")]
    Malformed {
        /// The frame's size.
        size: usize,
        /// The decoder's explanation.
        reason: String,
    },
}

impl Frame {
    /// The frame's name, for logs and errors (`Hello`, `Value`, …).
    ///
    /// ```
    /// use pando_distributed_map::frame::Frame;
    /// assert_eq!(Frame::Done.name(), "Done");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            Frame::Hello { .. } => "Hello",
            Frame::Welcome { .. } => "Welcome",
            Frame::Reject { .. } => "Reject",
            Frame::Value { .. } => "Value",
            Frame::Result { .. } => "Result",
            Frame::Failed { .. } => "Failed",
            Frame::Done => "Done",
            Frame::Error { .. } => "Error",
            Frame::Heartbeat => "Heartbeat",
        }
    }
}
