//! An axum WebSocket as a [`Connection`] of whole frames: binary messages
//! for postcard, text messages for JSON.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures::stream::{SplitSink, SplitStream};
use futures::{Sink, SinkExt, Stream, StreamExt, TryStreamExt};
use pando_distributed_map::codec::Codec;
use pando_distributed_map::transport::{Connection, FrameSink, FrameStream, TransportError};

/// The transport's error for an error of axum's WebSocket.
fn convert(peer: &str, e: axum::Error) -> TransportError {
    let inner = e.into_inner();
    match inner.downcast::<tungstenite::Error>() {
        Ok(e) => match *e {
            tungstenite::Error::Capacity(tungstenite::error::CapacityError::MessageTooLong {
                size,
                max_size,
            }) => TransportError::FrameTooLarge {
                peer: peer.to_string(),
                size,
                max: max_size,
            },
            tungstenite::Error::Io(source) => TransportError::Io {
                context: format!("websocket with {peer}"),
                source,
            },
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
        },
        Err(other) => TransportError::Protocol {
            peer: peer.to_string(),
            transport: "websocket",
            reason: other.to_string(),
        },
    }
}

/// The connection of `socket`, whose frames use `codec`.
pub(crate) fn connection(peer: String, socket: WebSocket, codec: Codec) -> Connection {
    let text = codec == Codec::Json;
    let (sink, stream) = socket.split();
    let halves = Arc::new(Mutex::new(Halves::default()));
    let sink = Lingering {
        half: Some(sink),
        halves: halves.clone(),
    };
    let stream = Lingering {
        half: Some(stream),
        halves,
    };
    let sink_peer = peer.clone();
    let frame_peer = peer.clone();
    let sink: FrameSink = Box::pin(sink.sink_map_err(move |e| convert(&sink_peer, e)).with(
        move |frame: Vec<u8>| {
            let message = if text {
                String::from_utf8(frame)
                    .map(|s| Message::Text(s.into()))
                    .map_err(|e| TransportError::Protocol {
                        peer: frame_peer.clone(),
                        transport: "websocket",
                        reason: format!("a JSON frame that is not UTF-8: {e}"),
                    })
            } else {
                Ok(Message::Binary(frame.into()))
            };
            futures::future::ready(message)
        },
    ));
    let stream_peer = peer.clone();
    let message_peer = peer.clone();
    let stream: FrameStream = Box::pin(
        stream
            .map_err(move |e| convert(&stream_peer, e))
            .try_take_while(|m| futures::future::ready(Ok(!matches!(m, Message::Close(_)))))
            .try_filter_map(move |m| {
                let result = match m {
                    Message::Binary(bytes) => Ok(Some(bytes.to_vec())),
                    // JSON frames are text; the codec checks what a browser
                    // sends in a binary message (it must be UTF-8 JSON too).
                    Message::Text(text_) if text => Ok(Some(text_.as_bytes().to_vec())),
                    Message::Text(_) => Err(TransportError::Protocol {
                        peer: message_peer.clone(),
                        transport: "websocket",
                        reason: "a text message (this endpoint takes binary postcard frames; browsers use /browser)"
                            .into(),
                    }),
                    Message::Ping(_) | Message::Pong(_) | Message::Close(_) => Ok(None),
                };
                futures::future::ready(result)
            }),
    );
    Connection { peer, sink, stream }
}

/// How long a closed connection is read from, at most, until the peer
/// answers the close: long enough for a browser on a loaded machine (2 s
/// was not, once: the socket was dropped with the browser's last frames
/// unread, and the reset lost the `Error` that said why).
const LINGER: Duration = Duration::from_secs(10);

/// The halves of a socket, as they are given back when dropped.
#[derive(Default)]
struct Halves {
    sink: Option<SplitSink<WebSocket, Message>>,
    stream: Option<SplitStream<WebSocket>>,
}

/// One half of a socket. When both are dropped (the session is over, the
/// master sent its last frame and a close), the socket is read until the
/// peer answers the close, for at most [`LINGER`], instead of being dropped
/// at once: dropping a socket with unread data resets the connection, and a
/// browser then loses the last frames sent to it (the `Error` that says why
/// it is disconnected).
struct Lingering<T: Half> {
    half: Option<T>,
    halves: Arc<Mutex<Halves>>,
}

trait Half: Sized {
    fn give_back(self, halves: &mut Halves);
}

impl Half for SplitSink<WebSocket, Message> {
    fn give_back(self, halves: &mut Halves) {
        halves.sink = Some(self);
    }
}

impl Half for SplitStream<WebSocket> {
    fn give_back(self, halves: &mut Halves) {
        halves.stream = Some(self);
    }
}

impl<T: Half> Drop for Lingering<T> {
    fn drop(&mut self) {
        let Some(half) = self.half.take() else {
            return;
        };
        let mut halves = self.halves.lock().unwrap_or_else(|p| p.into_inner());
        half.give_back(&mut halves);
        if let (Some(sink), Some(stream)) = (halves.sink.take(), halves.stream.take()) {
            let Ok(socket) = stream.reunite(sink) else {
                return;
            };
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let mut socket = socket;
                    let _ = tokio::time::timeout(LINGER, async {
                        while let Some(Ok(message)) = socket.next().await {
                            if matches!(message, Message::Close(_)) {
                                break;
                            }
                        }
                    })
                    .await;
                });
            }
        }
    }
}

impl<T: Half + Unpin> Lingering<T> {
    fn half(&mut self) -> Pin<&mut T> {
        Pin::new(self.half.as_mut().expect("a half is there until dropped"))
    }
}

impl Sink<Message> for Lingering<SplitSink<WebSocket, Message>> {
    type Error = axum::Error;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), axum::Error>> {
        self.half().poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), axum::Error> {
        self.half().start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), axum::Error>> {
        self.half().poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), axum::Error>> {
        self.half().poll_close(cx)
    }
}

impl Stream for Lingering<SplitStream<WebSocket>> {
    type Item = Result<Message, axum::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.half().poll_next(cx)
    }
}
