//! An axum WebSocket as a [`Connection`] of whole frames: binary messages
//! for postcard, text messages for JSON.

use axum::extract::ws::{Message, WebSocket};
use futures::{SinkExt, StreamExt, TryStreamExt};
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
