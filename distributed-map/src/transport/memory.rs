//! The in-process transport: connections are pairs of channels. For tests
//! and for the master's local workers.

use async_trait::async_trait;
use futures::StreamExt;
use futures::channel::mpsc;

use super::{Connection, Connector, Incoming, Listener, TransportError, map_sink_err};

/// The listening end of the in-process transport.
#[derive(Debug)]
pub struct MemoryListener {
    incoming: mpsc::UnboundedReceiver<Connection>,
    name: String,
}

/// Connects to a [`MemoryListener`]; cloneable.
#[derive(Clone, Debug)]
pub struct MemoryConnector {
    outgoing: mpsc::UnboundedSender<Connection>,
    name: String,
}

/// A new in-process endpoint named `name` (its URL is `memory://name`), and
/// the connector that reaches it.
///
/// ```
/// use futures::{SinkExt, StreamExt};
/// use pando_distributed_map::transport::{Connector, Listener, memory};
///
/// # tokio_test_block_on(async {
/// let (mut listener, connector) = memory::endpoint("master");
/// let mut worker = connector.connect("memory://master").await.unwrap();
/// let mut master = listener.accept().await.unwrap().upgrade().await.unwrap();
/// worker.sink.send(b"hi".to_vec()).await.unwrap();
/// assert_eq!(master.stream.next().await.unwrap().unwrap(), b"hi");
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output { futures::executor::block_on(f) }
/// ```
pub fn endpoint(name: &str) -> (MemoryListener, MemoryConnector) {
    let (outgoing, incoming) = mpsc::unbounded();
    (
        MemoryListener {
            incoming,
            name: name.to_string(),
        },
        MemoryConnector {
            outgoing,
            name: name.to_string(),
        },
    )
}

fn half(
    peer: String,
) -> (
    super::FrameSink,
    super::FrameStream,
    mpsc::Sender<Vec<u8>>,
    mpsc::Receiver<Vec<u8>>,
) {
    let (to_peer, from_me) = mpsc::channel::<Vec<u8>>(16);
    let (to_me, from_peer) = mpsc::channel::<Vec<u8>>(16);
    let closed = peer.clone();
    let sink = map_sink_err(to_peer, move |_| TransportError::Closed { peer: closed.clone() });
    (Box::pin(sink), Box::pin(from_peer.map(Ok)), to_me, from_me)
}

#[async_trait]
impl Listener for MemoryListener {
    async fn accept(&mut self) -> Result<Incoming, TransportError> {
        let connection = self.incoming.next().await.ok_or_else(|| TransportError::Closed {
            peer: format!("memory://{}", self.name),
        })?;
        Ok(Incoming::ready(connection))
    }

    fn url(&self) -> String {
        format!("memory://{}", self.name)
    }
}

#[async_trait]
impl Connector for MemoryConnector {
    async fn connect(&self, url: &str) -> Result<Connection, TransportError> {
        if url.trim_end_matches('/').split('?').next() != Some(&format!("memory://{}", self.name)) {
            return Err(TransportError::BadUrl {
                url: url.to_string(),
                reason: format!("this connector reaches memory://{}", self.name),
            });
        }
        let (sink, stream, to_worker, from_worker) = half(format!("memory://{}", self.name));
        let master_side = Connection {
            peer: "memory worker".to_string(),
            sink: Box::pin(map_sink_err(to_worker, |_| TransportError::Closed {
                peer: "memory worker".into(),
            })),
            stream: Box::pin(from_worker.map(Ok)),
        };
        self.outgoing
            .unbounded_send(master_side)
            .map_err(|_| TransportError::Closed {
                peer: url.to_string(),
            })?;
        Ok(Connection {
            peer: url.to_string(),
            sink,
            stream,
        })
    }
}
