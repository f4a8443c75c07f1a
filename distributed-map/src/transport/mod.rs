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
//!
//! The WebSocket and TCP transports run over any network: their listeners
//! take a [`StreamListener`] and their connectors a [`Dialer`], tokio's TCP
//! by default. A simulated network (turmoil's, in the tests) plugs in there,
//! under the same framing and the same WebSocket library.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::{Sink, Stream};
use pin_project_lite::pin_project;
use thiserror::Error;

mod channel;
pub mod memory;
#[cfg(feature = "tcp")]
pub mod tcp;
#[cfg(feature = "ws")]
pub mod ws;

pub use channel::ChannelListener;

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
pub(crate) async fn bind_tcp(addr: &str) -> Result<tokio::net::TcpListener, TransportError> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| TransportError::Io {
            context: format!("cannot listen on {addr}"),
            source,
        })
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
    /// Who controls the flow to this connection, if anyone.
    throttle: Option<crate::Throttle>,
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
            throttle: None,
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
            throttle: None,
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

    /// The same connection, whose flow of values `throttle` controls: it can
    /// pause and resume lending to it, and set its Limiter's limit.
    ///
    /// See [`Throttle`](crate::Throttle) for an example.
    pub fn with_throttle(mut self, throttle: crate::Throttle) -> Self {
        self.throttle = Some(throttle);
        self
    }

    /// The throttle given with [`Incoming::with_throttle`], taken out.
    pub(crate) fn take_throttle(&mut self) -> Option<crate::Throttle> {
        self.throttle.take()
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

/// Accepts byte streams: the network under the WebSocket and TCP
/// transports' listeners ([`ws::WsListener`], [`tcp::TcpListener`]).
/// `tokio::net::TcpListener` is the default; another network (a simulated
/// one, such as turmoil's) plugs in by implementing it.
///
/// ```
/// use pando_distributed_map::transport::StreamListener;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let mut tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let addr = StreamListener::local_addr(&tcp).unwrap();
/// let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
/// let (_stream, peer) = StreamListener::accept(&mut tcp).await.unwrap();
/// assert!(peer.starts_with("127.0.0.1:"));
/// # }
/// ```
#[cfg(any(feature = "ws", feature = "tcp"))]
#[async_trait]
pub trait StreamListener: Send + 'static {
    /// The byte stream of a connection.
    type Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;

    /// Waits for the next connection; the stream and the peer's address.
    async fn accept(&mut self) -> std::io::Result<(Self::Stream, String)>;

    /// The address this listener is bound to (for the listener's URL).
    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr>;
}

/// Accepts with Nagle's algorithm off.
#[cfg(any(feature = "ws", feature = "tcp"))]
#[async_trait]
impl StreamListener for tokio::net::TcpListener {
    type Stream = tokio::net::TcpStream;

    async fn accept(&mut self) -> std::io::Result<(tokio::net::TcpStream, String)> {
        let (tcp, addr) = tokio::net::TcpListener::accept(self).await?;
        let _ = tcp.set_nodelay(true);
        Ok((tcp, addr.to_string()))
    }

    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        tokio::net::TcpListener::local_addr(self)
    }
}

/// Opens byte streams to `HOST:PORT` addresses: the network under the
/// WebSocket and TCP transports' connectors ([`ws::WsConnector`],
/// [`tcp::TcpConnector`]). [`TcpDialer`] (tokio's TCP) is the default;
/// another network (a simulated one, such as turmoil's) plugs in by
/// implementing it.
///
/// ```
/// use pando_distributed_map::transport::{Dialer, TcpDialer};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
/// let addr = listener.local_addr().unwrap().to_string();
/// let _stream = TcpDialer::new(true).dial(&addr).await.unwrap();
/// # }
/// ```
#[cfg(any(feature = "ws", feature = "tcp"))]
#[async_trait]
pub trait Dialer: Send + Sync + 'static {
    /// The byte stream of a connection.
    type Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static;

    /// Opens a connection to `addr` (`HOST:PORT`).
    async fn dial(&self, addr: &str) -> std::io::Result<Self::Stream>;
}

/// The default [`Dialer`]: tokio's TCP.
///
/// ```
/// let _dialer = pando_distributed_map::transport::TcpDialer::new(true);
/// ```
#[cfg(any(feature = "ws", feature = "tcp"))]
#[derive(Clone, Copy, Debug)]
pub struct TcpDialer {
    nodelay: bool,
}

#[cfg(any(feature = "ws", feature = "tcp"))]
impl TcpDialer {
    /// A dialer that turns Nagle's algorithm off (`nodelay`) or leaves it on.
    ///
    /// See [`Dialer`] for an example.
    pub fn new(nodelay: bool) -> Self {
        TcpDialer { nodelay }
    }
}

#[cfg(any(feature = "ws", feature = "tcp"))]
#[async_trait]
impl Dialer for TcpDialer {
    type Stream = tokio::net::TcpStream;

    async fn dial(&self, addr: &str) -> std::io::Result<tokio::net::TcpStream> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        if self.nodelay {
            let _ = tcp.set_nodelay(true);
        }
        Ok(tcp)
    }
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
