//! Collatz (seed 000, §5.1.1) as a real distributed map on this machine.
//!
//! ```text
//! cargo run --release --example collatz [-- [COUNT [START [LEN]]]]   # master + local workers
//! cargo run --release --example collatz -- work URL                  # a worker, from any machine
//! ```
//!
//! The master listens on a WebSocket port on all interfaces (workers need the
//! join token; set `PANDO_BIND=127.0.0.1:0` to accept this machine only, or
//! `PANDO_BIND=0.0.0.0:9000` for a fixed port), starts one local worker per
//! core that joins over loopback, prints the command another machine would use to join,
//! shows progress on stderr, and prints one line per range on stdout, in
//! order: `START LEN ARGMAX STEPS`. By default: 64 ranges of 20 000 integers
//! from 3 572 582 862 843 521 162 235.

use std::convert::Infallible;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use num_bigint::BigUint;
use pando_distributed_map::join::{hostname, local_and_public_urls};
use pando_distributed_map::transport::{Listener, ws};
use pando_distributed_map::{DistributedMap, MapConfig, Worker, default_workers};
use pando_examples::collatz::{Interval, SEED_START};
use pando_pull_stream::{for_each, pull, values};

/// The worker's function: a range in, its largest number of steps out.
async fn search(line: String) -> Result<String, String> {
    let interval: Interval = line.parse().map_err(|e| format!("{e}"))?;
    tokio::task::spawn_blocking(move || interval.largest().to_string())
        .await
        .map_err(|e| e.to_string())
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T, name: &str) -> Result<T, String> {
    match args.get(i) {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| format!("collatz: {name} must be a positive integer, got {s:?}")),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("work") {
        let Some(url) = args.get(1) else {
            eprintln!("collatz: usage: collatz work URL");
            return ExitCode::from(2);
        };
        return match Worker::new(hostname()).connect(url).await {
            Ok(session) => match session.run(search).await {
                Ok(summary) => {
                    eprintln!("collatz: worked on {} ranges", summary.done);
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("collatz: {e}");
                    ExitCode::FAILURE
                }
            },
            Err(e) => {
                eprintln!("collatz: cannot join {url}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let parsed = (|| {
        Ok::<_, String>((
            arg(&args, 0, 64u64, "COUNT")?,
            arg(
                &args,
                1,
                SEED_START.parse::<BigUint>().expect("constant"),
                "START",
            )?,
            arg(&args, 2, 20_000u64, "LEN")?,
        ))
    })();
    let (count, start, len) = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    master(count, start, len).await
}

async fn master(count: u64, start: BigUint, len: u64) -> ExitCode {
    let began = Instant::now();
    let map = DistributedMap::<String, String, Infallible>::new(MapConfig::default());
    let bind = std::env::var("PANDO_BIND").unwrap_or_else(|_| "0.0.0.0:0".to_string());
    let listener = match ws::WsListener::bind(&bind, map.config().max_frame).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("collatz: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listening = listener.url();
    let (url, public) = local_and_public_urls(&listening, &map.config().token);
    map.serve(listener);
    eprintln!("collatz: master listening; another machine joins with:");
    eprintln!("  cargo run --release --example collatz -- work '{public}'");

    // Local workers: one per core, over the same loopback WebSocket.
    let cores = default_workers();
    for i in 0..cores {
        let url = url.clone();
        tokio::spawn(async move {
            match Worker::new(format!("local-{i}")).connect(&url).await {
                Ok(session) => {
                    if let Err(e) = session.run(search).await {
                        eprintln!("collatz: local worker {i}: {e}");
                    }
                }
                // Joining after the last value is normal for a late worker.
                Err(e) => eprintln!("collatz: local worker {i} did not join: {e}"),
            }
        });
    }

    let progress = indicatif::ProgressBar::new(count).with_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} ranges, {per_sec}, eta {eta} {msg}")
            .expect("a valid template"),
    );
    if !console_is_terminal() {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let monitor = {
        let map = map.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let stats = map.stats();
                progress.set_message(format!("({} workers)", stats.connected()));
                if progress.is_hidden() {
                    eprint!("{stats}");
                }
            }
        })
    };
    let ranges = Interval::consecutive(start, len, count).map(|i| i.to_string());
    let shown = progress.clone();
    let result = pull!(
        values::<_, Infallible>(ranges),
        map.clone(),
        for_each(move |line: String| {
            shown.suspend(|| println!("{line}"));
            shown.inc(1);
        }),
    )
    .await;
    monitor.abort();
    progress.finish_and_clear();
    match result {
        Ok(()) => {
            let s = map.stats();
            eprintln!(
                "collatz: {count} ranges of {len} integers in {:.2?} with {} workers ({} values re-lent)",
                began.elapsed(),
                s.workers.len(),
                s.lender.relent
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("collatz: {e}");
            ExitCode::FAILURE
        }
    }
}

fn console_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}
