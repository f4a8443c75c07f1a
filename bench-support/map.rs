//! DistributedMap runs shared by `distributed-map/benches/map.rs` and
//! `pando-bench`, included with `#[path = "…/bench-support/map.rs"] mod map;`.
//!
//! Worker processes are the including binary itself: its `main` must call
//! [`worker_process`] when started as `BINARY --worker URL MODE`.

use std::num::NonZeroUsize;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pando_distributed_map::transport::{Connector, Listener, ws};
use pando_distributed_map::{DistributedMap, MapConfig, Worker, join_url};
use pando_pull_stream::{count, drain, pull};

/// About 10 ms of CPU work (calibrated once per process).
fn cpu_work(x: u64) -> u64 {
    static ROUNDS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let rounds = *ROUNDS.get_or_init(|| {
        let start = Instant::now();
        let mut acc = 0u64;
        for i in 0..5_000_000u64 {
            acc = std::hint::black_box(acc.wrapping_mul(6364136223846793005).wrapping_add(i));
        }
        let per_round = start.elapsed().as_secs_f64() / 5_000_000.0;
        (0.010 / per_round) as u64
    });
    let mut acc = x;
    for i in 0..rounds {
        acc = std::hint::black_box(acc.wrapping_mul(6364136223846793005).wrapping_add(i));
    }
    acc
}

/// The body of a worker process (`BINARY --worker URL MODE`): joins `url`
/// and maps `cpu_work` (MODE `cpu`) or `x * 3` (any other MODE) until the
/// master finishes.
pub(crate) fn worker_process(url: &str, mode: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let session = Worker::new(format!("bench-{}", std::process::id()))
            .connect(url)
            .await
            .unwrap();
        let result = match mode {
            "cpu" => {
                session
                    .run(|x: u64| async move { Ok::<_, String>(cpu_work(x)) })
                    .await
            }
            _ => {
                session
                    .run(|x: u64| async move { Ok::<_, String>(x.wrapping_mul(3)) })
                    .await
            }
        };
        if let Err(e) = result {
            eprintln!("bench worker: {e}");
        }
    });
}

fn spawn_workers(url: &str, mode: &str, n: usize) -> Vec<Child> {
    let exe = std::env::current_exe().unwrap();
    (0..n)
        .map(|_| {
            Command::new(&exe)
                .args(["--worker", url, mode])
                .stdin(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect()
}

/// Maps `count(n)` with `workers` in-process workers reaching the master
/// through `listener`/`connector`; returns items per second.
pub(crate) async fn run_in_process<L: Listener, C: Connector + Clone>(
    n: u64,
    batch: usize,
    listener: L,
    connector: C,
    workers: usize,
) -> f64 {
    let config = MapConfig {
        batch_size: NonZeroUsize::new(batch).unwrap(),
        ..MapConfig::default()
    };
    let map = DistributedMap::<u64, u64, ()>::new(config);
    let url = join_url(&listener.url(), &map.config().token);
    map.serve(listener);
    let mut sessions = Vec::new();
    for i in 0..workers {
        let session = Worker::new(format!("w{i}"))
            .connect_with(&connector, &url)
            .await
            .unwrap();
        sessions.push(tokio::spawn(
            session.run(|x: u64| async move { Ok::<_, String>(x.wrapping_mul(3)) }),
        ));
    }
    let start = Instant::now();
    pull!(count(n), map.clone(), drain()).await.unwrap();
    let rate = n as f64 / start.elapsed().as_secs_f64();
    map.finish(Duration::from_secs(5)).await;
    for s in sessions {
        let _ = s.await;
    }
    rate
}

/// Maps `n` values with `workers` worker processes running `mode`, over
/// loopback WebSocket; returns items per second.
pub(crate) async fn run_with_processes(n: u64, workers: usize, mode: &str, config: MapConfig) -> f64 {
    let map = DistributedMap::<u64, u64, ()>::new(config);
    let listener = ws::WsListener::bind("127.0.0.1:0", 1 << 24).await.unwrap();
    let url = join_url(&listener.url(), &map.config().token);
    map.serve(listener);
    let mut children = spawn_workers(&url, mode, workers);
    // Start timing once every worker has joined.
    while map.stats().connected() < workers {
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let start = Instant::now();
    pull!(count(n), map.clone(), drain()).await.unwrap();
    let rate = n as f64 / start.elapsed().as_secs_f64();
    map.finish(Duration::from_secs(10)).await;
    for c in &mut children {
        let _ = c.wait();
    }
    rate
}

/// This process's peak resident set size (`VmHWM`), in KiB.
pub(crate) fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}
