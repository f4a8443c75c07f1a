//! Transports: how workers reach the master. A transport gives
//! [`Connection`]s, each a duplex of frames (byte messages); the framing is
//! the transport's, the codec is [`frame`](crate::frame)'s, and the lender
//! never sees bytes.
//!
//! | transport | listener | connector | frames |
//! |-----------|----------|-----------|--------|
//! | in-process | [`memory::MemoryListener`] | [`memory::MemoryConnector`] | channel messages |
//! | WebSocket (default) | [`ws::WsListener`] | [`ws::WsConnector`] | binary messages |
//! | TCP | [`tcp::TcpListener`] | [`tcp::TcpConnector`] | length-delimited |

use std::fmt;
use std::pin::Pin;

use async_trait::async_trait;
use futures::{Sink, Stream};
use thiserror::Error;

pub mod memory;
#[cfg(feature = "tcp")]
pub mod tcp;
#[cfg(feature = "ws")]
pub mod ws;

/// The sending half of a connection: whole frames in.
pub type FrameSink = Pin<Box<dyn Sink<Vec<u8>, Error = TransportError> + Send>>;

/// The receiving half of a connection: whole frames out, `None` when the peer closed.
pub type FrameStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, TransportError>> + Send>>;

/// A connection between a master and a worker, as two halves of frames.
pub struct Connection {
    /// Who is at the other end (an address, for logs and errors).
    pub peer: String,
    /// Frames to the peer.
    pub sink: FrameSink,
    /// Frames from the peer.
    pub stream: FrameStream,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// An error of a transport.
#[derive(Debug, Error)]
pub enum TransportError {
    /// An I/O error, with what was being done and with whom.
    #[error("{context}: {source}")]
    Io {
        /// What failed, naming the peer or address.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The peer sent a frame larger than the limit.
    #[error("{peer} sent a frame of {size} bytes, over the limit of {max} bytes")]
    FrameTooLarge {
        /// The peer.
        peer: String,
        /// The frame's size (at least; a transport may stop counting at the limit).
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The peer broke the transport's own protocol (for example a WebSocket text message).
    #[error("{peer} broke the {transport} protocol: {reason}")]
    Protocol {
        /// The peer.
        peer: String,
        /// The transport (`websocket`, `tcp`).
        transport: &'static str,
        /// What it did.
        reason: String,
    },
    /// The URL does not name an endpoint of this transport.
    #[error("bad URL {url:?}: {reason}")]
    BadUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The connection is closed.
    #[error("connection to {peer} closed")]
    Closed {
        /// The peer.
        peer: String,
    },
}

/// Binds a TCP listener on `addr`, and returns it with the address it got
/// (shared by the WebSocket and TCP transports).
#[cfg(any(feature = "ws", feature = "tcp"))]
pub(crate) async fn bind_tcp(
    addr: &str,
) -> Result<(tokio::net::TcpListener, std::net::SocketAddr), TransportError> {
    let io = |source| TransportError::Io {
        context: format!("cannot listen on {addr}"),
        source,
    };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(io)?;
    let local = listener.local_addr().map_err(io)?;
    Ok((listener, local))
}

/// Accepts connections from workers (the master's side).
#[async_trait]
pub trait Listener: Send + 'static {
    /// Waits for the next connection.
    async fn accept(&mut self) -> Result<Connection, TransportError>;

    /// The URL a worker uses to connect (without the join token).
    fn url(&self) -> String;
}

/// Connects to a master (the worker's side).
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// Opens a connection to `url`.
    async fn connect(&self, url: &str) -> Result<Connection, TransportError>;
}
