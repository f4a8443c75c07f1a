//! The WebSocket transport (the default): one binary message per frame.
//! URLs are `ws://HOST:PORT/`; a query string (the join token) is ignored by
//! the transport.

use std::fmt;

use async_trait::async_trait;
use futures::{SinkExt, StreamExt, TryStreamExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message, error::CapacityError};

use super::{
    Connection, Connector, Dialer, FrameSink, FrameStream, Incoming, Listener, StreamListener, TcpDialer,
    TransportError, map_sink_err,
};

/// Accepts WebSocket connections on a TCP address, over tokio's TCP or any
/// other [`StreamListener`] (a simulated network, for example).
pub struct WsListener<L = tokio::net::TcpListener> {
    listener: L,
    url: String,
    max_frame: usize,
}

impl<L> fmt::Debug for WsListener<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WsListener")
            .field("url", &self.url)
            .field("max_frame", &self.max_frame)
            .finish_non_exhaustive()
    }
}

impl WsListener {
    /// Listens on `addr` (for example `127.0.0.1:0` for any free port);
    /// frames larger than `max_frame` bytes are refused.
    ///
    /// ```
    /// use pando_distributed_map::transport::{Listener, ws::WsListener};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let listener = WsListener::bind("127.0.0.1:0", 1 << 20).await.unwrap();
    /// assert!(listener.url().starts_with("ws://127.0.0.1:"));
    /// # }
    /// ```
    pub async fn bind(addr: &str, max_frame: usize) -> Result<Self, TransportError> {
        let listener = super::bind_tcp(addr).await?;
        WsListener::from_listener(listener, max_frame)
    }
}

impl<L: StreamListener> WsListener<L> {
    /// Serves WebSocket over a listener already bound (on any network);
    /// frames larger than `max_frame` bytes are refused. The URL is
    /// `ws://` and the listener's local address.
    ///
    /// ```
    /// use pando_distributed_map::transport::{Listener, ws::WsListener};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// let listener = WsListener::from_listener(tcp, 1 << 20).unwrap();
    /// assert!(listener.url().starts_with("ws://127.0.0.1:"));
    /// # }
    /// ```
    pub fn from_listener(listener: L, max_frame: usize) -> Result<Self, TransportError> {
        let local = listener.local_addr().map_err(|source| TransportError::Io {
            context: "cannot read the listener's address".into(),
            source,
        })?;
        Ok(WsListener {
            listener,
            url: format!("ws://{local}/"),
            max_frame,
        })
    }
}

/// The WebSocket settings: the frame limit, and an 8 KiB read buffer.
/// tungstenite zero-fills its read buffer before every read attempt, so the
/// default 128 KiB costs a 128 KiB `memset` each time a connection is polled
/// with nothing to read (measured: 13% of the master's time at batch 1), and
/// holds 128 KiB per connection (512 MiB for 4096 workers). Larger frames
/// still arrive whole: the buffer grows while one is read.
fn config(max_frame: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max_frame))
        .max_frame_size(Some(max_frame))
        .read_buffer_size(8 * 1024)
}

fn convert(peer: &str, e: tungstenite::Error) -> TransportError {
    match e {
        tungstenite::Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
            TransportError::FrameTooLarge {
                peer: peer.to_string(),
                size,
                max: max_size,
            }
        }
        tungstenite::Error::Io(source) => TransportError::Io {
            context: format!("websocket with {peer}"),
            source,
        },
        // A peer that vanished (killed, for example) resets the connection
        // without the closing handshake: it closed the connection.
        tungstenite::Error::ConnectionClosed
        | tungstenite::Error::AlreadyClosed
        | tungstenite::Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => {
            TransportError::Closed {
                peer: peer.to_string(),
            }
        }
        other => TransportError::Protocol {
            peer: peer.to_string(),
            transport: "websocket",
            reason: other.to_string(),
        },
    }
}

fn into_connection<S>(peer: String, ws: WebSocketStream<S>) -> Connection
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sink, stream) = ws.split();
    let sink_peer = peer.clone();
    let sink: FrameSink = Box::pin(
        map_sink_err(sink, move |e| convert(&sink_peer, e))
            .with(|frame: Vec<u8>| async move { Ok::<_, TransportError>(Message::Binary(frame.into())) }),
    );
    let stream_peer = peer.clone();
    let stream: FrameStream = Box::pin(
        stream
            .map_err(move |e| convert(&stream_peer, e))
            .try_take_while(|m| futures::future::ready(Ok(!m.is_close())))
            .try_filter_map({
                let peer = peer.clone();
                move |m| {
                    let result = match m {
                        Message::Binary(bytes) => Ok(Some(bytes.to_vec())),
                        Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => Ok(None),
                        Message::Text(_) => Err(TransportError::Protocol {
                            peer: peer.clone(),
                            transport: "websocket",
                            reason: "a text message (this protocol uses binary messages)".into(),
                        }),
                        Message::Close(_) => Ok(None),
                    };
                    futures::future::ready(result)
                }
            }),
    );
    Connection { peer, sink, stream }
}

#[async_trait]
impl<L: StreamListener> Listener for WsListener<L> {
    /// Accepts a TCP connection; the WebSocket upgrade is the [`Incoming`]'s
    /// (the master runs it on the connection's own task, with a deadline).
    async fn accept(&mut self) -> Result<Incoming, TransportError> {
        let (stream, peer) = self
            .listener
            .accept()
            .await
            .map_err(|source| TransportError::Io {
                context: format!("accepting on {}", self.url),
                source,
            })?;
        let max_frame = self.max_frame;
        Ok(Incoming::new(peer.clone(), async move {
            let ws = tokio_tungstenite::accept_async_with_config(stream, Some(config(max_frame)))
                .await
                .map_err(|e| convert(&peer, e))?;
            Ok(into_connection(peer, ws))
        }))
    }

    fn url(&self) -> String {
        self.url.clone()
    }
}

/// Connects to WebSocket masters, over tokio's TCP or any other [`Dialer`]
/// (a simulated network, for example).
#[derive(Clone, Copy, Debug)]
pub struct WsConnector<D = TcpDialer> {
    dialer: D,
    max_frame: usize,
}

impl WsConnector {
    /// A connector refusing frames larger than `max_frame` bytes, over
    /// tokio's TCP (Nagle's algorithm left on, as before).
    ///
    /// ```
    /// use pando_distributed_map::transport::ws::WsConnector;
    /// let _connector = WsConnector::new(1 << 20);
    /// ```
    pub fn new(max_frame: usize) -> Self {
        WsConnector::with_dialer(TcpDialer::new(false), max_frame)
    }
}

impl<D: Dialer> WsConnector<D> {
    /// A connector over `dialer`'s network, refusing frames larger than
    /// `max_frame` bytes.
    ///
    /// ```
    /// use pando_distributed_map::transport::{TcpDialer, ws::WsConnector};
    /// let _connector = WsConnector::with_dialer(TcpDialer::new(true), 1 << 20);
    /// ```
    pub fn with_dialer(dialer: D, max_frame: usize) -> Self {
        WsConnector { dialer, max_frame }
    }
}

/// The `HOST:PORT` of a `ws://` URL.
fn address(url: &str) -> Result<String, TransportError> {
    let bad = |reason: String| TransportError::BadUrl {
        url: url.into(),
        reason,
    };
    let parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if parsed.scheme() != "ws" {
        return Err(bad("expected ws://HOST:PORT/".into()));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| bad("expected ws://HOST:PORT/ (no host)".into()))?;
    let port = parsed.port_or_known_default().unwrap_or(80);
    Ok(format!("{host}:{port}"))
}

#[async_trait]
impl<D: Dialer> Connector for WsConnector<D> {
    async fn connect(&self, url: &str) -> Result<Connection, TransportError> {
        if !url.starts_with("ws://") {
            return Err(TransportError::BadUrl {
                url: url.into(),
                reason: "expected ws://HOST:PORT/".into(),
            });
        }
        let addr = address(url)?;
        let stream = self
            .dialer
            .dial(&addr)
            .await
            .map_err(|source| TransportError::Io {
                context: format!("cannot reach {url}"),
                source,
            })?;
        let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config(self.max_frame)))
            .await
            .map_err(|e| match e {
                tungstenite::Error::Io(source) => TransportError::Io {
                    context: format!("cannot reach {url}"),
                    source,
                },
                tungstenite::Error::Url(reason) => TransportError::BadUrl {
                    url: url.into(),
                    reason: reason.to_string(),
                },
                other => convert(url, other),
            })?;
        Ok(into_connection(url.to_string(), ws))
    }
}
