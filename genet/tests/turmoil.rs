//! Genet and the map over a tree under turmoil's simulated network: the
//! same [`WsNode`]s, [`Relay`] and [`tree`] code as over loopback, over
//! simulated TCP ([`SimNet`], plugged in with [`WsNode::start_with`] and
//! [`Relay::bind_with`]), one turmoil host per node, with seeded latency,
//! partitions and crashes.
//!
//! Everything runs on turmoil's simulated clock, which drives tokio's (no
//! real sleeps; every wait is on the simulation, with a simulated deadline
//! that fails the test with a message).
//!
//! Seeded and replayable: each test prints its seed when it fails, and
//! `PANDO_TURMOIL_SEED=S cargo test -p pando-genet --all-features --test
//! turmoil` runs every test with seed `S` (the seed drives turmoil's
//! latencies and the fault schedule: when each node starts, which node is
//! cut off or crashed, and when). A seed replays the plain tree exactly
//! ([`a_seed_replays_the_same_run`]). Under the map, the same seed gives
//! the same tree, the same victims and the same first faults, but later
//! counts may shift by a few values from run to run: tokio's `select!`
//! draws from a per-runtime random number generator that turmoil seeds
//! only under `--cfg tokio_unstable`.
//!
//! The map test runs 10^5 values (15-20 s in debug on an idle 2-core
//! machine; its simulated run takes about 30-40 s).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pando_distributed_map::{DistributedMap, MapConfig};
use pando_genet::tree::{self, TreeConfig, Volunteer};
use pando_genet::ws::{Dialer, Network, Relay, RelayConfig, Status, StreamListener, WsNode, WsNodeConfig};
use pando_genet::{Backoff, Config, Event, NodeId, State};
use pando_pull_stream::{collect, count, pull};
use tokio::sync::watch;
use turmoil::Sim;

/// The relay's port.
const RELAY_PORT: u16 = 9000;
/// The relay's URL, by host name.
const RELAY_URL: &str = "ws://relay:9000/";
const SECRET: &str = "secret";
const TOKEN: &str = "token";
/// The degree bound of every test.
const LIMIT: usize = 3;

/// turmoil's TCP, as Genet's network, for the host `host`. turmoil binds
/// only wildcard addresses: the listener gives the host's own address as
/// its `local_addr`, the one its children dial.
#[derive(Clone, Debug)]
struct SimNet {
    host: String,
}

#[async_trait]
impl Dialer for SimNet {
    type Stream = turmoil::net::TcpStream;

    async fn dial(&self, addr: &str) -> std::io::Result<turmoil::net::TcpStream> {
        turmoil::net::TcpStream::connect(addr).await
    }
}

/// A turmoil listener that gives its host's address.
struct SimListener {
    inner: turmoil::net::TcpListener,
    advertised: SocketAddr,
}

#[async_trait]
impl StreamListener for SimListener {
    type Stream = turmoil::net::TcpStream;

    async fn accept(&mut self) -> std::io::Result<(turmoil::net::TcpStream, String)> {
        let (stream, peer) = self.inner.accept().await?;
        Ok((stream, peer.to_string()))
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.advertised)
    }
}

#[async_trait]
impl Network for SimNet {
    type Listener = SimListener;

    async fn bind(&self, addr: &str) -> std::io::Result<SimListener> {
        let port: u16 = addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no port in {addr:?}")))?;
        let inner = turmoil::net::TcpListener::bind(("0.0.0.0", port)).await?;
        let advertised = SocketAddr::new(turmoil::lookup(self.host.as_str()), inner.local_addr()?.port());
        Ok(SimListener { inner, advertised })
    }
}

/// The seed: `PANDO_TURMOIL_SEED`, or the test's own default.
fn seed_or(default: u64) -> u64 {
    match std::env::var("PANDO_TURMOIL_SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|e| panic!("PANDO_TURMOIL_SEED={s:?} is not a seed (a u64): {e}")),
        Err(_) => default,
    }
}

/// Prints the seed and how to replay it if the test panics.
struct SeedGuard {
    test: &'static str,
    seed: u64,
}

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{} failed with seed {}; replay: PANDO_TURMOIL_SEED={} cargo test -p pando-genet --all-features --test turmoil {}",
                self.test, self.seed, self.seed, self.test
            );
        }
    }
}

/// The fault schedule's random numbers, from the seed.
struct Dice(fastrand::Rng);

impl Dice {
    fn new(seed: u64, salt: u64) -> Self {
        Dice(fastrand::Rng::with_seed(
            seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        ))
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0.u64(lo..hi)
    }

    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.0.usize(..from.len())]
    }
}

/// What the hosts share with the test: each node's status (its latest
/// incarnation's), how often it left its tree, what it computed.
#[derive(Default)]
struct Shared {
    status: Mutex<BTreeMap<String, watch::Receiver<Status>>>,
    left: Mutex<BTreeMap<String, u64>>,
    computed: Mutex<BTreeMap<String, u64>>,
    /// How many times each host started (a bounced host starts with a
    /// fresh seed).
    starts: Mutex<BTreeMap<String, u64>>,
    /// The root's output, once complete.
    output: Mutex<Option<Result<Vec<u64>, String>>>,
    /// Results out of the root's map so far.
    progress: AtomicU64,
    /// The test says when the root's run starts.
    go: Mutex<Option<watch::Receiver<bool>>>,
    /// A node failed to start (the host's error ends the simulation too).
    start_failed: AtomicBool,
}

impl Shared {
    fn statuses(&self) -> BTreeMap<String, Status> {
        self.status
            .lock()
            .unwrap()
            .iter()
            .map(|(h, s)| (h.clone(), s.borrow().clone()))
            .collect()
    }
}

/// The core's parameters of every node: short intervals, re-join on.
fn genet_config() -> Config {
    Config {
        children_limit: LIMIT,
        reporting_interval: Duration::from_millis(200),
        candidate_timeout: Duration::from_secs(3),
        join_timeout: Duration::from_secs(3),
        rejoin: Some(Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
        }),
        ..Config::default()
    }
}

/// A node's settings on host `host`: it listens, and its links time out
/// after 2 s of silence.
fn node_config(seed: u64, app_links: bool) -> WsNodeConfig {
    let mut c = WsNodeConfig::new(RELAY_URL, TOKEN, seed);
    c.listen = Some("0.0.0.0:0".into());
    c.genet = genet_config();
    c.app_links = app_links;
    c.handshake_timeout = Duration::from_secs(2);
    c.link_timeout = Duration::from_secs(2);
    c
}

/// The next seed of `host`'s node: one per start.
fn node_seed(shared: &Shared, host: &str, base: u64) -> u64 {
    let mut starts = shared.starts.lock().unwrap();
    let n = starts.entry(host.to_string()).or_default();
    *n += 1;
    base.wrapping_mul(1000).wrapping_add(*n)
}

/// Records the node's status and counts its departures.
fn watch_node(shared: &Arc<Shared>, host: &str, node: &WsNode) {
    shared
        .status
        .lock()
        .unwrap()
        .insert(host.to_string(), node.status());
    let mut events = node.subscribe();
    let shared = shared.clone();
    let host = host.to_string();
    tokio::spawn(async move {
        while let Ok(e) = events.recv().await {
            if matches!(e, Event::Left { .. }) {
                *shared.left.lock().unwrap().entry(host.clone()).or_default() += 1;
            }
        }
    });
}

fn add_relay(sim: &mut Sim<'_>) {
    sim.host("relay", || async {
        let addr = format!("0.0.0.0:{RELAY_PORT}");
        let net = SimNet { host: "relay".into() };
        let _relay = Relay::bind_with(&addr, RelayConfig::new(SECRET, TOKEN), net).await?;
        std::future::pending::<()>().await;
        Ok(())
    });
}

/// The root of a plain tree (no map).
fn add_root(sim: &mut Sim<'_>, shared: &Arc<Shared>) {
    let shared = shared.clone();
    sim.host("root", move || {
        let shared = shared.clone();
        async move {
            // The relay first.
            tokio::time::sleep(Duration::from_millis(50)).await;
            let net = SimNet { host: "root".into() };
            let node = WsNode::start_with(node_config(1, false), net).await?;
            watch_node(&shared, "root", &node);
            node.become_root(SECRET).await?;
            std::future::pending::<()>().await;
            Ok(())
        }
    });
}

fn member_name(i: usize) -> String {
    format!("n{i}")
}

/// A plain tree's member `i`, starting `delay` after the simulation.
fn add_member(sim: &mut Sim<'_>, shared: &Arc<Shared>, i: usize, delay: Duration) {
    let shared = shared.clone();
    let host = member_name(i);
    sim.host(host.clone(), move || {
        let shared = shared.clone();
        let host = host.clone();
        async move {
            tokio::time::sleep(delay).await;
            let seed = node_seed(&shared, &host, 100 + i as u64);
            let node = match WsNode::start_with(node_config(seed, false), SimNet { host: host.clone() }).await
            {
                Ok(n) => n,
                Err(e) => {
                    shared.start_failed.store(true, Ordering::Relaxed);
                    return Err(format!("{host}: {e}").into());
                }
            };
            watch_node(&shared, &host, &node);
            node.join().await?;
            std::future::pending::<()>().await;
            Ok(())
        }
    });
}

/// The tree the statuses describe: each member's depth (the root's
/// children at 1), `None` for a member not connected to the root.
fn depths(statuses: &BTreeMap<String, Status>) -> BTreeMap<String, Option<usize>> {
    let root = statuses.get("root").and_then(|s| s.id);
    let parents: HashMap<NodeId, NodeId> = statuses
        .values()
        .filter_map(|s| match (s.id, s.state) {
            (Some(id), State::Member { parent }) => Some((id, parent)),
            _ => None,
        })
        .collect();
    statuses
        .iter()
        .filter(|(h, _)| *h != "root")
        .map(|(h, s)| {
            let d = (|| {
                let mut id = s.id?;
                let mut d = 0;
                while Some(id) != root {
                    id = *parents.get(&id)?;
                    d += 1;
                    if d > statuses.len() {
                        return None;
                    }
                }
                Some(d)
            })();
            (h.clone(), d)
        })
        .collect()
}

/// The host of each node identifier.
fn hosts(statuses: &BTreeMap<String, Status>) -> HashMap<NodeId, String> {
    statuses
        .iter()
        .filter_map(|(h, s)| Some((s.id?, h.clone())))
        .collect()
}

/// The members below `top` (not `top` itself), from the statuses.
fn subtree(statuses: &BTreeMap<String, Status>, top: &str) -> BTreeSet<String> {
    let d = depths(statuses);
    let hosts = hosts(statuses);
    let mut below = BTreeSet::new();
    for (h, s) in statuses {
        if h == "root" || d.get(h).copied().flatten().is_none() {
            continue;
        }
        let mut p = s.parent();
        while let Some(id) = p {
            match hosts.get(&id) {
                Some(ph) if ph == top => {
                    below.insert(h.clone());
                    break;
                }
                Some(ph) => p = statuses[ph].parent(),
                None => break,
            }
        }
    }
    below
}

/// Every member hangs from the root, and the root counts every leaf.
fn whole(statuses: &BTreeMap<String, Status>, members: usize) -> bool {
    let d = depths(statuses);
    if d.len() != members || d.values().any(Option::is_none) {
        return false;
    }
    let parents: BTreeSet<NodeId> = statuses.values().filter_map(Status::parent).collect();
    let leaves = statuses
        .values()
        .filter(|s| s.id.is_some_and(|id| !parents.contains(&id)))
        .count() as u64;
    statuses["root"].leaves == Some(leaves)
}

/// No node ever had more than [`LIMIT`] children and candidates, or child links.
fn assert_degree_bound(statuses: &BTreeMap<String, Status>) {
    for (h, s) in statuses {
        assert!(
            s.max_occupied <= LIMIT && s.max_child_links <= LIMIT,
            "{h} exceeded the degree bound: {s:?}"
        );
    }
}

/// Steps `sim` until `done` holds of the statuses (checking the degree
/// bound at every step), or fails after `within` simulated time, naming
/// `what` and showing the tree.
fn run_until(
    sim: &mut Sim<'_>,
    shared: &Shared,
    within: Duration,
    what: &str,
    mut done: impl FnMut(&BTreeMap<String, Status>) -> bool,
) {
    let deadline = sim.elapsed() + within;
    loop {
        let statuses = shared.statuses();
        assert_degree_bound(&statuses);
        if done(&statuses) {
            return;
        }
        assert!(
            sim.elapsed() < deadline,
            "waited {within:?} (simulated) for {what}; depths {:?}",
            depths(&statuses)
        );
        if let Err(e) = sim.step() {
            panic!("the simulation failed after {:?}: {e}", sim.elapsed());
        }
    }
}

/// A simulation with the seed's latency.
fn sim<'a>(seed: u64, limit: Duration) -> Sim<'a> {
    let mut dice = Dice::new(seed, 0);
    let min = Duration::from_millis(dice.range(1, 5));
    let max = min + Duration::from_millis(dice.range(5, 30));
    turmoil::Builder::new()
        .rng_seed(seed)
        .simulation_duration(limit)
        .tick_duration(Duration::from_millis(5))
        .min_message_latency(min)
        .max_message_latency(max)
        .build()
}

/// 20 nodes of at most 3 children join one tree under latency; an
/// intermediate node is cut off from its parent (a partition: no close,
/// no reset, nothing gets through); both ends find the silence
/// ([`WsNodeConfig::link_timeout`]), the node and its subtree leave, and
/// re-join ([`Config::rejoin`]) while the partition lasts; the root counts
/// every leaf again, and the degree bound holds throughout.
#[test]
fn a_partitioned_subtree_rejoins_and_the_root_counts_every_leaf() {
    let test = "a_partitioned_subtree_rejoins_and_the_root_counts_every_leaf";
    let seed = seed_or(1);
    let _guard = SeedGuard { test, seed };
    print!("{}", partitioned_subtree(seed));
}

/// The same seed gives the same run: the same tree, the same victim, the
/// same re-joined tree at the same simulated times.
#[test]
fn a_seed_replays_the_same_run() {
    let test = "a_seed_replays_the_same_run";
    let seed = seed_or(3);
    let _guard = SeedGuard { test, seed };
    let first = partitioned_subtree(seed);
    let second = partitioned_subtree(seed);
    print!("{first}");
    assert_eq!(first, second, "two runs of seed {seed}");
}

/// The run of [`a_partitioned_subtree_rejoins_and_the_root_counts_every_leaf`],
/// told: what it saw, with the simulated times.
fn partitioned_subtree(seed: u64) -> String {
    use std::fmt::Write;
    const MEMBERS: usize = 20;
    let mut told = String::new();
    let mut sim = sim(seed, Duration::from_secs(600));
    let shared = Arc::new(Shared::default());
    add_relay(&mut sim);
    add_root(&mut sim, &shared);
    let mut dice = Dice::new(seed, 1);
    for i in 0..MEMBERS {
        add_member(&mut sim, &shared, i, Duration::from_millis(dice.range(100, 2000)));
    }
    run_until(
        &mut sim,
        &shared,
        Duration::from_secs(60),
        "the whole tree",
        |s| s.len() == MEMBERS + 1 && whole(s, MEMBERS),
    );
    let statuses = shared.statuses();
    let d = depths(&statuses);
    writeln!(told, "tree after {:?}: depths {d:?}", sim.elapsed()).unwrap();
    assert!(
        d.values().flatten().any(|&d| d >= 3),
        "at least three levels: {d:?}"
    );

    // An intermediate node (one with children, not the root), cut off from
    // its parent.
    let intermediate: Vec<&str> = statuses
        .iter()
        .filter(|(h, s)| *h != "root" && s.children > 0)
        .map(|(h, _)| h.as_str())
        .collect();
    let victim = dice.pick(&intermediate).to_string();
    let parent_id = statuses[&victim].parent().unwrap();
    let parent = hosts(&statuses)[&parent_id].clone();
    let below = subtree(&statuses, &victim);
    let left_before = shared.left.lock().unwrap().clone();
    writeln!(
        told,
        "at {:?}: cutting {victim} off from its parent {parent}; its subtree: {below:?}",
        sim.elapsed()
    )
    .unwrap();
    sim.partition(victim.as_str(), parent.as_str());

    // The victim and its subtree leave, then the tree is whole again.
    let left = |shared: &Shared, h: &str| {
        shared.left.lock().unwrap().get(h).copied().unwrap_or(0) > left_before.get(h).copied().unwrap_or(0)
    };
    run_until(
        &mut sim,
        &shared,
        Duration::from_secs(120),
        "the subtree to leave and re-join",
        |s| {
            left(&shared, &victim)
                && below.iter().all(|h| left(&shared, h))
                && s.values().all(|s| s.state != State::Idle)
                && whole(s, MEMBERS)
        },
    );
    let statuses = shared.statuses();
    writeln!(
        told,
        "whole again at {:?}: depths {:?}; the victim's parent now {:?}",
        sim.elapsed(),
        depths(&statuses),
        statuses[&victim].parent().map(|p| hosts(&statuses)[&p].clone())
    )
    .unwrap();
    assert_ne!(
        statuses[&victim].parent(),
        Some(parent_id),
        "the victim found another parent"
    );
    assert_degree_bound(&statuses);
    told
}

/// The values of the map test: `x ↦ 2x` over `1..=N`.
const N: u64 = 100_000;

/// The root of the map's tree: a relay's root whose DistributedMap lends
/// to its children; it runs `1..=n` through the map once the test says go.
fn add_map_root(sim: &mut Sim<'_>, shared: &Arc<Shared>, n: u64, batch: usize) {
    let shared = shared.clone();
    sim.host("root", move || {
        let shared = shared.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let map = DistributedMap::<u64, u64, ()>::new(MapConfig {
                token: TOKEN.into(),
                local_workers: Some(0),
                batch_size: NonZeroUsize::new(batch).unwrap(),
                heartbeat: Duration::from_millis(200),
                heartbeat_timeout: Duration::from_secs(2),
                ..MapConfig::default()
            });
            let net = SimNet { host: "root".into() };
            let mut node = WsNode::start_with(node_config(1, true), net).await?;
            watch_node(&shared, "root", &node);
            tree::lend_to_children(
                &map,
                node.take_links().unwrap(),
                NonZeroUsize::new(batch).unwrap(),
            );
            node.become_root(SECRET).await?;
            let mut go = shared.go.lock().unwrap().clone().expect("a go signal");
            go.wait_for(|g| *g).await?;
            let progress = {
                let shared = shared.clone();
                pando_pull_stream::map(move |r: u64| {
                    shared.progress.fetch_add(1, Ordering::Relaxed);
                    r
                })
            };
            let out = pull!(count(n), map.clone(), progress, collect::<Vec<_>>()).await;
            *shared.output.lock().unwrap() = Some(out.map_err(|e| format!("{e:?}")));
            std::future::pending::<()>().await;
            Ok(())
        }
    });
}

/// A volunteer of the map's tree: computes `2x`, re-joins after a lost
/// parent (as genet/tests/tree.rs's). A bounced host starts a new node.
fn add_volunteer(sim: &mut Sim<'_>, shared: &Arc<Shared>, i: usize, delay: Duration, batch: usize) {
    let shared = shared.clone();
    let host = member_name(i);
    sim.host(host.clone(), move || {
        let shared = shared.clone();
        let host = host.clone();
        async move {
            tokio::time::sleep(delay).await;
            let seed = node_seed(&shared, &host, 100 + i as u64);
            let node = WsNode::start_with(node_config(seed, true), SimNet { host: host.clone() }).await?;
            watch_node(&shared, &host, &node);
            let mut config = TreeConfig::new(host.clone());
            config.batch_size = NonZeroUsize::new(batch).unwrap();
            config.jobs = NonZeroUsize::new(4).unwrap();
            config.handshake_timeout = Duration::from_secs(2);
            let mut v = Volunteer::new(node, TOKEN, config)?;
            loop {
                let session = match v.next_parent(Duration::from_secs(60)).await {
                    Ok(s) => s,
                    Err(e) => return Err(format!("{host}: {e}").into()),
                };
                let f = {
                    let shared = shared.clone();
                    let host = host.clone();
                    move |x: u64| {
                        *shared.computed.lock().unwrap().entry(host.clone()).or_default() += 1;
                        async move { Ok::<_, String>(x * 2) }
                    }
                };
                if v.serve(session, f).await.is_ok() {
                    break;
                }
            }
            std::future::pending::<()>().await;
            Ok(())
        }
    });
}

/// 10^5 values through a tree of 12 volunteers of at most 3 children (at
/// least three levels: the root, its children, theirs), under seeded
/// latency; at seeded points of the run,
/// an intermediate node is crashed (its process gone: no close, no reset)
/// and later restarted as a new node, another intermediate node is cut off
/// from its parent, and a random node is crashed. Nothing is lost or
/// duplicated, and the output is in order.
#[test]
fn the_map_over_a_tree_loses_nothing_to_partitions_and_crashes() {
    const VOLUNTEERS: usize = 12;
    const BATCH: usize = 16;
    let test = "the_map_over_a_tree_loses_nothing_to_partitions_and_crashes";
    let seed = seed_or(2);
    let _guard = SeedGuard { test, seed };
    let started = std::time::Instant::now();
    let mut sim = sim(seed, Duration::from_secs(3600));
    let shared = Arc::new(Shared::default());
    let (go, go_rx) = watch::channel(false);
    *shared.go.lock().unwrap() = Some(go_rx);
    add_relay(&mut sim);
    add_map_root(&mut sim, &shared, N, BATCH);
    let mut dice = Dice::new(seed, 2);
    for i in 0..VOLUNTEERS {
        add_volunteer(
            &mut sim,
            &shared,
            i,
            Duration::from_millis(dice.range(100, 2000)),
            BATCH,
        );
    }
    run_until(
        &mut sim,
        &shared,
        Duration::from_secs(60),
        "a tree of three levels",
        |s| {
            s.len() == VOLUNTEERS + 1 && whole(s, VOLUNTEERS) && depths(s).values().flatten().any(|&d| d >= 2)
        },
    );
    println!(
        "tree at {:?}: depths {:?}",
        sim.elapsed(),
        depths(&shared.statuses())
    );
    go.send_replace(true);

    // The faults, at seeded points of the output.
    let at = [
        dice.range(N / 10, N / 4),
        dice.range(N / 4, N / 2),
        dice.range(N / 2, 3 * N / 4),
    ];
    let mut step = 0;
    let mut crashed: Option<(String, Duration)> = None;
    let mut failed = Vec::new();
    let mut intermediate_failed = false;
    let deadline = sim.elapsed() + Duration::from_secs(1800);
    loop {
        if shared.output.lock().unwrap().is_some() {
            break;
        }
        let progress = shared.progress.load(Ordering::Relaxed);
        if step < at.len() && progress >= at[step] {
            let statuses = shared.statuses();
            let alive: Vec<&str> = statuses
                .iter()
                .filter(|(h, s)| {
                    *h != "root" && !failed.contains(*h) && matches!(s.state, State::Member { .. })
                })
                .map(|(h, _)| h.as_str())
                .collect();
            let intermediate: Vec<&str> = alive
                .iter()
                .copied()
                .filter(|h| statuses[*h].children > 0)
                .collect();
            // The first two faults hit intermediate nodes (if any is left).
            let pool = if step < 2 && !intermediate.is_empty() {
                &intermediate
            } else {
                &alive
            };
            if !pool.is_empty() {
                let victim = dice.pick(pool).to_string();
                let children = statuses[&victim].children;
                intermediate_failed |= children > 0;
                let depth = depths(&statuses)[&victim];
                if step == 1 {
                    let parent_id = statuses[&victim].parent().unwrap();
                    let parent = hosts(&statuses)[&parent_id].clone();
                    println!(
                        "after {progress} results ({:?}): cutting {victim} (depth {depth:?}, {children} children) off from {parent}",
                        sim.elapsed()
                    );
                    sim.partition(victim.as_str(), parent.as_str());
                } else {
                    println!(
                        "after {progress} results ({:?}): crashing {victim} (depth {depth:?}, {children} children)",
                        sim.elapsed()
                    );
                    sim.crash(victim.as_str());
                    if step == 0 {
                        crashed = Some((victim.clone(), sim.elapsed() + Duration::from_secs(5)));
                    }
                }
                failed.push(victim);
            }
            step += 1;
        }
        if let Some((host, when)) = &crashed {
            if sim.elapsed() >= *when {
                println!("at {:?}: restarting {host} as a new node", sim.elapsed());
                sim.bounce(host.as_str());
                crashed = None;
            }
        }
        assert!(
            sim.elapsed() < deadline,
            "the run took more than {:?} (simulated); {progress} results",
            Duration::from_secs(1800)
        );
        if let Err(e) = sim.step() {
            panic!("the simulation failed after {:?}: {e}", sim.elapsed());
        }
    }
    let out = shared
        .output
        .lock()
        .unwrap()
        .take()
        .unwrap()
        .unwrap_or_else(|e| panic!("the map failed: {e}"));
    let computed = shared.computed.lock().unwrap().clone();
    println!(
        "{N} values in {:?} simulated, {:?} real; computed per node: {computed:?}",
        sim.elapsed(),
        started.elapsed()
    );
    assert!(intermediate_failed, "an intermediate node was among those failed");
    assert_eq!(out.len() as u64, N, "every value has one result");
    assert!(
        out.iter().zip(1..=N).all(|(&r, x)| r == x * 2),
        "results in order"
    );
    assert!(computed.values().sum::<u64>() >= N);
    assert_degree_bound(&shared.statuses());
}
