//! Codecs: how [`Frame`]s, and the user's values and results inside them,
//! become bytes. The session cores see frames, never bytes; the transports
//! see bytes, never frames.
//!
//! [`Codec::Postcard`] is the codec of native workers: a frame is the
//! [postcard](https://docs.rs/postcard) encoding of the [`Frame`] enum, and a
//! payload is the postcard encoding of the user's value or result.
//!
//! [`Codec::Json`] is the codec of browser workers: a frame is one JSON
//! object (`{"type":"value","id":0,"value":"3"}`), and a payload is the JSON
//! encoding of the user's value or result, written into the frame as it is.
//! It is a second codec for the same frames and the same session cores, not
//! a second protocol (`docs/PROTOCOL.md`, "The JSON codec").
//!
//! [`Line`] is a byte string that travels as bytes with postcard and as a
//! string with JSON, so that one map serves both kinds of workers.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod json;

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
    /// JSON for frames and payloads (WebSocket text messages): the codec of
    /// browser workers.
    Json,
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
            Codec::Json => json::encode(frame),
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
            Codec::Json => json::decode(bytes),
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
            Codec::Json => serde_json::to_vec(value).expect("serde values encode as JSON"),
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
            Codec::Json => serde_json::from_slice(bytes).map_err(|e| FrameError::Malformed {
                size: bytes.len(),
                reason: format!("payload: {e}"),
            }),
        }
    }
}

/// A line of bytes (or any byte string) that travels as bytes with
/// [`Codec::Postcard`] (exactly as a `Vec<u8>` does, so native workers read
/// it as one) and as a JSON string with [`Codec::Json`], so that browser
/// workers see text.
///
/// Bytes that are not UTF-8 cannot be a JSON string: on their way to a
/// browser, each invalid sequence becomes U+FFFD (�), as
/// [`String::from_utf8_lossy`] does. A string from a browser comes back as
/// its UTF-8 bytes.
///
/// ```
/// use pando_distributed_map::codec::{Codec, Line};
///
/// let line = Line(b"caf\xc3\xa9".to_vec());
/// assert_eq!(Codec::Postcard.encode_payload(&line), Codec::Postcard.encode_payload(&line.0));
/// assert_eq!(Codec::Json.encode_payload(&line), "\"café\"".as_bytes());
/// assert_eq!(Codec::Json.encode_payload(&Line(vec![b'a', 0xff])), "\"a\u{fffd}\"".as_bytes());
/// assert_eq!(Codec::Json.decode_payload::<Line>(b"\"x\"").unwrap(), Line(b"x".to_vec()));
/// assert!(Codec::Json.decode_payload::<Line>(b"5").is_err()); // not a string
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Line(pub Vec<u8>);

impl Serialize for Line {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&String::from_utf8_lossy(&self.0))
        } else {
            serializer.serialize_bytes(&self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Line {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Line;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Line, E> {
                Ok(Line(v.as_bytes().to_vec()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Line, E> {
                Ok(Line(v.into_bytes()))
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Line, E> {
                Ok(Line(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Line, E> {
                Ok(Line(v))
            }
        }
        if deserializer.is_human_readable() {
            deserializer.deserialize_string(Visit)
        } else {
            deserializer.deserialize_byte_buf(Visit)
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
            Frame::Values {
                values: vec![
                    crate::frame::Item {
                        id: 1,
                        payload: vec![1, 0x33],
                    },
                    crate::frame::Item {
                        id: 2,
                        payload: vec![],
                    },
                ],
            },
            Frame::Results {
                results: vec![crate::frame::Item {
                    id: 300,
                    payload: vec![9; 200],
                }],
            },
        ]
    }

    #[test]
    fn a_coalesced_frames_length_is_computed_without_encoding_it() {
        for frame in every_frame() {
            if let Some(len) = frame.encoded_len() {
                assert_eq!(len, Codec::Postcard.encode(&frame).len(), "{frame:?}");
            }
        }
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
    fn every_frame_round_trips_in_json_and_every_truncation_is_an_error() {
        for frame in every_frame() {
            // JSON payloads are JSON text: the ones above are not, so make them so.
            let frame = match frame {
                Frame::Value { id, .. } => Frame::Value {
                    id,
                    payload: b"\"v\"".to_vec(),
                },
                Frame::Result { id, .. } => Frame::Result {
                    id,
                    payload: b"[1,2]".to_vec(),
                },
                Frame::Values { values } | Frame::Results { results: values } if values.len() == 2 => {
                    Frame::Values {
                        values: values
                            .into_iter()
                            .map(|i| crate::frame::Item {
                                id: i.id,
                                payload: b"null".to_vec(),
                            })
                            .collect(),
                    }
                }
                Frame::Results { results } => Frame::Results {
                    results: results
                        .into_iter()
                        .map(|i| crate::frame::Item {
                            id: i.id,
                            payload: b"\"r\"".to_vec(),
                        })
                        .collect(),
                },
                other => other,
            };
            let bytes = Codec::Json.encode(&frame);
            assert_eq!(Codec::Json.decode(&bytes, DEFAULT_MAX_FRAME).unwrap(), frame);
            for end in 0..bytes.len() {
                assert!(
                    Codec::Json.decode(&bytes[..end], DEFAULT_MAX_FRAME).is_err(),
                    "prefix of {end} bytes of {frame:?}"
                );
            }
        }
    }

    #[test]
    fn json_frames_read_as_docs_protocol_says() {
        let frame = Frame::Values {
            values: vec![crate::frame::Item {
                id: 0,
                payload: Codec::Json.encode_payload(&Line(b"3".to_vec())),
            }],
        };
        assert_eq!(
            Codec::Json.encode(&frame),
            br#"{"type":"values","values":[{"id":0,"value":"3"}]}"#
        );
        let result = br#"{"type":"result","id":7,"value":"9"}"#;
        assert_eq!(
            Codec::Json.decode(result, DEFAULT_MAX_FRAME).unwrap(),
            Frame::Result {
                id: 7,
                payload: b"\"9\"".to_vec()
            }
        );
    }

    #[test]
    fn hostile_json_is_a_malformed_frame_naming_the_fault() {
        let reason = |bytes: &[u8]| match Codec::Json.decode(bytes, DEFAULT_MAX_FRAME) {
            Err(FrameError::Malformed { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert!(reason(b"{not json").starts_with("not a JSON frame"));
        assert!(reason(&[b'"', 0xff, b'"']).starts_with("not UTF-8"));
        assert!(reason(br#"{"type":"result","id":"seven"}"#).contains("invalid type"));
        assert!(reason(br#"{"type":"result"}"#).contains("needs \"id\""));
        assert!(reason(br#"{"type":"launch"}"#).contains("unknown frame type"));
        assert!(reason(br#"{"type":"done","extra":1}"#).contains("unknown field"));
        assert!(reason(br#"{"type":"done"} {}"#).contains("trailing"));
        assert_eq!(
            Codec::Json.decode(&[b' '; 10], 4),
            Err(FrameError::TooLarge { size: 10, max: 4 })
        );
    }

    #[test]
    fn a_line_is_a_vec_of_bytes_to_postcard() {
        let line = Line(vec![0, 0xff, b'\n']);
        let bytes = Codec::Postcard.encode_payload(&line);
        assert_eq!(bytes, Codec::Postcard.encode_payload(&line.0));
        assert_eq!(Codec::Postcard.decode_payload::<Vec<u8>>(&bytes).unwrap(), line.0);
        assert_eq!(Codec::Postcard.decode_payload::<Line>(&bytes).unwrap(), line);
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
