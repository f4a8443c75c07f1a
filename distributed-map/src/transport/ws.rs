//! The WebSocket transport (the default): one binary message per frame.
//! URLs are `ws://HOST:PORT/`; a query string (the join token) is ignored by
//! the transport.

use async_trait::async_trait;
use futures::{SinkExt, StreamExt, TryStreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message, error::CapacityError};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{
    Connection, Connector, FrameSink, FrameStream, Incoming, Listener, TransportError, map_sink_err,
};

/// Accepts WebSocket connections on a TCP address.
#[derive(Debug)]
pub struct WsListener {
    listener: tokio::net::TcpListener,
    url: String,
    max_frame: usize,
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
        let (listener, local) = super::bind_tcp(addr).await?;
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
impl Listener for WsListener {
    /// Accepts a TCP connection; the WebSocket upgrade is the [`Incoming`]'s
    /// (the master runs it on the connection's own task, with a deadline).
    async fn accept(&mut self) -> Result<Incoming, TransportError> {
        let (tcp, peer) = super::accept_tcp(&self.listener, &self.url).await?;
        let max_frame = self.max_frame;
        Ok(Incoming::new(peer.clone(), async move {
            let ws = tokio_tungstenite::accept_async_with_config(
                MaybeTlsStream::Plain(tcp),
                Some(config(max_frame)),
            )
            .await
            .map_err(|e| convert(&peer, e))?;
            Ok(into_connection(peer, ws))
        }))
    }

    fn url(&self) -> String {
        self.url.clone()
    }
}

/// Connects to WebSocket masters.
#[derive(Clone, Copy, Debug)]
pub struct WsConnector {
    max_frame: usize,
}

impl WsConnector {
    /// A connector refusing frames larger than `max_frame` bytes.
    ///
    /// ```
    /// use pando_distributed_map::transport::ws::WsConnector;
    /// let _connector = WsConnector::new(1 << 20);
    /// ```
    pub fn new(max_frame: usize) -> Self {
        WsConnector { max_frame }
    }
}

#[async_trait]
impl Connector for WsConnector {
    async fn connect(&self, url: &str) -> Result<Connection, TransportError> {
        if !url.starts_with("ws://") {
            return Err(TransportError::BadUrl {
                url: url.into(),
                reason: "expected ws://HOST:PORT/".into(),
            });
        }
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config(self.max_frame)), false)
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
        let ws: WebSocketStream<MaybeTlsStream<TcpStream>> = ws;
        Ok(into_connection(url.to_string(), ws))
    }
}
