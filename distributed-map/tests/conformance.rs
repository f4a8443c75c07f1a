//! The example exchange of `docs/PROTOCOL.md`, byte for byte.
//!
//! The hex block between the `conformance:begin` and `conformance:end`
//! markers of the document is the single source: these tests read it (the
//! document is compiled in), check that each frame in it is what the codec
//! writes, and replay it against the real master over TCP as a raw client:
//! the worker's bytes are written, the master's bytes must come back exactly,
//! then the end of the stream. No sleeps: every wait is on bytes, and a
//! timeout only turns a hang into a failure.

use std::num::NonZeroUsize;
use std::time::Duration;

use pando_distributed_map::codec::Codec;
use pando_distributed_map::frame::{DEFAULT_MAX_FRAME, Frame, PROTOCOL_VERSION};
use pando_distributed_map::transport::{Listener, tcp};
use pando_distributed_map::{CommandMode, DistributedMap, MapConfig, PoisonPolicy};
use pando_pull_stream::{collect, pull, values};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const DOC: &str = include_str!("../../docs/PROTOCOL.md");
const GUARD: Duration = Duration::from_secs(60);

/// Who sends a run of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    Worker,
    Master,
}

/// The documented exchange: runs of bytes, each sent by one side, in order
/// (consecutive lines of the same side merged).
fn documented_exchange() -> Vec<(Side, Vec<u8>)> {
    let begin = DOC
        .find("<!-- conformance:begin -->")
        .expect("the begin marker in docs/PROTOCOL.md");
    let end = DOC
        .find("<!-- conformance:end -->")
        .expect("the end marker in docs/PROTOCOL.md");
    let mut runs: Vec<(Side, Vec<u8>)> = Vec::new();
    for line in DOC[begin..end].lines() {
        let side = match line.get(..2) {
            Some("W ") => Side::Worker,
            Some("M ") => Side::Master,
            _ => continue,
        };
        let (hex, explanation) = line[2..]
            .split_once('|')
            .unwrap_or_else(|| panic!("no `|` in {line:?}"));
        assert!(
            !explanation.trim().is_empty(),
            "every line is explained: {line:?}"
        );
        let bytes: Vec<u8> = hex
            .split_whitespace()
            .map(|b| {
                assert_eq!(b.len(), 2, "two hex digits per byte: {line:?}");
                u8::from_str_radix(b, 16).unwrap_or_else(|_| panic!("not hex: {b:?} in {line:?}"))
            })
            .collect();
        assert!(!bytes.is_empty(), "{line:?}");
        match runs.last_mut() {
            Some((s, run)) if *s == side => run.extend(bytes),
            _ => runs.push((side, bytes)),
        }
    }
    assert!(
        !runs.is_empty(),
        "the block between the markers has W and M lines"
    );
    runs
}

/// The bytes one side sends, split into frames at their length prefixes.
fn frames_of(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (prefix, tail) = rest.split_at(4);
        let len = u32::from_be_bytes(prefix.try_into().unwrap()) as usize;
        assert!(
            tail.len() >= len,
            "a length prefix of {len} with {} bytes left",
            tail.len()
        );
        frames.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    frames
}

/// The frames the document explains, in the order they are sent.
fn explained_frames() -> Vec<(Side, Frame)> {
    vec![
        (
            Side::Worker,
            Frame::Hello {
                version: PROTOCOL_VERSION,
                token: "secret".into(),
                name: "laptop".into(),
            },
        ),
        (
            Side::Master,
            Frame::Welcome {
                version: 3,
                heartbeat_ms: 60_000,
                heartbeat_timeout_ms: 600_000,
                value_timeout_ms: Some(30_000),
                max_frame: 16_777_216,
                command: vec!["python3".into(), "square.py".into()],
                mode: CommandMode::PerValue,
            },
        ),
        (
            Side::Master,
            Frame::Value {
                id: 0,
                payload: Codec::Postcard.encode_payload(&b"3".to_vec()),
            },
        ),
        (
            Side::Master,
            Frame::Value {
                id: 1,
                payload: Codec::Postcard.encode_payload(&b"x".to_vec()),
            },
        ),
        (
            Side::Worker,
            Frame::Result {
                id: 0,
                payload: Codec::Postcard.encode_payload(&b"9".to_vec()),
            },
        ),
        (Side::Worker, Frame::Heartbeat),
        (
            Side::Worker,
            Frame::Failed {
                id: 1,
                reason: "not a number".into(),
            },
        ),
        (Side::Master, Frame::Done),
        (Side::Worker, Frame::Done),
    ]
}

#[test]
fn the_documented_bytes_are_the_frames_they_explain_as_the_codec_writes_them() {
    let mut documented = Vec::new();
    for (side, run) in documented_exchange() {
        documented.extend(frames_of(&run).into_iter().map(|f| (side, f)));
    }
    let explained = explained_frames();
    assert_eq!(
        documented.len(),
        explained.len(),
        "one documented frame per explained frame"
    );
    for ((side, bytes), (expected_side, frame)) in documented.iter().zip(&explained) {
        assert_eq!(side, expected_side, "{frame:?}");
        assert_eq!(
            Codec::Postcard.decode(bytes, DEFAULT_MAX_FRAME).as_ref(),
            Ok(frame)
        );
        assert_eq!(
            &Codec::Postcard.encode(frame),
            bytes,
            "{frame:?}: canonical bytes"
        );
    }
    assert_eq!(PROTOCOL_VERSION, 3, "the document's example is of version 3");
}

#[test]
fn the_documented_variant_indexes_are_the_codecs() {
    // The table of frames in the document: `| index | Name |` rows.
    let names = [
        "Hello",
        "Welcome",
        "Reject",
        "Value",
        "Result",
        "Failed",
        "Done",
        "Error",
        "Heartbeat",
    ];
    for (index, name) in names.iter().enumerate() {
        let row = format!("| {index} | `{name}` |");
        assert!(DOC.contains(&row), "docs/PROTOCOL.md lacks the row {row:?}");
    }
    assert_eq!(Codec::Postcard.encode(&Frame::Done), [6]);
    assert_eq!(Codec::Postcard.encode(&Frame::Heartbeat), [8]);
    // The table of command modes: `| index | `Mode` |` rows.
    for (index, mode) in [CommandMode::PerValue, CommandMode::Lines, CommandMode::Pipe]
        .into_iter()
        .enumerate()
    {
        let row = format!("| {index} | `{mode:?}` |");
        assert!(DOC.contains(&row), "docs/PROTOCOL.md lacks the row {row:?}");
        assert_eq!(Codec::Postcard.encode_payload(&mode), [index as u8]);
    }
}

/// The master of the example: `pando`'s types (byte strings in and out),
/// with the document's configuration.
fn example_master() -> DistributedMap<Vec<u8>, Vec<u8>, ()> {
    DistributedMap::new(MapConfig {
        token: "secret".into(),
        heartbeat: Duration::from_secs(60),
        heartbeat_timeout: Duration::from_secs(600),
        value_timeout: Some(Duration::from_secs(30)),
        max_frame: DEFAULT_MAX_FRAME,
        batch_size: NonZeroUsize::new(2).unwrap(),
        command: vec!["python3".into(), "square.py".into()],
        // `x` is skipped at its first failure, so that it is not sent again.
        max_retries: Some(0),
        poison: PoisonPolicy::Skip,
        ..MapConfig::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_exchange_replays_byte_for_byte_against_the_master() {
    tokio::time::timeout(GUARD, async {
        let map = example_master();
        let listener = tcp::TcpListener::bind("127.0.0.1:0", map.config().max_frame)
            .await
            .unwrap();
        let addr = listener.url().trim_start_matches("tcp://").to_string();
        map.serve(listener);
        let lines = vec![b"3".to_vec(), b"x".to_vec()];
        let output = tokio::spawn(pull!(values(lines), map.clone(), collect::<Vec<_>>()));

        let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
        for (side, bytes) in documented_exchange() {
            match side {
                Side::Worker => socket.write_all(&bytes).await.unwrap(),
                Side::Master => {
                    let mut got = vec![0; bytes.len()];
                    socket.read_exact(&mut got).await.unwrap();
                    assert_eq!(hex(&got), hex(&bytes), "the master's bytes");
                }
            }
        }
        // Then the master closes the connection: end of file, nothing more.
        let mut rest = Vec::new();
        socket.read_to_end(&mut rest).await.unwrap();
        assert_eq!(hex(&rest), "", "nothing after the master's Done");

        assert_eq!(output.await.unwrap(), Ok(vec![b"9".to_vec()]));
        map.finish(Duration::from_secs(5)).await;
    })
    .await
    .expect("no hang");
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A raw TCP client that speaks frames (length prefix, then the frame).
struct Raw(tokio::net::TcpStream);

impl Raw {
    async fn join(addr: &str, token: &str) -> (Raw, Frame) {
        let mut raw = Raw(tokio::net::TcpStream::connect(addr).await.unwrap());
        raw.send(&Frame::Hello {
            version: PROTOCOL_VERSION,
            token: token.into(),
            name: "raw".into(),
        })
        .await;
        let first = raw.next().await.expect("an answer to Hello");
        (raw, first)
    }

    async fn send(&mut self, frame: &Frame) {
        self.send_bytes(&Codec::Postcard.encode(frame)).await;
    }

    async fn send_bytes(&mut self, frame: &[u8]) {
        let len = u32::try_from(frame.len()).unwrap().to_be_bytes();
        self.0.write_all(&[&len[..], frame].concat()).await.unwrap();
    }

    /// The next frame, or `None` at the end of the stream.
    async fn next(&mut self) -> Option<Frame> {
        let mut len = [0; 4];
        self.0.read_exact(&mut len).await.ok()?;
        let mut frame = vec![0; u32::from_be_bytes(len) as usize];
        self.0.read_exact(&mut frame).await.unwrap();
        Some(Codec::Postcard.decode(&frame, DEFAULT_MAX_FRAME).unwrap())
    }

    /// Every frame until the end of the stream.
    async fn rest(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(frame) = self.next().await {
            frames.push(frame);
        }
        frames
    }
}

/// The behaviours PROTOCOL.md states about ends and violations, checked
/// on the real master: a `Result` payload of the wrong type gets an `Error`
/// frame naming it, and so does a `Done` while holding values; a worker's
/// `Error` is answered by a close without a frame (and the values are lent
/// again); once the work is finished, the master stops listening.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_ends_and_violations() {
    tokio::time::timeout(GUARD, async {
        // Values whose worker is dropped are lent again (and retried: the
        // example master's `max_retries: 0` would skip them).
        let map = DistributedMap::<Vec<u8>, Vec<u8>, ()>::new(MapConfig {
            token: "secret".into(),
            heartbeat: Duration::from_secs(60),
            heartbeat_timeout: Duration::from_secs(600),
            max_retries: None,
            ..MapConfig::default()
        });
        let listener = tcp::TcpListener::bind("127.0.0.1:0", map.config().max_frame)
            .await
            .unwrap();
        let addr = listener.url().trim_start_matches("tcp://").to_string();
        let server = map.serve(listener);
        let lines = vec![b"3".to_vec(), b"4".to_vec()];
        let output = tokio::spawn(pull!(values(lines), map.clone(), collect::<Vec<_>>()));

        // A Result whose payload is not a byte vector (a length of 5, one byte).
        let (mut raw, welcome) = Raw::join(&addr, "secret").await;
        assert!(matches!(welcome, Frame::Welcome { .. }));
        let Some(Frame::Value { id, .. }) = raw.next().await else {
            panic!("a value")
        };
        raw.send(&Frame::Result {
            id,
            payload: vec![5, 0x39],
        })
        .await;
        let rest = raw.rest().await;
        let Some(Frame::Error { message }) = rest.last() else {
            panic!("an Error frame: {rest:?}")
        };
        assert!(
            message.starts_with("the worker sent a malformed frame: malformed frame (2 bytes): payload: "),
            "{message}"
        );

        // Done while holding values: an Error frame saying so.
        let (mut raw, _) = Raw::join(&addr, "secret").await;
        let Some(Frame::Value { .. }) = raw.next().await else {
            panic!("a value")
        };
        raw.send(&Frame::Done).await;
        let rest = raw.rest().await;
        let Some(Frame::Error { message }) = rest.last() else {
            panic!("an Error frame: {rest:?}")
        };
        assert!(
            message.starts_with("the worker said it was done while holding "),
            "{message}"
        );

        // An Error from the worker: closed without a frame.
        let (mut raw, _) = Raw::join(&addr, "secret").await;
        raw.send(&Frame::Error {
            message: "the volunteer left".into(),
        })
        .await;
        assert!(raw.rest().await.iter().all(|f| matches!(f, Frame::Value { .. })));

        // A well-behaved worker finishes the work (squares, as byte strings).
        let (mut raw, _) = Raw::join(&addr, "secret").await;
        loop {
            match raw.next().await.expect("frames until Done") {
                Frame::Value { id, payload } => {
                    let line: Vec<u8> = Codec::Postcard.decode_payload(&payload).unwrap();
                    let x: u64 = std::str::from_utf8(&line).unwrap().parse().unwrap();
                    let result = (x * x).to_string().into_bytes();
                    let payload = Codec::Postcard.encode_payload(&result);
                    raw.send(&Frame::Result { id, payload }).await;
                }
                Frame::Heartbeat => {}
                Frame::Done => break,
                other => panic!("unexpected {other:?}"),
            }
        }
        raw.send(&Frame::Done).await;
        assert_eq!(raw.rest().await, []);
        assert_eq!(output.await.unwrap(), Ok(vec![b"9".to_vec(), b"16".to_vec()]));

        // Too late: once the work is finished, the master no longer listens.
        server.await.unwrap();
        let late = tokio::net::TcpStream::connect(&addr).await;
        assert_eq!(
            late.map(|_| ()).map_err(|e| e.kind()),
            Err(std::io::ErrorKind::ConnectionRefused)
        );
    })
    .await
    .expect("no hang");
}
