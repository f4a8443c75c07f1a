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
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::{Sink, Stream};
use pin_project_lite::pin_project;
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

/// A connection just accepted, before the transport's own handshake (the
/// WebSocket upgrade, for example): [`upgrade`](Incoming::upgrade) completes
/// it. The master runs the upgrade on the connection's own task, with a
/// deadline, so that a peer that never finishes it holds up nobody.
pub struct Incoming {
    peer: String,
    upgrade: BoxFuture<'static, Result<Connection, TransportError>>,
    /// The codec of the frames on this connection (postcard unless the
    /// listener says otherwise, as the browser endpoint does).
    codec: crate::codec::Codec,
}

impl Incoming {
    /// A connection whose transport needs no handshake of its own.
    ///
    /// ```
    /// use pando_distributed_map::transport::{Incoming, memory, Connector, Listener};
    /// # futures::executor::block_on(async {
    /// let (mut listener, connector) = memory::endpoint("m");
    /// let _worker = connector.connect("memory://m").await.unwrap();
    /// let incoming: Incoming = listener.accept().await.unwrap();
    /// assert_eq!(incoming.peer(), "memory worker");
    /// let _connection = incoming.upgrade().await.unwrap();
    /// # });
    /// ```
    pub fn ready(connection: Connection) -> Self {
        Incoming {
            peer: connection.peer.clone(),
            upgrade: Box::pin(futures::future::ready(Ok(connection))),
            codec: crate::codec::Codec::Postcard,
        }
    }

    /// A connection from `peer` that `upgrade` completes.
    ///
    /// ```
    /// use pando_distributed_map::transport::{Incoming, TransportError};
    /// let incoming = Incoming::new("10.0.0.2:5000".into(), async {
    ///     Err(TransportError::Closed { peer: "10.0.0.2:5000".into() })
    /// });
    /// assert_eq!(incoming.peer(), "10.0.0.2:5000");
    /// ```
    pub fn new(
        peer: String,
        upgrade: impl Future<Output = Result<Connection, TransportError>> + Send + 'static,
    ) -> Self {
        Incoming {
            peer,
            upgrade: Box::pin(upgrade),
            codec: crate::codec::Codec::Postcard,
        }
    }

    /// The same connection, whose frames use `codec` (the default is
    /// [`Codec::Postcard`](crate::codec::Codec::Postcard)): a listener sets
    /// it from the endpoint the peer reached.
    ///
    /// ```
    /// use pando_distributed_map::{codec::Codec, transport::{Incoming, memory, Connector, Listener}};
    /// # futures::executor::block_on(async {
    /// let (mut listener, connector) = memory::endpoint("m");
    /// let _worker = connector.connect("memory://m").await.unwrap();
    /// let incoming = listener.accept().await.unwrap();
    /// assert_eq!(incoming.codec(), Codec::Postcard);
    /// assert_eq!(incoming.with_codec(Codec::Json).codec(), Codec::Json);
    /// # });
    /// ```
    pub fn with_codec(mut self, codec: crate::codec::Codec) -> Self {
        self.codec = codec;
        self
    }

    /// The codec of the frames on this connection.
    ///
    /// See [`Incoming::with_codec`] for an example.
    pub fn codec(&self) -> crate::codec::Codec {
        self.codec
    }

    /// The peer's address.
    ///
    /// See [`Incoming::new`] for an example.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Completes the transport's handshake. It has no deadline of its own:
    /// the caller sets one.
    ///
    /// See [`Incoming::ready`] for an example.
    pub async fn upgrade(self) -> Result<Connection, TransportError> {
        self.upgrade.await
    }
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// A sink whose errors are mapped by a reusable function, so that a sink
    /// polled again after an error reports an error again instead of
    /// panicking (as `SinkExt::sink_map_err` does).
    #[must_use = "sinks do nothing unless polled"]
    pub(crate) struct MapErr<S, F> {
        #[pin]
        sink: S,
        f: F,
    }
}

/// Maps a sink's errors with `f`.
pub(crate) fn map_sink_err<S, F>(sink: S, f: F) -> MapErr<S, F> {
    MapErr { sink, f }
}

impl<S, F, T, E> Sink<T> for MapErr<S, F>
where
    S: Sink<T>,
    F: FnMut(S::Error) -> E,
{
    type Error = E;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        let this = self.project();
        this.sink.poll_ready(cx).map_err(this.f)
    }

    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), E> {
        let this = self.project();
        this.sink.start_send(item).map_err(this.f)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        let this = self.project();
        this.sink.poll_flush(cx).map_err(this.f)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        let this = self.project();
        this.sink.poll_close(cx).map_err(this.f)
    }
}

/// Accepts a TCP connection (shared by the WebSocket and TCP transports),
/// with Nagle's algorithm off; the peer's address.
#[cfg(any(feature = "ws", feature = "tcp"))]
pub(crate) async fn accept_tcp(
    listener: &tokio::net::TcpListener,
    url: &str,
) -> Result<(tokio::net::TcpStream, String), TransportError> {
    let (tcp, addr) = listener.accept().await.map_err(|source| TransportError::Io {
        context: format!("accepting on {url}"),
        source,
    })?;
    let _ = tcp.set_nodelay(true);
    Ok((tcp, addr.to_string()))
}

/// Accepts connections from workers (the master's side).
#[async_trait]
pub trait Listener: Send + 'static {
    /// Waits for the next connection. Only the transport's accept happens
    /// here; its own handshake, if any, is the [`Incoming`]'s to complete.
    async fn accept(&mut self) -> Result<Incoming, TransportError>;

    /// The URL a worker uses to connect (without the join token).
    fn url(&self) -> String;
}

/// Connects to a master (the worker's side).
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// Opens a connection to `url`.
    async fn connect(&self, url: &str) -> Result<Connection, TransportError>;
}
