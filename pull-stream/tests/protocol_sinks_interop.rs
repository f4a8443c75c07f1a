//! The protocol checker on the input of every sink (drain, collect,
//! for_each, into_sink) and on the `futures` conversions (from_stream,
//! from_try_stream, into_stream, into_sink).

mod common;

use std::pin::Pin;
use std::task::{Context, Poll};

use common::{noop_cx, silent, trace};
use futures::executor::block_on;
use futures::{Sink, StreamExt};
use pando_checker::Checker;
use pando_pull_stream::test_util::yielding;
use pando_pull_stream::{
    Answer, SourceExt, collect, count, drain, error, for_each, from_stream, from_try_stream, infinite,
    into_sink, into_stream, pull, take, values,
};

// ---------------------------------------------------------------------------
// drain, collect, for_each
// ---------------------------------------------------------------------------

#[test]
fn drain_reads_to_the_end() {
    let checker = Checker::panicking();
    assert_eq!(
        block_on(pull!(count::<()>(100), checker.probe("Input"), drain())),
        Ok(())
    );
    checker.assert_ok();
}

#[test]
fn drain_stops_at_an_error() {
    let checker = Checker::panicking();
    let source = from_try_stream(futures::stream::iter([Ok(1), Ok(2), Err("broken")]));
    assert_eq!(
        block_on(pull!(source, checker.probe("Input"), drain())),
        Err("broken")
    );
    checker.assert_ok();
    assert_eq!(trace(&checker).last().unwrap(), r#"Input:error⟨3, "broken"⟩"#);
}

#[test]
fn drain_of_an_infinite_source_ended_by_take() {
    let checker = Checker::panicking();
    let got = block_on(pull!(
        infinite::<_, _, ()>(|| 0u8),
        checker.probe("Infinite"),
        take(10_000),
        checker.probe("Input"),
        drain()
    ));
    assert_eq!(got, Ok(()));
    checker.assert_ok();
}

#[test]
fn collect_reads_to_the_end_with_pending_polls() {
    let checker = Checker::panicking();
    let got = block_on(pull!(
        values::<_, ()>("abc".chars()),
        yielding,
        checker.probe("Input"),
        collect::<String>()
    ));
    assert_eq!(got, Ok("abc".to_string()));
    checker.assert_ok();
}

#[test]
fn collect_stops_at_an_error() {
    let checker = Checker::panicking();
    let got = block_on(pull!(
        error::<u8, _>("no disk"),
        checker.probe("Input"),
        collect::<Vec<_>>()
    ));
    assert_eq!(got, Err("no disk"));
    checker.assert_ok();
}

#[test]
fn for_each_reads_to_the_end_and_stops_at_an_error() {
    let checker = Checker::panicking();
    let mut seen = vec![];
    let got = block_on(pull!(
        count::<()>(3),
        checker.probe("Input"),
        for_each(|x| seen.push(x))
    ));
    assert_eq!((got, seen), (Ok(()), vec![1, 2, 3]));
    checker.assert_ok();

    let checker = Checker::panicking();
    let mut seen = vec![];
    let source = from_try_stream(futures::stream::iter([Ok(1), Err("broken")]));
    let got = block_on(pull!(source, checker.probe("Input"), for_each(|x| seen.push(x))));
    assert_eq!((got, seen), (Err("broken"), vec![1]));
    checker.assert_ok();
}

// ---------------------------------------------------------------------------
// from_stream, from_try_stream
// ---------------------------------------------------------------------------

#[test]
fn from_stream_ends_normally() {
    let checker = Checker::panicking();
    let source = from_stream::<_, ()>(futures::stream::iter(1..=3));
    let got = block_on(pull!(source, checker.probe("Stream"), collect::<Vec<_>>()));
    assert_eq!(got, Ok(vec![1, 2, 3]));
    checker.assert_ok();
}

#[test]
fn from_stream_aborted_while_an_ask_is_pending() {
    let checker = Checker::panicking();
    let mut source = pull!(silent::<u8, &str>(), checker.probe("Stream"));
    assert!(source.poll_ask_unpin(&mut noop_cx()).is_pending());
    assert!(source.poll_ask_unpin(&mut noop_cx()).is_pending());
    assert_eq!(block_on(source.fail("timeout")), Err("timeout"));
    checker.assert_ok();
    assert_eq!(
        trace(&checker),
        [
            "Stream:ask⟨1⟩",
            r#"Stream:fail⟨2, "timeout"⟩"#,
            r#"Stream:error⟨2, "timeout"⟩"#
        ]
    );
}

#[test]
fn from_stream_of_an_infinite_stream_taken_early() {
    let checker = Checker::panicking();
    let source = from_stream::<_, ()>(futures::stream::repeat(5u8));
    let got = block_on(pull!(
        source,
        checker.probe("Stream"),
        take(3),
        collect::<Vec<_>>()
    ));
    assert_eq!(got, Ok(vec![5, 5, 5]));
    checker.assert_ok();
}

#[test]
fn from_try_stream_ends_at_its_first_error() {
    let checker = Checker::panicking();
    let source = from_try_stream(futures::stream::iter([Ok(1), Err("bad"), Ok(3)]));
    let got = block_on(pull!(source, checker.probe("Stream"), collect::<Vec<_>>()));
    assert_eq!(got, Err("bad"));
    checker.assert_ok();
    assert_eq!(trace(&checker).len(), 4);
}

#[test]
fn from_try_stream_aborted_by_the_consumer() {
    let checker = Checker::panicking();
    let mut source = pull!(
        from_try_stream(futures::stream::iter([Ok::<_, ()>(1), Ok(2)])),
        checker.probe("Stream")
    );
    block_on(async {
        assert_eq!(source.ask().await, Answer::Value(1));
        assert_eq!(source.abort().await, Ok(()));
    });
    checker.assert_ok();
}

// ---------------------------------------------------------------------------
// into_stream
// ---------------------------------------------------------------------------

#[test]
fn into_stream_reads_to_the_end() {
    let checker = Checker::panicking();
    let stream = into_stream(pull!(count::<()>(3), checker.probe("Source")));
    let got: Vec<_> = block_on(stream.collect());
    assert_eq!(got, [Ok(1), Ok(2), Ok(3)]);
    checker.assert_ok();
}

#[test]
fn into_stream_makes_no_request_after_an_error() {
    let checker = Checker::panicking();
    let source = from_try_stream(futures::stream::iter([Ok(1), Err("bad")]));
    let mut stream = into_stream(pull!(source, checker.probe("Source")));
    block_on(async {
        assert_eq!(stream.next().await, Some(Ok(1)));
        assert_eq!(stream.next().await, Some(Err("bad")));
        // Polled again after the end: answered without a request upstream.
        assert_eq!(stream.next().await, None);
        assert_eq!(stream.next().await, None);
    });
    checker.assert_ok();
}

#[test]
fn into_stream_given_back_and_aborted() {
    let checker = Checker::panicking();
    let mut stream = into_stream(pull!(count::<()>(u64::MAX), checker.probe("Source")));
    block_on(async {
        assert_eq!(stream.next().await, Some(Ok(1)));
        assert_eq!(stream.into_inner().abort().await, Ok(()));
    });
    checker.assert_ok();
}

// ---------------------------------------------------------------------------
// into_sink
// ---------------------------------------------------------------------------

#[derive(Debug, PartialEq)]
enum SendError {
    Closed,
    Upstream(&'static str),
}

impl From<futures::channel::mpsc::SendError> for SendError {
    fn from(_: futures::channel::mpsc::SendError) -> Self {
        SendError::Closed
    }
}

#[test]
fn into_sink_sends_everything_and_closes() {
    let checker = Checker::panicking();
    let (tx, rx) = futures::channel::mpsc::unbounded::<u64>();
    let sent = block_on(pull!(
        count::<SendError>(5),
        checker.probe("Input"),
        into_sink(tx)
    ));
    assert_eq!(sent, Ok(()));
    assert_eq!(block_on(rx.collect::<Vec<_>>()), [1, 2, 3, 4, 5]);
    checker.assert_ok();
}

#[test]
fn into_sink_passes_on_an_upstream_error() {
    let checker = Checker::panicking();
    let (tx, rx) = futures::channel::mpsc::unbounded::<u64>();
    let source = from_try_stream(futures::stream::iter([Ok(1), Err(SendError::Upstream("bad"))]));
    let sent = block_on(pull!(source, checker.probe("Input"), into_sink(tx)));
    assert_eq!(sent, Err(SendError::Upstream("bad")));
    assert_eq!(block_on(rx.collect::<Vec<_>>()), [1]);
    checker.assert_ok();
}

#[test]
fn into_sink_aborts_an_infinite_source_when_the_sink_fails() {
    let checker = Checker::panicking();
    let (tx, rx) = futures::channel::mpsc::unbounded::<u64>();
    drop(rx); // the sink fails at the first send
    let sent = block_on(pull!(
        infinite::<_, _, SendError>(|| 1u64),
        checker.probe("Input"),
        into_sink(tx)
    ));
    assert_eq!(sent, Err(SendError::Closed));
    checker.assert_ok();
    assert_eq!(
        trace(&checker),
        [
            "Input:ask⟨1⟩",
            "Input:value⟨1, 1⟩",
            "Input:abort⟨2⟩",
            "Input:done⟨2⟩"
        ]
    );
}

/// A sink that is `Pending` (then ready again)
/// every other call, to exercise the flushing paths.
struct Slow {
    got: Vec<u64>,
    flip: bool,
}

impl Sink<u64> for Slow {
    type Error = SendError;
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        self.flip = !self.flip;
        if self.flip {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Poll::Ready(Ok(()))
    }
    fn start_send(mut self: Pin<&mut Self>, item: u64) -> Result<(), SendError> {
        self.got.push(item);
        Ok(())
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        Poll::Ready(Ok(()))
    }
    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), SendError>> {
        Poll::Ready(Ok(()))
    }
}

#[test]
fn into_sink_with_a_slow_sink_and_a_slow_source() {
    let checker = Checker::panicking();
    let mut sink = Slow {
        got: vec![],
        flip: false,
    };
    let sent = block_on(pull!(
        count::<SendError>(4),
        yielding,
        checker.probe("Input"),
        into_sink(&mut sink)
    ));
    assert_eq!(sent, Ok(()));
    assert_eq!(sink.got, [1, 2, 3, 4]);
    checker.assert_ok();
}
