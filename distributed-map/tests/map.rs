//! DistributedMap end to end over real loopback WebSocket (and TCP)
//! connections, with workers as tasks in this process. Deterministic: no
//! test sleeps to wait for something; time-based behaviour (heartbeat
//! timeouts) runs on tokio's paused clock.

use std::num::NonZeroUsize;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pando_distributed_map::codec::Codec;
use pando_distributed_map::frame::{Frame, PROTOCOL_VERSION};
use pando_distributed_map::transport::{Connector, Listener, tcp, ws};
use pando_distributed_map::{DistributedMap, JoinError, MapConfig, Worker, join_url};
use pando_lend_stream::LendError;
use pando_pull_stream::{collect, count, pull};

mod common;
use common::{MAX, raw_join, report, spawn_squarer, squares, value_ids, ws_master};

/// Joins `url` as `name` by hand over WebSocket, and expects a `Welcome`.
async fn welcomed(url: &str, name: &str, max: usize) -> pando_distributed_map::transport::Connection {
    let (raw, welcome) = raw_join(&ws::WsConnector::new(max), url, name).await;
    assert!(matches!(welcome, Frame::Welcome { .. }), "{welcome:?}");
    raw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_values_with_four_workers_come_out_mapped_in_order() {
    let n = 100_000;
    let (map, url, output) = ws_master(MapConfig::default(), n).await;
    // All four join (handshake done) before any value is read: the map is lazy.
    let mut workers = vec![];
    for i in 0..4 {
        let session = Worker::new(format!("w{i}")).connect(&url).await.unwrap();
        workers.push(tokio::spawn(
            session.run(|x: u64| async move { Ok::<_, String>(x * x) }),
        ));
    }
    assert_eq!(output.await, Ok(squares(n)));
    let mut done = 0;
    for w in workers {
        done += w.await.unwrap().unwrap().done;
    }
    assert_eq!(done, n, "every value processed exactly once");
    let stats = map.stats();
    assert_eq!(stats.workers.len(), 4);
    assert_eq!(stats.lender.output, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_over_tcp() {
    let n = 2_000;
    let map = DistributedMap::<u64, u64, ()>::new(MapConfig::default());
    let listener = tcp::TcpListener::bind("127.0.0.1:0", MAX).await.unwrap();
    let url = join_url(&listener.url(), &map.config().token);
    map.serve(listener);
    let output = pull!(count(n), map.clone(), collect::<Vec<_>>());
    let worker = spawn_squarer(url, "tcp");
    assert_eq!(output.await, Ok(squares(n)));
    assert_eq!(worker.await.unwrap().unwrap().done, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_vanishes_mid_value_loses_nothing() {
    let n = 500;
    let config = MapConfig {
        batch_size: NonZeroUsize::new(3).unwrap(),
        ..MapConfig::default()
    };
    let (_map, url, output) = ws_master(config, n).await;
    // A raw client: joins, takes its batch of three values, and drops the connection.
    let mut raw = welcomed(&url, "crash", MAX).await;
    let mut taken = vec![];
    while taken.len() < 3 {
        let frame = Codec::Postcard
            .decode(&raw.stream.next().await.unwrap().unwrap(), MAX)
            .unwrap();
        taken.extend(value_ids(&frame));
    }
    assert_eq!(taken, [0, 1, 2]);
    drop(raw);
    let worker = spawn_squarer(url, "steady");
    assert_eq!(output.await, Ok(squares(n)));
    assert_eq!(
        worker.await.unwrap().unwrap().done,
        n,
        "the steady worker did every value, once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_token_and_a_wrong_version_are_rejected_before_any_value() {
    let (map, url, output) = ws_master(MapConfig::default(), 10).await;
    let (base, token) = pando_distributed_map::split_join_url(&url);
    let wrong = join_url(&base, "not-the-token");
    match Worker::new("intruder").connect(&wrong).await {
        Err(JoinError::Rejected(reason)) => assert_eq!(reason, "wrong join token"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    match Worker::new("anonymous").connect(&base).await {
        Err(JoinError::Rejected(reason)) => assert_eq!(reason, "missing join token"),
        other => panic!("expected a rejection, got {other:?}"),
    }
    let mut raw = ws::WsConnector::new(MAX).connect(&base).await.unwrap();
    raw.sink
        .send(Codec::Postcard.encode(&Frame::Hello {
            version: PROTOCOL_VERSION + 1,
            token: token.clone(),
            name: "future".into(),
        }))
        .await
        .unwrap();
    match Codec::Postcard
        .decode(&raw.stream.next().await.unwrap().unwrap(), MAX)
        .unwrap()
    {
        Frame::Reject { reason } => {
            assert!(
                reason.contains(&format!(
                    "protocol version {} is not supported",
                    PROTOCOL_VERSION + 1
                )),
                "{reason}"
            )
        }
        other => panic!("expected Reject, got {other:?}"),
    }
    assert_eq!(
        map.lender().state().read,
        0,
        "nothing was read for rejected workers"
    );
    // The master still serves a correct worker.
    let worker = spawn_squarer(url, "ok");
    assert_eq!(output.await, Ok(squares(10)));
    worker.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_unexpected_and_oversized_frames_disconnect_the_worker_and_lose_nothing() {
    let n = 100;
    let (_map, url, output) = ws_master(MapConfig::default(), n).await;
    for bad in [
        vec![0xff, 0xff, 0xff],
        Codec::Postcard.encode(&Frame::Value {
            id: 0,
            payload: vec![],
        }),
        vec![0; MAX + 1],
    ] {
        let mut raw = welcomed(&url, "bad", MAX * 2).await;
        // Wait for a value, so the bad worker holds something.
        loop {
            let f = Codec::Postcard
                .decode(&raw.stream.next().await.unwrap().unwrap(), MAX)
                .unwrap();
            if !value_ids(&f).is_empty() {
                break;
            }
        }
        let _ = raw.sink.send(bad).await;
        // The master closes the connection: the stream ends.
        while let Some(Ok(_)) = raw.stream.next().await {}
    }
    let worker = spawn_squarer(url, "ok");
    assert_eq!(output.await, Ok(squares(n)));
    assert_eq!(worker.await.unwrap().unwrap().done, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_value_ends_the_map_with_an_error_naming_it() {
    let config = MapConfig {
        max_retries: Some(2),
        ..MapConfig::default()
    };
    let (_map, url, output) = ws_master(config, 20).await;
    let worker = tokio::spawn(async move {
        Worker::new("picky")
            .connect(&url)
            .await
            .unwrap()
            .run(|x: u64| async move {
                if x == 8 {
                    Err(format!("cannot do {x}"))
                } else {
                    Ok(x * x)
                }
            })
            .await
    });
    // Value 8 is at position 7; it fails 3 times (2 retries) and poisons the map.
    let poisoned = output.await;
    assert!(
        matches!(
            poisoned,
            Err(LendError::Poisoned {
                id: 7,
                failures: 3,
                ..
            })
        ),
        "{poisoned:?}"
    );
    drop(worker);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_silent_worker_is_detected_by_heartbeat_and_its_values_lent_again() {
    let config = MapConfig {
        heartbeat: Duration::from_millis(100),
        heartbeat_timeout: Duration::from_secs(1),
        ..MapConfig::default()
    };
    let (map, url, output) = ws_master(config, 50).await;
    // A worker that joins, takes values, and then says nothing (as if stopped).
    let mut raw = welcomed(&url, "stalled", MAX).await;
    let first = Codec::Postcard
        .decode(&raw.stream.next().await.unwrap().unwrap(), MAX)
        .unwrap();
    assert_eq!(value_ids(&first).first(), Some(&0), "{first:?}");
    let worker = spawn_squarer(url, "steady");
    assert_eq!(output.await, Ok(squares(50)));
    worker.await.unwrap().unwrap();
    assert!(!report(map.stats(), "stalled").connected);
    drop(raw);
}

/// Regression: the master took a value's frame before the connection could
/// accept it, and lost it whenever the channel was full; with large batches
/// the map then waited forever for the lost values.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_batches_over_small_channels_lose_nothing() {
    use pando_distributed_map::transport::memory;
    let config = MapConfig {
        batch_size: NonZeroUsize::new(256).unwrap(),
        ..MapConfig::default()
    };
    let map = DistributedMap::<u64, u64, ()>::new(config);
    let (listener, connector) = memory::endpoint("big-batches");
    let url = join_url(&listener.url(), &map.config().token);
    map.serve(listener);
    let mut workers = vec![];
    for i in 0..2 {
        let session = Worker::new(format!("w{i}"))
            .connect_with(&connector, &url)
            .await
            .unwrap();
        workers.push(tokio::spawn(
            session.run(|x: u64| async move { Ok::<_, String>(x * x) }),
        ));
    }
    let output = pull!(count(3000), map.clone(), collect::<Vec<_>>());
    let got = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("the map hung: values were lost");
    assert_eq!(got, Ok(squares(3000)));
    let mut done = 0;
    for w in workers {
        done += w.await.unwrap().unwrap().done;
    }
    assert_eq!(done, 3000);
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn local_processing_is_on_by_default_and_start_idle_waits_for_a_remote_worker() {
    use pando_distributed_map::transport::memory;
    // On by default.
    let map = DistributedMap::<u64, u64, ()>::with_function(
        MapConfig {
            local_workers: Some(2),
            ..MapConfig::default()
        },
        |x: u64| async move { Ok::<_, String>(x * x) },
    );
    assert_eq!(
        pull!(count(50), map.clone(), collect::<Vec<_>>()).await,
        Ok(squares(50))
    );
    assert_eq!(map.stats().workers.len(), 2);

    // With start_idle, nothing is read until a remote worker joins.
    let map = DistributedMap::<u64, u64, ()>::with_function(
        MapConfig {
            local_workers: Some(2),
            start_idle: true,
            ..MapConfig::default()
        },
        |x: u64| async move { Ok::<_, String>(x * x) },
    );
    let (listener, connector) = memory::endpoint("remote");
    let url = join_url(&listener.url(), &map.config().token);
    map.serve(listener);
    let output = tokio::spawn(pull!(count(50), map.clone(), collect::<Vec<_>>()));
    tokio::time::sleep(Duration::from_secs(60)).await; // virtual time
    assert_eq!(map.lender().state().read, 0, "idle until a remote worker joins");
    assert!(map.stats().workers.is_empty());
    let remote = Worker::new("remote")
        .connect_with(&connector, &url)
        .await
        .unwrap();
    let remote = tokio::spawn(remote.run(|x: u64| async move { Ok::<_, String>(x * x) }));
    assert_eq!(output.await.unwrap(), Ok(squares(50)));
    map.finish(Duration::from_secs(5)).await;
    assert_eq!(
        map.stats().workers.len(),
        3,
        "the two local workers started when the remote one joined"
    );
    remote.await.unwrap().unwrap();
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_worker_learns_the_command_and_its_mode_from_the_welcome() {
    use pando_distributed_map::CommandMode;
    use pando_distributed_map::transport::memory;
    for mode in [CommandMode::PerValue, CommandMode::Lines, CommandMode::Pipe] {
        let map = DistributedMap::<u64, u64, ()>::new(
            MapConfig {
                command: vec!["awk".into(), "{print $1}".into()],
                ..MapConfig::default()
            }
            .command_mode(mode),
        );
        let (listener, connector) = memory::endpoint("m");
        let url = join_url(&listener.url(), &map.config().token);
        map.serve(listener);
        let output = tokio::spawn(pull!(count(3), map.clone(), collect::<Vec<_>>()));
        let session = Worker::new("w").connect_with(&connector, &url).await.unwrap();
        assert_eq!(session.command(), ["awk", "{print $1}"]);
        assert_eq!(session.command_mode(), mode);
        session
            .run(|x: u64| async move { Ok::<_, String>(x * x) })
            .await
            .unwrap();
        assert_eq!(output.await.unwrap(), Ok(squares(3)));
    }
}

/// `Worker::jobs(4)`: four values in progress at once on one worker (each of
/// the first four waits until all four are in progress, so fewer would never
/// finish), finishing in reverse order; the master takes the answers in any
/// order and the output is in input order. No timing: every wait is on an
/// event; the guard only turns a hang into a failure saying why.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_worker_with_four_jobs_runs_four_values_at_once_and_may_finish_them_out_of_order() {
    use pando_distributed_map::transport::memory;
    use std::sync::{Arc, Mutex};

    #[derive(Default)]
    struct Progress {
        in_progress: usize,
        most: usize,
        finished: Vec<u64>,
    }
    let (progress, watch) = tokio::sync::watch::channel(Progress::default());
    let progress = Arc::new(progress);
    let map = DistributedMap::<u64, u64, ()>::new(MapConfig {
        batch_size: NonZeroUsize::new(4).unwrap(),
        ..MapConfig::default()
    });
    let (listener, connector) = memory::endpoint("m");
    let url = join_url(&listener.url(), &map.config().token);
    map.serve(listener);
    let output = tokio::spawn(pull!(count(20), map.clone(), collect::<Vec<_>>()));
    let session = Worker::new("w")
        .jobs(4)
        .connect_with(&connector, &url)
        .await
        .unwrap();
    let order = Arc::new(Mutex::new(Vec::new()));
    let (p, w, o) = (progress.clone(), watch.clone(), order.clone());
    let worker = tokio::spawn(session.run(move |x: u64| {
        let (progress, mut watch, order) = (p.clone(), w.clone(), o.clone());
        async move {
            progress.send_modify(|s| {
                s.in_progress += 1;
                s.most = s.most.max(s.in_progress);
            });
            if x <= 4 {
                // Values 1 to 4 (ids 0 to 3): all four in progress, then
                // finish 4, 3, 2, 1.
                watch
                    .wait_for(|s| s.most == 4 && s.finished.len() == 4 - x as usize)
                    .await
                    .unwrap();
            }
            order.lock().unwrap().push(x);
            progress.send_modify(|s| {
                s.in_progress -= 1;
                s.finished.push(x);
            });
            Ok::<_, String>(x * x)
        }
    }));
    let done = tokio::time::timeout(Duration::from_secs(3600), output).await;
    let most = watch.borrow().most;
    assert!(
        done.is_ok(),
        "the map did not finish: at most {most} values were in progress at once, 4 were needed"
    );
    assert_eq!(done.unwrap().unwrap(), Ok(squares(20)));
    assert_eq!(most, 4);
    assert_eq!(order.lock().unwrap()[..4], [4, 3, 2, 1]);
    assert_eq!(worker.await.unwrap().unwrap().done, 20);
}
