//! The `frame` target: the postcard frame codec
//! ([`Codec::Postcard`](pando_distributed_map::codec::Codec)).
//!
//! Every input is used twice:
//!
//! * as the bytes of a frame off the wire: decoding never panics, an
//!   oversized input is `TooLarge`, and a frame that decodes re-encodes to
//!   bytes that decode to the same frame;
//! * as the choices of an arbitrary [`Frame`] ([`arbitrary_serde`], whatever
//!   its variants and fields): `decode(encode(f)) == f`, the encoding is
//!   canonical (encoding the decoded frame gives the same bytes), and every
//!   strict prefix of it, and the encoding with a byte added, is a
//!   `Malformed` error, never a panic and never another frame.

use arbitrary::Unstructured;
use pando_distributed_map::codec::Codec;
use pando_distributed_map::frame::{Frame, FrameError};

use crate::arbitrary_serde;

/// Runs the `frame` target on one input.
///
/// # Panics
///
/// On a violated property, naming it (libFuzzer records the input).
///
/// ```
/// use pando_distributed_map::{codec::Codec, frame::Frame};
/// pando_fuzz::frame::check(&Codec::Postcard.encode(&Frame::Heartbeat));
/// pando_fuzz::frame::check(&[0xff; 40]);
/// ```
pub fn check(data: &[u8]) {
    let codec = Codec::Postcard;

    // The bytes as they come off the wire.
    match codec.decode(data, usize::MAX) {
        Ok(frame) => {
            let again = codec.encode(&frame);
            assert_eq!(
                codec.decode(&again, usize::MAX).as_ref(),
                Ok(&frame),
                "a decoded frame did not survive its own re-encoding ({} bytes)",
                again.len()
            );
        }
        Err(FrameError::Malformed { size, .. }) => {
            assert_eq!(size, data.len(), "Malformed names the wrong size")
        }
        Err(e @ FrameError::TooLarge { .. }) => panic!("no limit was set, yet {e}"),
    }
    if !data.is_empty() {
        let max = data.len() - 1;
        assert_eq!(
            codec.decode(data, max),
            Err(FrameError::TooLarge {
                size: data.len(),
                max
            }),
            "a frame over the limit was not refused as TooLarge"
        );
    }

    // The bytes as the choices of an arbitrary frame.
    let mut u = Unstructured::new(data);
    let Ok(frame) = arbitrary_serde::<Frame>(&mut u) else {
        return;
    };
    let bytes = codec.encode(&frame);
    match codec.decode(&bytes, bytes.len()) {
        Ok(decoded) => {
            assert_eq!(decoded, frame, "decode(encode(frame)) differs from the frame");
            assert_eq!(codec.encode(&decoded), bytes, "the encoding is not canonical");
        }
        Err(e) => panic!("an encoded {} frame did not decode: {e}", frame.name()),
    }
    for end in 0..bytes.len() {
        match codec.decode(&bytes[..end], usize::MAX) {
            Err(FrameError::Malformed { size, .. }) if size == end => {}
            other => panic!(
                "the first {end} of the {} bytes of a {} frame gave {other:?}, not Malformed",
                bytes.len(),
                frame.name()
            ),
        }
    }
    let mut longer = bytes.clone();
    longer.push(u.arbitrary().unwrap_or(0));
    assert!(
        matches!(
            codec.decode(&longer, usize::MAX),
            Err(FrameError::Malformed { .. })
        ),
        "a {} frame with a trailing byte was accepted",
        frame.name()
    );
}
