//! Genet's messages, as plain data (serde), and where they go.
//!
//! They are meant to become frames of the session core (PROTOCOL.md): a
//! [`Message`] is what one node says to another, a [`To`] says which way an
//! adapter sends it, a [`From`] says which way it came.

use serde::{Deserialize, Serialize};

use crate::NodeId;

/// Connection set-up data, opaque to the core: a WebRTC ICE candidate or
/// SDP, or over WebSocket an address and a ticket. The adapter's connection
/// produces them ([`Node::handle_local_signal`](crate::Node::handle_local_signal))
/// and consumes the peer's ([`Action::Signal`](crate::Action::Signal)).
///
/// ```
/// use pando_genet::Signal;
/// let s = Signal(b"candidate:1".to_vec());
/// assert_eq!(s.0.len(), 11);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Signal(pub Vec<u8>);

/// A message between two Genet nodes.
///
/// ```
/// use pando_genet::{Message, NodeId, Signal};
/// let m = Message::JoinRequest { origin: NodeId(4), signal: Signal(vec![1]), can_parent: true };
/// let bytes = postcard::to_allocvec(&m).unwrap();
/// assert_eq!(postcard::from_bytes::<Message>(&bytes).unwrap(), m);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// One of a joiner's connection signals, on its way from the root down to
    /// the node that takes the joiner as a child (seed 000, Algorithm 17,
    /// `joinRequest⟨origin, signal⟩`). A joiner sends one per signal.
    JoinRequest {
        /// The joiner.
        origin: NodeId,
        /// One of its signals.
        signal: Signal,
        /// Whether the joiner can take children of its own (over WebSocket:
        /// whether it listens at an address its children can reach). Full
        /// nodes never route joiners to a child that cannot.
        can_parent: bool,
    },
    /// One of the future parent's signals, sent straight to the joiner
    /// through the relay (Algorithm 17, `joinReply⟨id, signal⟩`).
    JoinReply {
        /// The node that took the joiner as a candidate.
        from: NodeId,
        /// One of its signals.
        signal: Signal,
    },
    /// A child's number of leaves, every reporting interval (Algorithm 18,
    /// `Report⟨origin, n⟩`; the origin is the link it comes on).
    Report {
        /// The leaves in the child's subtree: 1 for a childless node.
        leaves: u64,
    },
}

impl Message {
    /// The message's name, for errors and logs.
    ///
    /// ```
    /// use pando_genet::Message;
    /// assert_eq!(Message::Report { leaves: 1 }.kind(), "Report");
    /// ```
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Message::JoinRequest { .. } => "JoinRequest",
            Message::JoinReply { .. } => "JoinReply",
            Message::Report { .. } => "Report",
        }
    }
}

/// Where to send a [`Message`].
///
/// ```
/// use pando_genet::{NodeId, To};
/// assert_ne!(To::Root, To::Node(NodeId(1)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum To {
    /// To the root, through the relay (the joiner's first signals).
    Root,
    /// To a node by identifier, through the relay (replies to a joiner, and
    /// a joiner's late signals once it knows who answered).
    Node(NodeId),
    /// Over the direct link to the parent.
    Parent,
    /// Over the direct link to this child.
    Child(NodeId),
}

/// Which way a [`Message`] came.
///
/// ```
/// use pando_genet::{From, NodeId};
/// assert_eq!(From::Child(NodeId(3)), From::Child(NodeId(3)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum From {
    /// Through the relay.
    Relay,
    /// Over the direct link to the parent.
    Parent,
    /// Over the direct link to this child (or candidate).
    Child(NodeId),
}

/// A direct connection of a node: to its parent, or to a child (or a
/// candidate that may become one).
///
/// ```
/// use pando_genet::{Link, NodeId};
/// assert_eq!(Link::Child(NodeId(1)).to_string(), "child 0000000000000001");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Link {
    /// The link to the parent.
    Parent,
    /// The link to a child or a candidate.
    Child(NodeId),
}

impl std::fmt::Display for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Link::Parent => f.write_str("parent"),
            Link::Child(id) => write!(f, "child {id}"),
        }
    }
}

impl std::fmt::Display for From {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            From::Relay => f.write_str("the relay"),
            From::Parent => f.write_str("the parent"),
            From::Child(id) => write!(f, "child {id}"),
        }
    }
}
