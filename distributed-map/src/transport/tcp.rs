//! Plain TCP with length-delimited frames (a 4-byte big-endian length, then
//! the frame). URLs are `tcp://HOST:PORT`.

use async_trait::async_trait;
use futures::{SinkExt, StreamExt, TryStreamExt};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec, LengthDelimitedCodecError};

use super::{Connection, Connector, FrameSink, FrameStream, Listener, TransportError};

/// Accepts TCP connections.
#[derive(Debug)]
pub struct TcpListener {
    listener: tokio::net::TcpListener,
    url: String,
    max_frame: usize,
}

impl TcpListener {
    /// Listens on `addr`; frames larger than `max_frame` bytes are refused.
    ///
    /// ```
    /// use pando_distributed_map::transport::{Listener, tcp::TcpListener};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let listener = TcpListener::bind("127.0.0.1:0", 1 << 20).await.unwrap();
    /// assert!(listener.url().starts_with("tcp://127.0.0.1:"));
    /// # }
    /// ```
    pub async fn bind(addr: &str, max_frame: usize) -> Result<Self, TransportError> {
        let (listener, local) = super::bind_tcp(addr).await?;
        Ok(TcpListener {
            listener,
            url: format!("tcp://{local}"),
            max_frame,
        })
    }
}

fn into_connection(peer: String, tcp: TcpStream, max_frame: usize) -> Connection {
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(max_frame)
        .new_codec();
    let (sink, stream) = Framed::new(tcp, codec).split();
    let sink_peer = peer.clone();
    let sink: FrameSink = Box::pin(
        sink.sink_map_err(move |source| TransportError::Io {
            context: format!("sending to {sink_peer}"),
            source,
        })
        .with(|frame: Vec<u8>| async move { Ok::<_, TransportError>(bytes_of(frame)) }),
    );
    let stream_peer = peer.clone();
    let stream: FrameStream = Box::pin(stream.map_ok(|b| b.to_vec()).map_err(move |source| {
        if source
            .get_ref()
            .is_some_and(|inner| inner.is::<LengthDelimitedCodecError>())
        {
            TransportError::FrameTooLarge {
                peer: stream_peer.clone(),
                size: max_frame + 1,
                max: max_frame,
            }
        } else {
            TransportError::Io {
                context: format!("receiving from {stream_peer}"),
                source,
            }
        }
    }));
    Connection { peer, sink, stream }
}

fn bytes_of(frame: Vec<u8>) -> tokio_util::bytes::Bytes {
    frame.into()
}

#[async_trait]
impl Listener for TcpListener {
    async fn accept(&mut self) -> Result<Connection, TransportError> {
        let (tcp, addr) = self
            .listener
            .accept()
            .await
            .map_err(|source| TransportError::Io {
                context: format!("accepting on {}", self.url),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        Ok(into_connection(addr.to_string(), tcp, self.max_frame))
    }

    fn url(&self) -> String {
        self.url.clone()
    }
}

/// Connects to TCP masters.
#[derive(Clone, Copy, Debug)]
pub struct TcpConnector {
    max_frame: usize,
}

impl TcpConnector {
    /// A connector refusing frames larger than `max_frame` bytes.
    ///
    /// ```
    /// use pando_distributed_map::transport::tcp::TcpConnector;
    /// let _connector = TcpConnector::new(1 << 20);
    /// ```
    pub fn new(max_frame: usize) -> Self {
        TcpConnector { max_frame }
    }
}

#[async_trait]
impl Connector for TcpConnector {
    async fn connect(&self, url: &str) -> Result<Connection, TransportError> {
        let Some(rest) = url.strip_prefix("tcp://") else {
            return Err(TransportError::BadUrl {
                url: url.into(),
                reason: "expected tcp://HOST:PORT".into(),
            });
        };
        let addr = rest.split(['/', '?']).next().unwrap_or(rest);
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| TransportError::Io {
                context: format!("cannot reach {url}"),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        Ok(into_connection(url.to_string(), tcp, self.max_frame))
    }
}
