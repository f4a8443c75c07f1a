//! A whole tree of real WebSocket nodes in one process, on loopback: the
//! relay, a root and `nodes` joiners, all joining at once. The 1000-node
//! test and the `join_bench` example run it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{Relay, RelayConfig, WsError, WsNode, WsNodeConfig};
use crate::{Config, NodeId};

/// What to build.
///
/// ```
/// let t = pando_genet::ws::loopback::LoopbackTree::new(100);
/// assert_eq!(t.leaf_only_every, 10);
/// ```
#[derive(Clone, Debug)]
pub struct LoopbackTree {
    /// The joiners (the root not counted, as in the seeds).
    pub nodes: usize,
    /// Every node's core parameters.
    pub genet: Config,
    /// Every `leaf_only_every`-th joiner does not listen, and joins as a
    /// leaf (0: every joiner listens).
    pub leaf_only_every: usize,
    /// How long any one wait may take before the run fails, naming what it
    /// waited for; each connection's handshake included.
    pub deadline: Duration,
    /// Seeds the nodes' identifiers.
    pub seed: u64,
}

impl LoopbackTree {
    /// `nodes` joiners, the default [`Config`] but a 100 ms reporting
    /// interval, every tenth joiner leaf-only, 10 minutes per wait.
    ///
    /// ```
    /// let t = pando_genet::ws::loopback::LoopbackTree::new(5);
    /// assert_eq!(t.genet.reporting_interval.as_millis(), 100);
    /// ```
    #[must_use]
    pub fn new(nodes: usize) -> Self {
        Self {
            nodes,
            genet: Config {
                reporting_interval: Duration::from_millis(100),
                ..Config::default()
            },
            leaf_only_every: 10,
            deadline: Duration::from_secs(600),
            seed: 1,
        }
    }

    /// Builds the tree and waits until the root counts every leaf.
    ///
    /// ```
    /// use pando_genet::ws::loopback::LoopbackTree;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let r = LoopbackTree::new(30).run().await.unwrap();
    /// assert_eq!(r.root_leaves, r.leaves);
    /// assert!(r.max_degree <= 10);
    /// # }
    /// ```
    pub async fn run(&self) -> Result<TreeReport, WsError> {
        // A thousand connections at once on a loaded machine can take more
        // than the default 10 s each: the run's deadline bounds them instead.
        let relay_config = RelayConfig {
            handshake_timeout: self.deadline,
            ..RelayConfig::new("secret", "token")
        };
        let relay = Relay::bind("127.0.0.1:0", relay_config).await?;
        let node_config = |i: usize, listen: bool| WsNodeConfig {
            genet: self.genet.clone(),
            listen: listen.then(|| "127.0.0.1:0".to_owned()),
            handshake_timeout: self.deadline,
            ..WsNodeConfig::new(relay.url(), "token", crate::id::mix64(self.seed ^ i as u64))
        };
        let root = WsNode::start(node_config(0, true)).await?;
        root.become_root("secret").await?;
        root.wait_for(
            |s| s.root_registered,
            self.deadline,
            "the relay to accept the root",
        )
        .await?;

        let start = Instant::now();
        let mut starting = tokio::task::JoinSet::new();
        for i in 1..=self.nodes {
            let listen = self.leaf_only_every == 0 || i % self.leaf_only_every != 0;
            let cfg = node_config(i, listen);
            starting.spawn(async move { (i, listen, WsNode::start(cfg).await) });
        }
        let mut joiners: Vec<Option<(bool, WsNode)>> = (0..=self.nodes).map(|_| None).collect();
        while let Some(done) = starting.join_next().await {
            let (i, listen, node) = done.expect("a node's start task does not panic");
            let node = node?;
            node.join().await?;
            joiners[i] = Some((listen, node));
        }
        let joiners: Vec<(bool, WsNode)> = joiners.into_iter().flatten().collect();
        let started = start.elapsed();

        // Every joiner connected to its parent.
        let mut parent_of = HashMap::new();
        for (i, (_, node)) in joiners.iter().enumerate() {
            let what = format!("joiner {} to connect to its parent", i + 1);
            let s = node
                .wait_for(|s| s.parent().is_some(), self.deadline, &what)
                .await?;
            let id = s.id.expect("a member has an identifier");
            parent_of.insert(id, s.parent().expect("waited for it"));
        }
        let joined = start.elapsed();

        // The leaves, from the joiners' view of their parents.
        let root_id = root.status().borrow().id.expect("the root has an identifier");
        let mut children: HashMap<NodeId, usize> = HashMap::new();
        for p in parent_of.values() {
            *children.entry(*p).or_default() += 1;
        }
        let leaves = parent_of.keys().filter(|id| !children.contains_key(id)).count() as u64
            + u64::from(!children.contains_key(&root_id));
        let depth_of = |mut id: NodeId| {
            let mut d = 0;
            while let Some(p) = parent_of.get(&id) {
                id = *p;
                d += 1;
            }
            d
        };
        let max_depth = parent_of.keys().map(|&id| depth_of(id)).max().unwrap_or(0);

        let what = format!("the root to count {leaves} leaves");
        let s = root
            .wait_for(|s| s.leaves == Some(leaves), self.deadline, &what)
            .await?;
        let counted = start.elapsed();

        let mut max_degree = s.max_occupied.max(s.max_child_links);
        let mut leaf_only_parents = 0;
        for (listen, node) in &joiners {
            let s = node.status().borrow().clone();
            max_degree = max_degree.max(s.max_occupied).max(s.max_child_links);
            if !listen && s.max_child_links > 0 {
                leaf_only_parents += 1;
            }
        }
        let report = TreeReport {
            nodes: self.nodes,
            leaves,
            root_leaves: s.leaves.unwrap_or(0),
            max_degree,
            max_depth,
            leaf_only_parents,
            relay_bound: relay.bound(),
            started,
            joined,
            counted,
        };
        for (_, node) in joiners {
            node.shutdown().await;
        }
        root.shutdown().await;
        Ok(report)
    }
}

/// What a [`LoopbackTree`] run saw.
///
/// ```
/// # use pando_genet::ws::loopback::LoopbackTree;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let r = LoopbackTree::new(3).run().await.unwrap();
/// assert_eq!(r.nodes, 3);
/// assert_eq!(r.max_depth, 1);
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct TreeReport {
    /// The joiners.
    pub nodes: usize,
    /// The leaves of the tree (nodes without children), from the joiners'
    /// view of their parents.
    pub leaves: u64,
    /// The root's last count of its leaves.
    pub root_leaves: u64,
    /// The most children and candidates, or child links, any node had at once.
    pub max_degree: usize,
    /// The deepest joiner (the root is at depth 0).
    pub max_depth: usize,
    /// Leaf-only joiners that ever had a child link (must be 0).
    pub leaf_only_parents: usize,
    /// The nodes bound at the relay at the end (the root and every joiner).
    pub relay_bound: usize,
    /// From the first start to every joiner connected to the relay and joining.
    pub started: Duration,
    /// From the first start to every joiner connected to its parent.
    pub joined: Duration,
    /// From the first start to the root counting every leaf.
    pub counted: Duration,
}
