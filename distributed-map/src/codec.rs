//! Codecs: how [`Frame`]s, and the user's values and results inside them,
//! become bytes. The session cores see frames, never bytes; the transports
//! see bytes, never frames.
//!
//! [`Codec::Postcard`] is the codec of native workers: a frame is the
//! [postcard](https://docs.rs/postcard) encoding of the [`Frame`] enum, and a
//! payload is the postcard encoding of the user's value or result.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::frame::{Frame, FrameError};

/// A codec for frames and payloads.
///
/// ```
/// use pando_distributed_map::codec::Codec;
/// use pando_distributed_map::frame::Frame;
///
/// let codec = Codec::Postcard;
/// let payload = codec.encode_payload(&(7u32, "seven".to_string()));
/// let frame = Frame::Value { id: 3, payload };
/// let bytes = codec.encode(&frame);
/// let Frame::Value { id, payload } = codec.decode(&bytes, 1024).unwrap() else { unreachable!() };
/// assert_eq!(id, 3);
/// assert_eq!(codec.decode_payload::<(u32, String)>(&payload).unwrap(), (7, "seven".to_string()));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// postcard for frames and payloads (binary WebSocket messages, or
    /// length-delimited TCP frames).
    #[default]
    Postcard,
}

impl Codec {
    /// Encodes a frame.
    ///
    /// ```
    /// use pando_distributed_map::{codec::Codec, frame::Frame};
    /// assert_eq!(Codec::Postcard.encode(&Frame::Heartbeat), [8]);
    /// ```
    pub fn encode(self, frame: &Frame) -> Vec<u8> {
        match self {
            Codec::Postcard => postcard::to_stdvec(frame).expect("frames always encode"),
        }
    }

    /// Decodes a frame, refusing frames larger than `max` bytes and bytes
    /// that are not exactly one frame.
    ///
    /// ```
    /// use pando_distributed_map::{codec::Codec, frame::FrameError};
    /// assert!(matches!(Codec::Postcard.decode(&[0xff, 0xff], 1024), Err(FrameError::Malformed { .. })));
    /// assert_eq!(Codec::Postcard.decode(&[0; 10], 4), Err(FrameError::TooLarge { size: 10, max: 4 }));
    /// ```
    pub fn decode(self, bytes: &[u8], max: usize) -> Result<Frame, FrameError> {
        if bytes.len() > max {
            return Err(FrameError::TooLarge {
                size: bytes.len(),
                max,
            });
        }
        match self {
            Codec::Postcard => exactly_one(bytes, "", postcard::take_from_bytes::<Frame>(bytes)),
        }
    }

    /// Encodes a user value or result for a [`Frame::Value`] or [`Frame::Result`] payload.
    ///
    /// ```
    /// use pando_distributed_map::codec::Codec;
    /// // postcard: a string or a byte vector is its length (a varint), then the bytes.
    /// assert_eq!(Codec::Postcard.encode_payload("ab"), [2, b'a', b'b']);
    /// assert_eq!(Codec::Postcard.encode_payload(&b"ab".to_vec()), [2, b'a', b'b']);
    /// ```
    pub fn encode_payload<T: Serialize + ?Sized>(self, value: &T) -> Vec<u8> {
        match self {
            Codec::Postcard => postcard::to_stdvec(value).expect("serde values encode with postcard"),
        }
    }

    /// Decodes a payload made by [`encode_payload`](Codec::encode_payload).
    ///
    /// ```
    /// use pando_distributed_map::codec::Codec;
    /// assert_eq!(Codec::Postcard.decode_payload::<u64>(&[0xac, 0x02]).unwrap(), 300);
    /// assert!(Codec::Postcard.decode_payload::<u64>(&[0xac, 0x02, 0]).is_err()); // trailing byte
    /// ```
    pub fn decode_payload<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, FrameError> {
        match self {
            Codec::Postcard => exactly_one(bytes, "payload: ", postcard::take_from_bytes::<T>(bytes)),
        }
    }
}

/// Bytes that are exactly one item, or a `Malformed` error.
fn exactly_one<T>(bytes: &[u8], what: &str, decoded: postcard::Result<(T, &[u8])>) -> Result<T, FrameError> {
    match decoded {
        Ok((item, [])) => Ok(item),
        Ok((_, rest)) => Err(FrameError::Malformed {
            size: bytes.len(),
            reason: format!("{what}{} trailing bytes", rest.len()),
        }),
        Err(e) => Err(FrameError::Malformed {
            size: bytes.len(),
            reason: format!("{what}{e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::DEFAULT_MAX_FRAME;

    fn every_frame() -> Vec<Frame> {
        vec![
            Frame::Hello {
                version: 1,
                token: "t".into(),
                name: "n".into(),
            },
            Frame::Welcome {
                version: 3,
                heartbeat_ms: 500,
                heartbeat_timeout_ms: 5000,
                value_timeout_ms: Some(3000),
                max_frame: 1 << 24,
                command: vec!["sh".into(), "-c".into()],
                mode: crate::frame::CommandMode::Pipe,
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
        ]
    }

    #[test]
    fn every_frame_round_trips_and_its_first_byte_is_its_variant_index() {
        for (index, frame) in every_frame().into_iter().enumerate() {
            let bytes = Codec::Postcard.encode(&frame);
            assert_eq!(usize::from(bytes[0]), index, "{frame:?}");
            assert_eq!(Codec::Postcard.decode(&bytes, DEFAULT_MAX_FRAME).unwrap(), frame);
        }
    }

    #[test]
    fn trailing_bytes_are_malformed() {
        let mut bytes = Codec::Postcard.encode(&Frame::Done);
        bytes.push(0);
        let err = Codec::Postcard.decode(&bytes, DEFAULT_MAX_FRAME).unwrap_err();
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
        for frame in every_frame() {
            let bytes = Codec::Postcard.encode(&frame);
            for end in 0..bytes.len() {
                assert!(
                    Codec::Postcard.decode(&bytes[..end], DEFAULT_MAX_FRAME).is_err(),
                    "prefix of {end} bytes of {frame:?}"
                );
            }
        }
    }
}
