//! Real Genet nodes over WebSocket (the `ws` feature): a thin async adapter
//! around the sans-IO [`Node`](crate::Node), and the bootstrap/relay server.
//!
//! # How a node joins
//! 1. Every node keeps one WebSocket connection to the [`Relay`]: it says
//!    [`Frame::Hello`] with the join token, and binds its current identifier
//!    ([`Frame::Bind`]) so that replies find it. The root registers with the
//!    secret ([`Frame::RegisterRoot`]); one root per relay.
//! 2. A joiner's core opens its parent link; its endpoint's one signal
//!    ([`WsSignal::Join`]) goes to the root through the relay as a
//!    `JoinRequest`, and down the tree over the direct links, routed by the
//!    core ([`child_index`](crate::child_index)).
//! 3. The node that takes the joiner as a candidate answers with its
//!    listening address and a random ticket ([`WsSignal::Offer`]), through
//!    the relay as a `JoinReply`.
//! 4. The joiner opens a WebSocket connection straight to that address and
//!    says [`Frame::PeerHello`] with the ticket; the parent checks it against
//!    its candidate and answers [`Frame::PeerWelcome`]. Both cores see the
//!    link open. Reports and join requests then go over the direct link
//!    ([`Frame::Peer`]).
//!
//! # The application's duplexes
//! With [`WsNodeConfig::app_links`], each direct link also carries the
//! application's own protocol (the seeds' `duplex` of `parentConnected`
//! and `childConnected`): [`WsNode::take_links`] hands the application one
//! [`AppLink`] per link as the core indicates it connected, whose payloads
//! travel as [`Frame::App`] frames, in order, at most
//! [`WsNodeConfig::max_app_frame`] bytes each (direct links accept
//! WebSocket messages that large; relay connections keep [`MAX_FRAME`]).
//! Its [`leaves`](AppLink::leaves) follow the core's
//! [`Event::LeafNumber`](crate::Event::LeafNumber) for that child, or for
//! the node itself on its parent link. An App frame anywhere else (to the
//! relay, before the `PeerHello`/`PeerWelcome` handshake, to a node
//! without application links, over the limit) is a protocol error.
//!
//! # The network
//! Every connection (a node's to the relay, a child's to its parent) and
//! every listener (the relay's, a node's for its children) goes through a
//! [`Network`]: tokio's TCP ([`TcpNetwork`]) for [`WsNode::start`] and
//! [`Relay::bind`], any other for [`WsNode::start_with`] and
//! [`Relay::bind_with`]. A network is pando-distributed-map's [`Dialer`]
//! (the one its WebSocket and TCP transports dial with) and a `bind` that
//! gives its [`StreamListener`]; the WebSocket framing, the frames and the
//! core are the same on every network. The tests run whole trees, and the
//! map over a tree, on turmoil's simulated network (genet/tests/turmoil.rs:
//! latency, partitions, crashes, replayed by seed). Timers are tokio's, so
//! a simulation whose clock drives tokio's runs the nodes unchanged.
//!
//! A node takes children only if it listens ([`WsNodeConfig::listen`]) at
//! an address its children can reach; the others join as leaves
//! ([`Config::accepts_children`](crate::Config::accepts_children) is set
//! from it), and their parents never route joiners to them.
//!
//! Each node is one task that owns its core; each connection has a reader
//! task feeding the node's inbox (bounded: a slow node slows its readers)
//! and a writer task fed by the node, which never waits on it: a writer
//! holds at most 1024 frames, and a link whose peer lets that many pile up
//! is closed as failed (the relay answers `Undeliverable` instead); a
//! write that waits more than 30 s for its peer drops the connection (on
//! a direct link, as failed). The application's payloads do not count
//! against those 1024 frames: a direct link's writer has a second queue
//! of [`APP_QUEUE`] payloads, fed by [`AppLink::tx`] with waiting sends,
//! and serves Genet's frames first; its reader hands App payloads straight
//! to [`AppLink::rx`], waiting for the application (TCP then holds the
//! peer back), not through the node's inbox. So a slow application slows
//! its peer but never fails the link, and it stalls that link's Genet
//! frames behind its payloads (head of line). A direct link on which
//! nothing at all was heard for [`WsNodeConfig::link_timeout`] (30 s by
//! default) has failed: each end pings whenever it has written nothing
//! for a third of it, so that a peer cut off or crashed without a close
//! (a partition, a machine gone) is found, and its subtree re-joins.
//! Timers are tokio's: the core's [`poll_timeout`](crate::Node::poll_timeout) is slept
//! on. Connection failures reach the core as
//! [`handle_closed`](crate::Node::handle_closed) with their reason, and the
//! application as [`Event::Error`](crate::Event::Error); losing the relay
//! stops the node (it leaves its tree). Every handshake has a deadline
//! ([`WsNodeConfig::handshake_timeout`], [`RelayConfig::handshake_timeout`]).
//!
//! A node holds two connections: to the relay and to its parent (plus one
//! per child). The frames are documented in docs/PROTOCOL.md, "Genet over
//! WebSocket" (Genet version [`GENET_VERSION`] 2: version 1 had no App
//! frame, and is refused).

mod conn;
mod frame;
pub mod loopback;
mod net;
mod node;
mod relay;

use std::time::Duration;

use thiserror::Error;

pub use frame::{APP_INDEX, APP_OVERHEAD, Dest, Frame, GENET_VERSION, MAX_FRAME, MalformedFrame, WsSignal};
pub use net::{Network, TcpNetwork};
pub use node::{AppLink, DEFAULT_LINK_TIMEOUT, DEFAULT_MAX_APP_FRAME, Status, WsNode, WsNodeConfig};
pub use pando_distributed_map::transport::{Dialer, StreamListener};
pub use relay::{Relay, RelayConfig};

use crate::{ConfigError, RequestError};

/// The application's payloads a direct link's writer queues
/// ([`AppLink::tx`]'s bound), apart from Genet's own frames.
///
/// ```
/// assert_eq!(pando_genet::ws::APP_QUEUE, 64);
/// ```
pub const APP_QUEUE: usize = 64;

/// What stops a WebSocket node or relay, or a request to it.
///
/// ```
/// use pando_genet::ws::WsError;
/// let e = WsError::Relay { relay: "ws://r/".into(), reason: "refused: wrong join token".into() };
/// assert_eq!(e.to_string(), "relay ws://r/: refused: wrong join token");
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WsError {
    /// The node's [`Config`](crate::Config) is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// The relay could not be reached, or refused the node.
    #[error("relay {relay}: {reason}")]
    Relay {
        /// The relay's URL.
        relay: String,
        /// What happened.
        reason: String,
    },
    /// The request does not fit the node's state.
    #[error(transparent)]
    Request(RequestError),
    /// The node's task has stopped.
    #[error("the node's task has stopped")]
    Stopped,
    /// A wait ran out of time.
    #[error("waited {after:?} for {what}; the node's last status: {status:?}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        after: Duration,
        /// The node's status then.
        status: Box<Status>,
    },
}
