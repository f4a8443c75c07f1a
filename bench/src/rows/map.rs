//! DistributedMap: throughput over loopback WebSocket and TCP against the
//! in-process transport, the scaling from 1 to 2 worker processes, and the
//! master's peak memory over 10^7 values.

use std::process::{Command, Stdio};
use std::time::Duration;

use pando_distributed_map::MapConfig;
use pando_distributed_map::transport::{memory, tcp, ws};

use super::Group;
use crate::map::{peak_rss_kib, run_in_process, run_with_processes};
use crate::measure::{Contender, Unit, round_robin};
use crate::report::Row;
use crate::tools::{Ctx, tail};

pub(crate) const THROUGHPUT: Group = Group {
    name: "map",
    about: "DistributedMap over loopback WebSocket and TCP at batch 1, 16, 256 against the in-process transport",
    run: throughput,
};

pub(crate) const SCALING: Group = Group {
    name: "scaling",
    about: "DistributedMap with 2 worker processes against 1 (CPU-bound function)",
    run: scaling,
};

pub(crate) const MEMORY: Group = Group {
    name: "memory",
    about: "the master's peak RSS over a 10^7-value map (no peer: the bound is the goal)",
    run: memory,
};

/// The largest frame the benchmark's transports accept.
const MAX_FRAME: usize = 1 << 24;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn throughput(ctx: &Ctx) -> Vec<Row> {
    let rt = runtime();
    let sizes: [(usize, u64, &str); 3] = if ctx.quick {
        [
            (1, 5_000, "5·10^3"),
            (16, 20_000, "2·10^4"),
            (256, 50_000, "5·10^4"),
        ]
    } else {
        [
            (1, 100_000, "10^5"),
            (16, 400_000, "4·10^5"),
            (256, 1_000_000, "10^6"),
        ]
    };
    let mut rows = Vec::new();
    for (batch, n, n_text) in sizes {
        let mut c = [
            Contender::new("loopback WebSocket", || {
                rt.block_on(async {
                    let listener = ws::WsListener::bind("127.0.0.1:0", MAX_FRAME)
                        .await
                        .map_err(|e| e.to_string())?;
                    let connector = ws::WsConnector::new(MAX_FRAME);
                    Ok::<_, String>(run_in_process(n, batch, listener, connector, 2).await)
                })
            }),
            Contender::new("loopback TCP", || {
                rt.block_on(async {
                    let listener = tcp::TcpListener::bind("127.0.0.1:0", MAX_FRAME)
                        .await
                        .map_err(|e| e.to_string())?;
                    let connector = tcp::TcpConnector::new(MAX_FRAME);
                    Ok::<_, String>(run_in_process(n, batch, listener, connector, 2).await)
                })
            }),
            Contender::new("in-process transport", || {
                Ok(rt.block_on(async {
                    let (listener, connector) = memory::endpoint("pando-bench");
                    run_in_process(n, batch, listener, connector, 2).await
                }))
            }),
        ];
        round_robin(ctx.runs, &mut c);
        for (i, transport) in [(0, "loopback WebSocket"), (1, "loopback TCP")] {
            rows.push(Row::versus(
                format!(
                    "DistributedMap over {transport}, batch {batch}, 2 workers in the process, x * 3, {n_text} values"
                ),
                Unit::ItemsPerSec,
                &c[i],
                &c[2],
            ));
        }
    }
    rows
}

fn scaling(ctx: &Ctx) -> Vec<Row> {
    let rt = runtime();
    let n = if ctx.quick { 20 } else { 200 };
    let mut c = [
        Contender::new("2 worker processes", || {
            Ok(rt.block_on(run_with_processes(n, 2, "cpu", MapConfig::default())))
        }),
        Contender::new("1 worker process", || {
            Ok(rt.block_on(run_with_processes(n, 1, "cpu", MapConfig::default())))
        }),
    ];
    round_robin(ctx.runs, &mut c);
    vec![Row::versus(
        format!(
            "DistributedMap, 2 worker processes over loopback WebSocket, a CPU-bound function of ~10 ms, {n} values (goal: 2 / 1 at least 1.8×)"
        ),
        Unit::ItemsPerSec,
        &c[0],
        &c[1],
    )]
}

fn memory(ctx: &Ctx) -> Vec<Row> {
    let (n, n_text) = if ctx.quick {
        (100_000u64, "10^5")
    } else {
        (10_000_000, "10^7")
    };
    let mut c = [Contender::new("peak RSS", || {
        let out = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
            .args(["--memory-child", &n.to_string()])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("pando-bench --memory-child: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let kib: Option<u64> = stdout
            .lines()
            .find_map(|l| l.strip_prefix("peak-rss-kib "))
            .and_then(|v| v.trim().parse().ok());
        match kib {
            Some(kib) if out.status.success() => Ok(kib as f64 / 1024.0),
            _ => Err(format!(
                "pando-bench --memory-child ended with {}: {}",
                out.status,
                tail(&String::from_utf8_lossy(&out.stderr))
            )),
        }
    })];
    round_robin(ctx.memory_runs.min(ctx.runs), &mut c);
    vec![Row::alone(
        format!(
            "DistributedMap: the master's peak RSS (VmHWM) over {n_text} values, default batch size, 2 worker processes over loopback WebSocket"
        ),
        Unit::MiB,
        &c[0],
        "none (goal: under 64 MiB)",
    )]
}

/// The master of the memory row, in a process of its own so that its peak
/// RSS is its own: maps `n` values with 2 worker processes, then prints
/// `peak-rss-kib K`.
pub(crate) fn memory_child(n: u64) {
    let rt = runtime();
    let rate = rt.block_on(run_with_processes(n, 2, "trivial", MapConfig::default()));
    rt.shutdown_timeout(Duration::from_secs(5));
    println!("items-per-second {rate:.0}");
    println!("peak-rss-kib {}", peak_rss_kib());
}
