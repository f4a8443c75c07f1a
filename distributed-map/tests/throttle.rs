//! `Throttle`: pausing and resuming a connection and changing its limit,
//! driven through random schedules. Whatever the schedule, every value gets
//! exactly one result, in order; a worker paused from the start gets
//! nothing; and no worker ever holds more values than the largest limit it
//! was given.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pando_distributed_map::transport::{ChannelListener, Listener, memory};
use pando_distributed_map::{DistributedMap, MapConfig, Throttle, Worker, join_url};
use pando_pull_stream::{collect, count, pull};
use proptest::prelude::*;

/// What a worker saw: the values it ran, and the most it ran at once.
#[derive(Default)]
struct Seen {
    ran: AtomicUsize,
    now: AtomicUsize,
    most: AtomicUsize,
}

#[derive(Clone, Debug)]
enum Op {
    Pause(usize),
    Resume(usize),
    Limit(usize, usize),
}

fn op(workers: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..workers).prop_map(Op::Pause),
        (0..workers).prop_map(Op::Resume),
        (0..workers, 1usize..6).prop_map(|(w, n)| Op::Limit(w, n)),
    ]
}

/// Runs `values` through one unthrottled worker and `limits.len()`
/// throttled ones (the last one paused for good), applying `ops` one per
/// result.
async fn run(values: u64, limits: Vec<usize>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let (map, mut listener, connector, tx, url) = throttled_map();
    let n = limits.len();
    let mut throttles = Vec::new();
    let mut seen = Vec::new();
    let mut most_limit = Vec::new();
    for (i, &l) in limits.iter().enumerate() {
        let t = Throttle::new();
        t.update_limit(NonZeroUsize::new(l).unwrap());
        if i + 1 == n {
            t.pause();
        }
        let s = Arc::new(Seen::default());
        let (c, u, s2) = (connector.clone(), url.clone(), s.clone());
        tokio::spawn(async move {
            let f = move |x: u64| {
                let s = s2.clone();
                async move {
                    let now = s.now.fetch_add(1, Ordering::SeqCst) + 1;
                    s.most.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    s.now.fetch_sub(1, Ordering::SeqCst);
                    s.ran.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, String>(x * 2)
                }
            };
            Worker::new(format!("t{i}")).jobs(64).run_with(&c, &u, f).await
        });
        let incoming = listener.accept().await.unwrap();
        tx.send(incoming.with_throttle(t.clone())).unwrap();
        throttles.push(t);
        seen.push(s);
        most_limit.push(l);
    }
    // The unthrottled worker keeps the run going whatever is paused.
    map.local_workers(1, false, |x: u64| async move { Ok::<_, String>(x * 2) });

    let done = Arc::new(AtomicUsize::new(0));
    let ops = Arc::new(ops);
    let out = {
        let (throttles, done, ops) = (throttles.clone(), done.clone(), ops.clone());
        let mut most_limit = most_limit.clone();
        let record = pando_pull_stream::map(move |r: u64| {
            let k = done.fetch_add(1, Ordering::SeqCst);
            if let Some(op) = ops.get(k) {
                // The last worker stays paused.
                match *op {
                    Op::Pause(w) => throttles[w].pause(),
                    Op::Resume(w) if w + 1 < throttles.len() => throttles[w].resume(),
                    Op::Limit(w, l) => {
                        most_limit[w] = most_limit[w].max(l);
                        throttles[w].update_limit(NonZeroUsize::new(l).unwrap());
                    }
                    Op::Resume(_) => {}
                }
            }
            r
        });
        tokio::time::timeout(
            Duration::from_secs(60),
            pull!(count(values), map.clone(), record, collect::<Vec<_>>()),
        )
        .await
        .expect("the run ended within 60 s")
        .unwrap()
    };
    prop_assert_eq!(out, (1..=values).map(|x| x * 2).collect::<Vec<_>>());
    prop_assert_eq!(
        seen[n - 1].ran.load(Ordering::SeqCst),
        0,
        "a paused worker ran values"
    );
    for (i, s) in seen.iter().enumerate() {
        // Limits only rise in the check's bound: the largest ever set.
        let bound = limits[i].max(ops.iter().fold(0, |m, op| match *op {
            Op::Limit(w, l) if w == i => m.max(l),
            _ => m,
        }));
        prop_assert!(
            s.most.load(Ordering::SeqCst) <= bound,
            "worker {i} ran {} at once, over its largest limit {bound}",
            s.most.load(Ordering::SeqCst)
        );
    }
    let _ = listener.url();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_schedule_of_pauses_and_limits_loses_nothing(
        values in 1u64..300,
        limits in proptest::collection::vec(1usize..6, 1..4),
        ops in proptest::collection::vec(op(3), 0..40),
    ) {
        let ops: Vec<Op> = ops.into_iter().filter(|o| match *o {
            Op::Pause(w) | Op::Resume(w) | Op::Limit(w, _) => w < limits.len(),
        }).collect();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(values, limits, ops))?;
    }
}

type Incomings = tokio::sync::mpsc::UnboundedSender<pando_distributed_map::transport::Incoming>;

/// A map serving the connections sent on the channel returned, and the
/// in-process endpoint (with its URL) whose connections to send there.
fn throttled_map() -> (
    DistributedMap<u64, u64, ()>,
    memory::MemoryListener,
    memory::MemoryConnector,
    Incomings,
    String,
) {
    let map = DistributedMap::<u64, u64, ()>::new(MapConfig::default());
    let (listener, connector) = memory::endpoint("m");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    map.serve(ChannelListener::new("throttled", rx));
    let url = join_url("memory://m", &map.config().token);
    (map, listener, connector, tx, url)
}

/// Resuming a connection paused from the start lends to it.
#[tokio::test]
async fn a_resumed_worker_gets_values() {
    let (map, mut listener, connector, tx, url) = throttled_map();
    let t = Throttle::new();
    t.pause();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    tokio::spawn(async move {
        let f = move |x: u64| {
            let r = r.clone();
            async move {
                r.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(x)
            }
        };
        Worker::new("w").run_with(&connector, &url, f).await
    });
    tx.send(listener.accept().await.unwrap().with_throttle(t.clone()))
        .unwrap();
    let run = tokio::spawn(pull!(count(50), map.clone(), collect::<Vec<_>>()));
    // Nothing can run while the only worker is paused: the map waits for it.
    tokio::time::timeout(Duration::from_secs(10), map.remote_worker_joined())
        .await
        .ok();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    t.resume();
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(out, (1..=50).collect::<Vec<u64>>());
    assert_eq!(ran.load(Ordering::SeqCst), 50);
}

/// A connection paused to the end hears the end like the others: the map
/// finishes, and its worker's run returns.
#[tokio::test]
async fn a_worker_paused_to_the_end_hears_the_end() {
    let (map, mut listener, connector, tx, url) = throttled_map();
    let t = Throttle::new();
    t.pause();
    let paused = tokio::spawn(async move {
        Worker::new("paused")
            .run_with(&connector, &url, |x: u64| async move { Ok::<_, String>(x) })
            .await
    });
    tx.send(listener.accept().await.unwrap().with_throttle(t))
        .unwrap();
    map.local_workers(1, false, |x: u64| async move { Ok::<_, String>(x) });
    let out = pull!(count(20), map.clone(), collect::<Vec<_>>()).await.unwrap();
    assert_eq!(out, (1..=20).collect::<Vec<u64>>());
    tokio::time::timeout(Duration::from_secs(30), map.finish(Duration::from_secs(30)))
        .await
        .expect("finish returned");
    let summary = tokio::time::timeout(Duration::from_secs(30), paused)
        .await
        .expect("the paused worker's run returned")
        .unwrap()
        .expect("the paused worker heard Done");
    assert_eq!(summary.done, 0);
}
