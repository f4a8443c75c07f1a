//! The time until the root counts every leaf, for N real Genet nodes (tasks
//! of this process) joining one tree at once over loopback WebSocket
//! (issue 11: the seeds took 21-55 s for 1000 browser windows on a LAN).
//!
//! ```text
//! cargo run --release -p pando-genet --features ws --example join_bench -- [--nodes 1000] [--runs 5] [--reporting-ms 100] [--leaf-only-every 10]
//! ```
//!
//! Each run starts a relay and a root, then N nodes that connect to the
//! relay and join at once; it prints when every node had started and
//! joined, when each was connected to its parent, and when the root's leaf
//! count first reached every leaf, all from the first start. The leaf
//! counts go up one level per reporting interval, so the last figure
//! includes about depth × the interval.

use std::time::Duration;

use clap::Parser;
use pando_genet::Config;
use pando_genet::ws::loopback::LoopbackTree;

/// Time a tree of real WebSocket nodes on loopback.
#[derive(Debug, Parser)]
struct Args {
    /// N: the nodes that join (the root is not counted).
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// The runs.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// The reporting interval, in milliseconds.
    #[arg(long, default_value_t = 100)]
    reporting_ms: u64,
    /// The most children per node.
    #[arg(long, default_value_t = 10)]
    children_limit: usize,
    /// Every k-th node joins as a leaf (no listening address); 0: none.
    #[arg(long, default_value_t = 10)]
    leaf_only_every: usize,
    /// Worker threads of the runtime (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

fn main() {
    let args = Args::parse();
    let (soft, hard) = rlimit::Resource::NOFILE.get().expect("the open-files limit");
    let want = (args.nodes as u64 * 6 + 256).min(hard);
    if soft < want {
        rlimit::Resource::NOFILE
            .set(want, hard)
            .expect("raising the open-files soft limit");
    }
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if args.threads > 0 {
        rt.worker_threads(args.threads);
    }
    let rt = rt.enable_all().build().expect("a tokio runtime");
    let mut counted = Vec::new();
    for run in 1..=args.runs {
        let tree = LoopbackTree {
            genet: Config {
                reporting_interval: Duration::from_millis(args.reporting_ms),
                children_limit: args.children_limit,
                ..Config::default()
            },
            leaf_only_every: args.leaf_only_every,
            seed: run as u64,
            ..LoopbackTree::new(args.nodes)
        };
        let r = rt
            .block_on(tree.run())
            .unwrap_or_else(|e| panic!("run {run}: {e}"));
        assert_eq!(r.root_leaves, r.leaves, "run {run}: the root's count");
        assert!(
            r.max_degree <= args.children_limit,
            "run {run}: degree {}",
            r.max_degree
        );
        println!(
            "run {run}: {} nodes, depth {}, {} leaves, max degree {}: started {:.3} s, joined {:.3} s, root counts every leaf at {:.3} s",
            r.nodes,
            r.max_depth,
            r.leaves,
            r.max_degree,
            r.started.as_secs_f64(),
            r.joined.as_secs_f64(),
            r.counted.as_secs_f64()
        );
        counted.push(r.counted.as_secs_f64());
    }
    counted.sort_by(f64::total_cmp);
    println!(
        "time until the root counts every leaf, {} nodes, {} runs: median {:.3} s, min {:.3} s, max {:.3} s (reporting interval {} ms)",
        args.nodes,
        args.runs,
        counted[counted.len() / 2],
        counted[0],
        counted[counted.len() - 1],
        args.reporting_ms
    );
}
