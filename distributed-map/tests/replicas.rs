//! Majority voting (`MapConfig::replicas`) end to end over real loopback
//! WebSocket connections, with real `Worker`s as tasks in this process, one
//! of which lies. Deterministic: nothing waits on a sleep; the one wait for
//! a state has a deadline and says what it waited for.

use std::time::Duration;

use pando_distributed_map::transport::{Listener, ws};
use pando_distributed_map::{ConfigError, DistributedMap, MAX_REPLICAS, MapConfig, Worker, join_url};
use pando_lend_stream::LendError;
use pando_pull_stream::{collect, count, pull};

mod common;
use common::{report, squares};

const MAX: usize = 1 << 20;

async fn master(
    config: MapConfig,
    n: u64,
) -> (
    DistributedMap<u64, u64, ()>,
    String,
    impl std::future::Future<Output = Result<Vec<u64>, LendError<()>>>,
) {
    let map = DistributedMap::<u64, u64, ()>::new(config);
    let listener = ws::WsListener::bind("127.0.0.1:0", MAX).await.unwrap();
    let url = join_url(&listener.url(), &map.config().token);
    map.serve(listener);
    let output = pull!(count(n), map.clone(), collect::<Vec<_>>());
    (map, url, output)
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
    let config = MapConfig {
        replicas: 3,
        ..MapConfig::default()
    };
    let (map, url, output) = master(config, n).await;
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
    for w in workers {
        let summary = w.await.unwrap().unwrap();
        assert_eq!(summary.done, n, "every worker computed every value once");
    }
    let stats = map.stats();
    let liar = report(stats.clone(), "liar");
    for honest in ["honest-1", "honest-2"] {
        assert_eq!(report(stats.clone(), honest).disagreements, 0, "{honest}");
    }
    // Each lie was either outvoted (counted) or came after the majority
    // (dropped uncompared); the honest answers never came late.
    assert_eq!(
        liar.disagreements + stats.lender.late_results_dropped,
        n,
        "{stats}"
    );
    assert_eq!(stats.lender.disagreements, liar.disagreements);
    assert_eq!(stats.lender.output, n);
    assert!(stats.to_string().contains("replicas 3:"), "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_fewer_workers_than_replicas_nothing_is_read_and_the_stats_say_so() {
    let n = 50;
    let config = MapConfig {
        replicas: 3,
        ..MapConfig::default()
    };
    let (map, url, output) = master(config, n).await;
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
    let third = worker(&url, "c", true);
    assert_eq!(output.await.unwrap(), Ok(squares(n)));
    for w in first.into_iter().chain([third]) {
        assert_eq!(w.await.unwrap().unwrap().done, n);
    }
}

#[tokio::test]
async fn impossible_replicas_are_a_config_error() {
    for k in [0, MAX_REPLICAS + 1, u32::MAX] {
        let config = MapConfig {
            replicas: k,
            ..MapConfig::default()
        };
        let e = DistributedMap::<u64, u64, ()>::try_new(config).unwrap_err();
        assert_eq!(e, ConfigError::Replicas(k));
        assert!(e.to_string().contains(&k.to_string()), "{e}");
    }
}
