//! The frames of Genet over WebSocket (docs/PROTOCOL.md, "Genet over
//! WebSocket"), and the signals the WebSocket endpoints exchange.
//!
//! Every WebSocket message is one binary message holding one [`Frame`],
//! encoded with postcard. Text messages are protocol errors.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{Message, NodeId};

/// The version of Genet's frames, carried by [`Frame::Hello`] and
/// [`Frame::PeerHello`]; a peer with another version is refused. Version 2
/// added [`Frame::App`].
///
/// ```
/// assert_eq!(pando_genet::ws::GENET_VERSION, 2);
/// ```
pub const GENET_VERSION: u16 = 2;

/// The largest frame accepted on a relay connection, in bytes: Genet's
/// frames are small (a join request is a few dozen bytes). Direct links
/// also accept [`Frame::App`] frames of up to
/// [`WsNodeConfig::max_app_frame`](super::WsNodeConfig::max_app_frame)
/// bytes of payload.
///
/// ```
/// assert_eq!(pando_genet::ws::MAX_FRAME, 64 * 1024);
/// ```
pub const MAX_FRAME: usize = 64 * 1024;

/// The variant index of [`Frame::App`], its first byte on the wire.
///
/// ```
/// use pando_genet::ws::{APP_INDEX, Frame};
/// assert_eq!(Frame::App { payload: vec![7] }.encode(), [APP_INDEX, 1, 7]);
/// ```
pub const APP_INDEX: u8 = 12;

/// The most bytes an [`Frame::App`] frame adds to its payload: the variant
/// index and the payload's length (a varint of at most 10 bytes).
///
/// ```
/// use pando_genet::ws::{APP_OVERHEAD, Frame};
/// assert!(Frame::App { payload: vec![0; 300] }.encode().len() <= 300 + APP_OVERHEAD);
/// ```
pub const APP_OVERHEAD: usize = 11;

/// Where a node asks the relay to deliver a [`Message`].
///
/// ```
/// use pando_genet::{NodeId, ws::Dest};
/// assert_ne!(Dest::Root, Dest::Node(NodeId(1)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dest {
    /// The registered root.
    Root,
    /// The node bound to this identifier.
    Node(NodeId),
}

impl std::fmt::Display for Dest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dest::Root => f.write_str("the root"),
            Dest::Node(id) => write!(f, "node {id}"),
        }
    }
}

/// One frame of Genet over WebSocket. The variant index is the first byte
/// of the encoding; PROTOCOL.md lists them.
///
/// ```
/// use pando_genet::ws::{Frame, GENET_VERSION};
/// let f = Frame::Hello { version: GENET_VERSION, token: "t".into() };
/// assert_eq!(f.encode(), [0, 2, 1, b't']);
/// assert_eq!(Frame::decode(&f.encode()).unwrap(), f);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// 0, node → relay, first frame: the version and the join token.
    Hello {
        /// [`GENET_VERSION`].
        version: u16,
        /// The join token the relay was started with.
        token: String,
    },
    /// 1, relay → node: the hello was accepted.
    Welcome {
        /// The relay's [`GENET_VERSION`].
        version: u16,
    },
    /// 2, relay → node: refused (a wrong token or version, a wrong secret,
    /// a root already registered, an identifier bound elsewhere). After a
    /// refused hello the relay closes the connection.
    Refused {
        /// Why, in one line.
        reason: String,
    },
    /// 3, node → relay: make this node the root, bound to `id`.
    RegisterRoot {
        /// The secret the relay was started with.
        secret: String,
        /// The root's identifier.
        id: NodeId,
    },
    /// 4, relay → node: the node is the root.
    RootAccepted,
    /// 5, node → relay: deliver [`Dest::Node`] messages for `id` here (a
    /// node's identifier changes at every join).
    Bind {
        /// The node's current identifier.
        id: NodeId,
    },
    /// 6, node → relay: deliver `message` to `to`.
    Forward {
        /// The destination.
        to: Dest,
        /// The message.
        message: Message,
    },
    /// 7, relay → node: a message forwarded to this node.
    Deliver {
        /// The message.
        message: Message,
    },
    /// 8, relay → node: no node is bound at `to` (or no root is
    /// registered, or that node is not reading its frames); a message of
    /// this kind was dropped.
    Undeliverable {
        /// The destination.
        to: Dest,
        /// The dropped message's kind ([`Message::kind`]).
        kind: String,
    },
    /// 9, child → parent, first frame of a direct connection.
    PeerHello {
        /// [`GENET_VERSION`].
        version: u16,
        /// The joiner.
        child: NodeId,
        /// The ticket of the parent's offer ([`WsSignal::Offer`]).
        ticket: u64,
    },
    /// 10, parent → child: the direct connection is accepted; the link is open.
    PeerWelcome,
    /// 11, a message over an open direct link (a report, a join request).
    Peer {
        /// The message.
        message: Message,
    },
    /// 12 ([`APP_INDEX`]), both ways on an open direct link of nodes with
    /// application links ([`WsNodeConfig::app_links`](super::WsNodeConfig::app_links)):
    /// one payload of the application's duplex ([`AppLink`](super::AppLink)),
    /// opaque to Genet. Anywhere else it is a protocol error.
    App {
        /// The application's bytes, at most
        /// [`WsNodeConfig::max_app_frame`](super::WsNodeConfig::max_app_frame).
        payload: Vec<u8>,
    },
}

/// A frame that does not decode.
///
/// ```
/// use pando_genet::ws::Frame;
/// assert!(Frame::decode(&[200]).is_err());
/// ```
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("malformed Genet frame ({len} bytes): {reason}")]
pub struct MalformedFrame {
    /// The frame's size.
    pub len: usize,
    /// What postcard said.
    pub reason: String,
}

impl Frame {
    /// The frame's postcard encoding.
    ///
    /// ```
    /// assert_eq!(pando_genet::ws::Frame::PeerWelcome.encode(), [10]);
    /// ```
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Frame::App { payload } => app_bytes(payload),
            _ => postcard::to_allocvec(self).expect("postcard encodes Genet frames into a Vec"),
        }
    }

    /// Decodes exactly one frame; trailing bytes make it malformed.
    ///
    /// ```
    /// use pando_genet::ws::Frame;
    /// assert_eq!(Frame::decode(&[4]).unwrap(), Frame::RootAccepted);
    /// assert!(Frame::decode(&[4, 0]).is_err());
    /// assert_eq!(Frame::decode(&[12, 2, 8, 9]).unwrap(), Frame::App { payload: vec![8, 9] });
    /// assert!(Frame::decode(&[12, 2, 8]).is_err());
    /// ```
    pub fn decode(bytes: &[u8]) -> Result<Self, MalformedFrame> {
        let malformed = |reason: String| MalformedFrame {
            len: bytes.len(),
            reason,
        };
        // An App payload is copied at once, not byte by byte through serde;
        // the bytes and the errors are postcard's (checked by the tests).
        if let Some((&APP_INDEX, body)) = bytes.split_first() {
            let (len, rest) =
                postcard::take_from_bytes::<usize>(body).map_err(|e| malformed(e.to_string()))?;
            return match rest.len().checked_sub(len) {
                Some(0) => Ok(Frame::App {
                    payload: rest.to_vec(),
                }),
                Some(extra) => Err(malformed(format!("{extra} trailing bytes"))),
                None => Err(malformed(postcard::Error::DeserializeUnexpectedEnd.to_string())),
            };
        }
        let (frame, rest) = postcard::take_from_bytes(bytes).map_err(|e| malformed(e.to_string()))?;
        if rest.is_empty() {
            Ok(frame)
        } else {
            Err(malformed(format!("{} trailing bytes", rest.len())))
        }
    }

    /// The frame's name, for errors and logs.
    ///
    /// ```
    /// assert_eq!(pando_genet::ws::Frame::PeerWelcome.kind(), "PeerWelcome");
    /// ```
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Frame::Hello { .. } => "Hello",
            Frame::Welcome { .. } => "Welcome",
            Frame::Refused { .. } => "Refused",
            Frame::RegisterRoot { .. } => "RegisterRoot",
            Frame::RootAccepted => "RootAccepted",
            Frame::Bind { .. } => "Bind",
            Frame::Forward { .. } => "Forward",
            Frame::Deliver { .. } => "Deliver",
            Frame::Undeliverable { .. } => "Undeliverable",
            Frame::PeerHello { .. } => "PeerHello",
            Frame::PeerWelcome => "PeerWelcome",
            Frame::Peer { .. } => "Peer",
            Frame::App { .. } => "App",
        }
    }
}

/// The encoding of `Frame::App { payload }`, without cloning the payload
/// into a frame first: [`APP_INDEX`], the length as a varint, the bytes.
pub(crate) fn app_bytes(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + APP_OVERHEAD);
    out.push(APP_INDEX);
    out = postcard::to_extend(&payload.len(), out).expect("postcard encodes a length into a Vec");
    out.extend_from_slice(payload);
    out
}

/// What a WebSocket endpoint puts in the core's opaque [`Signal`](crate::Signal)s.
///
/// Over WebSocket a link needs one signal each way: the joiner's says it
/// wants a parent, the parent-to-be's answers where to connect. The joiner
/// then opens a WebSocket connection to that address and presents the
/// ticket in its [`Frame::PeerHello`].
///
/// ```
/// use pando_genet::ws::WsSignal;
/// let s = WsSignal::Offer { url: "ws://127.0.0.1:9000/".into(), ticket: 7 };
/// assert_eq!(WsSignal::decode(&s.encode()).unwrap(), s);
/// assert_eq!(WsSignal::Join.encode(), [0]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WsSignal {
    /// 0, the joiner's: it wants a parent (it carries nothing more).
    Join,
    /// 1, the parent-to-be's: connect to `url` and present `ticket`.
    Offer {
        /// The parent's listening address, `ws://HOST:PORT/`.
        url: String,
        /// A random number the parent checks in the child's
        /// [`Frame::PeerHello`], so that only the joiner it answered
        /// takes the slot.
        ticket: u64,
    },
}

impl WsSignal {
    /// The signal's postcard encoding.
    ///
    /// ```
    /// assert_eq!(pando_genet::ws::WsSignal::Join.encode(), [0]);
    /// ```
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("postcard encodes signals into a Vec")
    }

    /// Decodes exactly one signal.
    ///
    /// ```
    /// assert!(pando_genet::ws::WsSignal::decode(&[9]).is_err());
    /// ```
    pub fn decode(bytes: &[u8]) -> Result<Self, MalformedFrame> {
        let malformed = |reason: String| MalformedFrame {
            len: bytes.len(),
            reason,
        };
        let (s, rest) = postcard::take_from_bytes(bytes).map_err(|e| malformed(e.to_string()))?;
        if rest.is_empty() {
            Ok(s)
        } else {
            Err(malformed(format!("{} trailing bytes", rest.len())))
        }
    }
}
