//! The Genet node as a deterministic, sans-IO core (seed 000, Abstraction 4,
//! Algorithms 16-19), in the manner of quinn-proto.
//!
//! The core never touches a socket, a clock or a task. Its adapter calls a
//! request ([`Node::become_root`], [`Node::join`], [`Node::leave`]) or feeds
//! it an event — a message received ([`Node::handle_message`]), a signal
//! produced by one of its connections ([`Node::handle_local_signal`]), a
//! connection opened ([`Node::handle_opened`]) or closed or failed
//! ([`Node::handle_closed`]), a deadline reached ([`Node::handle_timeout`]) —
//! each with the current time. It then drains the effects:
//! [`Node::poll_action`] (messages to send, connections to open, feed or
//! close), [`Node::poll_event`] (indications for the application) and
//! [`Node::poll_timeout`] (when to call `handle_timeout` next).
//!
//! # The adapter's contract
//! - [`Action::Open`] creates a connection endpoint for a link; the endpoint
//!   produces signals (given back with `handle_local_signal`) and consumes the
//!   peer's ([`Action::Signal`]); once it is open, `handle_opened`.
//! - After [`Action::Close`] for a link, the adapter reports nothing more
//!   about that connection (a later link with the same name is a new one).
//! - [`To::Root`] and [`To::Node`] go through the relay; [`To::Parent`] and
//!   [`To::Child`] over the direct links, in order.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use crate::id::{SplitMix64, child_index, mix64, nth_id};
use crate::{Config, ConfigError, From, GenetError, Link, Message, NodeId, RequestError, Signal, To};

/// Something the adapter must do.
///
/// ```
/// use std::time::Instant;
/// use pando_genet::{Action, Config, Link, Node};
/// let mut node = Node::new(Config::default(), 1).unwrap();
/// node.join(Instant::now()).unwrap();
/// assert_eq!(node.poll_action(), Some(Action::Open(Link::Parent)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send a message.
    Send {
        /// Which way.
        to: To,
        /// What.
        message: Message,
    },
    /// Create a connection endpoint for this link.
    Open(Link),
    /// Give one of the peer's signals to this link's endpoint.
    Signal {
        /// The link.
        link: Link,
        /// The peer's signal.
        signal: Signal,
    },
    /// Close this link's connection (whether it is open or still opening).
    Close(Link),
    /// Register this node as the root at the relay, with the secret.
    RegisterRoot {
        /// The secret that lets a node become the root.
        secret: String,
    },
}

/// Why a node left its tree.
///
/// ```
/// use pando_genet::LeftReason;
/// assert_ne!(LeftReason::Requested, LeftReason::ParentLost);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeftReason {
    /// [`Node::leave`] was called.
    Requested,
    /// The parent link closed or failed: the node closed its own subtree.
    ParentLost,
    /// The join did not complete (timeout, or the parent-to-be closed the link).
    JoinFailed,
    /// The relay refused the root.
    RootRefused,
}

/// An indication for the application (Abstraction 4's indications, plus
/// what the seeds leave implicit).
///
/// ```
/// use pando_genet::{Event, NodeId};
/// let e = Event::LeafNumber { id: NodeId(1), n: 1 };
/// assert!(matches!(e, Event::LeafNumber { n: 1, .. }));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The parent link is open: the join completed. Fires once per join.
    ParentConnected {
        /// The parent.
        id: NodeId,
    },
    /// A child's link is open.
    ChildConnected {
        /// The child.
        id: NodeId,
    },
    /// A connected child left or failed; the rest of the node carries on.
    ChildDisconnected {
        /// The child.
        id: NodeId,
    },
    /// The number of leaves of this node (`id` is the node's own) or of one
    /// of its children's subtrees, every reporting interval. A childless
    /// node has 1 leaf: itself.
    LeafNumber {
        /// This node or one of its children.
        id: NodeId,
        /// Its number of leaves.
        n: u64,
    },
    /// The node left its tree; its children's links are closed.
    Left {
        /// Why.
        reason: LeftReason,
    },
    /// The node will join again at this time (automatic re-join).
    Rejoining {
        /// When.
        at: Instant,
    },
    /// Something went wrong; the node carries on.
    Error(GenetError),
}

/// A node's place in a tree, as [`Node::state`] reports it.
///
/// ```
/// use std::time::Instant;
/// use pando_genet::{Config, Node, State};
/// let mut node = Node::new(Config::default(), 1).unwrap();
/// assert_eq!(node.state(), State::Idle);
/// node.become_root("s", Instant::now()).unwrap();
/// assert_eq!(node.state(), State::Root);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// In no tree.
    Idle,
    /// The root of a tree.
    Root,
    /// Joining: the parent link is not open yet.
    Joining,
    /// In a tree, below this parent.
    Member {
        /// The parent.
        parent: NodeId,
    },
    /// Waiting to re-join (automatic re-join).
    Waiting {
        /// When it joins again.
        until: Instant,
    },
}

/// One of a node's `children_limit` slots, as [`Node::slot`] reports it.
///
/// ```
/// use pando_genet::{NodeId, SlotView};
/// let s = SlotView { id: NodeId(1), connected: false, leaves: 1 };
/// assert!(!s.connected);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotView {
    /// The child or candidate in the slot.
    pub id: NodeId,
    /// Connected child (`true`) or candidate (`false`).
    pub connected: bool,
    /// The leaves it last reported (1 until it reports).
    pub leaves: u64,
}

#[derive(Debug)]
enum Role {
    Idle,
    Root,
    Joining {
        deadline: Instant,
        replier: Option<NodeId>,
    },
    Member {
        parent: NodeId,
    },
    Waiting {
        until: Instant,
    },
}

#[derive(Debug)]
struct Slot {
    id: NodeId,
    can_parent: bool,
    /// `None` once connected; the candidate's deadline before.
    deadline: Option<Instant>,
    leaves: u64,
}

#[derive(Debug)]
struct Stored {
    origin: NodeId,
    signal: Signal,
    can_parent: bool,
    expires: Instant,
}

/// A Genet node: the routing and membership logic of one participant.
///
/// A root and one joiner, wired by hand (the simulator in
/// [`sim`](crate::sim) does this for many nodes):
///
/// ```
/// use std::time::Instant;
/// use pando_genet::{Action, Config, Event, From, Link, Message, Node, Signal, To};
///
/// let now = Instant::now();
/// let mut root = Node::new(Config::default(), 1).unwrap();
/// let mut joiner = Node::new(Config::default(), 2).unwrap();
/// root.become_root("secret", now).unwrap();
/// joiner.join(now).unwrap();
/// assert_eq!(joiner.poll_action(), Some(Action::Open(Link::Parent)));
///
/// // The joiner's connection produces a signal: it goes to the root.
/// joiner.handle_local_signal(Link::Parent, Signal(b"offer".to_vec()), now);
/// let Some(Action::Send { to: To::Root, message }) = joiner.poll_action() else { panic!() };
///
/// // The root has a free slot: the joiner becomes its candidate.
/// root.handle_message(From::Relay, message, now);
/// let _register = root.poll_action();
/// let jid = joiner.id().unwrap();
/// assert_eq!(root.poll_action(), Some(Action::Open(Link::Child(jid))));
/// assert!(matches!(root.poll_action(), Some(Action::Signal { .. })));
///
/// // The root's endpoint answers through the relay.
/// root.handle_local_signal(Link::Child(jid), Signal(b"answer".to_vec()), now);
/// let Some(Action::Send { to, message }) = root.poll_action() else { panic!() };
/// assert_eq!(to, To::Node(jid));
/// joiner.handle_message(From::Relay, message, now);
/// assert!(matches!(joiner.poll_action(), Some(Action::Signal { link: Link::Parent, .. })));
///
/// // Both ends open.
/// joiner.handle_opened(Link::Parent, now);
/// root.handle_opened(Link::Child(jid), now);
/// assert_eq!(joiner.poll_event(), Some(Event::ParentConnected { id: root.id().unwrap() }));
/// assert_eq!(root.poll_event(), Some(Event::ChildConnected { id: jid }));
/// ```
#[derive(Debug)]
pub struct Node {
    config: Config,
    seed: u64,
    joins: u64,
    id: Option<NodeId>,
    role: Role,
    slots: Vec<Option<Slot>>,
    occupied: usize,
    by_id: HashMap<NodeId, usize>,
    queues: Vec<VecDeque<Stored>>,
    /// Origin → (slot, number of its requests held there).
    stored_at: HashMap<NodeId, (usize, usize)>,
    stored: usize,
    /// Joiners recently handed down: origin → (slot, until), so that their
    /// later signals take the same way even if a slot frees up here. At most
    /// `max_stored` of them.
    delegated: HashMap<NodeId, (usize, Instant)>,
    delegated_order: VecDeque<(NodeId, Instant)>,
    next_report: Option<Instant>,
    attempts: u32,
    jitter: SplitMix64,
    actions: VecDeque<Action>,
    events: VecDeque<Event>,
}

impl Node {
    /// A node with these parameters, not yet in a tree. Its identifiers
    /// are drawn from `seed` (see [`nth_id`](crate::id::nth_id)): give every
    /// node its own random seed.
    ///
    /// ```
    /// use pando_genet::{Config, Node};
    /// let node = Node::new(Config::default(), 7).unwrap();
    /// assert_eq!(node.id(), None);
    /// ```
    pub fn new(config: Config, seed: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        let limit = config.children_limit;
        Ok(Self {
            slots: (0..limit).map(|_| None).collect(),
            queues: (0..limit).map(|_| VecDeque::new()).collect(),
            config,
            seed,
            joins: 0,
            id: None,
            role: Role::Idle,
            occupied: 0,
            by_id: HashMap::new(),
            stored_at: HashMap::new(),
            stored: 0,
            delegated: HashMap::new(),
            delegated_order: VecDeque::new(),
            next_report: None,
            attempts: 0,
            jitter: SplitMix64::new(mix64(seed ^ 0x6a09_e667_f3bc_c908)),
            actions: VecDeque::new(),
            events: VecDeque::new(),
        })
    }

    /// The node's parameters.
    ///
    /// ```
    /// use pando_genet::{Config, Node};
    /// assert_eq!(Node::new(Config::default(), 1).unwrap().config().children_limit, 10);
    /// ```
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The node's current identifier (`None` before its first
    /// `become_root` or `join`).
    ///
    /// ```
    /// use std::time::Instant;
    /// use pando_genet::{Config, Node, id::nth_id};
    /// let mut node = Node::new(Config::default(), 5).unwrap();
    /// node.join(Instant::now()).unwrap();
    /// assert_eq!(node.id(), Some(nth_id(5, 0)));
    /// ```
    #[must_use]
    pub fn id(&self) -> Option<NodeId> {
        self.id
    }

    /// Where the node stands.
    ///
    /// ```
    /// use std::time::Instant;
    /// use pando_genet::{Config, Node, State};
    /// let mut node = Node::new(Config::default(), 1).unwrap();
    /// node.join(Instant::now()).unwrap();
    /// assert_eq!(node.state(), State::Joining);
    /// ```
    #[must_use]
    pub fn state(&self) -> State {
        match self.role {
            Role::Idle => State::Idle,
            Role::Root => State::Root,
            Role::Joining { .. } => State::Joining,
            Role::Member { parent } => State::Member { parent },
            Role::Waiting { until } => State::Waiting { until },
        }
    }

    /// The parent, once connected.
    ///
    /// ```
    /// use pando_genet::{Config, Node};
    /// assert_eq!(Node::new(Config::default(), 1).unwrap().parent(), None);
    /// ```
    #[must_use]
    pub fn parent(&self) -> Option<NodeId> {
        match self.role {
            Role::Member { parent } => Some(parent),
            _ => None,
        }
    }

    /// Slot `index` (`0..children_limit`): its child or candidate, if any.
    /// Children keep their slot until they leave (seed 000, lines 5726-5727).
    ///
    /// ```
    /// use pando_genet::{Config, Node};
    /// assert_eq!(Node::new(Config::default(), 1).unwrap().slot(0), None);
    /// ```
    #[must_use]
    pub fn slot(&self, index: usize) -> Option<SlotView> {
        self.slots.get(index)?.as_ref().map(|s| SlotView {
            id: s.id,
            connected: s.deadline.is_none(),
            leaves: s.leaves,
        })
    }

    /// Children and candidates together: never more than `children_limit`.
    ///
    /// ```
    /// use pando_genet::{Config, Node};
    /// assert_eq!(Node::new(Config::default(), 1).unwrap().occupied(), 0);
    /// ```
    #[must_use]
    pub fn occupied(&self) -> usize {
        self.occupied
    }

    /// The connected children, in slot order.
    ///
    /// ```
    /// use pando_genet::{Config, Node};
    /// assert_eq!(Node::new(Config::default(), 1).unwrap().children().count(), 0);
    /// ```
    pub fn children(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.slots
            .iter()
            .flatten()
            .filter(|s| s.deadline.is_none())
            .map(|s| s.id)
    }

    /// Join requests held for candidates that have not connected.
    ///
    /// ```
    /// use pando_genet::{Config, Node};
    /// assert_eq!(Node::new(Config::default(), 1).unwrap().stored_requests(), 0);
    /// ```
    #[must_use]
    pub fn stored_requests(&self) -> usize {
        self.stored
    }

    /// The node's number of leaves (Algorithm 18): the sum of its connected
    /// children's last reports, or 1 (itself) when it has none.
    ///
    /// ```
    /// use pando_genet::{Config, Node};
    /// assert_eq!(Node::new(Config::default(), 1).unwrap().leaves(), 1);
    /// ```
    #[must_use]
    pub fn leaves(&self) -> u64 {
        let mut any = false;
        let mut n = 0u64;
        for s in self.slots.iter().flatten().filter(|s| s.deadline.is_none()) {
            any = true;
            n = n.saturating_add(s.leaves);
        }
        if any { n } else { 1 }
    }

    /// The next action for the adapter.
    ///
    /// ```
    /// use pando_genet::{Config, Node};
    /// assert_eq!(Node::new(Config::default(), 1).unwrap().poll_action(), None);
    /// ```
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next indication for the application.
    ///
    /// ```
    /// use pando_genet::{Config, Node};
    /// assert_eq!(Node::new(Config::default(), 1).unwrap().poll_event(), None);
    /// ```
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Node::handle_timeout`] must be called next, if ever.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use pando_genet::{Config, Node};
    /// let now = Instant::now();
    /// let mut node = Node::new(Config::default(), 1).unwrap();
    /// assert_eq!(node.poll_timeout(), None);
    /// node.become_root("s", now).unwrap();
    /// assert_eq!(node.poll_timeout(), Some(now + Duration::from_secs(3)));
    /// ```
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = self.next_report;
        let mut consider = |d: Instant| t = Some(t.map_or(d, |t| t.min(d)));
        match self.role {
            Role::Joining { deadline, .. } => consider(deadline),
            Role::Waiting { until } => consider(until),
            _ => {}
        }
        for s in self.slots.iter().flatten() {
            if let Some(d) = s.deadline {
                consider(d);
            }
        }
        if self.stored > 0 {
            for q in &self.queues {
                if let Some(s) = q.front() {
                    consider(s.expires);
                }
            }
        }
        t
    }

    /// Request: become the root of a new tree (Algorithm 16), registering
    /// at the relay with `secret`.
    ///
    /// ```
    /// use std::time::Instant;
    /// use pando_genet::{Action, Config, Node};
    /// let mut node = Node::new(Config::default(), 1).unwrap();
    /// node.become_root("s3cret", Instant::now()).unwrap();
    /// assert_eq!(node.poll_action(), Some(Action::RegisterRoot { secret: "s3cret".into() }));
    /// ```
    pub fn become_root(&mut self, secret: &str, now: Instant) -> Result<(), RequestError> {
        if !matches!(self.role, Role::Idle) {
            return Err(RequestError::InTree);
        }
        self.new_id();
        self.role = Role::Root;
        self.actions.push_back(Action::RegisterRoot {
            secret: secret.to_owned(),
        });
        self.next_report = Some(now + self.config.reporting_interval);
        Ok(())
    }

    /// Request: join the tree whose root the relay knows (Algorithm 16,
    /// `join⟨Root⟩`: the root is [`To::Root`], which the adapter maps to its
    /// relay). Draws a new identifier and opens the parent link, whose
    /// signals go to the root as join requests.
    ///
    /// ```
    /// use std::time::Instant;
    /// use pando_genet::{Config, Node, RequestError};
    /// let mut node = Node::new(Config::default(), 1).unwrap();
    /// node.join(Instant::now()).unwrap();
    /// assert_eq!(node.join(Instant::now()), Err(RequestError::InTree));
    /// ```
    pub fn join(&mut self, now: Instant) -> Result<(), RequestError> {
        if !matches!(self.role, Role::Idle) {
            return Err(RequestError::InTree);
        }
        self.attempts = 0;
        self.start_join(now);
        Ok(())
    }

    /// Request: leave the tree gracefully (Algorithm 19): close the parent
    /// link and every child's and candidate's link, drop the held requests,
    /// stop reporting. Cancels an automatic re-join. Does nothing on an idle
    /// node.
    ///
    /// ```
    /// use std::time::Instant;
    /// use pando_genet::{Action, Config, Event, LeftReason, Link, Node, State};
    /// let mut node = Node::new(Config::default(), 1).unwrap();
    /// node.join(Instant::now()).unwrap();
    /// node.leave(Instant::now());
    /// assert_eq!(node.state(), State::Idle);
    /// assert_eq!(node.poll_event(), Some(Event::Left { reason: LeftReason::Requested }));
    /// ```
    pub fn leave(&mut self, now: Instant) {
        let _ = now;
        match self.role {
            Role::Idle => {}
            Role::Joining { .. } | Role::Member { .. } => {
                self.actions.push_back(Action::Close(Link::Parent));
                self.drop_tree();
                self.role = Role::Idle;
                self.events.push_back(Event::Left {
                    reason: LeftReason::Requested,
                });
            }
            Role::Root | Role::Waiting { .. } => {
                self.drop_tree();
                self.role = Role::Idle;
                self.events.push_back(Event::Left {
                    reason: LeftReason::Requested,
                });
            }
        }
    }

    /// Event: the relay refused this root.
    ///
    /// ```
    /// use std::time::Instant;
    /// use pando_genet::{Config, Node, State};
    /// let mut node = Node::new(Config::default(), 1).unwrap();
    /// node.become_root("wrong", Instant::now()).unwrap();
    /// node.handle_root_refused("bad secret", Instant::now());
    /// assert_eq!(node.state(), State::Idle);
    /// ```
    pub fn handle_root_refused(&mut self, reason: &str, now: Instant) {
        let _ = now;
        if matches!(self.role, Role::Root) {
            self.drop_tree();
            self.role = Role::Idle;
            self.events
                .push_back(Event::Error(GenetError::RootRefused(reason.to_owned())));
            self.events.push_back(Event::Left {
                reason: LeftReason::RootRefused,
            });
        }
    }

    /// Event: a message arrived. Anything not allowed from there or in this
    /// state is ignored and reported as [`GenetError::Unexpected`].
    ///
    /// ```
    /// use std::time::Instant;
    /// use pando_genet::{Config, Event, From, Message, Node};
    /// let mut node = Node::new(Config::default(), 1).unwrap();
    /// node.handle_message(From::Parent, Message::Report { leaves: 3 }, Instant::now());
    /// assert!(matches!(node.poll_event(), Some(Event::Error(_))));
    /// ```
    pub fn handle_message(&mut self, from: From, message: Message, now: Instant) {
        match message {
            Message::JoinRequest {
                origin,
                signal,
                can_parent,
            } => {
                self.on_join_request(from, origin, signal, can_parent, now);
            }
            Message::JoinReply {
                from: replier,
                signal,
            } => self.on_join_reply(from, replier, signal),
            Message::Report { leaves } => self.on_report(from, leaves),
        }
    }

    /// Event: the endpoint of `link` produced a signal for its peer. The
    /// parent link's go to the root (or straight to the node that answered
    /// first, the seeds' routing optimization); a candidate's go to the
    /// joiner as join replies.
    ///
    /// ```
    /// use std::time::Instant;
    /// use pando_genet::{Action, Config, Link, Message, Node, Signal, To};
    /// let mut node = Node::new(Config::default(), 1).unwrap();
    /// node.join(Instant::now()).unwrap();
    /// node.poll_action();
    /// node.handle_local_signal(Link::Parent, Signal(vec![1]), Instant::now());
    /// assert!(matches!(node.poll_action(), Some(Action::Send { to: To::Root, message: Message::JoinRequest { .. } })));
    /// ```
    pub fn handle_local_signal(&mut self, link: Link, signal: Signal, now: Instant) {
        let _ = now;
        let Some(me) = self.id else { return };
        match link {
            Link::Parent => {
                let to = match self.role {
                    Role::Joining { replier, .. } => replier.map_or(To::Root, To::Node),
                    Role::Member { parent } => To::Node(parent),
                    _ => return,
                };
                let can_parent = self.config.accepts_children;
                self.actions.push_back(Action::Send {
                    to,
                    message: Message::JoinRequest {
                        origin: me,
                        signal,
                        can_parent,
                    },
                });
            }
            Link::Child(id) => {
                if self.by_id.contains_key(&id) {
                    self.actions.push_back(Action::Send {
                        to: To::Node(id),
                        message: Message::JoinReply { from: me, signal },
                    });
                }
            }
        }
    }

    /// Event: the connection of `link` is open.
    ///
    /// ```
    /// use std::time::Instant;
    /// use pando_genet::{Config, Link, Node, NodeId};
    /// let mut node = Node::new(Config::default(), 1).unwrap();
    /// node.handle_opened(Link::Child(NodeId(9)), Instant::now()); // unknown: ignored
    /// assert_eq!(node.poll_event(), None);
    /// ```
    pub fn handle_opened(&mut self, link: Link, now: Instant) {
        match link {
            Link::Parent => {
                if let Role::Joining { replier, .. } = self.role {
                    match replier {
                        Some(parent) => {
                            self.role = Role::Member { parent };
                            self.attempts = 0;
                            self.next_report = Some(now + self.config.reporting_interval);
                            self.events.push_back(Event::ParentConnected { id: parent });
                        }
                        None => self.unexpected("opened link", From::Parent, "no node answered the join yet"),
                    }
                }
            }
            Link::Child(id) => {
                let Some(&i) = self.by_id.get(&id) else { return };
                let Some(slot) = self.slots[i].as_mut() else {
                    return;
                };
                if slot.deadline.take().is_none() {
                    return;
                }
                self.events.push_back(Event::ChildConnected { id });
                // The requests held for this slot now go down to the child,
                // and the joiners' later signals follow them there.
                let held = std::mem::take(&mut self.queues[i]);
                for s in held {
                    self.unstore(s.origin);
                    if !self
                        .delegated
                        .get(&s.origin)
                        .is_some_and(|&(j, until)| j == i && until > now)
                    {
                        self.remember_delegation(s.origin, i, now);
                    }
                    self.actions.push_back(Action::Send {
                        to: To::Child(id),
                        message: Message::JoinRequest {
                            origin: s.origin,
                            signal: s.signal,
                            can_parent: s.can_parent,
                        },
                    });
                }
            }
        }
    }

    /// Event: the connection of `link` closed (`failure: None`) or failed
    /// (`Some(reason)`, reported as [`GenetError::ChannelFailed`]). Losing
    /// the parent makes the node leave and close its subtree (Algorithm 19);
    /// losing a child removes it, and a request held for its slot is promoted
    /// to candidate.
    ///
    /// ```
    /// use std::time::Instant;
    /// use pando_genet::{Config, Event, LeftReason, Link, Node};
    /// let mut node = Node::new(Config::default(), 1).unwrap();
    /// node.join(Instant::now()).unwrap();
    /// node.handle_closed(Link::Parent, Some("refused".into()), Instant::now());
    /// assert!(matches!(node.poll_event(), Some(Event::Error(_))));
    /// assert_eq!(node.poll_event(), Some(Event::Left { reason: LeftReason::JoinFailed }));
    /// ```
    pub fn handle_closed(&mut self, link: Link, failure: Option<String>, now: Instant) {
        let known = match link {
            Link::Parent => matches!(self.role, Role::Joining { .. } | Role::Member { .. }),
            Link::Child(id) => self.by_id.contains_key(&id),
        };
        if !known {
            return;
        }
        if let Some(reason) = failure {
            self.events
                .push_back(Event::Error(GenetError::ChannelFailed { link, reason }));
        }
        match link {
            Link::Parent => match self.role {
                Role::Joining { .. } => self.join_failed(now),
                Role::Member { .. } => {
                    self.drop_tree();
                    self.events.push_back(Event::Left {
                        reason: LeftReason::ParentLost,
                    });
                    self.after_leaving(now);
                }
                _ => {}
            },
            Link::Child(id) => {
                if let Some((i, was_child)) = self.remove_slot(id) {
                    if was_child {
                        self.events.push_back(Event::ChildDisconnected { id });
                    }
                    self.promote(i, now);
                }
            }
        }
    }

    /// Event: time passed. Expires the join, candidates and held requests,
    /// starts a pending re-join, and reports the leaves when due.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use pando_genet::{Config, Event, Node};
    /// let now = Instant::now();
    /// let mut node = Node::new(Config::default(), 1).unwrap();
    /// node.become_root("s", now).unwrap();
    /// node.handle_timeout(now + Duration::from_secs(3));
    /// assert_eq!(node.poll_event(), Some(Event::LeafNumber { id: node.id().unwrap(), n: 1 }));
    /// ```
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.role {
            Role::Joining { deadline, .. } if deadline <= now => {
                self.actions.push_back(Action::Close(Link::Parent));
                self.events
                    .push_back(Event::Error(GenetError::JoinTimeout(self.config.join_timeout)));
                self.join_failed(now);
            }
            Role::Waiting { until } if until <= now => self.start_join(now),
            _ => {}
        }
        for i in 0..self.slots.len() {
            let expired = matches!(&self.slots[i], Some(Slot { deadline: Some(d), .. }) if *d <= now);
            if expired {
                let id = self.slots[i].as_ref().map(|s| s.id).unwrap_or(NodeId(0));
                self.actions.push_back(Action::Close(Link::Child(id)));
                self.events.push_back(Event::Error(GenetError::CandidateTimeout {
                    id,
                    after: self.config.candidate_timeout,
                }));
                self.remove_slot(id);
                self.promote(i, now);
            }
        }
        if self.stored > 0 {
            for i in 0..self.queues.len() {
                while self.queues[i].front().is_some_and(|s| s.expires <= now) {
                    if let Some(s) = self.queues[i].pop_front() {
                        self.unstore(s.origin);
                        self.events.push_back(Event::Error(GenetError::RequestExpired {
                            origin: s.origin,
                            after: self.config.join_timeout,
                        }));
                    }
                }
            }
        }
        if let Some(due) = self.next_report {
            if due <= now {
                let interval = self.config.reporting_interval;
                let next = due + interval;
                self.next_report = Some(if next <= now { now + interval } else { next });
                self.report();
            }
        }
    }

    // ---- internals ----

    fn new_id(&mut self) -> NodeId {
        let id = nth_id(self.seed, self.joins);
        self.joins += 1;
        self.id = Some(id);
        id
    }

    fn start_join(&mut self, now: Instant) {
        self.new_id();
        self.role = Role::Joining {
            deadline: now + self.config.join_timeout,
            replier: None,
        };
        self.actions.push_back(Action::Open(Link::Parent));
    }

    fn join_failed(&mut self, now: Instant) {
        self.drop_tree();
        self.events.push_back(Event::Left {
            reason: LeftReason::JoinFailed,
        });
        self.after_leaving(now);
    }

    /// After losing the parent or failing a join: wait to re-join, or stay idle.
    fn after_leaving(&mut self, now: Instant) {
        match self.config.rejoin {
            Some(b) => {
                let base = b.initial.saturating_mul(1u32 << self.attempts.min(20)).min(b.max);
                let jitter = base.mul_f64(self.jitter.unit() * 0.5);
                let until = now + base + jitter;
                self.attempts = self.attempts.saturating_add(1);
                self.role = Role::Waiting { until };
                self.events.push_back(Event::Rejoining { at: until });
            }
            None => self.role = Role::Idle,
        }
    }

    /// Closes every child's and candidate's link and forgets the subtree.
    fn drop_tree(&mut self) {
        for slot in self.slots.iter_mut() {
            if let Some(s) = slot.take() {
                self.actions.push_back(Action::Close(Link::Child(s.id)));
            }
        }
        for q in &mut self.queues {
            q.clear();
        }
        self.by_id.clear();
        self.stored_at.clear();
        self.stored = 0;
        self.delegated.clear();
        self.delegated_order.clear();
        self.occupied = 0;
        self.next_report = None;
    }

    fn unexpected(&mut self, kind: &'static str, from: From, why: &'static str) {
        self.events
            .push_back(Event::Error(GenetError::Unexpected { kind, from, why }));
    }

    fn on_join_request(
        &mut self,
        from: From,
        origin: NodeId,
        signal: Signal,
        can_parent: bool,
        now: Instant,
    ) {
        let kind = "JoinRequest";
        let allowed = match (&self.role, from) {
            (Role::Root, From::Relay) | (Role::Member { .. }, From::Parent) => true,
            // A late signal sent straight to the node that answered first.
            (Role::Member { .. }, From::Relay) => self.by_id.contains_key(&origin),
            _ => false,
        };
        if !allowed {
            return self.unexpected(
                kind,
                from,
                "this node does not route join requests from there now",
            );
        }
        let Some(me) = self.id else { return };
        if origin == me {
            return self.unexpected(kind, from, "it carries this node's own identifier");
        }
        // A signal of a candidate, or a late one of a connected child: it goes
        // to that connection, never routed as a new join.
        if self.by_id.contains_key(&origin) {
            self.actions.push_back(Action::Signal {
                link: Link::Child(origin),
                signal,
            });
            return;
        }
        // Earlier requests of this joiner are held here: keep them together.
        if let Some(&(i, _)) = self.stored_at.get(&origin) {
            return self.store(i, origin, signal, can_parent, now);
        }
        if !self.config.accepts_children {
            return self.unexpected(kind, from, "this node takes no children");
        }
        // This joiner's earlier signals went down to a child: follow them,
        // even if a slot has freed up here since.
        if let Some(&(i, until)) = self.delegated.get(&origin) {
            if until > now {
                if let Some(Slot {
                    id, deadline: None, ..
                }) = &self.slots[i]
                {
                    let to = To::Child(*id);
                    self.forward_join(to, origin, signal, can_parent);
                    return;
                }
            }
            self.delegated.remove(&origin);
        }
        if self.occupied < self.slots.len() {
            let i = self.slots.iter().position(Option::is_none).unwrap_or(0);
            return self.new_candidate(i, origin, signal, can_parent, now);
        }
        let Some(i) = self.route(me, origin) else {
            self.events.push_back(Event::Error(GenetError::NoRoom { origin }));
            return;
        };
        match &self.slots[i] {
            Some(Slot {
                id, deadline: None, ..
            }) => {
                let to = To::Child(*id);
                self.forward_join(to, origin, signal, can_parent);
                self.remember_delegation(origin, i, now);
            }
            _ => self.store(i, origin, signal, can_parent, now),
        }
    }

    /// Hands a joiner's request on to a connected child.
    fn forward_join(&mut self, to: To, origin: NodeId, signal: Signal, can_parent: bool) {
        let message = Message::JoinRequest {
            origin,
            signal,
            can_parent,
        };
        self.actions.push_back(Action::Send { to, message });
    }

    fn remember_delegation(&mut self, origin: NodeId, slot: usize, now: Instant) {
        let cap = self.config.max_stored;
        if cap == 0 {
            return;
        }
        let until = now + self.config.join_timeout;
        self.delegated.insert(origin, (slot, until));
        self.delegated_order.push_back((origin, until));
        while self.delegated.len() > cap || self.delegated_order.len() > 2 * cap {
            let Some((o, u)) = self.delegated_order.pop_front() else {
                break;
            };
            if self.delegated.get(&o).is_some_and(|&(_, x)| x == u) {
                self.delegated.remove(&o);
            }
        }
    }

    /// The slot a full node hands `origin` to: `child_index`, unless that
    /// child takes no children; then the same hash over the slots whose
    /// children do (the same joiner still gets the same slot while they do
    /// not change). `None` when no child takes children.
    fn route(&self, me: NodeId, origin: NodeId) -> Option<usize> {
        let i = child_index(me, origin, self.slots.len());
        if self.slots[i].as_ref().is_some_and(|s| s.can_parent) {
            return Some(i);
        }
        let eligible: Vec<usize> = (0..self.slots.len())
            .filter(|&j| self.slots[j].as_ref().is_some_and(|s| s.can_parent))
            .collect();
        if eligible.is_empty() {
            return None;
        }
        Some(eligible[child_index(me, origin, eligible.len())])
    }

    fn new_candidate(&mut self, i: usize, origin: NodeId, signal: Signal, can_parent: bool, now: Instant) {
        let deadline = Some(now + self.config.candidate_timeout);
        self.slots[i] = Some(Slot {
            id: origin,
            can_parent,
            deadline,
            leaves: 1,
        });
        self.occupied += 1;
        self.by_id.insert(origin, i);
        self.actions.push_back(Action::Open(Link::Child(origin)));
        self.actions.push_back(Action::Signal {
            link: Link::Child(origin),
            signal,
        });
    }

    fn store(&mut self, i: usize, origin: NodeId, signal: Signal, can_parent: bool, now: Instant) {
        if self.stored >= self.config.max_stored {
            self.events.push_back(Event::Error(GenetError::TooManyStored {
                origin,
                limit: self.config.max_stored,
            }));
            return;
        }
        let expires = now + self.config.join_timeout;
        self.queues[i].push_back(Stored {
            origin,
            signal,
            can_parent,
            expires,
        });
        self.stored_at.entry(origin).or_insert((i, 0)).1 += 1;
        self.stored += 1;
    }

    fn unstore(&mut self, origin: NodeId) {
        self.stored = self.stored.saturating_sub(1);
        if let Some(e) = self.stored_at.get_mut(&origin) {
            e.1 -= 1;
            if e.1 == 0 {
                self.stored_at.remove(&origin);
            }
        }
    }

    /// Removes `id`'s slot; returns its index and whether it was connected.
    fn remove_slot(&mut self, id: NodeId) -> Option<(usize, bool)> {
        let i = self.by_id.remove(&id)?;
        let slot = self.slots[i].take()?;
        self.occupied -= 1;
        Some((i, slot.deadline.is_none()))
    }

    /// Slot `i` is free: the first joiner whose requests wait for it becomes
    /// the candidate there (the original held them until someone else joined).
    fn promote(&mut self, i: usize, now: Instant) {
        if self.slots[i].is_some() {
            return;
        }
        let Some(first) = self.queues[i].pop_front() else {
            return;
        };
        let origin = first.origin;
        self.unstore(origin);
        self.new_candidate(i, origin, first.signal, first.can_parent, now);
        let queue = std::mem::take(&mut self.queues[i]);
        for s in queue {
            if s.origin == origin {
                self.unstore(origin);
                self.actions.push_back(Action::Signal {
                    link: Link::Child(origin),
                    signal: s.signal,
                });
            } else {
                self.queues[i].push_back(s);
            }
        }
    }

    fn on_join_reply(&mut self, from: From, replier: NodeId, signal: Signal) {
        let kind = "JoinReply";
        if from != From::Relay {
            return self.unexpected(kind, from, "join replies come through the relay");
        }
        match &mut self.role {
            Role::Joining { replier: r, .. } => match r {
                None => {
                    *r = Some(replier);
                    self.actions.push_back(Action::Signal {
                        link: Link::Parent,
                        signal,
                    });
                }
                Some(p) if *p == replier => {
                    self.actions.push_back(Action::Signal {
                        link: Link::Parent,
                        signal,
                    });
                }
                Some(_) => self.unexpected(kind, from, "another node answered this join first"),
            },
            Role::Member { parent } if *parent == replier => {
                self.actions.push_back(Action::Signal {
                    link: Link::Parent,
                    signal,
                });
            }
            _ => self.unexpected(kind, from, "this node is not joining"),
        }
    }

    fn on_report(&mut self, from: From, leaves: u64) {
        let From::Child(id) = from else {
            return self.unexpected("Report", from, "reports come from children");
        };
        match self.by_id.get(&id).and_then(|&i| self.slots[i].as_mut()) {
            Some(slot) if slot.deadline.is_none() => {
                slot.leaves = leaves;
                self.events.push_back(Event::LeafNumber { id, n: leaves });
            }
            _ => self.unexpected("Report", from, "not a connected child"),
        }
    }

    fn report(&mut self) {
        let Some(me) = self.id else { return };
        let n = self.leaves();
        self.events.push_back(Event::LeafNumber { id: me, n });
        if matches!(self.role, Role::Member { .. }) {
            self.actions.push_back(Action::Send {
                to: To::Parent,
                message: Message::Report { leaves: n },
            });
        }
    }
}
