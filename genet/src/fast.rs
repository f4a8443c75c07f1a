//! The fast path: trees built with the core's routing rules applied
//! directly, without messages, connections or time — for the depth
//! experiment at N = 10⁵ and beyond.
//!
//! A join starts at the root; a node with a free slot takes the joiner in
//! its first free slot, a full node hands it to the child in slot
//! [`child_index`]`(node, joiner, L)`. These are exactly the decisions of
//! [`Node`](crate::Node) when joins come one after the other, and the tests
//! check that [`FastTree`] and the full simulation build the same trees,
//! node for node and slot for slot, for the same [`Scenario`].

use crate::NodeId;
use crate::id::{child_index, nth_id};
use crate::scenario::{DepthStats, Scenario};

const NONE: u32 = u32::MAX;

/// A tree of node numbers (0 is the root), built by routing alone.
///
/// ```
/// use pando_genet::fast::FastTree;
/// use pando_genet::scenario::Scenario;
/// let mut tree = FastTree::default();
/// let stats = tree.play(&mut Scenario::new(1, 100, 10, 0.0));
/// assert_eq!(stats.nodes, 100);
/// assert_eq!((0..10).filter(|&s| tree.child(0, s).is_some()).count(), 10);
/// ```
#[derive(Clone, Debug, Default)]
pub struct FastTree {
    limit: usize,
    seeds: Vec<u64>,
    joins: Vec<u64>,
    ids: Vec<NodeId>,
    slots: Vec<u32>,
    count: Vec<u32>,
    parent: Vec<u32>,
    slot_in_parent: Vec<u32>,
    depth: Vec<u32>,
}

impl FastTree {
    /// Resets the tree to a lone root, with the scenario's nodes detached.
    ///
    /// ```
    /// use pando_genet::fast::FastTree;
    /// use pando_genet::scenario::Scenario;
    /// let mut tree = FastTree::default();
    /// tree.reset(&Scenario::new(1, 3, 10, 0.0));
    /// assert_eq!(tree.parent(1), None);
    /// ```
    pub fn reset(&mut self, scenario: &Scenario) {
        let n = scenario.node_seeds.len();
        let limit = scenario.limit.max(1);
        self.limit = limit;
        self.seeds.clear();
        self.seeds.extend_from_slice(&scenario.node_seeds);
        self.joins.clear();
        self.joins.resize(n, 0);
        self.ids.clear();
        self.ids.resize(n, NodeId(0));
        self.slots.clear();
        self.slots.resize(n * limit, NONE);
        self.count.clear();
        self.count.resize(n, 0);
        self.parent.clear();
        self.parent.resize(n, NONE);
        self.slot_in_parent.clear();
        self.slot_in_parent.resize(n, NONE);
        self.depth.clear();
        self.depth.resize(n, 0);
        // The root draws its identifier like every node.
        self.ids[0] = self.next_id(0);
    }

    fn next_id(&mut self, node: usize) -> NodeId {
        let id = nth_id(self.seeds[node], self.joins[node]);
        self.joins[node] += 1;
        id
    }

    /// Node `node` joins (with a fresh identifier) at the root.
    ///
    /// ```
    /// use pando_genet::fast::FastTree;
    /// use pando_genet::scenario::Scenario;
    /// let mut tree = FastTree::default();
    /// tree.reset(&Scenario::new(1, 3, 10, 0.0));
    /// tree.join(2);
    /// assert_eq!(tree.parent(2), Some(0));
    /// assert_eq!(tree.depth(2), 1);
    /// ```
    pub fn join(&mut self, node: usize) {
        let id = self.next_id(node);
        self.ids[node] = id;
        let limit = self.limit;
        let mut at = 0usize;
        loop {
            let base = at * limit;
            if (self.count[at] as usize) < limit {
                let free = self.slots[base..base + limit]
                    .iter()
                    .position(|&c| c == NONE)
                    .unwrap_or(0);
                self.slots[base + free] = node as u32;
                self.count[at] += 1;
                self.parent[node] = at as u32;
                self.slot_in_parent[node] = free as u32;
                self.depth[node] = self.depth[at] + 1;
                return;
            }
            at = self.slots[base + child_index(self.ids[at], id, limit)] as usize;
        }
    }

    /// Detaches `node` and its whole subtree; returns the nodes detached.
    ///
    /// ```
    /// use pando_genet::fast::FastTree;
    /// use pando_genet::scenario::Scenario;
    /// let mut tree = FastTree::default();
    /// tree.reset(&Scenario::new(1, 3, 10, 0.0));
    /// tree.join(1);
    /// assert_eq!(tree.detach(1), vec![1]);
    /// assert_eq!(tree.parent(1), None);
    /// ```
    pub fn detach(&mut self, node: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let p = self.parent[node];
        if p == NONE {
            return out;
        }
        let limit = self.limit;
        self.slots[p as usize * limit + self.slot_in_parent[node] as usize] = NONE;
        self.count[p as usize] -= 1;
        let mut stack = vec![node];
        while let Some(x) = stack.pop() {
            out.push(x);
            self.parent[x] = NONE;
            self.slot_in_parent[x] = NONE;
            for s in 0..limit {
                let c = std::mem::replace(&mut self.slots[x * limit + s], NONE);
                if c != NONE {
                    stack.push(c as usize);
                }
            }
            self.count[x] = 0;
        }
        out
    }

    /// Plays the whole scenario (joins, then failures and re-joins) and
    /// returns the depth figures.
    ///
    /// ```
    /// use pando_genet::fast::FastTree;
    /// use pando_genet::scenario::Scenario;
    /// let mut tree = FastTree::default();
    /// let s = tree.play(&mut Scenario::new(7, 1000, 10, 0.25));
    /// assert_eq!(s.nodes, 750); // the 250 disconnected nodes are gone
    /// assert_eq!(s.deeper, 0);
    /// ```
    pub fn play(&mut self, scenario: &mut Scenario) -> DepthStats {
        self.reset(scenario);
        let n = scenario.nodes();
        for node in 1..=n {
            self.join(node);
        }
        let picks = scenario.pick_failures();
        if !picks.is_empty() {
            let mut gone = vec![false; n + 1];
            for &p in &picks {
                gone[p] = true;
            }
            let mut orphans = Vec::new();
            for &p in &picks {
                orphans.extend(self.detach(p).into_iter().filter(|&x| !gone[x]));
            }
            for node in scenario.rejoin_order(orphans) {
                self.join(node);
            }
        }
        let attached = (1..=n).filter(|&i| self.parent[i] != NONE);
        DepthStats::of(attached.map(|i| self.depth[i]), self.limit)
    }

    /// Node `node`'s parent, if attached.
    ///
    /// ```
    /// use pando_genet::fast::FastTree;
    /// assert_eq!(FastTree::default().parent(0), None);
    /// ```
    #[must_use]
    pub fn parent(&self, node: usize) -> Option<usize> {
        self.parent.get(node).filter(|&&p| p != NONE).map(|&p| p as usize)
    }

    /// The slot `node` holds in its parent, if attached.
    ///
    /// ```
    /// use pando_genet::fast::FastTree;
    /// assert_eq!(FastTree::default().slot_in_parent(0), None);
    /// ```
    #[must_use]
    pub fn slot_in_parent(&self, node: usize) -> Option<usize> {
        self.slot_in_parent
            .get(node)
            .filter(|&&s| s != NONE)
            .map(|&s| s as usize)
    }

    /// The child in slot `slot` of `node`.
    ///
    /// ```
    /// use pando_genet::fast::FastTree;
    /// assert_eq!(FastTree::default().child(0, 0), None);
    /// ```
    #[must_use]
    pub fn child(&self, node: usize, slot: usize) -> Option<usize> {
        self.slots
            .get(node * self.limit + slot)
            .filter(|&&c| c != NONE)
            .map(|&c| c as usize)
    }

    /// Node `node`'s depth (the root's is 0).
    ///
    /// ```
    /// use pando_genet::fast::FastTree;
    /// use pando_genet::scenario::Scenario;
    /// let mut tree = FastTree::default();
    /// tree.reset(&Scenario::new(1, 3, 10, 0.0));
    /// assert_eq!(tree.depth(0), 0);
    /// ```
    #[must_use]
    pub fn depth(&self, node: usize) -> u32 {
        self.depth[node]
    }

    /// Node `node`'s current identifier.
    ///
    /// ```
    /// use pando_genet::fast::FastTree;
    /// use pando_genet::id::nth_id;
    /// use pando_genet::scenario::Scenario;
    /// let s = Scenario::new(1, 3, 10, 0.0);
    /// let mut tree = FastTree::default();
    /// tree.reset(&s);
    /// assert_eq!(tree.id(0), nth_id(s.node_seeds[0], 0));
    /// ```
    #[must_use]
    pub fn id(&self, node: usize) -> NodeId {
        self.ids[node]
    }
}
