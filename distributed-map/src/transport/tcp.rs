//! Plain TCP with length-delimited frames (a 4-byte big-endian length, then
//! the frame). URLs are `tcp://HOST:PORT`.

use std::fmt;

use async_trait::async_trait;
use futures::{SinkExt, StreamExt, TryStreamExt};
use tokio_util::bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder, Framed, LengthDelimitedCodec};

use super::{
    Connection, Connector, Dialer, FrameSink, FrameStream, Incoming, Listener, StreamListener, TcpDialer,
    TransportError, map_sink_err,
};

/// Accepts TCP connections, from tokio's TCP or any other
/// [`StreamListener`] (a simulated network, for example).
pub struct TcpListener<L = tokio::net::TcpListener> {
    listener: L,
    url: String,
    max_frame: usize,
}

impl<L> fmt::Debug for TcpListener<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("url", &self.url)
            .field("max_frame", &self.max_frame)
            .finish_non_exhaustive()
    }
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
        let listener = super::bind_tcp(addr).await?;
        TcpListener::from_listener(listener, max_frame)
    }
}

impl<L: StreamListener> TcpListener<L> {
    /// Serves length-delimited frames over a listener already bound (on
    /// any network); frames larger than `max_frame` bytes are refused. The
    /// URL is `tcp://` and the listener's local address.
    ///
    /// ```
    /// use pando_distributed_map::transport::{Listener, tcp::TcpListener};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    /// let listener = TcpListener::from_listener(tcp, 1 << 20).unwrap();
    /// assert!(listener.url().starts_with("tcp://127.0.0.1:"));
    /// # }
    /// ```
    pub fn from_listener(listener: L, max_frame: usize) -> Result<Self, TransportError> {
        let local = listener.local_addr().map_err(|source| TransportError::Io {
            context: "cannot read the listener's address".into(),
            source,
        })?;
        Ok(TcpListener {
            listener,
            url: format!("tcp://{local}"),
            max_frame,
        })
    }
}

/// Length-delimited frames (a 4-byte big-endian length, then the frame)
/// whose oversized-frame error gives the size the header claims.
struct FrameCodec {
    /// Encodes.
    inner: LengthDelimitedCodec,
    max: usize,
    /// The length of the frame whose header was read, while its body is awaited.
    body: Option<usize>,
}

/// A frame header that claims more than the limit.
#[derive(Debug)]
struct TooLarge(usize);

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a frame of {} bytes", self.0)
    }
}

impl std::error::Error for TooLarge {}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, std::io::Error> {
        let size = match self.body {
            Some(size) => size,
            None => {
                let Some(header) = src.get(..4) else {
                    return Ok(None);
                };
                let size = u32::from_be_bytes(header.try_into().expect("four bytes")) as usize;
                if size > self.max {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        TooLarge(size),
                    ));
                }
                let _ = src.split_to(4);
                src.reserve(size);
                self.body = Some(size);
                size
            }
        };
        if src.len() < size {
            return Ok(None);
        }
        self.body = None;
        Ok(Some(src.split_to(size)))
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        self.inner.encode(frame, dst)
    }
}

fn into_connection<S>(peer: String, tcp: S, max_frame: usize) -> Connection
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let codec = FrameCodec {
        inner: LengthDelimitedCodec::builder()
            .max_frame_length(max_frame)
            .new_codec(),
        max: max_frame,
        body: None,
    };
    let (sink, stream) = Framed::new(tcp, codec).split();
    let sink_peer = peer.clone();
    let sink: FrameSink = Box::pin(
        map_sink_err(sink, move |source| TransportError::Io {
            context: format!("sending to {sink_peer}"),
            source,
        })
        .with(|frame: Vec<u8>| async move { Ok::<_, TransportError>(bytes_of(frame)) }),
    );
    let stream_peer = peer.clone();
    let stream: FrameStream = Box::pin(stream.map_ok(|b| b.to_vec()).map_err(move |source| {
        match source
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<TooLarge>())
        {
            Some(TooLarge(size)) => TransportError::FrameTooLarge {
                peer: stream_peer.clone(),
                size: *size,
                max: max_frame,
            },
            // A peer that vanished resets the connection: it closed it.
            None if matches!(
                source.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::UnexpectedEof
            ) =>
            {
                TransportError::Closed {
                    peer: stream_peer.clone(),
                }
            }
            None => TransportError::Io {
                context: format!("receiving from {stream_peer}"),
                source,
            },
        }
    }));
    Connection { peer, sink, stream }
}

fn bytes_of(frame: Vec<u8>) -> Bytes {
    frame.into()
}

#[async_trait]
impl<L: StreamListener> Listener for TcpListener<L> {
    async fn accept(&mut self) -> Result<Incoming, TransportError> {
        let (tcp, peer) = self
            .listener
            .accept()
            .await
            .map_err(|source| TransportError::Io {
                context: format!("accepting on {}", self.url),
                source,
            })?;
        Ok(Incoming::ready(into_connection(peer, tcp, self.max_frame)))
    }

    fn url(&self) -> String {
        self.url.clone()
    }
}

/// Connects to TCP masters, over tokio's TCP or any other [`Dialer`] (a
/// simulated network, for example).
#[derive(Clone, Copy, Debug)]
pub struct TcpConnector<D = TcpDialer> {
    dialer: D,
    max_frame: usize,
}

impl TcpConnector {
    /// A connector refusing frames larger than `max_frame` bytes, over
    /// tokio's TCP with Nagle's algorithm off.
    ///
    /// ```
    /// use pando_distributed_map::transport::tcp::TcpConnector;
    /// let _connector = TcpConnector::new(1 << 20);
    /// ```
    pub fn new(max_frame: usize) -> Self {
        TcpConnector::with_dialer(TcpDialer::new(true), max_frame)
    }
}

impl<D: Dialer> TcpConnector<D> {
    /// A connector over `dialer`'s network, refusing frames larger than
    /// `max_frame` bytes.
    ///
    /// ```
    /// use pando_distributed_map::transport::{TcpDialer, tcp::TcpConnector};
    /// let _connector = TcpConnector::with_dialer(TcpDialer::new(true), 1 << 20);
    /// ```
    pub fn with_dialer(dialer: D, max_frame: usize) -> Self {
        TcpConnector { dialer, max_frame }
    }
}

#[async_trait]
impl<D: Dialer> Connector for TcpConnector<D> {
    async fn connect(&self, url: &str) -> Result<Connection, TransportError> {
        let Some(rest) = url.strip_prefix("tcp://") else {
            return Err(TransportError::BadUrl {
                url: url.into(),
                reason: "expected tcp://HOST:PORT".into(),
            });
        };
        let addr = rest.split(['/', '?']).next().unwrap_or(rest);
        let tcp = self
            .dialer
            .dial(addr)
            .await
            .map_err(|source| TransportError::Io {
                context: format!("cannot reach {url}"),
                source,
            })?;
        Ok(into_connection(url.to_string(), tcp, self.max_frame))
    }
}
