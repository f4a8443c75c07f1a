//! The protocol checker on channels, duplex_pair connections, loopbacks and a
//! Duplex used as a through: every interface probed, in both directions.

mod common;

use common::{noop_cx, trace};
use futures::executor::block_on;
use pando_checker::{Checker, Invariant};
use pando_pull_stream::test_util::yielding;
use pando_pull_stream::{
    Answer, Connect, SourceExt, channel, collect, count, duplex_pair, from_try_stream, infinite, map, pull,
    take,
};

// ---------------------------------------------------------------------------
// channel
// ---------------------------------------------------------------------------

#[test]
fn channel_carries_everything_then_done() {
    let checker = Checker::panicking();
    let (tx, rx) = channel::<u64, ()>(2);
    let sending = tx.connect(pull!(count(10), checker.probe("Written")));
    let reading = pull!(rx, checker.probe("Read"), collect::<Vec<_>>());
    let (sent, got) = block_on(async { futures::join!(sending, reading) });
    assert_eq!((sent, got), (Ok(()), Ok((1..=10).collect())));
    checker.assert_ok();
}

#[test]
fn channel_carries_an_error_after_the_values_before_it() {
    let checker = Checker::panicking();
    let (tx, rx) = channel::<u64, &str>(8);
    let upstream = from_try_stream(futures::stream::iter([Ok(1), Ok(2), Err("broken")]));
    let sending = tx.connect(pull!(upstream, yielding, checker.probe("Written")));
    let reading = pull!(rx, checker.probe("Read"), collect::<Vec<_>>());
    let (sent, got) = block_on(async { futures::join!(sending, reading) });
    assert_eq!((sent, got), (Ok(()), Err("broken")));
    checker.assert_ok();
}

#[test]
fn channel_reader_aborts_an_infinite_writer() {
    let checker = Checker::panicking();
    let (tx, rx) = channel::<u8, ()>(4);
    let sending = tx.connect(pull!(infinite(|| 1u8), checker.probe("Written")));
    let reading = pull!(
        rx,
        checker.probe("Read"),
        take(3),
        checker.probe("Taken"),
        collect::<Vec<_>>()
    );
    let (sent, got) = block_on(async { futures::join!(sending, reading) });
    assert_eq!((sent, got), (Ok(()), Ok(vec![1, 1, 1])));
    checker.assert_ok();
    let t = trace(&checker);
    assert!(t.iter().any(|e| e.starts_with("Written:abort")), "{t:?}");
    assert!(t.iter().any(|e| e.starts_with("Read:abort")), "{t:?}");
}

#[test]
fn channel_reader_fails_while_its_ask_is_pending() {
    let checker = Checker::panicking();
    let (tx, rx) = channel::<u8, &str>(4);
    let mut read = pull!(rx, checker.probe("Read"));
    // No writer yet: the ask is pending.
    assert!(read.poll_ask_unpin(&mut noop_cx()).is_pending());
    let sending = tx.connect(pull!(infinite(|| 1u8), yielding, checker.probe("Written")));
    let (sent, failed) = block_on(async { futures::join!(sending, read.fail("gone")) });
    assert_eq!((sent, failed), (Ok(()), Err("gone")));
    checker.assert_ok();
    let t = trace(&checker);
    assert_eq!(t[0], "Read:ask⟨1⟩");
    assert!(t.contains(&r#"Read:fail⟨2, "gone"⟩"#.to_string()), "{t:?}");
    assert!(t.iter().any(|e| e.starts_with("Written:abort")), "{t:?}");
}

#[test]
fn channel_sink_dropped_before_its_upstream_ended() {
    // Dropping the sink half's future releases the upstream without an abort
    // (as documented): the reader ends normally, and the checker reports that
    // the writer's upstream was never terminated.
    let checker = Checker::collecting();
    let (tx, rx) = channel::<u64, ()>(2);
    let mut sending = Box::pin(tx.connect(pull!(count(10), checker.probe("Written"))));
    assert!(sending.as_mut().poll(&mut noop_cx()).is_pending()); // the channel is full
    drop(sending);
    let got = block_on(pull!(rx, checker.probe("Read"), collect::<Vec<_>>()));
    assert_eq!(got, Ok(vec![1, 2]));
    let report = checker.finish();
    assert_eq!(
        report.invariants(),
        [Invariant::TerminationPropagated],
        "{report}"
    );
    assert_eq!(report.violations()[0].interface, "Written");
}

// ---------------------------------------------------------------------------
// duplex_pair, loopback, Duplex as a through
// ---------------------------------------------------------------------------

#[test]
fn duplex_as_a_through_to_a_server() {
    let checker = Checker::panicking();
    let (client, server) = duplex_pair::<u64, u64, ()>(2);
    let serve = pull!(
        server.source,
        checker.probe("ServerIn"),
        map(|x: u64| x * x),
        checker.probe("ServerOut"),
        server.sink
    );
    let ask = pull!(
        count(5),
        checker.probe("ClientOut"),
        client,
        checker.probe("ClientIn"),
        collect::<Vec<_>>()
    );
    let (served, got) = block_on(async { futures::join!(serve, ask) });
    assert_eq!((served, got), (Ok(()), Ok(vec![1, 4, 9, 16, 25])));
    checker.assert_ok();
}

#[test]
fn duplex_as_a_through_ended_early_by_the_consumer() {
    let checker = Checker::panicking();
    let (client, server) = duplex_pair::<u64, u64, ()>(2);
    let serve = pull!(
        server.source,
        checker.probe("ServerIn"),
        map(|x: u64| x + 100),
        checker.probe("ServerOut"),
        server.sink
    );
    let mut n = 0;
    let ask = pull!(
        infinite(move || {
            n += 1;
            n
        }),
        checker.probe("ClientOut"),
        client,
        checker.probe("ClientIn"),
        take(3),
        collect::<Vec<_>>()
    );
    let (served, got) = block_on(async { futures::join!(serve, ask) });
    assert_eq!((served, got), (Ok(()), Ok(vec![101, 102, 103])));
    checker.assert_ok();
    let t = trace(&checker);
    assert!(t.iter().any(|e| e.starts_with("ClientIn:abort")), "{t:?}");
    assert!(t.iter().any(|e| e.starts_with("ClientOut:abort")), "{t:?}");
}

#[test]
fn duplex_as_a_through_with_an_error_from_the_producer() {
    let checker = Checker::panicking();
    let (client, server) = duplex_pair::<u64, u64, &str>(2);
    let serve = pull!(server.source, checker.probe("ServerIn"), server.sink);
    let upstream = from_try_stream(futures::stream::iter([Ok(1), Err("broken")]));
    let ask = pull!(
        upstream,
        checker.probe("ClientOut"),
        client,
        checker.probe("ClientIn"),
        collect::<Vec<_>>()
    );
    let (served, got) = block_on(async { futures::join!(serve, ask) });
    assert_eq!((served, got), (Ok(()), Err("broken")));
    checker.assert_ok();
}

#[test]
fn duplex_as_a_through_aborted_while_an_ask_is_pending() {
    let checker = Checker::panicking();
    let (client, server) = duplex_pair::<u64, u64, ()>(2);
    // The server is not running yet: the client's ask is pending.
    let mut through = Box::pin(pull!(
        count(5),
        checker.probe("ClientOut"),
        client,
        checker.probe("ClientIn")
    ));
    assert!(through.poll_ask_unpin(&mut noop_cx()).is_pending());
    let serve = pull!(server.source, checker.probe("ServerIn"), server.sink);
    let (served, aborted) = block_on(async { futures::join!(serve, through.abort()) });
    assert_eq!((served, aborted), (Ok(()), Ok(())));
    checker.assert_ok();
}

#[test]
fn loopback_echoes_and_closes() {
    let checker = Checker::panicking();
    let (near, far) = duplex_pair::<&str, &str, ()>(1);
    let echo = far.sink.connect(pull!(far.source, checker.probe("Echo")));
    let got = pull!(
        pando_pull_stream::values(["ping", "pong"]),
        checker.probe("Sent"),
        near,
        checker.probe("Received"),
        collect::<Vec<_>>()
    );
    let (echoed, got) = block_on(async { futures::join!(echo, got) });
    assert_eq!((echoed, got), (Ok(()), Ok(vec!["ping", "pong"])));
    checker.assert_ok();
}

#[test]
fn duplex_pair_closed_by_aborting_the_reading_half() {
    let checker = Checker::panicking();
    let (a, b) = duplex_pair::<u8, u8, ()>(8);
    let echo = b.sink.connect(pull!(b.source, checker.probe("Echo")));
    let sending = a.sink.connect(pull!(infinite(|| 7u8), checker.probe("Sent")));
    let mut source = pull!(a.source, checker.probe("Received"));
    let reading = async {
        assert_eq!(source.ask().await, Answer::Value(7));
        source.abort().await
    };
    let (echoed, sent, read) = block_on(async { futures::join!(echo, sending, reading) });
    assert_eq!((echoed, sent, read), (Ok(()), Ok(()), Ok(())));
    checker.assert_ok();
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn duplex_pair_across_tokio_tasks_with_delays() {
    use std::time::Duration;
    let checker = Checker::panicking();
    let (client, server) = duplex_pair::<u64, u64, ()>(1);
    let served = tokio::spawn(pull!(
        server.source,
        checker.probe("ServerIn"),
        pando_pull_stream::async_map(|x: u64| async move {
            tokio::time::sleep(Duration::from_millis(100)).await; // paused time: no real wait
            Ok(x * 10)
        }),
        checker.probe("ServerOut"),
        server.sink
    ));
    let got = pull!(
        count(4),
        checker.probe("ClientOut"),
        client,
        checker.probe("ClientIn"),
        collect::<Vec<_>>()
    )
    .await;
    assert_eq!(got, Ok(vec![10, 20, 30, 40]));
    assert_eq!(served.await.unwrap(), Ok(()));
    checker.assert_ok();
}
