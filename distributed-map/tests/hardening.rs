//! The master against hostile and flaky peers (issue 8): each test names the
//! row of the issue it covers. Real loopback sockets; waits are on events
//! (a frame, an end of stream, the map's output), with tokio's clock paused
//! where the behaviour is time-based. A `timeout` around a test's body only
//! turns a regression (a hang) into a failure.

use std::num::NonZeroUsize;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pando_distributed_map::codec::Codec;
use pando_distributed_map::frame::{Frame, PROTOCOL_VERSION};
use pando_distributed_map::transport::{Listener, TransportError, tcp, ws};
use pando_distributed_map::{DistributedMap, MapConfig, Worker, join_url, split_join_url};
use pando_lend_stream::LendError;
use pando_pull_stream::{collect, count, pull, take};
use tokio::io::AsyncReadExt;

mod common;
use common::{raw_join, report, spawn_squarer as squarer, squares};

const MAX: usize = 1 << 20;
const GUARD: Duration = Duration::from_secs(120);

/// Row 1: a TCP connection that never starts its WebSocket upgrade holds up
/// no other join, and is closed at its handshake deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_does_not_delay_other_joins() {
    tokio::time::timeout(GUARD, async {
        let config = MapConfig {
            heartbeat: Duration::from_millis(200),
            heartbeat_timeout: Duration::from_secs(2),
            ..MapConfig::default()
        };
        let map = DistributedMap::<u64, u64, ()>::new(config);
        let listener = ws::WsListener::bind("127.0.0.1:0", MAX).await.unwrap();
        let addr = listener
            .url()
            .trim_start_matches("ws://")
            .trim_end_matches('/')
            .to_string();
        let url = join_url(&listener.url(), &map.config().token);
        map.serve(listener);
        // Like `nc HOST PORT`: connected, silent.
        let mut idle = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let output = pull!(count(20), map.clone(), collect::<Vec<_>>());
        let worker = squarer(url, "native");
        assert_eq!(output.await, Ok(squares(20)));
        worker.await.unwrap().unwrap();
        // The idle connection is closed at its deadline (the read ends), not kept forever.
        let mut buf = [0u8; 64];
        assert_eq!(idle.read(&mut buf).await.unwrap(), 0);
    })
    .await
    .expect("the map finished");
}

/// Connection limits: beyond `max_pending` handshakes, new connections are
/// closed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_max_pending_are_closed_at_once() {
    tokio::time::timeout(GUARD, async {
        let config = MapConfig {
            max_pending: 2,
            heartbeat_timeout: Duration::from_secs(600),
            ..MapConfig::default()
        };
        let map = DistributedMap::<u64, u64, ()>::new(config);
        let listener = tcp::TcpListener::bind("127.0.0.1:0", MAX).await.unwrap();
        let addr = listener.url().trim_start_matches("tcp://").to_string();
        map.serve(listener);
        let _output = pull!(count(1000), map.clone(), collect::<Vec<_>>());
        // Two silent connections fill the handshake slots; the third is closed at once.
        let _a = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let _b = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(
            c.read(&mut buf).await.unwrap(),
            0,
            "the third pending connection is closed"
        );
    })
    .await
    .expect("no hang");
}

/// Connection limits: beyond `max_workers`, a worker is refused with a reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_beyond_max_workers_are_refused_with_a_reason() {
    tokio::time::timeout(GUARD, async {
        let config = MapConfig {
            max_workers: 1,
            ..MapConfig::default()
        };
        let map = DistributedMap::<u64, u64, ()>::new(config);
        let listener = tcp::TcpListener::bind("127.0.0.1:0", MAX).await.unwrap();
        let url = join_url(&listener.url(), &map.config().token);
        map.serve(listener);
        let _output = pull!(count(1000), map.clone(), collect::<Vec<_>>());
        let connector = tcp::TcpConnector::new(MAX);
        let (first, welcome) = raw_join(&connector, &url, "first").await;
        assert!(matches!(welcome, Frame::Welcome { .. }), "{welcome:?}");
        let (_, reply) = raw_join(&connector, &url, "second").await;
        assert_eq!(
            reply,
            Frame::Reject {
                reason: "the master is full (1 workers)".into()
            }
        );
        drop(first);
    })
    .await
    .expect("no hang");
}

/// Row 3: a worker that sends heartbeats but never reads its socket stalls
/// nobody: the others finish the map, and it is dropped once what the
/// master sent it has waited a heartbeat timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_stops_reading_stalls_nobody() {
    use tokio::io::AsyncWriteExt;
    tokio::time::timeout(GUARD, async {
        let config = MapConfig {
            heartbeat: Duration::from_millis(100),
            heartbeat_timeout: Duration::from_secs(2),
            batch_size: NonZeroUsize::new(64).unwrap(),
            ..MapConfig::default()
        };
        let map = DistributedMap::<String, u64, ()>::new(config);
        let listener = tcp::TcpListener::bind("127.0.0.1:0", 1 << 22).await.unwrap();
        let addr: std::net::SocketAddr = listener.url().trim_start_matches("tcp://").parse().unwrap();
        let url = join_url(&listener.url(), &map.config().token);
        map.serve(listener);
        // Large values (128 KiB), so that the stalled worker's socket fills up.
        let n = 200u64;
        let input = pando_pull_stream::map(|i: u64| format!("{i:08}{}", "x".repeat(128 * 1024)));
        let output = pull!(count(n), input, map.clone(), collect::<Vec<_>>());

        // The stalled worker, by hand over TCP with a tiny receive buffer:
        // its Hello, then heartbeats forever and never a read.
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(1024).unwrap();
        let mut stalled = socket.connect(addr).await.unwrap();
        let frame = |f: &Frame| {
            let body = Codec::Postcard.encode(f);
            let mut bytes = (body.len() as u32).to_be_bytes().to_vec();
            bytes.extend(body);
            bytes
        };
        let (_, token) = split_join_url(&url);
        stalled
            .write_all(&frame(&Frame::Hello {
                version: PROTOCOL_VERSION,
                token,
                name: "stalled".into(),
            }))
            .await
            .unwrap();
        let beats = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(50));
            loop {
                tick.tick().await;
                if stalled.write_all(&frame(&Frame::Heartbeat)).await.is_err() {
                    return;
                }
            }
        });
        // The good worker starts once the stalled one holds 48 values (6 MiB:
        // more than the kernel's socket buffers, 4 MiB at most here, can
        // absorb), or was dropped already (on a slow machine, what it did not
        // read may wait a heartbeat timeout before it holds 48).
        let stalled_holds = || {
            let stats = map.stats();
            stats
                .workers
                .iter()
                .find(|w| w.name == "stalled")
                .map_or((0, true), |w| (w.in_flight, w.connected))
        };
        loop {
            let (holds, connected) = stalled_holds();
            if holds >= 48 || !connected {
                break;
            }
            tokio::task::yield_now().await;
        }
        let good = tokio::spawn(async move {
            Worker::new("good")
                .max_frame(1 << 22)
                .connect(&url)
                .await?
                .run(|v: String| async move { Ok::<_, String>(v[..8].parse::<u64>().unwrap() * 2) })
                .await
        });
        let expected: Vec<u64> = (1..=n).map(|i| i * 2).collect();
        assert_eq!(output.await, Ok(expected));
        good.await.unwrap().unwrap();
        assert!(
            !report(map.stats(), "stalled").connected,
            "the worker that does not read was dropped"
        );
        beats.abort();
    })
    .await
    .expect("the map finished");
}

/// Row 13: a worker that breaks the protocol after the handshake is told
/// why in an `Error` frame before the master closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_protocol_violation_gets_an_error_frame_naming_it() {
    tokio::time::timeout(GUARD, async {
        let map = DistributedMap::<u64, u64, ()>::new(MapConfig::default());
        let listener = ws::WsListener::bind("127.0.0.1:0", MAX).await.unwrap();
        let url = join_url(&listener.url(), &map.config().token);
        map.serve(listener);
        let output = pull!(count(10), map.clone(), collect::<Vec<_>>());
        for (bad, said) in [
            (
                Codec::Postcard.encode(&Frame::Result {
                    id: 999,
                    payload: vec![0],
                }),
                "the worker answered value #999, which it does not hold",
            ),
            (vec![0xff, 0xff, 0xff], "the worker sent a malformed frame"),
        ] {
            let (mut raw, _) = raw_join(&ws::WsConnector::new(MAX), &url, "rogue").await;
            raw.sink.send(bad).await.unwrap();
            let mut error = None;
            while let Some(Ok(bytes)) = raw.stream.next().await {
                if let Ok(Frame::Error { message }) = Codec::Postcard.decode(&bytes, MAX) {
                    error = Some(message);
                }
            }
            let error = error.expect("an Error frame before the close");
            assert!(error.starts_with(said), "{error}");
        }
        let worker = squarer(url, "honest");
        assert_eq!(output.await, Ok(squares(10)));
        worker.await.unwrap().unwrap();
    })
    .await
    .expect("no hang");
}

/// Row 14: the TCP transport reports the size an oversized frame's header claims.
#[tokio::test]
async fn an_oversized_tcp_frame_is_reported_with_its_real_size() {
    use tokio::io::AsyncWriteExt;
    let mut listener = tcp::TcpListener::bind("127.0.0.1:0", 1024).await.unwrap();
    let addr = listener.url().trim_start_matches("tcp://").to_string();
    let mut client = tokio::net::TcpStream::connect(&addr).await.unwrap();
    client.write_all(&4_294_967_280u32.to_be_bytes()).await.unwrap();
    let mut master = listener.accept().await.unwrap().upgrade().await.unwrap();
    match master.stream.next().await {
        Some(Err(TransportError::FrameTooLarge { size, max, .. })) => {
            assert_eq!((size, max), (4_294_967_280, 1024));
        }
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
}

/// Row 5: after the consumer stopped early, `finish` returns and the accept
/// loop ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_returns_after_the_consumer_stopped_early() {
    tokio::time::timeout(GUARD, async {
        let map = DistributedMap::<u64, u64, ()>::with_function(
            MapConfig {
                local_workers: Some(2),
                ..MapConfig::default()
            },
            |x: u64| async move { Ok::<_, String>(x * x) },
        );
        let listener = ws::WsListener::bind("127.0.0.1:0", MAX).await.unwrap();
        let accepting = map.serve(listener);
        let first = pull!(count(u64::MAX), map.clone(), take(3), collect::<Vec<_>>()).await;
        assert_eq!(first, Ok(vec![1, 4, 9]));
        map.finish(Duration::from_secs(5)).await;
        accepting.await.unwrap();
    })
    .await
    .expect("finish returned");
}

/// Per-value timeouts: a value whose function never returns is cancelled
/// by the worker, counted as that value's failure, and poisoned past the
/// retry cap with the reason; the others all get their results.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_value_that_never_finishes_times_out_and_is_named() {
    let config = MapConfig {
        value_timeout: Some(Duration::from_secs(3)),
        max_retries: Some(1),
        local_workers: Some(2),
        ..MapConfig::default()
    };
    let map = DistributedMap::<u64, u64, ()>::with_function(config, |x: u64| async move {
        if x == 7 {
            std::future::pending::<()>().await;
        }
        Ok::<_, String>(x * x)
    });
    let got = pull!(count(10), map.clone(), collect::<Vec<_>>()).await;
    match got {
        Err(LendError::Poisoned {
            id: 6, failures: 2, ..
        }) => {}
        other => panic!("expected value #6 (input 7) poisoned, got {other:?}"),
    }
}

/// A result larger than the frame limit fails that value (with the reason),
/// instead of breaking the connection.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn an_oversized_result_fails_its_value_not_the_connection() {
    let config = MapConfig {
        max_frame: 64 * 1024,
        max_retries: Some(2),
        local_workers: Some(1),
        ..MapConfig::default()
    };
    let map = DistributedMap::<u64, Vec<u8>, ()>::with_function(config, |x: u64| async move {
        Ok::<_, String>(vec![0; if x == 2 { 100_000 } else { 10 }])
    });
    let got = pull!(count(3), map.clone(), collect::<Vec<_>>()).await;
    match got {
        Err(LendError::Poisoned {
            id: 1, failures: 3, ..
        }) => {}
        other => panic!("expected value #1 poisoned, got {other:?}"),
    }
    let local = &map.stats().workers[0];
    assert_eq!(local.failed, 3, "three failures reported on one connection");
    assert_eq!(map.stats().workers.len(), 1, "the connection was never dropped");
}

/// Row 4 (the CLI's 17 MB input line): a value larger than the frame limit
/// fails at the master with its reason; no connection breaks, nothing hangs.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_value_over_the_frame_limit_fails_at_the_master() {
    let config = MapConfig {
        max_frame: 64 * 1024,
        max_retries: Some(0),
        local_workers: Some(1),
        ..MapConfig::default()
    };
    let map = DistributedMap::<Vec<u8>, u64, ()>::with_function(config, |v: Vec<u8>| async move {
        Ok::<_, String>(v.len() as u64)
    });
    let input = pando_pull_stream::values([vec![1u8; 10], vec![2u8; 100_000], vec![3u8; 10]]);
    match pull!(input, map.clone(), collect::<Vec<_>>()).await {
        Err(LendError::Poisoned { id: 1, reason, .. }) => {
            assert!(
                reason.contains("value of 100003 bytes exceeds the limit"),
                "{reason}"
            );
        }
        other => panic!("expected value #1 poisoned, got {other:?}"),
    }
    assert!(map.stats().workers.iter().all(|w| w.failed <= 1));
}
