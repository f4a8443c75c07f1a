//! `examples/python_worker.py`, a worker written in Python from
//! `docs/PROTOCOL.md` alone, against the real master over TCP, with the
//! `pando` command's types (input lines and results as byte strings).
//! Each test is skipped, saying why, when `python3` is not installed.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use pando_distributed_map::transport::{Listener, tcp};
use pando_distributed_map::{DistributedMap, MapConfig, join_url};
use pando_pull_stream::{collect, pull, values};

const GUARD: Duration = Duration::from_secs(120);

/// Whether `python3` runs; if not, the reason is printed and the test skipped.
fn python3_available() -> bool {
    match Command::new("python3").arg("--version").output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => {
            eprintln!("skipped: `python3 --version` failed ({})", out.status);
            false
        }
        Err(e) => {
            eprintln!("skipped: python3 is not available ({e})");
            false
        }
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/python_worker.py")
}

/// Runs the Python worker to its end, on a blocking thread.
fn python_worker(url: String, expression: &'static str) -> tokio::task::JoinHandle<Output> {
    tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script())
            .arg(&url)
            .arg(expression)
            .arg("--name")
            .arg("python")
            .output()
            .expect("python3 runs")
    })
}

/// A master with `pando`'s types on a loopback TCP port, and its join URL.
async fn tcp_master(config: MapConfig) -> (DistributedMap<Vec<u8>, Vec<u8>, ()>, String) {
    let map = DistributedMap::new(config);
    let listener = tcp::TcpListener::bind("127.0.0.1:0", map.config().max_frame)
        .await
        .unwrap();
    let url = join_url(&listener.url(), &map.config().token);
    map.serve(listener);
    (map, url)
}

fn lines(range: std::ops::RangeInclusive<u64>) -> Vec<Vec<u8>> {
    range.map(|i| i.to_string().into_bytes()).collect()
}

fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "the Python worker failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_worker_squares_a_thousand_values_in_order() {
    if !python3_available() {
        return;
    }
    tokio::time::timeout(GUARD, async {
        let (map, url) = tcp_master(MapConfig {
            // A token that needs percent-encoding in the join URL.
            token: "a&b c=d%".into(),
            batch_size: NonZeroUsize::new(4).unwrap(),
            ..MapConfig::default()
        })
        .await;
        let output = tokio::spawn(pull!(values(lines(1..=1000)), map.clone(), collect::<Vec<_>>()));
        let out = python_worker(url, "int(x)**2").await.unwrap();
        assert_success(&out);
        let expected: Vec<Vec<u8>> = (1..=1000u64).map(|i| (i * i).to_string().into_bytes()).collect();
        assert_eq!(output.await.unwrap(), Ok(expected));
        map.finish(Duration::from_secs(10)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("done: 1000 values processed, 0 failed"),
            "{stderr}"
        );
    })
    .await
    .expect("no hang");
}

/// Values that take longer than the heartbeat timeout: the worker's
/// heartbeats, sent while it computes, keep it connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_worker_stays_alive_through_slow_values_with_heartbeats() {
    if !python3_available() {
        return;
    }
    tokio::time::timeout(GUARD, async {
        let (map, url) = tcp_master(MapConfig {
            heartbeat: Duration::from_millis(100),
            heartbeat_timeout: Duration::from_millis(1000),
            ..MapConfig::default()
        })
        .await;
        let output = tokio::spawn(pull!(values(lines(1..=2)), map.clone(), collect::<Vec<_>>()));
        // The worker ends after the master's Done, or as soon as it is dropped.
        let out = python_worker(url, "time.sleep(1.5) or int(x)**2").await.unwrap();
        assert_success(&out);
        assert_eq!(output.await.unwrap(), Ok(vec![b"1".to_vec(), b"4".to_vec()]));
        map.finish(Duration::from_secs(10)).await;
        let stats = map.stats();
        assert_eq!(stats.workers.len(), 1, "one connection, never dropped: {stats}");
    })
    .await
    .expect("no hang");
}

/// A failing value is reported with `Failed` and retried; a wrong token is
/// rejected with the master's reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_worker_reports_failures_and_rejections() {
    if !python3_available() {
        return;
    }
    tokio::time::timeout(GUARD, async {
        let (map, url) = tcp_master(MapConfig {
            max_retries: Some(1),
            poison: pando_distributed_map::PoisonPolicy::Skip,
            ..MapConfig::default()
        })
        .await;
        let bad_url = join_url(url.split('?').next().unwrap(), "not-the-token");
        let rejected = python_worker(bad_url, "x").await.unwrap();
        assert!(!rejected.status.success());
        let stderr = String::from_utf8_lossy(&rejected.stderr);
        assert!(
            stderr.contains("rejected by the master: wrong join token"),
            "{stderr}"
        );

        let input = vec![b"2".to_vec(), b"two".to_vec(), b"3".to_vec()];
        let output = tokio::spawn(pull!(values(input), map.clone(), collect::<Vec<_>>()));
        let out = python_worker(url, "int(x)**2").await.unwrap();
        assert_success(&out);
        assert_eq!(output.await.unwrap(), Ok(vec![b"4".to_vec(), b"9".to_vec()]));
        map.finish(Duration::from_secs(10)).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        // "two" fails twice (once, then its one retry), then is skipped.
        assert!(stderr.contains("done: 2 values processed, 2 failed"), "{stderr}");
    })
    .await
    .expect("no hang");
}
