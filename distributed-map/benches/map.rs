//! DistributedMap benchmarks, each printing its figure next to a baseline
//! measured in the same run.
//!
//! ```text
//! cargo bench -p pando-distributed-map --bench map                 # everything
//! cargo bench -p pando-distributed-map --bench map -- throughput   # or: scaling, memory, batch
//! ```
//!
//! * `throughput`: 2 workers, a trivial function, loopback WebSocket, batch
//!   sizes 1, 16 and 256, over loopback WebSocket and TCP; baseline: the same
//!   over the in-process transport. Medians of 3 runs, alternating.
//! * `scaling`: a CPU-bound function of about 10 ms per item, 1 against 2
//!   worker processes; the ratio of their throughputs.
//! * `memory`: the master's peak RSS over 10^7 values with the default batch
//!   size (2 worker processes over loopback WebSocket); baseline: the peak
//!   RSS of this process before the run.
//! * `batch`: an artificial latency on every message (20 ms each way) and a
//!   20 ms function: throughput with batch size 3 against batch size 1 (the
//!   seeds' model predicts 3×: 33% busy against 100%).
//!
//! Worker processes are this same binary, started with `--worker URL MODE`.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

#[path = "../../bench-support/map.rs"]
mod map_runs;

use async_trait::async_trait;
use futures::StreamExt;
use map_runs::{peak_rss_kib, run_in_process, run_with_processes, worker_process};
use pando_distributed_map::transport::{
    Connection, Connector, Incoming, Listener, TransportError, memory, tcp, ws,
};
use pando_distributed_map::{DistributedMap, MapConfig, Worker, join_url};
use pando_pull_stream::{count, drain, pull};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        return worker_process(&args[1], &args[2]);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let wanted: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let run = |name: &str| wanted.is_empty() || wanted.contains(&name);
    if run("throughput") {
        runtime.block_on(throughput());
    }
    if run("scaling") {
        runtime.block_on(scaling());
    }
    if run("memory") {
        runtime.block_on(memory());
    }
    if run("batch") {
        runtime.block_on(batch());
    }
}

/// How many times each throughput figure is measured (alternating the
/// transports); the median is printed, with the range.
const ROUNDS: usize = 3;

/// The median and the range of some rates.
fn median(mut rates: Vec<f64>) -> (f64, f64, f64) {
    rates.sort_by(f64::total_cmp);
    (rates[rates.len() / 2], rates[0], rates[rates.len() - 1])
}

async fn throughput() {
    println!(
        "\nthroughput: 2 in-process workers, trivial function (x * 3); items/s, median of {ROUNDS} [range]"
    );
    println!(
        "  {:>5}  {:>32}  {:>32}  {:>32}  {:>9}  {:>9}",
        "batch", "loopback WebSocket", "loopback TCP", "in-process transport", "ws / mem", "tcp / mem"
    );
    for (batch, n) in [(1usize, 100_000u64), (16, 400_000), (256, 1_000_000)] {
        let (mut ws_rates, mut tcp_rates, mut mem_rates) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let listener = ws::WsListener::bind("127.0.0.1:0", 1 << 24).await.unwrap();
            let connector = ws::WsConnector::new(1 << 24);
            ws_rates.push(run_in_process(n, batch, listener, connector, 2).await);
            let listener = tcp::TcpListener::bind("127.0.0.1:0", 1 << 24).await.unwrap();
            let connector = tcp::TcpConnector::new(1 << 24);
            tcp_rates.push(run_in_process(n, batch, listener, connector, 2).await);
            let (listener, connector) = memory::endpoint("bench");
            mem_rates.push(run_in_process(n, batch, listener, connector, 2).await);
        }
        let (ws, ws_lo, ws_hi) = median(ws_rates);
        let (tcp, tcp_lo, tcp_hi) = median(tcp_rates);
        let (mem, mem_lo, mem_hi) = median(mem_rates);
        let show = |m: f64, lo: f64, hi: f64| format!("{m:.0} [{lo:.0}-{hi:.0}]");
        println!(
            "  {batch:>5}  {:>32}  {:>32}  {:>32}  {:>8.2}x  {:>8.2}x",
            show(ws, ws_lo, ws_hi),
            show(tcp, tcp_lo, tcp_hi),
            show(mem, mem_lo, mem_hi),
            ws / mem,
            tcp / mem
        );
    }
}

async fn scaling() {
    println!("\nscaling: CPU-bound function (~10 ms per item), worker processes over loopback WebSocket");
    let n = 200;
    let one = run_with_processes(n, 1, "cpu", MapConfig::default()).await;
    let two = run_with_processes(n, 2, "cpu", MapConfig::default()).await;
    println!("  1 process : {one:>7.1} items/s");
    println!(
        "  2 processes: {two:>7.1} items/s   2 / 1 = {:.2}x (goal: at least 1.8x)",
        two / one
    );
}

async fn memory() {
    println!("\nmemory: the master's peak RSS over 10^7 values, default batch size, 2 worker processes");
    let before = peak_rss_kib();
    let rate = run_with_processes(10_000_000, 2, "trivial", MapConfig::default()).await;
    let after = peak_rss_kib();
    println!(
        "  peak RSS before: {:.1} MiB, after 10^7 values: {:.1} MiB (goal: under 64 MiB), at {rate:.0} items/s",
        before as f64 / 1024.0,
        after as f64 / 1024.0
    );
}

/// A connector that adds `delay` to every message in both directions, while
/// letting messages overlap (a latency, not a bandwidth limit).
#[derive(Clone)]
struct Delayed {
    inner: memory::MemoryConnector,
    delay: Duration,
}

fn delayed_stream(
    mut inner: pando_distributed_map::transport::FrameStream,
    delay: Duration,
) -> pando_distributed_map::transport::FrameStream {
    let (tx, rx) =
        futures::channel::mpsc::unbounded::<(tokio::time::Instant, Result<Vec<u8>, TransportError>)>();
    tokio::spawn(async move {
        while let Some(frame) = inner.next().await {
            if tx
                .unbounded_send((tokio::time::Instant::now() + delay, frame))
                .is_err()
            {
                break;
            }
        }
    });
    Box::pin(rx.then(|(at, frame)| async move {
        tokio::time::sleep_until(at).await;
        frame
    }))
}

#[async_trait]
impl Connector for Delayed {
    async fn connect(&self, url: &str) -> Result<Connection, TransportError> {
        let c = self.inner.connect(url).await?;
        // The worker's receiving side is delayed here; its sending side is
        // delayed by `DelayedListener` on the master's receiving side.
        Ok(Connection {
            peer: c.peer,
            sink: c.sink,
            stream: delayed_stream(c.stream, self.delay),
        })
    }
}

struct DelayedListener {
    inner: memory::MemoryListener,
    delay: Duration,
}

#[async_trait]
impl Listener for DelayedListener {
    async fn accept(&mut self) -> Result<Incoming, TransportError> {
        let c = self.inner.accept().await?.upgrade().await?;
        Ok(Incoming::ready(Connection {
            peer: c.peer,
            sink: c.sink,
            stream: delayed_stream(c.stream, self.delay),
        }))
    }

    fn url(&self) -> String {
        self.inner.url()
    }
}

async fn batch() {
    let delay = Duration::from_millis(20);
    let work = Duration::from_millis(20);
    println!("\nbatch: 20 ms latency each way, a 20 ms function, 1 worker");
    let mut rates = Vec::new();
    for batch in [1usize, 3] {
        let (listener, connector) = memory::endpoint("delayed");
        let listener = DelayedListener {
            inner: listener,
            delay,
        };
        let connector = Delayed {
            inner: connector,
            delay,
        };
        let config = MapConfig {
            batch_size: NonZeroUsize::new(batch).unwrap(),
            heartbeat_timeout: Duration::from_secs(30),
            ..MapConfig::default()
        };
        let map = DistributedMap::<u64, u64, ()>::new(config);
        let url = join_url(&listener.url(), &map.config().token);
        map.serve(listener);
        let session = Worker::new("w").connect_with(&connector, &url).await.unwrap();
        let running = tokio::spawn(session.run(move |x: u64| async move {
            tokio::time::sleep(work).await;
            Ok::<_, String>(x)
        }));
        let n = 60;
        let start = Instant::now();
        pull!(count(n), map.clone(), drain()).await.unwrap();
        let rate = n as f64 / start.elapsed().as_secs_f64();
        map.finish(Duration::from_secs(5)).await;
        let _ = running.await;
        let busy = rate * work.as_secs_f64() * 100.0;
        println!("  batch {batch}: {rate:>6.1} items/s, worker busy {busy:>5.1}% of the time");
        rates.push(rate);
    }
    println!(
        "  batch 3 / batch 1 = {:.2}x (the seeds' model: 3x)",
        rates[1] / rates[0]
    );
}
