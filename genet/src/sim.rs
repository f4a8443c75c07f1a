//! An in-memory simulator: many [`Node`] cores, a relay, and connections
//! that exchange signals and open, driven by one seeded scheduler in
//! virtual time. Everything — delays, the order of simultaneous events,
//! connection failures — comes from the seed, so a run replays exactly.
//!
//! The simulated connection works like a WebRTC peer connection: each
//! endpoint emits [`SimConfig::signals`] signals (trickle) after it is
//! created; once each endpoint has received one of the other's, the
//! connection opens after a delay — or, with probability
//! [`SimConfig::open_failure`], never does (the candidate and the join then
//! time out). Messages on a link, and through the relay between two nodes,
//! arrive in order.
//!
//! ```
//! use pando_genet::sim::{Sim, SimConfig};
//! let mut sim = Sim::new(SimConfig::default(), 30, 7);
//! sim.become_root(0);
//! for n in 1..=30 {
//!     sim.join(n);
//! }
//! sim.run_until_quiet();
//! assert!((1..=30).all(|n| sim.node(n).parent().is_some()));
//! assert!((0..=30).all(|n| sim.node(n).occupied() <= 10));
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use crate::id::{SplitMix64, mix64};
use crate::scenario::{DepthStats, Scenario};
use crate::{Action, Config, Event, From, Link, Message, Node, NodeId, Signal, State, To};

/// The simulated network.
///
/// ```
/// use pando_genet::sim::SimConfig;
/// let c = SimConfig::default();
/// assert_eq!(c.signals, 2);
/// assert_eq!(c.open_failure, 0.0);
/// ```
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Every node's parameters.
    pub node: Config,
    /// The shortest and longest one-way delay of a message.
    pub latency: (Duration, Duration),
    /// The shortest and longest time a connection takes to open once both
    /// ends have the other's signals.
    pub open_delay: (Duration, Duration),
    /// The signals each endpoint emits.
    pub signals: u32,
    /// The probability that a connection never opens.
    pub open_failure: f64,
    /// Keep every [`Event::LeafNumber`] in the nodes' event logs (by
    /// default only the node's own count is kept, in
    /// [`Sim::reported_leaves`]).
    pub keep_leaf_numbers: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            node: Config::default(),
            latency: (Duration::from_micros(100), Duration::from_millis(2)),
            open_delay: (Duration::from_millis(20), Duration::from_millis(300)),
            signals: 2,
            open_failure: 0.0,
            keep_leaf_numbers: false,
        }
    }
}

#[derive(Debug)]
struct Endpoint {
    serial: u64,
    peer: Option<u64>,
    opening: bool,
}

#[derive(Debug)]
enum Ev {
    Deliver {
        to: usize,
        from: From,
        message: Message,
        serial: Option<u64>,
    },
    LocalSignal {
        node: usize,
        link: Link,
        serial: u64,
        k: u32,
    },
    Opened {
        node: usize,
        link: Link,
        serial: u64,
    },
    Closed {
        node: usize,
        link: Link,
        serial: u64,
        failure: Option<String>,
    },
    Timer {
        node: usize,
    },
    Request {
        node: usize,
        join: bool,
    },
}

/// The simulator: nodes `0..=n`, with node 0 usually the root.
///
/// ```
/// use std::time::Duration;
/// use pando_genet::sim::{Sim, SimConfig};
/// let mut sim = Sim::new(SimConfig::default(), 12, 3);
/// sim.become_root(0);
/// (1..=12).for_each(|i| sim.join(i));
/// sim.run_until_quiet();
/// assert!(sim.is_settled());
/// assert_eq!(sim.node(0).children().count(), 10); // two were grafted below
/// ```
#[derive(Debug)]
pub struct Sim {
    cfg: SimConfig,
    start: Instant,
    now: Instant,
    nodes: Vec<Node>,
    seeds: Vec<u64>,
    alive: Vec<bool>,
    ids: Vec<Option<NodeId>>,
    index: HashMap<NodeId, usize>,
    root: Option<usize>,
    endpoints: HashMap<(usize, Link), Endpoint>,
    owners: HashMap<u64, (usize, Link)>,
    next_serial: u64,
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    pending: HashMap<u64, Ev>,
    seq: u64,
    busy: usize,
    timers: Vec<Option<Instant>>,
    fifo: HashMap<(usize, usize, u8), Instant>,
    rng: SplitMix64,
    events: Vec<Vec<Event>>,
    own_leaves: Vec<Option<u64>>,
    max_occupied: usize,
}

impl Sim {
    /// A simulator with nodes `0..=nodes`, node `i` seeded with a draw of
    /// `seed`, all idle.
    ///
    /// ```
    /// use pando_genet::sim::{Sim, SimConfig};
    /// let sim = Sim::new(SimConfig::default(), 3, 1);
    /// assert_eq!(sim.len(), 4);
    /// ```
    ///
    /// # Panics
    /// If `cfg.node` is not a valid [`Config`].
    #[must_use]
    pub fn new(cfg: SimConfig, nodes: usize, seed: u64) -> Self {
        let scenario = Scenario::new(seed, nodes, cfg.node.children_limit, 0.0);
        Self::with_seeds(cfg, &scenario.node_seeds, mix64(seed ^ 0x5151))
    }

    /// A simulator whose node `i` is seeded with `seeds[i]`; `net_seed`
    /// drives delays and failures.
    ///
    /// ```
    /// use pando_genet::sim::{Sim, SimConfig};
    /// let sim = Sim::with_seeds(SimConfig::default(), &[1, 2, 3], 9);
    /// assert_eq!(sim.len(), 3);
    /// ```
    ///
    /// # Panics
    /// If `cfg.node` is not a valid [`Config`].
    #[must_use]
    pub fn with_seeds(cfg: SimConfig, seeds: &[u64], net_seed: u64) -> Self {
        let nodes: Vec<Node> = seeds
            .iter()
            .map(|&s| Node::new(cfg.node.clone(), s).expect("the simulator's node Config is valid"))
            .collect();
        let n = nodes.len();
        let start = Instant::now();
        Self {
            cfg,
            start,
            now: start,
            nodes,
            seeds: seeds.to_vec(),
            alive: vec![true; n],
            ids: vec![None; n],
            index: HashMap::new(),
            root: None,
            endpoints: HashMap::new(),
            owners: HashMap::new(),
            next_serial: 1,
            queue: BinaryHeap::new(),
            pending: HashMap::new(),
            seq: 0,
            busy: 0,
            timers: vec![None; n],
            fifo: HashMap::new(),
            rng: SplitMix64::new(net_seed),
            events: vec![Vec::new(); n],
            own_leaves: vec![None; n],
            max_occupied: 0,
        }
    }

    /// Whether node `i` has not crashed.
    ///
    /// ```
    /// use pando_genet::sim::{Sim, SimConfig};
    /// assert!(Sim::new(SimConfig::default(), 1, 1).is_alive(1));
    /// ```
    #[must_use]
    pub fn is_alive(&self, i: usize) -> bool {
        self.alive[i]
    }

    /// The number of nodes.
    ///
    /// ```
    /// use pando_genet::sim::{Sim, SimConfig};
    /// assert!(!Sim::new(SimConfig::default(), 0, 1).is_empty());
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never true: there is at least the root.
    ///
    /// ```
    /// use pando_genet::sim::{Sim, SimConfig};
    /// assert!(!Sim::new(SimConfig::default(), 0, 1).is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Node `i`'s core, to inspect.
    ///
    /// ```
    /// use pando_genet::State;
    /// use pando_genet::sim::{Sim, SimConfig};
    /// assert_eq!(Sim::new(SimConfig::default(), 1, 1).node(1).state(), State::Idle);
    /// ```
    #[must_use]
    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    /// The virtual time elapsed since the start.
    ///
    /// ```
    /// use pando_genet::sim::{Sim, SimConfig};
    /// assert_eq!(Sim::new(SimConfig::default(), 1, 1).elapsed().as_secs(), 0);
    /// ```
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The node that holds identifier `id` now.
    ///
    /// ```
    /// use pando_genet::NodeId;
    /// use pando_genet::sim::{Sim, SimConfig};
    /// assert_eq!(Sim::new(SimConfig::default(), 1, 1).index_of(NodeId(3)), None);
    /// ```
    #[must_use]
    pub fn index_of(&self, id: NodeId) -> Option<usize> {
        self.index.get(&id).copied()
    }

    /// Node `i`'s indications so far (without `LeafNumber` unless
    /// [`SimConfig::keep_leaf_numbers`]; see [`Sim::reported_leaves`]), drained.
    ///
    /// ```
    /// use pando_genet::sim::{Sim, SimConfig};
    /// assert!(Sim::new(SimConfig::default(), 1, 1).take_events(0).is_empty());
    /// ```
    pub fn take_events(&mut self, i: usize) -> Vec<Event> {
        std::mem::take(&mut self.events[i])
    }

    /// The last number of leaves node `i` indicated for itself.
    ///
    /// ```
    /// use pando_genet::sim::{Sim, SimConfig};
    /// assert_eq!(Sim::new(SimConfig::default(), 1, 1).reported_leaves(0), None);
    /// ```
    #[must_use]
    pub fn reported_leaves(&self, i: usize) -> Option<u64> {
        self.own_leaves[i]
    }

    /// The most children and candidates any node held at once, so far.
    ///
    /// ```
    /// use pando_genet::sim::{Sim, SimConfig};
    /// assert_eq!(Sim::new(SimConfig::default(), 1, 1).max_occupied(), 0);
    /// ```
    #[must_use]
    pub fn max_occupied(&self) -> usize {
        self.max_occupied
    }

    /// Makes idle node `i` a leaf-only node ([`Config::accepts_children`]
    /// `false`); does nothing to a node in a tree.
    ///
    /// ```
    /// use pando_genet::sim::{Sim, SimConfig};
    /// let mut sim = Sim::new(SimConfig::default(), 1, 1);
    /// sim.set_leaf_only(1);
    /// assert!(!sim.node(1).config().accepts_children);
    /// ```
    pub fn set_leaf_only(&mut self, i: usize) {
        if self.nodes[i].state() == State::Idle {
            let config = Config {
                accepts_children: false,
                ..self.cfg.node.clone()
            };
            if let Ok(node) = Node::new(config, self.seeds[i]) {
                self.nodes[i] = node;
            }
        }
    }

    /// Node `i` becomes the root (with the relay's secret), now.
    ///
    /// ```
    /// use pando_genet::State;
    /// use pando_genet::sim::{Sim, SimConfig};
    /// let mut sim = Sim::new(SimConfig::default(), 1, 1);
    /// sim.become_root(0);
    /// assert_eq!(sim.node(0).state(), State::Root);
    /// ```
    pub fn become_root(&mut self, i: usize) {
        let now = self.now;
        // A node already in a tree refuses: the request changes nothing.
        let _ = self.nodes[i].become_root("sim", now);
        self.after(i);
    }

    /// Node `i` joins the tree, now.
    ///
    /// ```
    /// use pando_genet::State;
    /// use pando_genet::sim::{Sim, SimConfig};
    /// let mut sim = Sim::new(SimConfig::default(), 1, 1);
    /// sim.become_root(0);
    /// sim.join(1);
    /// assert_eq!(sim.node(1).state(), State::Joining);
    /// ```
    pub fn join(&mut self, i: usize) {
        let now = self.now;
        let _ = self.nodes[i].join(now);
        self.after(i);
    }

    /// Node `i` joins after `delay`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pando_genet::sim::{Sim, SimConfig};
    /// let mut sim = Sim::new(SimConfig::default(), 1, 1);
    /// sim.become_root(0);
    /// sim.join_after(1, Duration::from_secs(1));
    /// sim.run_until_quiet();
    /// assert!(sim.node(1).parent().is_some());
    /// ```
    pub fn join_after(&mut self, i: usize, delay: Duration) {
        self.push(self.now + delay, Ev::Request { node: i, join: true });
    }

    /// Node `i` leaves, now.
    ///
    /// ```
    /// use pando_genet::State;
    /// use pando_genet::sim::{Sim, SimConfig};
    /// let mut sim = Sim::new(SimConfig::default(), 1, 1);
    /// sim.become_root(0);
    /// sim.leave(0);
    /// assert_eq!(sim.node(0).state(), State::Idle);
    /// ```
    pub fn leave(&mut self, i: usize) {
        let now = self.now;
        self.nodes[i].leave(now);
        self.after(i);
    }

    /// Node `i` leaves after `delay`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pando_genet::State;
    /// use pando_genet::sim::{Sim, SimConfig};
    /// let mut sim = Sim::new(SimConfig::default(), 1, 1);
    /// sim.become_root(0);
    /// sim.leave_after(0, Duration::from_secs(1));
    /// sim.run_for(Duration::from_secs(2));
    /// assert_eq!(sim.node(0).state(), State::Idle);
    /// ```
    pub fn leave_after(&mut self, i: usize, delay: Duration) {
        self.push(self.now + delay, Ev::Request { node: i, join: false });
    }

    /// Cuts node `i`'s parent link: both ends see it fail.
    ///
    /// ```
    /// use pando_genet::sim::{Sim, SimConfig};
    /// let mut sim = Sim::new(SimConfig::default(), 1, 1);
    /// sim.become_root(0);
    /// sim.join(1);
    /// sim.run_until_quiet();
    /// sim.sever_parent(1);
    /// sim.run_until_quiet();
    /// assert_eq!(sim.node(1).parent(), None);
    /// assert_eq!(sim.node(0).occupied(), 0);
    /// ```
    pub fn sever_parent(&mut self, i: usize) {
        self.fail_endpoint(i, Link::Parent, "severed by the simulator");
    }

    /// Crashes node `i`: it stops, and every peer sees its link fail.
    ///
    /// ```
    /// use pando_genet::sim::{Sim, SimConfig};
    /// let mut sim = Sim::new(SimConfig::default(), 1, 1);
    /// sim.become_root(0);
    /// sim.join(1);
    /// sim.run_until_quiet();
    /// sim.crash(1);
    /// sim.run_until_quiet();
    /// assert_eq!(sim.node(0).occupied(), 0);
    /// ```
    pub fn crash(&mut self, i: usize) {
        self.alive[i] = false;
        let mut mine: Vec<(Link, u64)> = self
            .endpoints
            .iter()
            .filter(|((n, _), _)| *n == i)
            .map(|((_, l), e)| (*l, e.serial))
            .collect();
        mine.sort_by_key(|&(_, s)| s);
        for (link, serial) in mine {
            if let Some(ep) = self.endpoints.remove(&(i, link)) {
                self.owners.remove(&serial);
                if let Some(peer) = ep.peer {
                    if let Some(&(pn, pl)) = self.owners.get(&peer) {
                        let at = self.now + self.delay(self.cfg.latency);
                        let failure = Some(format!("node {i} crashed"));
                        self.push(
                            at,
                            Ev::Closed {
                                node: pn,
                                link: pl,
                                serial: peer,
                                failure,
                            },
                        );
                    }
                }
            }
        }
        if self.root == Some(i) {
            self.root = None;
        }
    }

    fn fail_endpoint(&mut self, i: usize, link: Link, why: &str) {
        let Some(ep) = self.endpoints.get(&(i, link)) else {
            return;
        };
        let (serial, peer) = (ep.serial, ep.peer);
        let at = self.now + self.delay(self.cfg.latency);
        self.push(
            at,
            Ev::Closed {
                node: i,
                link,
                serial,
                failure: Some(why.to_owned()),
            },
        );
        if let Some(peer) = peer {
            if let Some(&(pn, pl)) = self.owners.get(&peer) {
                self.push(
                    at,
                    Ev::Closed {
                        node: pn,
                        link: pl,
                        serial: peer,
                        failure: Some(why.to_owned()),
                    },
                );
            }
        }
    }

    /// Processes events until only timers are pending (no message,
    /// signal or connection in flight), or a virtual hour passed.
    ///
    /// ```
    /// use pando_genet::sim::{Sim, SimConfig};
    /// let mut sim = Sim::new(SimConfig::default(), 1, 1);
    /// sim.run_until_quiet();
    /// ```
    pub fn run_until_quiet(&mut self) {
        let deadline = self.now + Duration::from_secs(3600);
        while self.busy > 0 && self.step_until(deadline) {}
    }

    /// Processes events for `d` of virtual time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pando_genet::sim::{Sim, SimConfig};
    /// let mut sim = Sim::new(SimConfig::default(), 1, 1);
    /// sim.run_for(Duration::from_secs(5));
    /// assert_eq!(sim.elapsed().as_secs(), 5);
    /// ```
    pub fn run_for(&mut self, d: Duration) {
        let deadline = self.now + d;
        while self.step_until(deadline) {}
        self.now = deadline;
    }

    /// Processes events until `done` holds, or `limit` of virtual time
    /// passed; tells whether `done` holds.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pando_genet::sim::{Sim, SimConfig};
    /// let mut sim = Sim::new(SimConfig::default(), 1, 1);
    /// sim.become_root(0);
    /// sim.join(1);
    /// assert!(sim.run_until(|s| s.node(1).parent().is_some(), Duration::from_secs(60)));
    /// ```
    pub fn run_until(&mut self, mut done: impl FnMut(&Sim) -> bool, limit: Duration) -> bool {
        let deadline = self.now + limit;
        loop {
            if done(self) {
                return true;
            }
            if !self.step_until(deadline) {
                return done(self);
            }
        }
    }

    /// Processes the next event if it is due by `deadline`.
    fn step_until(&mut self, deadline: Instant) -> bool {
        let Some(&Reverse((at, seq))) = self.queue.peek() else {
            return false;
        };
        if at > deadline {
            return false;
        }
        self.queue.pop();
        let Some(ev) = self.pending.remove(&seq) else {
            return true;
        };
        if !matches!(ev, Ev::Timer { .. }) {
            self.busy -= 1;
        }
        self.now = self.now.max(at);
        self.handle(ev);
        true
    }

    fn handle(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Timer { node } => {
                if !matches!(self.timers[node], Some(t) if t <= now) {
                    return;
                }
                self.timers[node] = None;
                if self.alive[node] {
                    self.nodes[node].handle_timeout(now);
                    self.after(node);
                }
            }
            Ev::Request { node, join } => {
                if self.alive[node] {
                    if join {
                        let _ = self.nodes[node].join(now);
                    } else {
                        self.nodes[node].leave(now);
                    }
                    self.after(node);
                }
            }
            Ev::Deliver {
                to,
                from,
                message,
                serial,
            } => {
                if !self.alive[to] {
                    return;
                }
                if let Some(serial) = serial {
                    // Over a link: only while the receiving end still exists.
                    if !self.owners.contains_key(&serial) {
                        return;
                    }
                }
                self.nodes[to].handle_message(from, message, now);
                self.after(to);
            }
            Ev::LocalSignal {
                node,
                link,
                serial,
                k,
            } => {
                if self
                    .endpoints
                    .get(&(node, link))
                    .is_some_and(|e| e.serial == serial)
                {
                    let mut bytes = serial.to_le_bytes().to_vec();
                    bytes.extend_from_slice(&k.to_le_bytes());
                    self.nodes[node].handle_local_signal(link, Signal(bytes), now);
                    self.after(node);
                }
            }
            Ev::Opened { node, link, serial } => {
                if let Some(e) = self.endpoints.get_mut(&(node, link)) {
                    if e.serial == serial {
                        e.opening = false;
                        self.nodes[node].handle_opened(link, now);
                        self.after(node);
                    }
                }
            }
            Ev::Closed {
                node,
                link,
                serial,
                failure,
            } => {
                if self
                    .endpoints
                    .get(&(node, link))
                    .is_some_and(|e| e.serial == serial)
                {
                    self.endpoints.remove(&(node, link));
                    self.owners.remove(&serial);
                    self.nodes[node].handle_closed(link, failure, now);
                    self.after(node);
                }
            }
        }
    }

    fn push(&mut self, at: Instant, ev: Ev) {
        if !matches!(ev, Ev::Timer { .. }) {
            self.busy += 1;
        }
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.pending.insert(self.seq, ev);
    }

    fn delay(&mut self, (lo, hi): (Duration, Duration)) -> Duration {
        if hi <= lo {
            return lo;
        }
        lo + (hi - lo).mul_f64(self.rng.unit())
    }

    /// Delivery time on the ordered channel `(from, to, kind)`.
    fn ordered(&mut self, from: usize, to: usize, kind: u8) -> Instant {
        let at = self.now + self.delay(self.cfg.latency);
        let last = self.fifo.entry((from, to, kind)).or_insert(at);
        let at = at.max(*last);
        *last = at;
        at
    }

    /// Carries out node `i`'s actions and records its indications.
    fn after(&mut self, i: usize) {
        if let Some(id) = self.nodes[i].id() {
            if self.ids[i] != Some(id) {
                if let Some(old) = self.ids[i] {
                    if self.index.get(&old) == Some(&i) {
                        self.index.remove(&old);
                    }
                }
                self.ids[i] = Some(id);
                self.index.insert(id, i);
            }
        }
        while let Some(action) = self.nodes[i].poll_action() {
            self.act(i, action);
        }
        while let Some(event) = self.nodes[i].poll_event() {
            if let Event::LeafNumber { id, n } = event {
                if Some(id) == self.ids[i] {
                    self.own_leaves[i] = Some(n);
                }
                if !self.cfg.keep_leaf_numbers {
                    continue;
                }
            }
            self.events[i].push(event);
        }
        self.max_occupied = self.max_occupied.max(self.nodes[i].occupied());
        if self.nodes[i].state() == State::Idle && self.root == Some(i) {
            self.root = None;
        }
        let t = self.nodes[i].poll_timeout();
        if t.is_some() && t != self.timers[i] {
            self.timers[i] = t;
            if let Some(t) = t {
                self.push(t.max(self.now), Ev::Timer { node: i });
            }
        }
    }

    fn act(&mut self, i: usize, action: Action) {
        match action {
            Action::RegisterRoot { .. } => self.root = Some(i),
            Action::Send { to, message } => self.send(i, to, message),
            Action::Open(link) => {
                let serial = self.next_serial;
                self.next_serial += 1;
                if let Some(old) = self.endpoints.insert(
                    (i, link),
                    Endpoint {
                        serial,
                        peer: None,
                        opening: true,
                    },
                ) {
                    self.owners.remove(&old.serial);
                }
                self.owners.insert(serial, (i, link));
                for k in 0..self.cfg.signals {
                    let at = self.now + self.delay(self.cfg.latency) * (k + 1);
                    self.push(
                        at,
                        Ev::LocalSignal {
                            node: i,
                            link,
                            serial,
                            k,
                        },
                    );
                }
            }
            Action::Signal { link, signal } => {
                let Some(peer) = signal
                    .0
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_le_bytes)
                else {
                    return;
                };
                let Some(ep) = self.endpoints.get_mut(&(i, link)) else {
                    return;
                };
                if ep.peer.is_some() {
                    return;
                }
                ep.peer = Some(peer);
                let mine = ep.serial;
                let Some(&(pn, pl)) = self.owners.get(&peer) else {
                    return;
                };
                let matched = self
                    .endpoints
                    .get(&(pn, pl))
                    .is_some_and(|e| e.peer == Some(mine) && e.opening);
                if matched && self.rng.unit() >= self.cfg.open_failure {
                    let at = self.now + self.delay(self.cfg.open_delay);
                    self.push(
                        at,
                        Ev::Opened {
                            node: i,
                            link,
                            serial: mine,
                        },
                    );
                    self.push(
                        at,
                        Ev::Opened {
                            node: pn,
                            link: pl,
                            serial: peer,
                        },
                    );
                }
            }
            Action::Close(link) => {
                if let Some(ep) = self.endpoints.remove(&(i, link)) {
                    self.owners.remove(&ep.serial);
                    if let Some(peer) = ep.peer {
                        if let Some(&(pn, pl)) = self.owners.get(&peer) {
                            let at = self.now + self.delay(self.cfg.latency);
                            self.push(
                                at,
                                Ev::Closed {
                                    node: pn,
                                    link: pl,
                                    serial: peer,
                                    failure: None,
                                },
                            );
                        }
                    }
                }
            }
        }
    }

    fn send(&mut self, i: usize, to: To, message: Message) {
        match to {
            To::Root | To::Node(_) => {
                let target = match to {
                    To::Root => self.root,
                    To::Node(id) => self.index.get(&id).copied(),
                    _ => None,
                };
                // The relay drops what it cannot deliver.
                let Some(target) = target else { return };
                let at = self.ordered(i, target, 0);
                self.push(
                    at,
                    Ev::Deliver {
                        to: target,
                        from: From::Relay,
                        message,
                        serial: None,
                    },
                );
            }
            To::Parent | To::Child(_) => {
                let link = match to {
                    To::Parent => Link::Parent,
                    To::Child(id) => Link::Child(id),
                    _ => return,
                };
                let Some(ep) = self.endpoints.get(&(i, link)) else {
                    return;
                };
                if ep.opening {
                    return;
                }
                let Some(peer) = ep.peer else { return };
                let Some(&(pn, pl)) = self.owners.get(&peer) else {
                    return;
                };
                // The receiver's link says who the sender is to it.
                let from = match pl {
                    Link::Parent => From::Parent,
                    Link::Child(_) => match self.ids[i] {
                        Some(id) => From::Child(id),
                        None => return,
                    },
                };
                let at = self.ordered(i, pn, 1);
                self.push(
                    at,
                    Ev::Deliver {
                        to: pn,
                        from,
                        message,
                        serial: Some(peer),
                    },
                );
            }
        }
    }

    /// Whether the tree is settled: every live node but the root is a
    /// connected child of a live parent, and hangs below the root.
    ///
    /// ```
    /// use pando_genet::sim::{Sim, SimConfig};
    /// let mut sim = Sim::new(SimConfig::default(), 5, 1);
    /// sim.become_root(0);
    /// assert!(!sim.is_settled());
    /// (1..=5).for_each(|i| sim.join(i));
    /// sim.run_until_quiet();
    /// assert!(sim.is_settled());
    /// ```
    #[must_use]
    pub fn is_settled(&self) -> bool {
        (0..self.nodes.len())
            .filter(|&i| self.alive[i] && Some(i) != self.root)
            .all(|i| {
                let Some(p) = self.parent_of(i) else { return false };
                self.alive[p]
                    && self.nodes[p].children().any(|c| Some(c) == self.nodes[i].id())
                    && self.depth_of(i).is_some()
            })
    }

    /// Node `i`'s parent, as a node number.
    ///
    /// ```
    /// use pando_genet::sim::{Sim, SimConfig};
    /// assert_eq!(Sim::new(SimConfig::default(), 1, 1).parent_of(1), None);
    /// ```
    #[must_use]
    pub fn parent_of(&self, i: usize) -> Option<usize> {
        self.nodes[i].parent().and_then(|p| self.index_of(p))
    }

    /// Node `i`'s depth (the root's is 0), if it is attached to the root.
    ///
    /// ```
    /// use pando_genet::sim::{Sim, SimConfig};
    /// let mut sim = Sim::new(SimConfig::default(), 1, 1);
    /// sim.become_root(0);
    /// assert_eq!(sim.depth_of(0), Some(0));
    /// ```
    #[must_use]
    pub fn depth_of(&self, mut i: usize) -> Option<u32> {
        let mut d = 0;
        while Some(i) != self.root {
            i = self.parent_of(i)?;
            d += 1;
            if d as usize > self.nodes.len() {
                return None;
            }
        }
        Some(d)
    }

    /// The slot node `i` holds in its parent.
    ///
    /// ```
    /// use pando_genet::sim::{Sim, SimConfig};
    /// assert_eq!(Sim::new(SimConfig::default(), 1, 1).slot_in_parent(1), None);
    /// ```
    #[must_use]
    pub fn slot_in_parent(&self, i: usize) -> Option<usize> {
        let p = self.parent_of(i)?;
        let id = self.nodes[i].id()?;
        (0..self.cfg.node.children_limit).find(|&s| self.nodes[p].slot(s).is_some_and(|v| v.id == id))
    }

    /// Plays the depth [`Scenario`] with the full protocol: the root, then
    /// each node joining after the previous one connected, then the
    /// failures (crashed nodes) and the orphans' re-joins, one at a time.
    /// Returns the simulator, to inspect the tree.
    ///
    /// ```
    /// use pando_genet::scenario::Scenario;
    /// use pando_genet::sim::{Sim, SimConfig};
    /// let (sim, stats) = Sim::play(SimConfig::default(), &mut Scenario::new(1, 50, 10, 0.2), 1);
    /// assert_eq!(stats.nodes, 40);
    /// assert_eq!((1..=50).filter(|&n| sim.is_alive(n) && sim.node(n).parent().is_some()).count(), 40);
    /// ```
    ///
    /// # Panics
    /// If a join does not complete: the scenario uses a failure-free network.
    pub fn play(cfg: SimConfig, scenario: &mut Scenario, net_seed: u64) -> (Sim, DepthStats) {
        let mut cfg = cfg;
        cfg.node.children_limit = scenario.limit;
        cfg.node.rejoin = None;
        cfg.open_failure = 0.0;
        let mut sim = Sim::with_seeds(cfg, &scenario.node_seeds, net_seed);
        sim.become_root(0);
        let n = scenario.nodes();
        for node in 1..=n {
            sim.join_one(node);
        }
        let picks = scenario.pick_failures();
        if !picks.is_empty() {
            for &p in &picks {
                sim.crash(p);
            }
            sim.run_until_quiet();
            let orphans: Vec<usize> = (1..=n)
                .filter(|&i| sim.alive[i] && sim.node(i).state() == State::Idle)
                .collect();
            for node in scenario.rejoin_order(orphans) {
                sim.join_one(node);
            }
        }
        let depths: Vec<u32> = (1..=n)
            .filter(|&i| sim.alive[i])
            .map(|i| sim.depth_of(i).unwrap_or(u32::MAX))
            .collect();
        let stats = DepthStats::of(depths.into_iter(), scenario.limit);
        (sim, stats)
    }

    fn join_one(&mut self, node: usize) {
        self.join(node);
        let ok = self.run_until(|s| s.node(node).parent().is_some(), Duration::from_secs(3600));
        assert!(ok, "node {node} did not join: {:?}", self.events[node]);
        self.run_until_quiet();
    }
}
