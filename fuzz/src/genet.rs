//! The `genet_node` target: Genet's sans-IO node core
//! ([`pando_genet::Node`]), fed arbitrary event sequences: requests
//! (`become_root`, `join`, `leave`), join requests, join replies and reports
//! from the relay, the parent or any child, signals of its own connections,
//! links opening, closing and failing, the relay refusing the root, and
//! time passing (timeouts at arbitrary times and at the core's own
//! deadline). The fuzzer's bytes choose the node's settings too (children
//! limit 1 to 4, timeouts, whether it takes children, automatic re-join).
//!
//! Properties checked after every step:
//!
//! * **no panic**;
//! * **bounded degree**: never more than `children_limit` children and
//!   candidates ([`Node::occupied`]), nor child links open at once (links
//!   opened by [`Action::Open`] and not yet closed by [`Action::Close`] or
//!   reported closed), and never a link opened twice;
//! * **one way per joiner**: once the node has sent a joiner's request down
//!   to a connected child, it sends none of that joiner's requests down to
//!   another child, nor takes the joiner as a candidate itself, while that
//!   child stays connected and for the join timeout (the life of the
//!   node's memory of the delegation; `max_stored` stays at its default,
//!   1024, more than a run's steps, so that memory never evicts); and once
//!   the joiner is its candidate, it sends none of its requests down;
//! * **consistency**: the connected children ([`Node::children`]) are
//!   among the open child links, the occupied slots agree with
//!   [`Node::slot`], and [`Node::poll_timeout`] is never in the past after
//!   `handle_timeout` ran at that time.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use pando_genet::{Action, Backoff, Config, Event, From, Link, Message, Node, NodeId, Signal, To};

/// At most this many steps per input.
const MAX_STEPS: usize = 400;
/// The joiners and children are drawn from this many identifiers.
const POOL: u8 = 12;

/// One step of the harness.
#[derive(Arbitrary, Debug)]
enum Step {
    BecomeRoot,
    Join,
    Leave,
    RootRefused,
    /// A join request of pool member `origin`, from the relay (0), the parent
    /// (1) or child `via` (2).
    JoinRequest {
        from: u8,
        via: u8,
        origin: u8,
        can_parent: bool,
        signal: u8,
    },
    /// A join reply from pool member `from`, through the relay (or from elsewhere).
    JoinReply {
        relay: bool,
        from: u8,
        signal: u8,
    },
    /// A report from child `via` (or from the parent or the relay).
    Report {
        from: u8,
        via: u8,
        leaves: u16,
    },
    /// One of the node's own connections produced a signal.
    LocalSignal {
        parent: bool,
        via: u8,
        signal: u8,
    },
    /// A link opened.
    Opened {
        parent: bool,
        via: u8,
    },
    /// A link closed (`failed`: with a reason).
    Closed {
        parent: bool,
        via: u8,
        failed: bool,
    },
    /// Time passes by `ms` milliseconds, then `handle_timeout`.
    Wait {
        ms: u16,
    },
    /// Time jumps to the core's next deadline, then `handle_timeout`.
    Deadline,
}

/// The way a joiner's requests went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    /// Down to this connected child, first at this time.
    Child(NodeId, Instant),
    /// This node took the joiner as a candidate.
    Here,
}

struct Harness {
    node: Node,
    limit: usize,
    join_timeout: Duration,
    now: Instant,
    /// Child links opened and not closed.
    links: HashSet<NodeId>,
    parent_open: bool,
    ways: HashMap<NodeId, Way>,
    trace: Vec<String>,
}

impl Harness {
    fn fail(&self, what: &str) -> ! {
        panic!("{what}\ntrace:\n{}", self.trace.join("\n"));
    }

    /// A pool member, or (for `k` past the pool) one of the open child
    /// links, or the node's own identifier.
    fn pick(&self, k: u8) -> NodeId {
        if k < POOL {
            return NodeId(u64::from(k) + 1);
        }
        let mut open: Vec<NodeId> = self.links.iter().copied().collect();
        open.sort();
        match open.get(usize::from(k - POOL) % (open.len() + 1)) {
            Some(&id) => id,
            None => self.node.id().unwrap_or(NodeId(0)),
        }
    }

    fn forget_child(&mut self, c: NodeId) {
        self.links.remove(&c);
        self.ways.retain(|origin, w| match w {
            Way::Child(x, _) => *x != c,
            Way::Here => *origin != c,
        });
    }

    /// Drains the core's actions and events, checking each.
    fn drain(&mut self) {
        while let Some(a) = self.node.poll_action() {
            self.trace.push(format!("  -> {a:?}"));
            match a {
                Action::Open(Link::Child(c)) => {
                    if !self.links.insert(c) {
                        self.fail("a child link opened twice");
                    }
                    if self.links.len() > self.limit {
                        self.fail("more child links open than children_limit");
                    }
                    if let Some(Way::Child(x, since)) = self.ways.get(&c) {
                        if self.links.contains(x) && self.now < *since + self.join_timeout {
                            self.fail("a joiner sent down to a child was taken as a candidate here");
                        }
                    }
                    self.ways.insert(c, Way::Here);
                }
                Action::Open(Link::Parent) => self.parent_open = true,
                Action::Close(Link::Child(c)) => self.forget_child(c),
                Action::Close(Link::Parent) => self.parent_open = false,
                Action::Send {
                    to: To::Child(c),
                    message: Message::JoinRequest { origin, .. },
                } => {
                    if !self.links.contains(&c) {
                        self.fail("a join request sent to a child without a link");
                    }
                    match self.ways.get(&origin) {
                        Some(Way::Here) if self.links.contains(&origin) => {
                            self.fail("a candidate's join request was sent down to a child");
                        }
                        Some(&Way::Child(x, since))
                            if x != c && self.links.contains(&x) && self.now < since + self.join_timeout =>
                        {
                            self.fail("one joiner's requests were sent down to two children");
                        }
                        Some(&Way::Child(x, _)) if x == c => {}
                        _ => {
                            self.ways.insert(origin, Way::Child(c, self.now));
                        }
                    }
                }
                _ => {}
            }
        }
        while let Some(e) = self.node.poll_event() {
            self.trace.push(format!("  <- {e:?}"));
            if let Event::Left { .. } = e {
                if !self.links.is_empty() {
                    self.fail("left the tree with child links open");
                }
                self.ways.clear();
            }
        }
        if self.node.occupied() > self.limit {
            self.fail("more children and candidates than children_limit");
        }
        let slots = (0..self.limit).filter(|&i| self.node.slot(i).is_some()).count();
        if slots != self.node.occupied() {
            self.fail("the occupied slots disagree with occupied()");
        }
        for c in self.node.children() {
            if !self.links.contains(&c) {
                self.fail("a connected child without an open link");
            }
        }
    }
}

fn config(u: &mut Unstructured<'_>) -> arbitrary::Result<Config> {
    let secs = |u: &mut Unstructured<'_>| -> arbitrary::Result<Duration> {
        Ok(Duration::from_millis(u64::from(u.int_in_range(1u16..=20)?) * 500))
    };
    Ok(Config {
        children_limit: u.int_in_range(1usize..=4)?,
        reporting_interval: secs(u)?,
        candidate_timeout: secs(u)?,
        join_timeout: secs(u)?,
        accepts_children: u.ratio(7u8, 8u8)?,
        rejoin: if bool::arbitrary(u)? {
            Some(Backoff {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(5),
            })
        } else {
            None
        },
        ..Config::default()
    })
}

/// Runs the target on one input; panics, naming the property, if one is
/// violated.
///
/// ```
/// pando_fuzz::genet::check(&[0; 64]);
/// ```
pub fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(cfg) = config(&mut u) else { return };
    let Ok(seed) = u64::arbitrary(&mut u) else { return };
    let limit = cfg.children_limit;
    let join_timeout = cfg.join_timeout;
    let node = Node::new(cfg, seed).expect("the harness's configs are valid");
    let mut h = Harness {
        node,
        limit,
        join_timeout,
        now: Instant::now(),
        links: HashSet::new(),
        parent_open: false,
        ways: HashMap::new(),
        trace: Vec::new(),
    };
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let Ok(step) = Step::arbitrary(&mut u) else { break };
        h.trace.push(format!("{step:?}"));
        let now = h.now;
        let from = |h: &Harness, f: u8, via: u8| match f % 3 {
            0 => From::Relay,
            1 => From::Parent,
            _ => From::Child(h.pick(via)),
        };
        match step {
            Step::BecomeRoot => {
                let _ = h.node.become_root("secret", now);
            }
            Step::Join => {
                let _ = h.node.join(now);
            }
            Step::Leave => h.node.leave(now),
            Step::RootRefused => h.node.handle_root_refused("refused", now),
            Step::JoinRequest {
                from: f,
                via,
                origin,
                can_parent,
                signal,
            } => {
                let message = Message::JoinRequest {
                    origin: h.pick(origin),
                    signal: Signal(vec![signal]),
                    can_parent,
                };
                let from = from(&h, f, via);
                h.node.handle_message(from, message, now);
            }
            Step::JoinReply {
                relay,
                from: f,
                signal,
            } => {
                let message = Message::JoinReply {
                    from: h.pick(f),
                    signal: Signal(vec![signal]),
                };
                let from = if relay { From::Relay } else { From::Parent };
                h.node.handle_message(from, message, now);
            }
            Step::Report { from: f, via, leaves } => {
                let from = from(&h, f.wrapping_add(2), via);
                h.node.handle_message(
                    from,
                    Message::Report {
                        leaves: u64::from(leaves),
                    },
                    now,
                );
            }
            Step::LocalSignal { parent, via, signal } => {
                let link = if parent {
                    Link::Parent
                } else {
                    Link::Child(h.pick(via))
                };
                h.node.handle_local_signal(link, Signal(vec![signal]), now);
            }
            Step::Opened { parent, via } => {
                // The adapter reports only links it was told to open.
                if parent && h.parent_open {
                    h.node.handle_opened(Link::Parent, now);
                } else if !parent {
                    let c = h.pick(via);
                    if h.links.contains(&c) {
                        h.node.handle_opened(Link::Child(c), now);
                    }
                }
            }
            Step::Closed { parent, via, failed } => {
                let failure = failed.then(|| "reset".to_owned());
                if parent && h.parent_open {
                    h.parent_open = false;
                    h.node.handle_closed(Link::Parent, failure, now);
                } else if !parent {
                    let c = h.pick(via);
                    if h.links.contains(&c) {
                        h.forget_child(c);
                        h.node.handle_closed(Link::Child(c), failure, now);
                    }
                }
            }
            Step::Wait { ms } => {
                h.now += Duration::from_millis(u64::from(ms));
                let now = h.now;
                h.node.handle_timeout(now);
            }
            Step::Deadline => {
                if let Some(t) = h.node.poll_timeout() {
                    h.now = h.now.max(t);
                    let now = h.now;
                    h.node.handle_timeout(now);
                    if h.node.poll_timeout().is_some_and(|t| t <= now) {
                        h.drain();
                        h.fail("poll_timeout is still due after handle_timeout at that time");
                    }
                }
            }
        }
        h.drain();
    }
}
