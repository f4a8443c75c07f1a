//! Connections that another part of the program carries: a [`Connection`]
//! over a pair of tokio channels of frames ([`Connection::from_channels`]),
//! and a [`ChannelListener`] fed with [`Incoming`] connections. The Genet
//! tree runs the map's protocol this way, over its links' duplexes.

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

use super::{Connection, Incoming, Listener, TransportError, map_sink_err};

impl Connection {
    /// A connection to `peer` whose frames go out on `tx` and come in on
    /// `rx` (`None` from `rx` is the peer closing).
    ///
    /// ```
    /// use futures::{SinkExt, StreamExt};
    /// use pando_distributed_map::transport::Connection;
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let (tx, mut peer_rx) = tokio::sync::mpsc::channel(4);
    /// let (peer_tx, rx) = tokio::sync::mpsc::channel(4);
    /// let mut c = Connection::from_channels("child 7".into(), tx, rx);
    /// c.sink.send(b"hi".to_vec()).await.unwrap();
    /// assert_eq!(peer_rx.recv().await.unwrap(), b"hi");
    /// peer_tx.send(b"ho".to_vec()).await.unwrap();
    /// drop(peer_tx);
    /// assert_eq!(c.stream.next().await.unwrap().unwrap(), b"ho");
    /// assert!(c.stream.next().await.is_none());
    /// # }
    /// ```
    pub fn from_channels(
        peer: String,
        tx: mpsc::Sender<Vec<u8>>,
        mut rx: mpsc::Receiver<Vec<u8>>,
    ) -> Connection {
        let closed = peer.clone();
        let sink = map_sink_err(PollSender::new(tx), move |_| TransportError::Closed {
            peer: closed.clone(),
        });
        let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx).map(|f| f.map(Ok)));
        Connection {
            peer,
            sink: Box::pin(sink),
            stream: Box::pin(stream),
        }
    }
}

/// A [`Listener`] whose connections are sent to it on a channel; it ends
/// ([`TransportError::Closed`]) when every sender is dropped.
///
/// ```
/// use pando_distributed_map::transport::{ChannelListener, Connection, Incoming, Listener};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
/// let mut listener = ChannelListener::new("genet://children", rx);
/// let (a, _b) = tokio::sync::mpsc::channel(1);
/// let (_c, d) = tokio::sync::mpsc::channel(1);
/// tx.send(Incoming::ready(Connection::from_channels("child 7".into(), a, d))).unwrap();
/// drop(tx);
/// assert_eq!(listener.accept().await.unwrap().peer(), "child 7");
/// assert!(listener.accept().await.is_err());
/// assert_eq!(listener.url(), "genet://children");
/// # }
/// ```
#[derive(Debug)]
pub struct ChannelListener {
    url: String,
    rx: mpsc::UnboundedReceiver<Incoming>,
}

impl ChannelListener {
    /// A listener named `url` (for logs), accepting what comes on `rx`.
    ///
    /// See [`ChannelListener`] for an example.
    pub fn new(url: impl Into<String>, rx: mpsc::UnboundedReceiver<Incoming>) -> Self {
        Self { url: url.into(), rx }
    }
}

#[async_trait]
impl Listener for ChannelListener {
    async fn accept(&mut self) -> Result<Incoming, TransportError> {
        self.rx.recv().await.ok_or_else(|| TransportError::Closed {
            peer: self.url.clone(),
        })
    }

    fn url(&self) -> String {
        self.url.clone()
    }
}
