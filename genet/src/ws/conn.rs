//! The WebSocket plumbing shared by the relay and the nodes: listening with
//! a deep backlog, reading one frame with a deadline, and splitting a
//! connection into a writer task fed by a channel and a stream of frames.

use std::net::SocketAddr;
use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

use super::{Frame, MAX_FRAME, WsError};

/// The backlog of every listener: a thousand nodes may connect at once.
const BACKLOG: u32 = 4096;

/// The WebSocket settings: Genet's frame limit, a small read buffer.
pub(crate) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME))
        .max_frame_size(Some(MAX_FRAME))
        .read_buffer_size(4 * 1024)
}

/// Listens on `addr` with a backlog of [`BACKLOG`].
pub(crate) async fn listen(addr: &str) -> Result<(TcpListener, SocketAddr), WsError> {
    let io = |source| WsError::Io {
        context: format!("cannot listen on {addr}"),
        source,
    };
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await.map_err(io)? {
        let socket = if a.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        }
        .map_err(io)?;
        socket.set_reuseaddr(true).map_err(io)?;
        match socket.bind(a).and_then(|()| socket.listen(BACKLOG)) {
            Ok(listener) => {
                let local = listener.local_addr().map_err(io)?;
                return Ok((listener, local));
            }
            Err(e) => last = Some(e),
        }
    }
    Err(io(last.unwrap_or_else(|| {
        std::io::Error::other("the address resolves to nothing")
    })))
}

/// Reads the next frame: `Ok(None)` when the peer closed the connection,
/// `Err` (one line) on a transport error or a malformed or text message.
pub(crate) async fn next_frame<S>(stream: &mut S) -> Result<Option<Frame>, String>
where
    S: Stream<Item = Result<WsMessage, tungstenite::Error>> + Unpin,
{
    loop {
        match stream.next().await {
            None | Some(Ok(WsMessage::Close(_))) => return Ok(None),
            Some(Err(
                tungstenite::Error::ConnectionClosed
                | tungstenite::Error::AlreadyClosed
                | tungstenite::Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake),
            )) => return Err("the peer reset the connection".into()),
            Some(Err(e)) => return Err(e.to_string()),
            Some(Ok(WsMessage::Binary(bytes))) => {
                return Frame::decode(&bytes).map(Some).map_err(|e| e.to_string());
            }
            Some(Ok(WsMessage::Text(_))) => return Err("a text message (Genet uses binary messages)".into()),
            Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => {}
        }
    }
}

/// [`next_frame`] within `deadline`, expecting a frame: the end of the
/// connection and the deadline are errors too.
pub(crate) async fn first_frame<S>(stream: &mut S, deadline: Duration, what: &str) -> Result<Frame, String>
where
    S: Stream<Item = Result<WsMessage, tungstenite::Error>> + Unpin,
{
    match tokio::time::timeout(deadline, next_frame(stream)).await {
        Err(_) => Err(format!("no {what} within {deadline:?}")),
        Ok(Ok(None)) => Err(format!("the connection closed before the {what}")),
        Ok(Ok(Some(f))) => Ok(f),
        Ok(Err(e)) => Err(e),
    }
}

/// The frames a connection's writer holds before the peer reads them;
/// beyond, [`mpsc::Sender::try_send`] fails and the frame is not queued.
pub(crate) const WRITE_QUEUE: usize = 1024;

/// The sending half of a connection: frames go to a writer task, in order,
/// at most [`WRITE_QUEUE`] waiting. Dropping every clone closes the
/// connection (with a WebSocket close).
pub(crate) type Writer = mpsc::Sender<Frame>;

/// Splits `ws`: its sink goes to a new writer task, its stream is returned.
pub(crate) fn split<S>(ws: WebSocketStream<S>) -> (Writer, SplitStream<WebSocketStream<S>>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, stream) = ws.split();
    let (tx, rx) = mpsc::channel(WRITE_QUEUE);
    tokio::spawn(write_loop(sink, rx));
    (tx, stream)
}

/// How long one write may wait for the peer to read; a peer slower than
/// that is dropped (its reading side then reports the end).
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes the frames as they come, flushing once the channel is empty;
/// closes the connection when every sender is gone. A failed or timed-out
/// write ends it quietly: the reading side reports the failure.
async fn write_loop<S>(mut sink: SplitSink<WebSocketStream<S>, WsMessage>, mut rx: mpsc::Receiver<Frame>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(frame) = rx.recv().await {
        if !feed(&mut sink, frame).await {
            return;
        }
        while let Ok(frame) = rx.try_recv() {
            if !feed(&mut sink, frame).await {
                return;
            }
        }
        if !matches!(
            tokio::time::timeout(WRITE_TIMEOUT, sink.flush()).await,
            Ok(Ok(()))
        ) {
            return;
        }
    }
    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.close()).await;
}

/// Feeds one frame to the sink within [`WRITE_TIMEOUT`]; `false` if it failed.
async fn feed<S>(sink: &mut SplitSink<WebSocketStream<S>, WsMessage>, frame: Frame) -> bool
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let message = WsMessage::Binary(frame.encode().into());
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, sink.feed(message)).await,
        Ok(Ok(()))
    )
}
