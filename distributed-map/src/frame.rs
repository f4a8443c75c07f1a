//! The wire protocol's frames (see `docs/PROTOCOL.md`): a versioned
//! handshake, then values, results, failures, done, error and heartbeats,
//! each one frame, encoded with postcard.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The version of the wire protocol. A peer with another version is rejected
/// during the handshake, before any value is sent.
pub const PROTOCOL_VERSION: u16 = 1;

/// The largest frame accepted by default (16 MiB). Larger frames are refused
/// by the transports and by [`Frame::decode`].
pub const DEFAULT_MAX_FRAME: usize = 16 * 1024 * 1024;

/// One message of the wire protocol.
///
/// A connection starts with the worker's [`Frame::Hello`], answered by the
/// master's [`Frame::Welcome`] or [`Frame::Reject`]. Then the master sends
/// [`Frame::Value`]s and the worker answers each with one [`Frame::Result`]
/// or [`Frame::Failed`] with the same id. Both sides send
/// [`Frame::Heartbeat`]s while idle; either side ends with [`Frame::Done`] or
/// [`Frame::Error`].
///
/// ```
/// use pando_distributed_map::frame::{Frame, PROTOCOL_VERSION, DEFAULT_MAX_FRAME};
///
/// let hello = Frame::Hello { version: PROTOCOL_VERSION, token: "s3cret".into(), name: "laptop".into() };
/// let bytes = hello.encode();
/// assert_eq!(Frame::decode(&bytes, DEFAULT_MAX_FRAME).unwrap(), hello);
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
        /// The command the master runs on each value, for workers that run
        /// the master's command (`pando work`) and must show it to the volunteer.
        command: Vec<String>,
    },
    /// Master → worker: the handshake failed; the connection is closed.
    Reject {
        /// Why, in one line.
        reason: String,
    },
    /// Master → worker: a value to process.
    Value {
        /// The value's id (its position in the master's input).
        id: u64,
        /// The value, encoded.
        payload: Vec<u8>,
    },
    /// Worker → master: the result for value `id`.
    Result {
        /// The id of the value.
        id: u64,
        /// The result, encoded.
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
    /// No more frames of values (master) or results (worker) will follow.
    Done,
    /// The sender stops because of an error.
    Error {
        /// Why, in one line.
        message: String,
    },
    /// Keep-alive, sent when idle.
    Heartbeat,
}

/// A frame that cannot be decoded.
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
    /// Encodes the frame with postcard.
    ///
    /// ```
    /// use pando_distributed_map::frame::Frame;
    /// assert_eq!(Frame::Heartbeat.encode().len(), 1);
    /// ```
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).expect("frames always encode")
    }

    /// Decodes a frame, refusing frames larger than `max` bytes and bytes
    /// that are not exactly one frame.
    ///
    /// ```
    /// use pando_distributed_map::frame::{Frame, FrameError};
    /// assert!(matches!(Frame::decode(&[0xff, 0xff], 1024), Err(FrameError::Malformed { .. })));
    /// assert_eq!(Frame::decode(&[0; 10], 4), Err(FrameError::TooLarge { size: 10, max: 4 }));
    /// ```
    pub fn decode(bytes: &[u8], max: usize) -> Result<Frame, FrameError> {
        if bytes.len() > max {
            return Err(FrameError::TooLarge {
                size: bytes.len(),
                max,
            });
        }
        match postcard::take_from_bytes::<Frame>(bytes) {
            Ok((frame, [])) => Ok(frame),
            Ok((_, rest)) => Err(FrameError::Malformed {
                size: bytes.len(),
                reason: format!("{} trailing bytes", rest.len()),
            }),
            Err(e) => Err(FrameError::Malformed {
                size: bytes.len(),
                reason: e.to_string(),
            }),
        }
    }

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

/// Encodes a user value or result for a [`Frame::Value`] or [`Frame::Result`] payload.
///
/// ```
/// use pando_distributed_map::frame::{decode_payload, encode_payload};
/// let bytes = encode_payload(&(1u32, "x".to_string()));
/// assert_eq!(decode_payload::<(u32, String)>(&bytes).unwrap(), (1, "x".to_string()));
/// ```
pub fn encode_payload<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("serde values encode with postcard")
}

/// Decodes a payload made by [`encode_payload`].
///
/// See [`encode_payload`] for an example.
pub fn decode_payload<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, FrameError> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(FrameError::Malformed {
            size: bytes.len(),
            reason: format!("{} trailing bytes in payload", rest.len()),
        }),
        Err(e) => Err(FrameError::Malformed {
            size: bytes.len(),
            reason: format!("payload: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_frame_round_trips() {
        let frames = [
            Frame::Hello {
                version: 1,
                token: "t".into(),
                name: "n".into(),
            },
            Frame::Welcome {
                version: 1,
                heartbeat_ms: 500,
                command: vec!["sh".into(), "-c".into()],
            },
            Frame::Reject {
                reason: "wrong token".into(),
            },
            Frame::Value {
                id: u64::MAX,
                payload: vec![1, 2, 3],
            },
            Frame::Result {
                id: 0,
                payload: vec![],
            },
            Frame::Failed {
                id: 7,
                reason: "exit status 1".into(),
            },
            Frame::Done,
            Frame::Error {
                message: "bye".into(),
            },
            Frame::Heartbeat,
        ];
        for frame in frames {
            assert_eq!(Frame::decode(&frame.encode(), DEFAULT_MAX_FRAME).unwrap(), frame);
        }
    }

    #[test]
    fn trailing_bytes_are_malformed() {
        let mut bytes = Frame::Done.encode();
        bytes.push(0);
        let err = Frame::decode(&bytes, DEFAULT_MAX_FRAME).unwrap_err();
        assert_eq!(
            err,
            FrameError::Malformed {
                size: 2,
                reason: "1 trailing bytes".into()
            }
        );
    }

    #[test]
    fn every_truncation_of_a_frame_is_an_error_not_a_panic() {
        let bytes = Frame::Value {
            id: 300,
            payload: vec![9; 40],
        }
        .encode();
        for end in 0..bytes.len() {
            assert!(
                Frame::decode(&bytes[..end], DEFAULT_MAX_FRAME).is_err(),
                "prefix of {end} bytes"
            );
        }
    }
}
