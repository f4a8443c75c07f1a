//! The WebSocket plumbing shared by the relay and the nodes: reading one
//! frame with a deadline, and splitting a
//! connection into a writer task fed by a channel (two on a direct link:
//! Genet's frames and the application's payloads) and a stream of frames.

use std::pin::Pin;
use std::time::Duration;

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

use super::frame::app_bytes;
use super::{APP_OVERHEAD, Frame, MAX_FRAME};

/// The WebSocket settings of a relay connection: Genet's frame limit, a
/// small read buffer.
pub(crate) fn ws_config() -> WebSocketConfig {
    config_up_to(MAX_FRAME)
}

/// The WebSocket settings of a direct link, on both ends: App frames of up
/// to `max_app_frame` bytes of payload.
pub(crate) fn peer_ws_config(max_app_frame: usize) -> WebSocketConfig {
    config_up_to(MAX_FRAME.max(max_app_frame.saturating_add(APP_OVERHEAD)))
}

fn config_up_to(max: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        .read_buffer_size(4 * 1024)
}

/// Reads the next frame: `Ok(None)` when the peer closed the connection,
/// `Err` (one line) on a transport error or a malformed or text message.
pub(crate) async fn next_frame<S>(stream: &mut S) -> Result<Option<Frame>, String>
where
    S: Stream<Item = Result<WsMessage, tungstenite::Error>> + Unpin,
{
    loop {
        if let Some(f) = frame_of(stream.next().await) {
            return f;
        }
    }
}

/// [`next_frame`] on a direct link: a link on which nothing at all (not
/// even a ping) was heard for `idle` has failed.
pub(crate) async fn next_frame_within<S>(stream: &mut S, idle: Duration) -> Result<Option<Frame>, String>
where
    S: Stream<Item = Result<WsMessage, tungstenite::Error>> + Unpin,
{
    loop {
        match tokio::time::timeout(idle, stream.next()).await {
            Err(_) => return Err(format!("nothing heard from the peer for {idle:?}")),
            Ok(m) => {
                if let Some(f) = frame_of(m) {
                    return f;
                }
            }
        }
    }
}

/// What a message says: a frame, the end, an error, or nothing (`None`:
/// a ping or a pong).
fn frame_of(m: Option<Result<WsMessage, tungstenite::Error>>) -> Option<Result<Option<Frame>, String>> {
    Some(match m {
        None | Some(Ok(WsMessage::Close(_))) => Ok(None),
        Some(Err(
            tungstenite::Error::ConnectionClosed
            | tungstenite::Error::AlreadyClosed
            | tungstenite::Error::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake),
        )) => Err("the peer reset the connection".into()),
        Some(Err(e)) => Err(e.to_string()),
        Some(Ok(WsMessage::Binary(bytes))) => Frame::decode(&bytes).map(Some).map_err(|e| e.to_string()),
        Some(Ok(WsMessage::Text(_))) => Err("a text message (Genet uses binary messages)".into()),
        Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_))) => return None,
    })
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
    tokio::spawn(write_loop(sink, rx, None, None, None));
    (tx, stream)
}

/// A direct link, split: [`Writer`] for Genet's frames, `app` for the
/// application's payloads (a second queue of [`APP_QUEUE`](super::APP_QUEUE),
/// which the writer serves after Genet's frames), the stream of frames, and
/// `failed`, which says why the writer stopped if it failed (a write that
/// failed or timed out, a payload over the limit).
pub(crate) struct PeerConn {
    pub(crate) writer: Writer,
    pub(crate) app: mpsc::Sender<Vec<u8>>,
    pub(crate) stream: MessageStream,
    pub(crate) failed: oneshot::Receiver<String>,
}

/// The messages of a direct link, whatever the network under it.
pub(crate) type MessageStream = Pin<Box<dyn Stream<Item = Result<WsMessage, tungstenite::Error>> + Send>>;

/// Splits a direct link; payloads over `max_app_frame` bytes fail it. The
/// writer sends a ping whenever it has written nothing for `ping`.
pub(crate) fn split_peer<S>(ws: WebSocketStream<S>, max_app_frame: usize, ping: Duration) -> PeerConn
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sink, stream) = ws.split();
    let (writer, control) = mpsc::channel(WRITE_QUEUE);
    let (app, app_rx) = mpsc::channel(super::APP_QUEUE);
    let (failed_tx, failed) = oneshot::channel();
    tokio::spawn(write_loop(
        sink,
        control,
        Some(AppQueue {
            rx: app_rx,
            max: max_app_frame,
        }),
        Some(failed_tx),
        Some(ping),
    ));
    PeerConn {
        writer,
        app,
        stream: Box::pin(stream),
        failed,
    }
}

/// How long one write may wait for the peer to read; a peer slower than
/// that is dropped (on a direct link, the writer says so on `failed` and
/// the link fails; on a relay connection, the reading side reports the
/// end).
pub(crate) const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The application's payloads for a direct link, and their size limit.
struct AppQueue {
    rx: mpsc::Receiver<Vec<u8>>,
    max: usize,
}

/// What the writer writes next.
enum Out {
    Frame(Frame),
    Payload(Vec<u8>),
    /// A keepalive: nothing was written for the ping interval.
    Ping,
}

/// Resolves after `ping`; never without it.
async fn idle(ping: Option<Duration>) {
    match ping {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

/// The next payload; never, once the queue is gone. `None` when every
/// sender is gone.
async fn next_payload(app: &mut Option<AppQueue>) -> Option<Vec<u8>> {
    match app {
        Some(q) => q.rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Writes the frames as they come, Genet's before the application's
/// payloads, flushing once nothing more is ready; closes the connection
/// when every sender of Genet's frames is gone (the application's payloads
/// still queued are dropped then). A failed or timed-out write ends it,
/// saying why on `failed` (on a relay connection, quietly: the reading
/// side reports the end). A payload over the limit is not written: the
/// writer says so on `failed` and takes no more payloads.
async fn write_loop<S>(
    mut sink: SplitSink<WebSocketStream<S>, WsMessage>,
    mut control: mpsc::Receiver<Frame>,
    mut app: Option<AppQueue>,
    mut failed: Option<oneshot::Sender<String>>,
    ping: Option<Duration>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut fail = |reason: String| {
        if let Some(f) = failed.take() {
            let _ = f.send(reason);
        }
    };
    loop {
        let first = tokio::select! {
            biased;
            f = control.recv() => match f {
                Some(f) => Out::Frame(f),
                None => break,
            },
            p = next_payload(&mut app) => match p {
                Some(p) => Out::Payload(p),
                None => {
                    app = None;
                    continue;
                }
            },
            () = idle(ping) => Out::Ping,
        };
        let mut next = Some(first);
        while let Some(out) = next.take() {
            let bytes = match out {
                Out::Ping => {
                    if let Err(reason) = feed_message(&mut sink, WsMessage::Ping(Default::default())).await {
                        return fail(reason);
                    }
                    None
                }
                Out::Frame(f) => Some(f.encode()),
                Out::Payload(p) => match &app {
                    Some(q) if p.len() > q.max => {
                        fail(format!(
                            "the application sent a payload of {} bytes, over max_app_frame ({} bytes)",
                            p.len(),
                            q.max
                        ));
                        app = None;
                        None
                    }
                    _ => Some(app_bytes(&p)),
                },
            };
            if let Some(bytes) = bytes {
                if let Err(reason) = feed(&mut sink, bytes).await {
                    return fail(reason);
                }
            }
            next = match control.try_recv() {
                Ok(f) => Some(Out::Frame(f)),
                Err(_) => app.as_mut().and_then(|q| q.rx.try_recv().ok()).map(Out::Payload),
            };
        }
        match tokio::time::timeout(WRITE_TIMEOUT, sink.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return fail(format!("a write failed: {e}")),
            Err(_) => {
                return fail(format!(
                    "a write waited more than {WRITE_TIMEOUT:?} for the peer to read"
                ));
            }
        }
    }
    drop(app);
    let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.close()).await;
}

/// Feeds one binary message to the sink within [`WRITE_TIMEOUT`].
async fn feed<S>(sink: &mut SplitSink<WebSocketStream<S>, WsMessage>, bytes: Vec<u8>) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    feed_message(sink, WsMessage::Binary(bytes.into())).await
}

/// Feeds one message to the sink within [`WRITE_TIMEOUT`].
async fn feed_message<S>(
    sink: &mut SplitSink<WebSocketStream<S>, WsMessage>,
    message: WsMessage,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(WRITE_TIMEOUT, sink.feed(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("a write failed: {e}")),
        Err(_) => Err(format!(
            "a write waited more than {WRITE_TIMEOUT:?} for the peer to read"
        )),
    }
}
