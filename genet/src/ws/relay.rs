//! The bootstrap/relay server: root registration with a secret, the join
//! token, and the relaying of join requests and replies between nodes that
//! have no direct connection yet (the role of `webrtc-bootstrap`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pando_distributed_map::transport::StreamListener;
use subtle::ConstantTimeEq;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::conn::{Writer, first_frame, next_frame, split, ws_config};
use super::net::listen;
use super::{Dest, Frame, GENET_VERSION, Network, TcpNetwork, WsError};
use crate::NodeId;

/// The relay's settings.
///
/// ```
/// use pando_genet::ws::RelayConfig;
/// let c = RelayConfig::new("root secret", "join token");
/// assert_eq!(c.handshake_timeout.as_secs(), 10);
/// ```
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// The secret that lets a node become the root.
    pub secret: String,
    /// The token that lets a node connect at all.
    pub token: String,
    /// How long a new connection may take to upgrade and say `Hello`.
    pub handshake_timeout: Duration,
}

impl RelayConfig {
    /// A relay with this secret and token, and a 10 s handshake timeout.
    ///
    /// ```
    /// let c = pando_genet::ws::RelayConfig::new("s", "t");
    /// assert_eq!(c.secret, "s");
    /// ```
    #[must_use]
    pub fn new(secret: &str, token: &str) -> Self {
        Self {
            secret: secret.to_owned(),
            token: token.to_owned(),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Default)]
struct Table {
    next_conn: u64,
    root: Option<(NodeId, u64)>,
    /// Identifier → (connection, its writer).
    bound: HashMap<NodeId, (u64, Writer)>,
}

/// A running relay. It stops (and closes every connection) when dropped.
///
/// ```
/// use pando_genet::ws::{Relay, RelayConfig};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let relay = Relay::bind("127.0.0.1:0", RelayConfig::new("s", "t")).await.unwrap();
/// assert!(relay.url().starts_with("ws://127.0.0.1:"));
/// # }
/// ```
#[derive(Debug)]
pub struct Relay {
    url: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    table: Arc<Mutex<Table>>,
}

impl Relay {
    /// Listens on `addr` (`127.0.0.1:0` for any free port) over tokio's
    /// TCP ([`TcpNetwork`]) and serves.
    ///
    /// ```
    /// use pando_genet::ws::{Relay, RelayConfig};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// assert!(Relay::bind("256.0.0.1:0", RelayConfig::new("s", "t")).await.is_err());
    /// # }
    /// ```
    pub async fn bind(addr: &str, config: RelayConfig) -> Result<Relay, WsError> {
        Relay::bind_with(addr, config, TcpNetwork).await
    }

    /// Listens on `addr` over `net` and serves. The URL is `ws://` and the
    /// listener's [`local_addr`](StreamListener::local_addr).
    ///
    /// ```
    /// use pando_genet::ws::{Relay, RelayConfig, TcpNetwork};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let relay = Relay::bind_with("127.0.0.1:0", RelayConfig::new("s", "t"), TcpNetwork).await.unwrap();
    /// assert!(relay.url().starts_with("ws://127.0.0.1:"));
    /// # }
    /// ```
    pub async fn bind_with<N: Network>(addr: &str, config: RelayConfig, net: N) -> Result<Relay, WsError> {
        let (mut listener, local) = listen(&net, addr).await?;
        let (stop, stopped) = watch::channel(false);
        let table = Arc::new(Mutex::new(Table::default()));
        let config = Arc::new(config);
        let t = Arc::clone(&table);
        let task = tokio::spawn(async move {
            loop {
                let mut stopped = stopped.clone();
                let accepted = tokio::select! {
                    a = listener.accept() => a,
                    _ = stopped.changed() => return,
                };
                // An accept error (out of descriptors, say) concerns one
                // connection: carry on.
                let Ok((stream, _)) = accepted else { continue };
                tokio::spawn(serve(stream, Arc::clone(&config), Arc::clone(&t), stopped));
            }
        });
        Ok(Relay {
            url: format!("ws://{local}/"),
            stop,
            task,
            table,
        })
    }

    /// The URL nodes connect to, `ws://HOST:PORT/`.
    ///
    /// ```
    /// # use pando_genet::ws::{Relay, RelayConfig};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let relay = Relay::bind("127.0.0.1:0", RelayConfig::new("s", "t")).await.unwrap();
    /// assert!(relay.url().ends_with('/'));
    /// # }
    /// ```
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The number of nodes bound to an identifier (the root included).
    ///
    /// ```
    /// # use pando_genet::ws::{Relay, RelayConfig};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let relay = Relay::bind("127.0.0.1:0", RelayConfig::new("s", "t")).await.unwrap();
    /// assert_eq!(relay.bound(), 0);
    /// # }
    /// ```
    #[must_use]
    pub fn bound(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bound
            .len()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

/// One node's connection: the upgrade and `Hello` within the deadline, then
/// its requests until it closes or the relay stops.
async fn serve<S>(
    tcp: S,
    config: Arc<RelayConfig>,
    table: Arc<Mutex<Table>>,
    mut stopped: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let deadline = config.handshake_timeout;
    let Ok(Ok(ws)) = tokio::time::timeout(
        deadline,
        tokio_tungstenite::accept_async_with_config(tcp, Some(ws_config())),
    )
    .await
    else {
        return;
    };
    let (writer, mut stream) = split(ws);
    match first_frame(&mut stream, deadline, "Hello").await {
        Ok(Frame::Hello { version, token }) => {
            if version != GENET_VERSION {
                let reason = format!("version {version} is not supported: this relay speaks {GENET_VERSION}");
                let _ = writer.try_send(Frame::Refused { reason });
                return;
            }
            if !bool::from(token.as_bytes().ct_eq(config.token.as_bytes())) {
                let _ = writer.try_send(Frame::Refused {
                    reason: "wrong join token".into(),
                });
                return;
            }
        }
        Ok(other) => {
            let reason = format!("expected Hello, got {}", other.kind());
            let _ = writer.try_send(Frame::Refused { reason });
            return;
        }
        Err(_) => return,
    }
    let _ = writer.try_send(Frame::Welcome {
        version: GENET_VERSION,
    });
    let conn = {
        let mut t = table.lock().unwrap_or_else(PoisonError::into_inner);
        t.next_conn += 1;
        t.next_conn
    };
    let mut me: Option<NodeId> = None;
    loop {
        let frame = tokio::select! {
            f = next_frame(&mut stream) => f,
            _ = stopped.changed() => break,
        };
        let Ok(Some(frame)) = frame else { break };
        let mut t = table.lock().unwrap_or_else(PoisonError::into_inner);
        match frame {
            Frame::RegisterRoot { secret, id } => {
                if !bool::from(secret.as_bytes().ct_eq(config.secret.as_bytes())) {
                    let _ = writer.try_send(Frame::Refused {
                        reason: "wrong root secret".into(),
                    });
                } else if t.root.is_some_and(|(_, c)| c != conn) {
                    let _ = writer.try_send(Frame::Refused {
                        reason: "a root is already registered".into(),
                    });
                } else if bind(&mut t, &mut me, id, conn, &writer) {
                    t.root = Some((id, conn));
                    let _ = writer.try_send(Frame::RootAccepted);
                }
            }
            Frame::Bind { id } => {
                bind(&mut t, &mut me, id, conn, &writer);
            }
            Frame::Forward { to, message } => {
                let target = match to {
                    Dest::Root => t.root.and_then(|(id, _)| t.bound.get(&id)),
                    Dest::Node(id) => t.bound.get(&id),
                };
                let kind = message.kind();
                match target {
                    Some((_, w)) if w.try_send(Frame::Deliver { message }).is_ok() => {}
                    _ => {
                        let _ = writer.try_send(Frame::Undeliverable {
                            to,
                            kind: kind.into(),
                        });
                    }
                }
            }
            other => {
                let _ = writer.try_send(Frame::Refused {
                    reason: format!("a node does not send {} to the relay", other.kind()),
                });
            }
        }
    }
    let mut t = table.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(id) = me {
        t.bound.remove(&id);
    }
    if t.root.is_some_and(|(_, c)| c == conn) {
        t.root = None;
    }
}

/// Binds `id` to connection `conn` (dropping its previous identifier);
/// refuses an identifier bound by another connection.
fn bind(t: &mut Table, me: &mut Option<NodeId>, id: NodeId, conn: u64, writer: &Writer) -> bool {
    if t.bound.get(&id).is_some_and(|(c, _)| *c != conn) {
        let _ = writer.try_send(Frame::Refused {
            reason: format!("identifier {id} is bound by another node"),
        });
        return false;
    }
    if let Some(old) = me.replace(id) {
        if old != id {
            t.bound.remove(&old);
            if t.root.is_some_and(|(r, c)| r == old && c == conn) {
                t.root = None;
            }
        }
    }
    t.bound.insert(id, (conn, writer.clone()));
    true
}
