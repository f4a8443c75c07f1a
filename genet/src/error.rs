//! What goes wrong, reported as [`Event::Error`](crate::Event::Error) or
//! returned by a request.

use std::time::Duration;

use thiserror::Error;

use crate::{From, Link, NodeId};

/// Something that went wrong in the overlay; the node carries on.
/// Each variant names the culprit.
///
/// ```
/// use pando_genet::{GenetError, Link, NodeId};
/// let e = GenetError::ChannelFailed { link: Link::Child(NodeId(1)), reason: "reset".into() };
/// assert_eq!(e.to_string(), "the link to child 0000000000000001 failed: reset");
/// ```
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum GenetError {
    /// A direct link failed (the original swallowed these).
    #[error("the link to {link} failed: {reason}")]
    ChannelFailed {
        /// The link.
        link: Link,
        /// What the adapter said.
        reason: String,
    },
    /// The parent link did not open in time.
    #[error("no parent link within {0:?}")]
    JoinTimeout(Duration),
    /// A candidate child did not connect in time and was dropped.
    #[error("candidate {id} did not connect within {after:?}")]
    CandidateTimeout {
        /// The candidate.
        id: NodeId,
        /// The candidate timeout.
        after: Duration,
    },
    /// A join request held for a candidate that never connected expired.
    #[error("a join request of {origin} expired after {after:?} without a child to take it")]
    RequestExpired {
        /// The joiner.
        origin: NodeId,
        /// How long it was held.
        after: Duration,
    },
    /// The node already holds as many join requests as it may; this one was dropped.
    #[error("dropped a join request of {origin}: {limit} requests already held")]
    TooManyStored {
        /// The joiner.
        origin: NodeId,
        /// [`Config::max_stored`](crate::Config::max_stored).
        limit: usize,
    },
    /// A message that is not allowed from where it came, or in this state; it was ignored.
    #[error("ignored a {kind} from {from}: {why}")]
    Unexpected {
        /// The message's kind.
        kind: &'static str,
        /// Where it came from.
        from: From,
        /// Why it was ignored.
        why: &'static str,
    },
    /// A full node has no child that can take children: the joiner cannot
    /// be placed below it and was dropped.
    #[error("no room for {origin}: every child of this full node is a leaf-only node")]
    NoRoom {
        /// The joiner.
        origin: NodeId,
    },
    /// The relay connection failed or closed, the relay refused a request,
    /// or it could not deliver a message (over WebSocket, the `ws` module).
    #[error("relay: {reason}")]
    Relay {
        /// What happened.
        reason: String,
    },
    /// A frame or signal that does not belong where it came; it was ignored.
    #[error("a bad frame from {from}: {reason}")]
    BadFrame {
        /// Where it came from.
        from: From,
        /// What was wrong.
        reason: String,
    },
    /// The relay refused to make this node the root (a wrong secret, or a root already there).
    #[error("the relay refused the root: {0}")]
    RootRefused(String),
}

/// A request that does not fit the node's state; nothing changed.
///
/// ```
/// use std::time::Instant;
/// use pando_genet::{Config, Node, RequestError};
/// let mut node = Node::new(Config::default(), 1).unwrap();
/// node.become_root("s", Instant::now()).unwrap();
/// assert_eq!(node.join(Instant::now()), Err(RequestError::InTree));
/// ```
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RequestError {
    /// The node is already the root, a member, or joining: `leave` first.
    #[error("the node is already in a tree (or joining one): leave it first")]
    InTree,
}
