//! Throughput of the scalable DistributedMap over a Genet tree, against its
//! baselines in the same run (issue 11): N values with a fixed CPU cost per
//! value (none by default) through
//!
//! - (a) a tree of V volunteers (real Genet nodes, tasks of this process,
//!   on loopback WebSocket) below a root that only lends;
//! - (b) as many workers as the tree has leaves, connected flat to one
//!   DistributedMap over loopback WebSocket (`Worker::new(..).run(url, f)`);
//! - (c) with `--local`, one in-process local worker per core.
//!
//! ```text
//! nice cargo run --release -p pando-genet --features map --example tree_bench -- [--values 100000] [--nodes 12] [--children-limit 3] [--batch-size 8] [--work 0] [--local]
//! ```
//!
//! It prints values/s for each, the tree's depth (the root's children at
//! depth 1) and the ratio tree/flat. The tree is formed, and its leaf counts
//! have reached the root, before its run is timed.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use clap::Parser;
use pando_distributed_map::transport::Listener;
use pando_distributed_map::transport::ws::WsListener;
use pando_distributed_map::{DistributedMap, MapConfig, Worker, join_url};
use pando_genet::tree::{self, TreeConfig, Volunteer};
use pando_genet::ws::{Relay, RelayConfig, Status, WsNode, WsNodeConfig};
use pando_genet::{Config, NodeId, State};
use pando_pull_stream::{count, drain, pull};
use tokio::sync::watch;

/// Time a map over a Genet tree against flat workers.
#[derive(Debug, Parser)]
struct Args {
    /// N: the values.
    #[arg(long, default_value_t = 100_000)]
    values: u64,
    /// V: the volunteers of the tree (the root not counted).
    #[arg(long, default_value_t = 12)]
    nodes: usize,
    /// The most children per node.
    #[arg(long, default_value_t = 3)]
    children_limit: usize,
    /// Values lent per leaf (the Limiters' batch_size), tree and flat.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// CPU cost per value: this many rounds of a 64-bit mix (0: none).
    #[arg(long, default_value_t = 0)]
    work: u64,
    /// Also time one in-process local worker per core.
    #[arg(long)]
    local: bool,
}

const TOKEN: &str = "bench";
const WAIT: Duration = Duration::from_secs(60);

/// The function: `work` rounds of SplitMix64's mix on `x`.
async fn f(x: u64, work: u64) -> Result<u64, String> {
    let mut z = x;
    for _ in 0..work {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
    }
    Ok(z)
}

fn map_config(batch_size: usize) -> MapConfig {
    MapConfig {
        token: TOKEN.into(),
        local_workers: Some(0),
        batch_size: NonZeroUsize::new(batch_size).expect("--batch-size is at least 1"),
        ..MapConfig::default()
    }
}

/// Runs the values through `map`; values/s.
async fn time_run(map: &DistributedMap<u64, u64, ()>, n: u64) -> f64 {
    let start = Instant::now();
    pull!(count(n), map.clone(), drain()).await.expect("the run");
    n as f64 / start.elapsed().as_secs_f64()
}

/// The depth of each node (the root's children at 1), and the leaves.
fn shape(root: NodeId, statuses: &[watch::Receiver<Status>]) -> Option<(usize, usize)> {
    let mut parents = HashMap::new();
    let mut leaves = 0;
    for s in statuses {
        let s = s.borrow();
        match (s.id, s.state) {
            (Some(id), State::Member { parent }) => {
                parents.insert(id, parent);
                if s.children == 0 {
                    leaves += 1;
                }
            }
            _ => return None,
        }
    }
    let mut depth = 0;
    for s in statuses {
        let mut id = s.borrow().id?;
        let mut d = 0;
        while id != root {
            id = *parents.get(&id)?;
            d += 1;
        }
        depth = usize::max(depth, d);
    }
    Some((depth, leaves))
}

/// (a): the tree. Its values/s, depth and leaves.
async fn tree_run(args: &Args) -> (f64, usize, usize) {
    let map = DistributedMap::<u64, u64, ()>::new(map_config(args.batch_size));
    let relay = Relay::bind("127.0.0.1:0", RelayConfig::new("secret", TOKEN))
        .await
        .expect("the relay");
    let genet = Config {
        children_limit: args.children_limit,
        reporting_interval: Duration::from_millis(100),
        ..Config::default()
    };
    let node_config = |seed| {
        let mut c = WsNodeConfig::new(relay.url(), TOKEN, seed);
        c.listen = Some("127.0.0.1:0".into());
        c.app_links = true;
        c.genet = genet.clone();
        c
    };
    let mut root = WsNode::start(node_config(1)).await.expect("the root");
    tree::lend_to_children(
        &map,
        root.take_links().expect("app links"),
        NonZeroUsize::new(args.batch_size).expect("nonzero"),
    );
    root.become_root("secret").await.expect("the root");
    let root_id = root
        .wait_for(|s| s.root_registered, WAIT, "the root registered")
        .await
        .expect("the root registered")
        .id
        .expect("an id");
    let mut statuses = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..args.nodes {
        let node = WsNode::start(node_config(100 + i as u64)).await.expect("a node");
        statuses.push(node.status());
        let mut config = TreeConfig::new(format!("v{i}"));
        config.batch_size = NonZeroUsize::new(args.batch_size).expect("nonzero");
        let mut v = Volunteer::new(node, TOKEN, config).expect("a volunteer");
        let work = args.work;
        tasks.push(tokio::spawn(async move {
            let session = v.next_parent(WAIT).await.expect("a parent");
            let _ = v.serve(session, move |x: u64| f(x, work)).await;
            v.shutdown().await;
        }));
    }
    // Formed, and the root counts every leaf.
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut root_status = root.status();
    let (depth, leaves) = loop {
        if let Some((depth, leaves)) = shape(root_id, &statuses) {
            if root_status.borrow_and_update().leaves == Some(leaves as u64) {
                break (depth, leaves);
            }
        }
        let mut all = statuses.clone();
        all.push(root_status.clone());
        let changed = futures::future::select_all(all.iter_mut().map(|w| Box::pin(w.changed())));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            panic!("the tree did not form within {WAIT:?}");
        }
    };
    let rate = time_run(&map, args.values).await;
    map.finish(Duration::from_secs(5)).await;
    for t in tasks {
        t.abort();
    }
    root.shutdown().await;
    (rate, depth, leaves)
}

/// (b): `workers` workers connected flat over loopback WebSocket.
async fn flat_run(args: &Args, workers: usize) -> f64 {
    let map = DistributedMap::<u64, u64, ()>::new(map_config(args.batch_size));
    let listener = WsListener::bind("127.0.0.1:0", map.config().max_frame)
        .await
        .expect("a listener");
    let url = join_url(&listener.url(), TOKEN);
    map.serve(listener);
    for i in 0..workers {
        let url = url.clone();
        let work = args.work;
        tokio::spawn(async move {
            Worker::new(format!("w{i}"))
                .run(&url, move |x: u64| f(x, work))
                .await
        });
    }
    // A benchmark, not a test: polls until every worker has joined.
    let start = Instant::now();
    while map.stats().workers.iter().filter(|w| w.connected).count() < workers {
        assert!(start.elapsed() < WAIT, "the flat workers did not join");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = time_run(&map, args.values).await;
    map.finish(Duration::from_secs(5)).await;
    rate
}

/// (c): one in-process local worker per core.
async fn local_run(args: &Args) -> (f64, usize) {
    let cores = pando_distributed_map::default_workers();
    let map = DistributedMap::<u64, u64, ()>::new(map_config(args.batch_size));
    let work = args.work;
    map.local_workers(cores, false, move |x: u64| f(x, work));
    (time_run(&map, args.values).await, cores)
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        println!(
            "{} values, {} rounds of work each, batch_size {}",
            args.values, args.work, args.batch_size
        );
        let (tree, depth, leaves) = tree_run(&args).await;
        println!(
            "(a) tree: {} volunteers, children_limit {}, depth {depth}, {leaves} leaves: {tree:.0} values/s",
            args.nodes, args.children_limit
        );
        let flat = flat_run(&args, leaves).await;
        println!("(b) flat: {leaves} WebSocket workers: {flat:.0} values/s");
        if args.local {
            let (local, cores) = local_run(&args).await;
            println!("(c) local: {cores} in-process workers: {local:.0} values/s");
        }
        println!("tree/flat: {:.2}", tree / flat);
    });
}
