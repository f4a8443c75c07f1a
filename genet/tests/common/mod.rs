//! Helpers shared by the tests of the scalable DistributedMap over real
//! Genet nodes on loopback WebSocket (tests/tree.rs, tests/tree_props.rs):
//! a root with its map, volunteers, and waits on status changes and
//! counters (each with a deadline, only to fail with a message).

#![allow(dead_code, reason = "each test file uses a part of the helpers")]

use std::collections::HashMap;
use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use pando_distributed_map::{DistributedMap, MapConfig};
use pando_genet::tree::{self, TreeConfig, Volunteer};
use pando_genet::ws::{Relay, RelayConfig, Status, WsNode, WsNodeConfig};
use pando_genet::{Backoff, Config, Event, NodeId, State};
use pando_pull_stream::{infinite, into_stream, pull};
use tokio::sync::{oneshot, watch};

/// The deadline of every wait: only to fail with a message.
pub(crate) const WAIT: Duration = Duration::from_secs(120);
/// The tree's join token.
pub(crate) const TOKEN: &str = "token";
/// The nodes' reporting interval.
pub(crate) const REPORTING: Duration = Duration::from_millis(100);

/// A counter that can be waited on.
#[derive(Debug)]
pub(crate) struct Counter(watch::Sender<u64>);

impl Default for Counter {
    fn default() -> Self {
        Self(watch::channel(0).0)
    }
}

impl Counter {
    /// Adds one; returns the new count.
    pub(crate) fn incr(&self) -> u64 {
        let mut n = 0;
        self.0.send_modify(|c| {
            *c += 1;
            n = *c;
        });
        n
    }

    /// The count.
    pub(crate) fn get(&self) -> u64 {
        *self.0.borrow()
    }

    /// Waits until the count is at least `n`, failing after [`WAIT`] with `what`.
    pub(crate) async fn wait_for(&self, n: u64, what: &str) {
        let mut rx = self.0.subscribe();
        if tokio::time::timeout(WAIT, rx.wait_for(|c| *c >= n))
            .await
            .is_err()
        {
            panic!("waited {WAIT:?} for {what} (count {} < {n})", self.get());
        }
    }
}

/// The links of one node, counted from its Genet events (each
/// `ParentConnected` and `ChildConnected` hands the application one
/// [`AppLink`](pando_genet::ws::AppLink)).
#[derive(Debug, Default)]
pub(crate) struct LinkCount {
    inner: Mutex<Links>,
    parent_links: Counter,
}

#[derive(Debug, Default)]
struct Links {
    parents: usize,
    children: usize,
    max_parents: usize,
    max_children: usize,
}

impl LinkCount {
    fn on(&self, e: &Event) {
        let mut l = self.inner.lock().unwrap();
        match e {
            Event::ParentConnected { .. } => {
                l.parents += 1;
                self.parent_links.incr();
            }
            Event::ChildConnected { .. } => l.children += 1,
            Event::ChildDisconnected { .. } => l.children = l.children.saturating_sub(1),
            Event::Left { .. } => {
                l.parents = 0;
                l.children = 0;
            }
            _ => {}
        }
        l.max_parents = l.max_parents.max(l.parents);
        l.max_children = l.max_children.max(l.children);
    }

    /// The most parent links the node had at once.
    pub(crate) fn max_parents(&self) -> usize {
        self.inner.lock().unwrap().max_parents
    }

    /// The most child links the node had at once.
    pub(crate) fn max_children(&self) -> usize {
        self.inner.lock().unwrap().max_children
    }

    /// The parent links the node was given in all (one per join).
    pub(crate) fn parent_links(&self) -> u64 {
        self.parent_links.get()
    }

    /// Waits until the node was given a parent link (its event counted).
    pub(crate) async fn wait_parent(&self) {
        self.parent_links.wait_for(1, "a parent link counted").await;
    }

    /// Counts `node`'s events from now on, until it stops.
    pub(crate) fn watch(node: &WsNode) -> Arc<Self> {
        let count = Arc::new(Self::default());
        let mut events = node.subscribe();
        let c = count.clone();
        tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(e) => c.on(&e),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        panic!("the link count lost {n} events")
                    }
                    Err(_) => return,
                }
            }
        });
        count
    }
}

/// One volunteer: its node's status, what it computed, and how to stop it.
pub(crate) struct Member {
    /// Its seed (its name is `v{seed}`).
    pub(crate) seed: u64,
    /// Its node's status.
    pub(crate) status: watch::Receiver<Status>,
    /// Values its function started.
    pub(crate) computed: Arc<Counter>,
    /// Its links, from its events.
    pub(crate) links: Arc<LinkCount>,
    /// Aborting it crashes the volunteer (its node is dropped at once).
    pub(crate) task: tokio::task::JoinHandle<()>,
    stop: Mutex<Option<oneshot::Sender<()>>>,
}

impl Member {
    /// Leaves gracefully: stops serving and shuts the node down (it leaves
    /// its tree), waiting for that.
    pub(crate) async fn leave(&mut self) {
        if let Some(stop) = self.stop.lock().unwrap().take() {
            let _ = stop.send(());
        }
        let name = self.seed;
        tokio::time::timeout(WAIT, &mut self.task)
            .await
            .unwrap_or_else(|_| panic!("waited {WAIT:?} for v{name} to shut down"))
            .unwrap();
    }

    /// Its node's id.
    pub(crate) fn id(&self) -> Option<NodeId> {
        self.status.borrow().id
    }
}

/// A volunteer's settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Opts {
    /// Its children_limit.
    pub(crate) children_limit: usize,
    /// Its map's batch_size.
    pub(crate) batch_size: usize,
    /// Values processed at once locally.
    pub(crate) jobs: usize,
}

impl Opts {
    /// `children_limit` and `batch_size`, 4 jobs.
    pub(crate) fn new(children_limit: usize, batch_size: usize) -> Self {
        Self {
            children_limit,
            batch_size,
            jobs: 4,
        }
    }
}

/// Starts a volunteer applying `f` (counted in [`Member::computed`] as it
/// starts), re-joining after a lost parent, until its run ends or it is
/// told to leave.
pub(crate) async fn spawn_volunteer<F, Fut>(relay: &str, seed: u64, opts: Opts, f: F) -> Member
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<u64, String>> + Send + 'static,
{
    let mut cfg = WsNodeConfig::new(relay, TOKEN, seed);
    cfg.listen = Some("127.0.0.1:0".into());
    cfg.app_links = true;
    cfg.genet = Config {
        children_limit: opts.children_limit,
        reporting_interval: REPORTING,
        rejoin: Some(Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(500),
        }),
        ..Config::default()
    };
    let node = WsNode::start(cfg).await.unwrap();
    let status = node.status();
    let links = LinkCount::watch(&node);
    let mut config = TreeConfig::new(format!("v{seed}"));
    config.batch_size = NonZeroUsize::new(opts.batch_size).unwrap();
    config.jobs = NonZeroUsize::new(opts.jobs).unwrap();
    let mut v = Volunteer::new(node, TOKEN, config).unwrap();
    let computed = Arc::new(Counter::default());
    let c = computed.clone();
    let (stop_tx, mut stop) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        loop {
            let session = tokio::select! {
                s = v.next_parent(WAIT) => match s {
                    Ok(s) => s,
                    Err(_) => return,
                },
                _ = &mut stop => break,
            };
            let c = c.clone();
            let f = f.clone();
            let f = move |x: u64| {
                c.incr();
                f(x)
            };
            tokio::select! {
                r = v.serve(session, f) => if r.is_ok() { break },
                _ = &mut stop => break,
            }
        }
        v.shutdown().await;
    });
    Member {
        seed,
        status,
        computed,
        links,
        task,
        stop: Mutex::new(Some(stop_tx)),
    }
}

/// Starts a volunteer that computes `x * 2`, re-joining after a lost parent.
pub(crate) async fn volunteer(relay: &str, seed: u64, children_limit: usize, batch_size: usize) -> Member {
    spawn_volunteer(relay, seed, Opts::new(children_limit, batch_size), double).await
}

/// The function of most tests: `x * 2`, after a yield.
pub(crate) async fn double(x: u64) -> Result<u64, String> {
    tokio::task::yield_now().await;
    Ok(x * 2)
}

/// The parent of each member in a tree, from the statuses.
pub(crate) fn parents(members: &[Member]) -> HashMap<NodeId, NodeId> {
    members
        .iter()
        .filter_map(|m| {
            let s = m.status.borrow();
            match (s.id, s.state) {
                (Some(id), State::Member { parent }) => Some((id, parent)),
                _ => None,
            }
        })
        .collect()
}

/// The depth of each member (the root's children at 1), from the statuses.
pub(crate) fn depths(root: NodeId, members: &[Member]) -> Vec<Option<usize>> {
    let parents = parents(members);
    members
        .iter()
        .map(|m| {
            let mut id = m.status.borrow().id?;
            let mut d = 0;
            while id != root {
                id = *parents.get(&id)?;
                d += 1;
                if d > members.len() {
                    return None;
                }
            }
            Some(d)
        })
        .collect()
}

/// The leaves below each member (1 for a childless one), from the statuses.
pub(crate) fn subtree_leaves(members: &[Member]) -> Vec<u64> {
    let parents = parents(members);
    let mut leaves: HashMap<NodeId, u64> = HashMap::new();
    for m in members {
        let s = m.status.borrow();
        let Some(mut id) = s.id else { continue };
        if s.children > 0 {
            continue;
        }
        // A leaf: one for it and for each of its ancestors.
        *leaves.entry(id).or_default() += 1;
        let mut hops = 0;
        while let Some(&p) = parents.get(&id) {
            *leaves.entry(p).or_default() += 1;
            id = p;
            hops += 1;
            if hops > members.len() {
                break;
            }
        }
    }
    members
        .iter()
        .map(|m| m.id().and_then(|id| leaves.get(&id).copied()).unwrap_or(0))
        .collect()
}

/// Waits until `ok` holds of the members, re-checking on every status change.
pub(crate) async fn wait_members(members: &[Member], what: &str, ok: impl Fn(&[Member]) -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut watches: Vec<_> = members.iter().map(|m| m.status.clone()).collect();
    while !ok(members) {
        let changed = futures::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            panic!("waited {WAIT:?} for {what}");
        }
    }
}

/// Waits until every member is in the root's tree, with no join pending,
/// and every node's leaf count (the root's included) is that of its
/// subtree: the Limiters then have their final limits (one reporting
/// interval later, at each parent).
pub(crate) async fn wait_settled(root: &WsNode, root_id: NodeId, members: &[Member]) {
    let mut root_status = root.status();
    let deadline = tokio::time::Instant::now() + WAIT;
    let settled = |root_status: &Status| {
        let d = depths(root_id, members);
        if !d.iter().all(Option::is_some) {
            return false;
        }
        let leaves = subtree_leaves(members);
        let total: u64 = members
            .iter()
            .zip(&leaves)
            .filter(|(m, _)| m.status.borrow().children == 0)
            .map(|(_, &n)| n)
            .sum();
        root_status.occupied == root_status.children
            && root_status.leaves == Some(total)
            && members.iter().zip(&leaves).all(|(m, &n)| {
                let s = m.status.borrow();
                s.occupied == s.children && s.leaves == Some(n)
            })
    };
    let mut watches: Vec<_> = members.iter().map(|m| m.status.clone()).collect();
    while !settled(&root_status.borrow_and_update()) {
        let members_changed = futures::future::select_all(watches.iter_mut().map(|w| Box::pin(w.changed())));
        let changed = async {
            tokio::select! {
                _ = members_changed => {}
                _ = root_status.changed() => {}
            }
        };
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            panic!(
                "waited {WAIT:?} for the tree to settle: depths {:?}, leaves {:?}, root {:?}",
                depths(root_id, members),
                subtree_leaves(members),
                root.status().borrow()
            );
        }
    }
}

/// A root over a relay, and the map it lends from.
pub(crate) async fn root(
    children_limit: usize,
    batch_size: usize,
) -> (Relay, WsNode, DistributedMap<u64, u64, ()>, NodeId) {
    root_with(children_limit, batch_size, MapConfig::default()).await
}

/// [`root`], with the map's other settings from `config`.
pub(crate) async fn root_with(
    children_limit: usize,
    batch_size: usize,
    config: MapConfig,
) -> (Relay, WsNode, DistributedMap<u64, u64, ()>, NodeId) {
    let (relay, node, map, id, _) = root_counted(children_limit, batch_size, config).await;
    (relay, node, map, id)
}

/// The root's application links ([`AppLink`](pando_genet::ws::AppLink)s),
/// counted as they are handed to its map.
#[derive(Debug, Default)]
pub(crate) struct AppLinkCount {
    inner: Mutex<(usize, usize, u64)>,
}

impl AppLinkCount {
    /// The most child links open at once.
    pub(crate) fn max_children(&self) -> usize {
        self.inner.lock().unwrap().1
    }

    /// Parent links handed (none for a root).
    pub(crate) fn parents(&self) -> u64 {
        self.inner.lock().unwrap().2
    }
}

/// [`root_with`], and the count of the root's application links.
pub(crate) async fn root_counted(
    children_limit: usize,
    batch_size: usize,
    config: MapConfig,
) -> (
    Relay,
    WsNode,
    DistributedMap<u64, u64, ()>,
    NodeId,
    Arc<AppLinkCount>,
) {
    let map = DistributedMap::<u64, u64, ()>::new(MapConfig {
        token: TOKEN.into(),
        local_workers: Some(0),
        batch_size: NonZeroUsize::new(batch_size).unwrap(),
        ..config
    });
    let relay = Relay::bind("127.0.0.1:0", RelayConfig::new("secret", TOKEN))
        .await
        .unwrap();
    let mut cfg = WsNodeConfig::new(relay.url(), TOKEN, 1);
    cfg.listen = Some("127.0.0.1:0".into());
    cfg.app_links = true;
    cfg.genet = Config {
        children_limit,
        reporting_interval: REPORTING,
        ..Config::default()
    };
    let mut node = WsNode::start(cfg).await.unwrap();
    // Count the links on their way to the map: a child link is open until
    // its `leaves` sender is gone (with the link).
    let mut links = node.take_links().unwrap();
    let count = Arc::new(AppLinkCount::default());
    let (tx, counted) = tokio::sync::mpsc::unbounded_channel();
    let c = count.clone();
    tokio::spawn(async move {
        while let Some(link) = links.recv().await {
            if link.link == pando_genet::Link::Parent {
                c.inner.lock().unwrap().2 += 1;
            } else {
                {
                    let mut l = c.inner.lock().unwrap();
                    l.0 += 1;
                    l.1 = l.1.max(l.0);
                }
                let mut leaves = link.leaves.clone();
                let c = c.clone();
                tokio::spawn(async move {
                    while leaves.changed().await.is_ok() {}
                    c.inner.lock().unwrap().0 -= 1;
                });
            }
            if tx.send(link).is_err() {
                return;
            }
        }
    });
    tree::lend_to_children(&map, counted, NonZeroUsize::new(batch_size).unwrap());
    node.become_root("secret").await.unwrap();
    let s = node
        .wait_for(|s| s.root_registered, WAIT, "the root registered")
        .await
        .unwrap();
    let id = s.id.unwrap();
    (relay, node, map, id, count)
}

/// SplitMix64, for seeded choices.
pub(crate) fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A run of the map over an infinite input (1, 2, 3…), until told to stop.
pub(crate) struct Run {
    /// Values read from the input.
    pub(crate) read: Arc<AtomicU64>,
    /// Results output so far.
    pub(crate) output: Arc<Counter>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Vec<u64>>,
    map: DistributedMap<u64, u64, ()>,
}

impl Run {
    /// Starts the run.
    pub(crate) fn start(map: &DistributedMap<u64, u64, ()>) -> Self {
        let read = Arc::new(AtomicU64::new(0));
        let output = Arc::new(Counter::default());
        let stop = Arc::new(AtomicBool::new(false));
        let r = read.clone();
        let input = infinite::<_, _, ()>(move || r.fetch_add(1, Ordering::Relaxed) + 1);
        let mut results = into_stream(pull!(input, map.clone()));
        let (o, s) = (output.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut out = Vec::new();
            while let Some(r) = results.next().await {
                out.push(r.expect("a result"));
                o.incr();
                if s.load(Ordering::Relaxed) {
                    break;
                }
            }
            out
        });
        Self {
            read,
            output,
            stop,
            task,
            map: map.clone(),
        }
    }

    /// Stops after the next result (or at once, if the consumer has just
    /// seen the flag), and returns the results.
    pub(crate) async fn stop(self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        match tokio::time::timeout(WAIT, self.task).await {
            Ok(out) => out.unwrap(),
            Err(_) => panic!(
                "waited {WAIT:?} for one more result after {}; the root's lender: {:?}\n{}",
                self.output.get(),
                self.map.lender().state(),
                self.map.stats()
            ),
        }
    }
}

/// Asserts that `out` is `2x` for `x` in `1..=out.len()`: nothing lost or
/// duplicated, in input order.
pub(crate) fn assert_doubles(out: &[u64]) {
    for (i, &r) in out.iter().enumerate() {
        let x = i as u64 + 1;
        assert_eq!(r, 2 * x, "result {i}: the result of {x}, in order");
    }
}
