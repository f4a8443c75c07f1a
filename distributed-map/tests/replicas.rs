//! Majority voting (`MapConfig::replicas`) end to end over real loopback
//! WebSocket connections, with real `Worker`s as tasks in this process, one
//! of which lies; and a value reclaimed by the backstop, which must not go
//! back to the worker that still holds it. Deterministic: nothing waits on
//! a sleep (the backstop runs on tokio's paused clock); the one wait for a
//! state has a deadline and says what it waited for.

use std::num::NonZeroUsize;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pando_distributed_map::codec::Codec;
use pando_distributed_map::frame::Frame;
use pando_distributed_map::transport::{Listener, memory};
use pando_distributed_map::{
    ConfigError, DistributedMap, MAX_REPLICAS, MapConfig, ReplicaWait, Worker, join_url,
};
use pando_pull_stream::{collect, count, pull};

mod common;
use common::{RAW_MAX, raw_join, report, squares, ws_master};

/// A map that wants `k` agreeing replicas of each result.
fn replicas(k: u32) -> MapConfig {
    MapConfig {
        replicas: k,
        ..MapConfig::default()
    }
}

/// A worker named `name` that squares its values, or lies (`x² + 1`).
fn worker(
    url: &str,
    name: &'static str,
    lie: bool,
) -> tokio::task::JoinHandle<Result<pando_distributed_map::WorkerSummary, pando_distributed_map::JoinError>> {
    let url = url.to_string();
    tokio::spawn(async move {
        Worker::new(name)
            .connect(&url)
            .await?
            .run(move |x: u64| async move { Ok::<_, String>(if lie { x * x + 1 } else { x * x }) })
            .await
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_with_one_lying_worker_out_of_three_give_the_right_output() {
    let n = 2_000;
    let (map, url, output) = ws_master(replicas(3), n).await;
    let workers = [
        worker(&url, "honest-1", false),
        worker(&url, "liar", true),
        worker(&url, "honest-2", false),
    ];
    assert_eq!(
        output.await,
        Ok(squares(n)),
        "the liar is outvoted on every value"
    );
    // The two honest answers are the only majority: both computed every
    // value; the liar computed those whose third copy was lent before the
    // majority (a copy still waiting then is never lent).
    let [first, lied, second] = workers;
    for honest in [first, second] {
        assert_eq!(honest.await.unwrap().unwrap().done, n);
    }
    let lies = lied.await.unwrap().unwrap().done;
    let stats = map.stats();
    let liar = report(stats.clone(), "liar");
    for honest in ["honest-1", "honest-2"] {
        assert_eq!(report(stats.clone(), honest).disagreements, 0, "{honest}");
    }
    // Each lie was either outvoted (counted) or came after the majority
    // (dropped uncompared); the honest answers never came late.
    assert_eq!(
        liar.disagreements + stats.lender.late_results_dropped,
        lies,
        "{stats}"
    );
    assert_eq!(stats.lender.disagreements, liar.disagreements);
    assert_eq!(stats.lender.output, n);
    assert!(stats.to_string().contains("replicas 3:"), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fewer_workers_than_replicas_nothing_is_read_and_the_stats_say_so() {
    let n = 50;
    let (map, url, output) = ws_master(replicas(3), n).await;
    let output = tokio::spawn(output);
    let first = [worker(&url, "a", false), worker(&url, "b", false)];
    // Wait (with a deadline) until both have joined.
    let joined = tokio::time::timeout(Duration::from_secs(20), async {
        while map.stats().lender.sub_streams_open < 2 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(
        joined.is_ok(),
        "two workers did not join within 20 s: {}",
        map.stats()
    );
    let stats = map.stats();
    assert_eq!(
        stats.lender.read, 0,
        "no value is read for fewer workers than replicas"
    );
    assert!(
        stats
            .to_string()
            .contains("waiting for workers: 2 connected, 3 needed"),
        "{stats}"
    );
    assert_eq!(
        stats.replicas,
        Some(ReplicaWait::new(3, 2)),
        "the monitor sees the wait"
    );
    let third = worker(&url, "c", true);
    assert_eq!(output.await.unwrap(), Ok(squares(n)), "c lies and is outvoted");
    assert_eq!(
        map.stats().replicas,
        None,
        "no wait with three workers, or after the end"
    );
    for w in first {
        assert_eq!(w.await.unwrap().unwrap().done, n, "a and b computed every value");
    }
    assert!(third.await.unwrap().unwrap().done <= n);
}

#[tokio::test]
async fn impossible_replicas_are_a_config_error() {
    for k in [0, MAX_REPLICAS + 1, u32::MAX] {
        let e = DistributedMap::<u64, u64, ()>::try_new(replicas(k)).unwrap_err();
        assert_eq!(e, ConfigError::Replicas(k));
        assert!(e.to_string().contains(&k.to_string()), "{e}");
    }
    // More replicas than workers may ever connect: it could never finish.
    let config = MapConfig {
        max_workers: 2,
        ..replicas(3)
    };
    let e = DistributedMap::<u64, u64, ()>::try_new(config).unwrap_err();
    assert_eq!(
        e,
        ConfigError::ReplicasOverWorkers {
            replicas: 3,
            max_workers: 2
        }
    );
}

/// Hostile review: a value the master's backstop took back (no answer
/// within `value_timeout × batch_size + heartbeat_timeout`) was lent again
/// to the same worker, which still held it: its session saw the same value
/// twice (`DuplicateValue`) and the worker was dropped. Now the value waits
/// for another worker, and the late answer is taken.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_value_reclaimed_by_the_backstop_is_not_lent_back_to_the_worker_that_holds_it() {
    let config = MapConfig {
        value_timeout: Some(Duration::from_secs(2)),
        batch_size: NonZeroUsize::new(2).unwrap(),
        ..MapConfig::default()
    };
    let map = DistributedMap::<u64, u64, ()>::new(config);
    let (listener, connector) = memory::endpoint("backstop");
    let url = join_url(&listener.url(), &map.config().token);
    map.serve(listener);
    let output = tokio::spawn(pull!(count(3), map.clone(), collect::<Vec<_>>()));
    let (mut raw, welcome) = raw_join(&connector, &url, "slow").await;
    assert!(matches!(welcome, Frame::Welcome { .. }), "{welcome:?}");
    let start = tokio::time::Instant::now();
    // The backstop: 2 s × 2 + 10 s = 14 s; value #0 is answered at 20 s.
    let late = Duration::from_secs(20);
    let mut seen = Vec::new();
    let mut held = None;
    let mut heartbeat = tokio::time::interval(Duration::from_secs(1));
    let codec = Codec::Postcard;
    loop {
        let frame = tokio::select! {
            _ = heartbeat.tick() => {
                raw.sink.send(codec.encode(&Frame::Heartbeat)).await.unwrap();
                if let Some(x) = held.filter(|_| start.elapsed() >= late) {
                    held = None;
                    let payload = codec.encode_payload(&(x * x));
                    raw.sink.send(codec.encode(&Frame::Result { id: 0, payload })).await.unwrap();
                }
                continue;
            }
            frame = raw.stream.next() => frame.expect("frames until Done").unwrap(),
        };
        let items = match codec.decode(&frame, RAW_MAX).unwrap() {
            Frame::Value { id, payload } => vec![(id, payload)],
            Frame::Values { values } => values.into_iter().map(|v| (v.id, v.payload)).collect(),
            Frame::Heartbeat => continue,
            Frame::Done => break,
            other => panic!("unexpected {other:?}"),
        };
        for (id, payload) in items {
            assert!(
                !seen.contains(&id),
                "value #{id} was sent again to the worker that holds it, at {:?}",
                start.elapsed()
            );
            seen.push(id);
            let x: u64 = codec.decode_payload(&payload).unwrap();
            if id == 0 {
                held = Some(x); // never answered before the backstop fires
            } else {
                let payload = codec.encode_payload(&(x * x));
                raw.sink
                    .send(codec.encode(&Frame::Result { id, payload }))
                    .await
                    .unwrap();
            }
        }
    }
    raw.sink.send(codec.encode(&Frame::Done)).await.unwrap();
    assert_eq!(output.await.unwrap(), Ok(squares(3)));
    let lender = map.stats().lender;
    assert_eq!(
        (lender.reclaimed, lender.late_results_accepted),
        (1, 1),
        "{lender:?}"
    );
    assert!(start.elapsed() >= late);
}
