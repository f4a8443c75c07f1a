//! A real Genet node over WebSocket: the sans-IO [`Node`] driven by one
//! task, its timers from tokio's clock, its links WebSocket connections.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use pando_distributed_map::transport::StreamListener;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinHandle};

use super::conn::{
    PeerConn, WRITE_QUEUE, Writer, first_frame, next_frame, next_frame_within, peer_ws_config, split,
    split_peer, ws_config,
};
use super::net::{address, listen};
use super::{APP_QUEUE, Dest, Frame, GENET_VERSION, Network, TcpNetwork, WsError, WsSignal};
use crate::{Action, Config, Event, From, GenetError, Link, Node, NodeId, RequestError, Signal, State, To};

/// A node's settings.
///
/// ```
/// use pando_genet::ws::WsNodeConfig;
/// let c = WsNodeConfig::new("ws://127.0.0.1:9000/", "token", 1);
/// assert!(c.listen.is_none()); // joins as a leaf
/// assert_eq!(c.handshake_timeout.as_secs(), 10);
/// assert!(!c.app_links);
/// assert_eq!(c.max_app_frame, 16 * 1024 * 1024 + 1024);
/// assert_eq!(c.link_timeout.as_secs(), 30);
/// ```
#[derive(Clone, Debug)]
pub struct WsNodeConfig {
    /// The core's parameters. [`Config::accepts_children`] is set by the
    /// adapter: true exactly when the node listens.
    pub genet: Config,
    /// The relay, `ws://HOST:PORT/`.
    pub relay: String,
    /// The relay's join token.
    pub token: String,
    /// Where to listen for children (`127.0.0.1:0`, say); `None` joins as
    /// a leaf. Children connect to the address the listener gets, so it
    /// must be one they can reach.
    pub listen: Option<String>,
    /// The core's seed, from which its identifiers are drawn.
    pub seed: u64,
    /// How long connecting to the relay or to a parent, with its hello,
    /// may take.
    pub handshake_timeout: Duration,
    /// Give the application a duplex over each direct link
    /// ([`WsNode::take_links`]). Off, an [`Frame::App`] frame from a peer
    /// is a protocol error that fails its link.
    pub app_links: bool,
    /// The largest [`AppLink`] payload, in bytes, both ways: direct links
    /// accept WebSocket messages of this plus [`APP_OVERHEAD`](super::APP_OVERHEAD)
    /// (relay connections keep [`MAX_FRAME`](super::MAX_FRAME)). A larger
    /// payload from the application fails its link, reported with its
    /// size; one from the peer fails the link too. Every node of a tree
    /// must use the same value.
    pub max_app_frame: usize,
    /// How long a direct link (to the parent or a child) may stay silent
    /// before it has failed: each end sends a WebSocket ping whenever it
    /// has written nothing for a third of it, so that a peer that crashed
    /// or was cut off without a close (a partition, a machine gone) is
    /// found. Default 30 s ([`DEFAULT_LINK_TIMEOUT`]). Every node of a tree
    /// should use the same value.
    pub link_timeout: Duration,
}

/// [`WsNodeConfig::link_timeout`]'s default: 30 s, as long as a write may
/// wait for its peer.
///
/// ```
/// assert_eq!(pando_genet::ws::DEFAULT_LINK_TIMEOUT.as_secs(), 30);
/// ```
pub const DEFAULT_LINK_TIMEOUT: Duration = Duration::from_secs(30);

/// [`WsNodeConfig::max_app_frame`]'s default: 16 MiB and 1 KiB (a 16 MiB
/// value and the framing of the protocol that carries it).
///
/// ```
/// assert_eq!(pando_genet::ws::DEFAULT_MAX_APP_FRAME, (16 << 20) + 1024);
/// ```
pub const DEFAULT_MAX_APP_FRAME: usize = 16 * 1024 * 1024 + 1024;

/// An application duplex over one direct tree link (the seeds' `duplex` of
/// `parentConnected` and `childConnected`), from [`WsNode::take_links`].
///
/// Payloads travel as [`Frame::App`] frames on the link's WebSocket
/// connection, in order, after Genet's own frames that were queued before
/// them (a link's writer serves Genet's frames first).
///
/// - **Backpressure.** `tx` holds at most [`APP_QUEUE`] payloads; a
///   `send` waits while the peer does not read. On the other side, the
///   link's reader waits for the application to take each payload from
///   `rx` (at most [`APP_QUEUE`] waiting), and so stops reading the
///   connection: TCP holds the writer back. Nothing fails because the
///   application is slow, but a link whose application does not read
///   stalls that link's Genet frames too (head of line: reports and join
///   requests behind the payloads wait). Read `rx` concurrently with
///   sending on `tx`: two applications that only send deadlock. A write
///   that waits more than 30 s for the peer still fails the link, as for
///   Genet's frames.
/// - **Size.** A payload is at most [`WsNodeConfig::max_app_frame`]
///   bytes: a larger one is not sent, and the link fails with a
///   [`GenetError::ChannelFailed`](crate::GenetError::ChannelFailed)
///   naming its size. Memory: at most [`APP_QUEUE`] payloads wait each
///   way on a link, plus the sockets' buffers.
/// - **End.** When the link ends (closed or failed, the node leaves or
///   shuts down), `rx` yields the payloads already received, then `None`;
///   `tx`'s queue closes as soon as the link's writer stops (at once,
///   unless it is in the middle of a write): `tx.closed()` resolves and
///   `send` fails. Payloads queued and not yet written are lost.
/// - **Dropping `rx`** does not close the link: payloads arriving after
///   it are dropped. Dropping `tx` sends nothing more; the link stays.
///
/// A root and a leaf, each with its end of their link:
///
/// ```
/// use std::time::Duration;
/// use pando_genet::Link;
/// use pando_genet::ws::{Relay, RelayConfig, WsNode, WsNodeConfig};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let relay = Relay::bind("127.0.0.1:0", RelayConfig::new("secret", "token")).await.unwrap();
/// let mut cfg = WsNodeConfig::new(relay.url(), "token", 1);
/// cfg.listen = Some("127.0.0.1:0".into());
/// cfg.app_links = true;
/// let mut root = WsNode::start(cfg).await.unwrap();
/// let mut root_links = root.take_links().unwrap();
/// root.become_root("secret").await.unwrap();
/// root.wait_for(|s| s.root_registered, Duration::from_secs(10), "root").await.unwrap();
///
/// let mut cfg = WsNodeConfig::new(relay.url(), "token", 2);
/// cfg.app_links = true;
/// let mut leaf = WsNode::start(cfg).await.unwrap();
/// let mut leaf_links = leaf.take_links().unwrap();
/// leaf.join().await.unwrap();
///
/// let mut up = leaf_links.recv().await.unwrap();
/// assert_eq!(up.link, Link::Parent);
/// let mut down = root_links.recv().await.unwrap();
/// assert_eq!(down.link, Link::Child(up_id(&leaf)));
/// up.tx.send(b"hello".to_vec()).await.unwrap();
/// assert_eq!(down.rx.recv().await.unwrap(), b"hello");
/// down.tx.send(b"hi".to_vec()).await.unwrap();
/// assert_eq!(up.rx.recv().await.unwrap(), b"hi");
/// assert_eq!(*down.leaves.borrow(), 1);
///
/// leaf.shutdown().await;
/// assert_eq!(down.rx.recv().await, None);
/// # fn up_id(n: &WsNode) -> pando_genet::NodeId { n.status().borrow().id.unwrap() }
/// # }
/// ```
#[derive(Debug)]
pub struct AppLink {
    /// Which link: [`Link::Parent`] or [`Link::Child`].
    pub link: Link,
    /// The node at the other end.
    pub peer: NodeId,
    /// Payloads to the peer. Bounded ([`APP_QUEUE`]: backpressure);
    /// `send` fails once the link is gone.
    pub tx: mpsc::Sender<Vec<u8>>,
    /// Payloads from the peer, in order; `None` once the link closed or
    /// failed.
    pub rx: mpsc::Receiver<Vec<u8>>,
    /// For a child link: the leaves that child last reported
    /// ([`Event::LeafNumber`]; 1 until its first report). For the parent
    /// link: this node's own leaf count as it reports it to the parent.
    /// The sender is gone once the link is.
    pub leaves: watch::Receiver<u64>,
}

/// A link's application channels between its opening and the core's
/// indication that hands them to the application.
#[derive(Debug)]
struct PendingApp {
    tx: mpsc::Sender<Vec<u8>>,
    rx: mpsc::Receiver<Vec<u8>>,
}

impl WsNodeConfig {
    /// A leaf-only node of the relay at `relay`, with the default [`Config`].
    ///
    /// ```
    /// let c = pando_genet::ws::WsNodeConfig::new("ws://r/", "t", 9);
    /// assert_eq!(c.seed, 9);
    /// ```
    #[must_use]
    pub fn new(relay: &str, token: &str, seed: u64) -> Self {
        Self {
            genet: Config::default(),
            relay: relay.to_owned(),
            token: token.to_owned(),
            listen: None,
            seed,
            handshake_timeout: Duration::from_secs(10),
            app_links: false,
            max_app_frame: DEFAULT_MAX_APP_FRAME,
            link_timeout: DEFAULT_LINK_TIMEOUT,
        }
    }
}

/// What a node shows of itself, updated after every event it handles.
///
/// ```
/// use pando_genet::ws::Status;
/// let s = Status::default();
/// assert_eq!(s.max_occupied, 0);
/// assert!(!s.root_registered);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// The core's identifier.
    pub id: Option<NodeId>,
    /// The core's state.
    pub state: State,
    /// Connected children.
    pub children: usize,
    /// Children and candidates (the core's [`Node::occupied`]).
    pub occupied: usize,
    /// The most children and candidates the core ever had at once.
    pub max_occupied: usize,
    /// The most child links (WebSocket connections, open or awaited) at once.
    pub max_child_links: usize,
    /// The node's own last [`Event::LeafNumber`].
    pub leaves: Option<u64>,
    /// The relay accepted this node as the root.
    pub root_registered: bool,
    /// Errors reported so far ([`Event::Error`]).
    pub errors: u64,
    /// The last error reported.
    pub last_error: Option<GenetError>,
    /// The task stopped (the relay connection was lost, or shutdown).
    pub stopped: bool,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            id: None,
            state: State::Idle,
            children: 0,
            occupied: 0,
            max_occupied: 0,
            max_child_links: 0,
            leaves: None,
            root_registered: false,
            errors: 0,
            last_error: None,
            stopped: false,
        }
    }
}

enum Command {
    BecomeRoot(String, oneshot::Sender<Result<(), RequestError>>),
    Join(oneshot::Sender<Result<(), RequestError>>),
    Leave,
    Shutdown,
}

enum Input {
    Relay(Result<Option<Frame>, String>),
    /// A child's connection, after its `PeerHello`.
    Accepted {
        child: NodeId,
        ticket: u64,
        conn: PeerConn,
    },
    /// The parent's connection, after its `PeerWelcome`.
    ParentOpened {
        serial: u64,
        conn: PeerConn,
    },
    /// A frame on a link.
    Frame {
        link: Link,
        serial: u64,
        frame: Frame,
    },
    /// A link ended (`None`: closed; `Some`: failed).
    Closed {
        link: Link,
        serial: u64,
        failure: Option<String>,
    },
}

#[derive(Debug)]
struct LinkState {
    serial: u64,
    ticket: u64,
    connecting: bool,
    writer: Option<Writer>,
    tasks: Vec<AbortHandle>,
    /// The application's channels, until the core says the link is
    /// connected.
    app: Option<PendingApp>,
    /// The [`AppLink::leaves`] of the link, once handed.
    leaves: Option<watch::Sender<u64>>,
}

impl Drop for LinkState {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A Genet node over WebSocket. Its task runs until [`WsNode::shutdown`]
/// or until the handle is dropped.
///
/// A relay, a root and one leaf on loopback:
///
/// ```
/// use std::time::Duration;
/// use pando_genet::ws::{Relay, RelayConfig, WsNode, WsNodeConfig};
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let relay = Relay::bind("127.0.0.1:0", RelayConfig::new("secret", "token")).await.unwrap();
/// let mut cfg = WsNodeConfig::new(relay.url(), "token", 1);
/// cfg.listen = Some("127.0.0.1:0".into());
/// let root = WsNode::start(cfg).await.unwrap();
/// root.become_root("secret").await.unwrap();
/// root.wait_for(|s| s.root_registered, Duration::from_secs(10), "root registered").await.unwrap();
///
/// let leaf = WsNode::start(WsNodeConfig::new(relay.url(), "token", 2)).await.unwrap();
/// leaf.join().await.unwrap();
/// leaf.wait_for(|s| s.parent().is_some(), Duration::from_secs(10), "joined").await.unwrap();
/// let s = root.wait_for(|s| s.children == 1, Duration::from_secs(10), "a child").await.unwrap();
/// assert_eq!(s.max_child_links, 1);
/// # }
/// ```
#[derive(Debug)]
pub struct WsNode {
    commands: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<Status>,
    events: broadcast::Sender<Event>,
    listen_url: Option<String>,
    links: Option<mpsc::UnboundedReceiver<AppLink>>,
    task: JoinHandle<()>,
}

impl Status {
    /// The parent, once connected.
    ///
    /// ```
    /// assert_eq!(pando_genet::ws::Status::default().parent(), None);
    /// ```
    #[must_use]
    pub fn parent(&self) -> Option<NodeId> {
        match self.state {
            State::Member { parent } => Some(parent),
            _ => None,
        }
    }
}

impl WsNode {
    /// Binds the listener (if any), connects to the relay and says hello,
    /// within the handshake timeout, then starts the node's task, over
    /// tokio's TCP ([`TcpNetwork`]). The node is idle: call
    /// [`WsNode::become_root`] or [`WsNode::join`].
    ///
    /// ```
    /// use pando_genet::ws::{WsError, WsNode, WsNodeConfig};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let e = WsNode::start(WsNodeConfig::new("ws://127.0.0.1:1/", "t", 1)).await.unwrap_err();
    /// assert!(matches!(e, WsError::Relay { .. }));
    /// # }
    /// ```
    pub async fn start(config: WsNodeConfig) -> Result<WsNode, WsError> {
        WsNode::start_with(config, TcpNetwork).await
    }

    /// [`WsNode::start`] over `net`: the listener for children
    /// ([`WsNodeConfig::listen`]) is bound on it, and the connections to
    /// the relay and to the parent are dialed on it. Children reach the
    /// node at `ws://` and its listener's
    /// [`local_addr`](StreamListener::local_addr). Timers are tokio's
    /// (a simulated network whose clock drives tokio's, as turmoil does,
    /// runs the node unchanged).
    ///
    /// ```
    /// use std::time::Duration;
    /// use pando_genet::ws::{Relay, RelayConfig, TcpNetwork, WsNode, WsNodeConfig};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let relay = Relay::bind_with("127.0.0.1:0", RelayConfig::new("s", "t"), TcpNetwork).await.unwrap();
    /// let mut cfg = WsNodeConfig::new(relay.url(), "t", 1);
    /// cfg.listen = Some("127.0.0.1:0".into());
    /// let root = WsNode::start_with(cfg, TcpNetwork).await.unwrap();
    /// assert!(root.listen_url().unwrap().starts_with("ws://127.0.0.1:"));
    /// root.become_root("s").await.unwrap();
    /// root.wait_for(|s| s.root_registered, Duration::from_secs(10), "root").await.unwrap();
    /// # }
    /// ```
    pub async fn start_with<N: Network>(mut config: WsNodeConfig, net: N) -> Result<WsNode, WsError> {
        let net = Arc::new(net);
        let listener = match &config.listen {
            Some(addr) => Some(listen(&*net, addr).await?),
            None => None,
        };
        let listen_url = listener.as_ref().map(|(_, a)| format!("ws://{a}/"));
        config.genet.accepts_children = listener.is_some();
        let node = Node::new(config.genet.clone(), config.seed)?;

        let relay_err = |reason: String| WsError::Relay {
            relay: config.relay.clone(),
            reason,
        };
        let deadline = config.handshake_timeout;
        let connect = connect_ws(&*net, &config.relay, ws_config());
        let ws = match tokio::time::timeout(deadline, connect).await {
            Err(_) => return Err(relay_err(format!("no connection within {deadline:?}"))),
            Ok(r) => r.map_err(relay_err)?,
        };
        let (relay, mut relay_stream) = split(ws);
        let _ = relay.try_send(Frame::Hello {
            version: GENET_VERSION,
            token: config.token.clone(),
        });
        match first_frame(&mut relay_stream, deadline, "Welcome")
            .await
            .map_err(relay_err)?
        {
            Frame::Welcome { .. } => {}
            Frame::Refused { reason } => return Err(relay_err(format!("refused: {reason}"))),
            other => return Err(relay_err(format!("expected Welcome, got {}", other.kind()))),
        }

        let (inbox_tx, inbox) = mpsc::channel(1024);
        let relay_reader = {
            let tx = inbox_tx.clone();
            tokio::spawn(async move {
                loop {
                    let f = next_frame(&mut relay_stream).await;
                    let end = !matches!(f, Ok(Some(_)));
                    if tx.send(Input::Relay(f)).await.is_err() || end {
                        return;
                    }
                }
            })
        };
        let max_app_frame = config.max_app_frame;
        let link_timeout = config.link_timeout;
        let accept_task = listener.map(|(l, _)| {
            let tx = inbox_tx.clone();
            tokio::spawn(accept_loop(l, tx, deadline, max_app_frame, link_timeout))
        });
        let (app_out, links) = if config.app_links {
            let (tx, rx) = mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(Status::default());
        let (events, _) = broadcast::channel(256);
        let driver = Driver {
            node,
            relay,
            bound: None,
            listen_url: listen_url.clone(),
            inbox_tx,
            links: HashMap::new(),
            next_serial: 0,
            status: Status::default(),
            status_tx,
            events: events.clone(),
            handshake: deadline,
            tickets: TicketSource::new(config.seed),
            app_out,
            max_app_frame,
            link_timeout,
            net,
        };
        let task = tokio::spawn(async move {
            driver.run(inbox, commands_rx).await;
            relay_reader.abort();
            if let Some(t) = accept_task {
                t.abort();
            }
        });
        Ok(WsNode {
            commands,
            status,
            events,
            listen_url,
            links,
            task,
        })
    }

    /// The application's duplexes over the direct links ([`AppLink`]), one
    /// sent as the core indicates each [`Event::ParentConnected`] or
    /// [`Event::ChildConnected`], in the order of those events. `Some`
    /// once if [`WsNodeConfig::app_links`] is set, `None` after (and
    /// without it). Links handed to a dropped receiver are dropped (their
    /// payloads with them); the links stay up.
    ///
    /// ```
    /// # use pando_genet::ws::{Relay, RelayConfig, WsNode, WsNodeConfig};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let relay = Relay::bind("127.0.0.1:0", RelayConfig::new("s", "t")).await.unwrap();
    /// let mut cfg = WsNodeConfig::new(relay.url(), "t", 1);
    /// cfg.app_links = true;
    /// let mut node = WsNode::start(cfg).await.unwrap();
    /// assert!(node.take_links().is_some());
    /// assert!(node.take_links().is_none());
    /// # }
    /// ```
    pub fn take_links(&mut self) -> Option<mpsc::UnboundedReceiver<AppLink>> {
        self.links.take()
    }

    /// Request: become the root, registering at the relay with `secret`;
    /// [`Status::root_registered`] says when the relay accepted it.
    ///
    /// See [`WsNode`] for an example.
    pub async fn become_root(&self, secret: &str) -> Result<(), WsError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::BecomeRoot(secret.to_owned(), tx))?;
        rx.await.map_err(|_| WsError::Stopped)?.map_err(WsError::Request)
    }

    /// Request: join the tree of the relay's root.
    ///
    /// See [`WsNode`] for an example.
    pub async fn join(&self) -> Result<(), WsError> {
        let (tx, rx) = oneshot::channel();
        self.command(Command::Join(tx))?;
        rx.await.map_err(|_| WsError::Stopped)?.map_err(WsError::Request)
    }

    /// Request: leave the tree, closing the parent's and children's links.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use pando_genet::{State, ws::{Relay, RelayConfig, WsNode, WsNodeConfig}};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let relay = Relay::bind("127.0.0.1:0", RelayConfig::new("s", "t")).await.unwrap();
    /// let node = WsNode::start(WsNodeConfig::new(relay.url(), "t", 1)).await.unwrap();
    /// node.join().await.unwrap();
    /// node.leave().unwrap();
    /// node.wait_for(|s| s.state == State::Idle, Duration::from_secs(5), "idle").await.unwrap();
    /// # }
    /// ```
    pub fn leave(&self) -> Result<(), WsError> {
        self.command(Command::Leave)
    }

    /// Leaves the tree and stops the task, waiting for it to end.
    ///
    /// ```
    /// # use pando_genet::ws::{Relay, RelayConfig, WsNode, WsNodeConfig};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let relay = Relay::bind("127.0.0.1:0", RelayConfig::new("s", "t")).await.unwrap();
    /// let node = WsNode::start(WsNodeConfig::new(relay.url(), "t", 1)).await.unwrap();
    /// node.shutdown().await;
    /// # }
    /// ```
    pub async fn shutdown(self) {
        let _ = self.commands.send(Command::Shutdown);
        let _ = self.task.await;
    }

    /// The node's status, updated as it goes.
    ///
    /// ```
    /// # use pando_genet::ws::{Relay, RelayConfig, WsNode, WsNodeConfig};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let relay = Relay::bind("127.0.0.1:0", RelayConfig::new("s", "t")).await.unwrap();
    /// let node = WsNode::start(WsNodeConfig::new(relay.url(), "t", 1)).await.unwrap();
    /// assert_eq!(node.status().borrow().children, 0);
    /// # }
    /// ```
    #[must_use]
    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// The core's indications from now on. A receiver that falls more
    /// than 256 events behind loses the oldest (`RecvError::Lagged`).
    ///
    /// ```
    /// # use pando_genet::ws::{Relay, RelayConfig, WsNode, WsNodeConfig};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let relay = Relay::bind("127.0.0.1:0", RelayConfig::new("s", "t")).await.unwrap();
    /// let node = WsNode::start(WsNodeConfig::new(relay.url(), "t", 1)).await.unwrap();
    /// let mut events = node.subscribe();
    /// node.join().await.unwrap();
    /// node.leave().unwrap();
    /// assert!(matches!(events.recv().await.unwrap(), pando_genet::Event::Left { .. }));
    /// # }
    /// ```
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// The address children connect to, if the node listens.
    ///
    /// ```
    /// # use pando_genet::ws::{Relay, RelayConfig, WsNode, WsNodeConfig};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// # let relay = Relay::bind("127.0.0.1:0", RelayConfig::new("s", "t")).await.unwrap();
    /// let node = WsNode::start(WsNodeConfig::new(relay.url(), "t", 1)).await.unwrap();
    /// assert_eq!(node.listen_url(), None);
    /// # }
    /// ```
    #[must_use]
    pub fn listen_url(&self) -> Option<&str> {
        self.listen_url.as_deref()
    }

    /// Waits until the status satisfies `pred`, for at most `deadline`;
    /// the error names `what` was awaited and shows the last status.
    ///
    /// See [`WsNode`] for an example.
    pub async fn wait_for(
        &self,
        mut pred: impl FnMut(&Status) -> bool,
        deadline: Duration,
        what: &str,
    ) -> Result<Status, WsError> {
        let mut rx = self.status.clone();
        // The watch's guard is a read lock: clone the status and let it go
        // before anything else takes the lock (a writer waiting in between
        // would block a second reader, and so itself).
        let waited = tokio::time::timeout(deadline, async {
            rx.wait_for(|s| pred(s) || s.stopped).await.map(|s| s.clone())
        })
        .await;
        match waited {
            Ok(Ok(s)) if !s.stopped || pred(&s) => Ok(s),
            Ok(Ok(s)) => Err(WsError::Timeout {
                what: what.to_owned(),
                after: deadline,
                status: Box::new(s),
            }),
            _ => Err(WsError::Timeout {
                what: what.to_owned(),
                after: deadline,
                status: Box::new(self.status.borrow().clone()),
            }),
        }
    }

    fn command(&self, c: Command) -> Result<(), WsError> {
        self.commands.send(c).map_err(|_| WsError::Stopped)
    }
}

/// Tickets for the offers: SplitMix64 seeded from the operating system's
/// random source and the node's seed.
#[derive(Debug)]
struct TicketSource(crate::id::SplitMix64);

impl TicketSource {
    fn new(seed: u64) -> Self {
        let mut bytes = [0u8; 8];
        // Without the system's randomness the tickets still differ per node.
        let _ = getrandom::fill(&mut bytes);
        Self(crate::id::SplitMix64::new(
            u64::from_le_bytes(bytes) ^ crate::id::mix64(seed),
        ))
    }
}

/// Accepts children's connections: the upgrade and their `PeerHello` on a
/// task of their own, within the deadline, then to the node's task.
async fn accept_loop<L: StreamListener>(
    mut listener: L,
    tx: mpsc::Sender<Input>,
    deadline: Duration,
    max_app_frame: usize,
    link_timeout: Duration,
) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let Ok(Ok(ws)) = tokio::time::timeout(
                deadline,
                tokio_tungstenite::accept_async_with_config(tcp, Some(peer_ws_config(max_app_frame))),
            )
            .await
            else {
                return;
            };
            let mut conn = split_peer(ws, max_app_frame, ping_interval(link_timeout));
            match first_frame(&mut conn.stream, deadline, "PeerHello").await {
                Ok(Frame::PeerHello {
                    version,
                    child,
                    ticket,
                }) if version == GENET_VERSION => {
                    let _ = tx.send(Input::Accepted { child, ticket, conn }).await;
                }
                Ok(Frame::PeerHello { version, .. }) => {
                    let reason =
                        format!("version {version} is not supported: this node speaks {GENET_VERSION}");
                    let _ = conn.writer.try_send(Frame::Refused { reason });
                }
                Ok(other) => {
                    let reason = format!("expected PeerHello, got {}", other.kind());
                    let _ = conn.writer.try_send(Frame::Refused { reason });
                }
                Err(_) => {}
            }
        });
    }
}

/// Reads a link's frames into the node's inbox until it ends: Genet's
/// frames to the node's task, [`Frame::App`] payloads straight to the
/// application (`app`, waiting for it to take them; dropped if it dropped
/// its receiver). An App frame on a node without application links
/// (`app` is `None`), or over `max_app_frame`, fails the link. So does the
/// writer's failure (`failed`).
fn spawn_reader<S>(
    mut stream: S,
    (link, serial): (Link, u64),
    tx: mpsc::Sender<Input>,
    (app, max_app_frame): (Option<mpsc::Sender<Vec<u8>>>, usize),
    mut failed: oneshot::Receiver<String>,
    link_timeout: Duration,
) -> AbortHandle
where
    S: futures::Stream<
            Item = Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>,
        > + Unpin
        + Send
        + 'static,
{
    tokio::spawn(async move {
        let closed = |failure| Input::Closed {
            link,
            serial,
            failure,
        };
        let mut writer_running = true;
        loop {
            let read = async {
                match next_frame_within(&mut stream, link_timeout).await {
                    Ok(Some(Frame::App { payload })) => match &app {
                        Some(_) if payload.len() > max_app_frame => Some(closed(Some(format!(
                            "an App frame of {} bytes, over max_app_frame ({max_app_frame} bytes)",
                            payload.len()
                        )))),
                        Some(app) => {
                            // Dropped if the application dropped its `rx`.
                            let _ = app.send(payload).await;
                            None
                        }
                        None => Some(closed(Some(format!(
                            "an App frame ({} bytes) to a node without application links (app_links is off)",
                            payload.len()
                        )))),
                    },
                    Ok(Some(frame)) => Some(Input::Frame { link, serial, frame }),
                    Ok(None) => Some(closed(None)),
                    Err(reason) => Some(closed(Some(reason))),
                }
            };
            let input = tokio::select! {
                biased;
                reason = &mut failed, if writer_running => match reason {
                    Ok(reason) => closed(Some(reason)),
                    // The writer stopped without failing: the link is
                    // being closed, the node drops this reader.
                    Err(_) => {
                        writer_running = false;
                        continue;
                    }
                },
                input = read => match input {
                    Some(input) => input,
                    None => continue,
                },
            };
            let end = matches!(input, Input::Closed { .. });
            if tx.send(input).await.is_err() || end {
                return;
            }
        }
    })
    .abort_handle()
}

struct Driver<N> {
    node: Node,
    relay: Writer,
    bound: Option<NodeId>,
    listen_url: Option<String>,
    inbox_tx: mpsc::Sender<Input>,
    links: HashMap<Link, LinkState>,
    next_serial: u64,
    status: Status,
    status_tx: watch::Sender<Status>,
    events: broadcast::Sender<Event>,
    handshake: Duration,
    tickets: TicketSource,
    /// Where the [`AppLink`]s go, with [`WsNodeConfig::app_links`].
    app_out: Option<mpsc::UnboundedSender<AppLink>>,
    max_app_frame: usize,
    link_timeout: Duration,
    /// The network the parent is dialed on.
    net: Arc<N>,
}

fn now() -> std::time::Instant {
    tokio::time::Instant::now().into_std()
}

impl<N: Network> Driver<N> {
    async fn run(mut self, mut inbox: mpsc::Receiver<Input>, mut commands: mpsc::UnboundedReceiver<Command>) {
        loop {
            self.flush();
            let timeout = self.node.poll_timeout().map(tokio::time::Instant::from_std);
            let sleep = async {
                match timeout {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                c = commands.recv() => match c {
                    Some(Command::BecomeRoot(secret, reply)) => {
                        let _ = reply.send(self.node.become_root(&secret, now()));
                    }
                    Some(Command::Join(reply)) => {
                        let _ = reply.send(self.node.join(now()));
                    }
                    Some(Command::Leave) => self.node.leave(now()),
                    Some(Command::Shutdown) | None => {
                        self.node.leave(now());
                        self.flush();
                        break;
                    }
                },
                input = inbox.recv() => match input {
                    Some(input) => {
                        if !self.input(input) {
                            self.node.leave(now());
                            self.flush();
                            break;
                        }
                    }
                    None => break,
                },
                () = sleep => self.node.handle_timeout(now()),
            }
        }
        self.links.clear();
        self.status.stopped = true;
        let s = self.status.clone();
        self.status_tx.send_replace(s);
    }

    /// Handles one input; `false` when the relay connection is gone.
    fn input(&mut self, input: Input) -> bool {
        match input {
            Input::Relay(Ok(Some(frame))) => self.relay_frame(frame),
            Input::Relay(Ok(None)) => {
                self.error(GenetError::Relay {
                    reason: "the relay closed the connection".into(),
                });
                return false;
            }
            Input::Relay(Err(reason)) => {
                self.error(GenetError::Relay { reason });
                return false;
            }
            Input::Accepted { child, ticket, conn } => {
                let link = Link::Child(child);
                let tx = self.inbox_tx.clone();
                let app_links = self.app_out.is_some();
                match self.links.get_mut(&link) {
                    Some(l) if l.writer.is_none() && l.ticket == ticket => {
                        let _ = conn.writer.try_send(Frame::PeerWelcome);
                        l.writer = Some(conn.writer);
                        let app = (open_app(l, conn.app, app_links), self.max_app_frame);
                        l.tasks.push(spawn_reader(
                            conn.stream,
                            (link, l.serial),
                            tx,
                            app,
                            conn.failed,
                            self.link_timeout,
                        ));
                        self.node.handle_opened(link, now());
                    }
                    _ => {
                        let _ = conn.writer.try_send(Frame::Refused {
                            reason: format!("no offer to {child} with this ticket"),
                        });
                    }
                }
            }
            Input::ParentOpened { serial, conn } => {
                let tx = self.inbox_tx.clone();
                let app_links = self.app_out.is_some();
                if let Some(l) = self.links.get_mut(&Link::Parent) {
                    if l.serial == serial && l.writer.is_none() {
                        l.connecting = false;
                        l.writer = Some(conn.writer);
                        let app = (open_app(l, conn.app, app_links), self.max_app_frame);
                        let link = (Link::Parent, serial);
                        l.tasks.push(spawn_reader(
                            conn.stream,
                            link,
                            tx,
                            app,
                            conn.failed,
                            self.link_timeout,
                        ));
                        self.node.handle_opened(Link::Parent, now());
                    }
                }
            }
            Input::Frame { link, serial, frame } => {
                if self.links.get(&link).is_some_and(|l| l.serial == serial) {
                    let from = match link {
                        Link::Parent => From::Parent,
                        Link::Child(id) => From::Child(id),
                    };
                    match frame {
                        Frame::Peer { message } => self.node.handle_message(from, message, now()),
                        other => self.error(GenetError::BadFrame {
                            from,
                            reason: format!("{} on a direct link", other.kind()),
                        }),
                    }
                }
            }
            Input::Closed {
                link,
                serial,
                failure,
            } => {
                if self.links.get(&link).is_some_and(|l| l.serial == serial) {
                    self.links.remove(&link);
                    self.node.handle_closed(link, failure, now());
                }
            }
        }
        true
    }

    fn relay_frame(&mut self, frame: Frame) {
        match frame {
            Frame::Deliver { message } => self.node.handle_message(From::Relay, message, now()),
            Frame::RootAccepted => self.status.root_registered = true,
            Frame::Refused { reason } => {
                if self.node.state() == State::Root && !self.status.root_registered {
                    self.node.handle_root_refused(&reason, now());
                } else {
                    self.error(GenetError::Relay {
                        reason: format!("refused: {reason}"),
                    });
                }
            }
            Frame::Undeliverable { to, kind } => {
                self.error(GenetError::Relay {
                    reason: format!("no {to} to deliver a {kind} to"),
                });
                if to == Dest::Root && self.node.state() == State::Joining {
                    self.links.remove(&Link::Parent);
                    self.node
                        .handle_closed(Link::Parent, Some("no root at the relay".into()), now());
                }
            }
            other => self.error(GenetError::BadFrame {
                from: From::Relay,
                reason: format!("{} from the relay", other.kind()),
            }),
        }
    }

    fn error(&mut self, e: GenetError) {
        self.publish(Event::Error(e));
    }

    /// Hands the application its duplex over `link`, now connected to
    /// `peer`. A link that is already gone is handed closed.
    fn hand_link(&mut self, link: Link, peer: NodeId) {
        let Some(out) = &self.app_out else { return };
        let initial = match link {
            Link::Parent => self.node.leaves(),
            Link::Child(_) => 1,
        };
        let (leaves_tx, leaves) = watch::channel(initial);
        let pending = self.links.get_mut(&link).and_then(|l| {
            let app = l.app.take()?;
            l.leaves = Some(leaves_tx);
            Some(app)
        });
        let PendingApp { tx, rx } = pending.unwrap_or_else(|| {
            let (tx, _) = mpsc::channel(1);
            let (_, rx) = mpsc::channel(1);
            PendingApp { tx, rx }
        });
        let _ = out.send(AppLink {
            link,
            peer,
            tx,
            rx,
            leaves,
        });
    }

    /// Updates the [`AppLink::leaves`] of `link`.
    fn set_leaves(&self, link: Link, n: u64) {
        if let Some(w) = self.links.get(&link).and_then(|l| l.leaves.as_ref()) {
            w.send_replace(n);
        }
    }

    fn publish(&mut self, e: Event) {
        match &e {
            Event::ParentConnected { id } => self.hand_link(Link::Parent, *id),
            Event::ChildConnected { id } => self.hand_link(Link::Child(*id), *id),
            Event::LeafNumber { id, n } if Some(*id) == self.node.id() => {
                self.status.leaves = Some(*n);
                self.set_leaves(Link::Parent, *n);
            }
            Event::LeafNumber { id, n } => self.set_leaves(Link::Child(*id), *n),
            Event::Error(err) => {
                self.status.errors += 1;
                self.status.last_error = Some(err.clone());
            }
            Event::Left { .. } => {
                self.status.root_registered = false;
                self.status.leaves = None;
            }
            _ => {}
        }
        let _ = self.events.send(e);
    }

    /// Carries out the core's actions and publishes its events, until it
    /// has nothing more; then publishes the status.
    fn flush(&mut self) {
        loop {
            if let Some(a) = self.node.poll_action() {
                self.act(a);
            } else if let Some(e) = self.node.poll_event() {
                self.publish(e);
            } else {
                break;
            }
        }
        let s = &mut self.status;
        s.id = self.node.id();
        s.state = self.node.state();
        s.children = self.node.children().count();
        s.occupied = self.node.occupied();
        s.max_occupied = s.max_occupied.max(s.occupied);
        let child_links = self.links.keys().filter(|l| matches!(l, Link::Child(_))).count();
        s.max_child_links = s.max_child_links.max(child_links);
        let s = s.clone();
        self.status_tx.send_if_modified(|old| {
            if *old == s {
                false
            } else {
                *old = s;
                true
            }
        });
    }

    fn send_relay(&mut self, frame: Frame) {
        // Replies to this node must find it: bind its current identifier
        // before it speaks.
        if let Some(id) = self.node.id() {
            if self.bound != Some(id)
                && !matches!(frame, Frame::RegisterRoot { .. })
                && self.relay.try_send(Frame::Bind { id }).is_err()
            {
                return self.relay_full(&frame);
            }
            self.bound = Some(id);
        }
        if self.relay.try_send(frame.clone()).is_err() {
            self.relay_full(&frame);
        }
    }

    /// The relay does not read what this node sends: the frame is dropped
    /// (the join it belongs to times out) and the loss reported.
    fn relay_full(&mut self, frame: &Frame) {
        self.error(GenetError::Relay {
            reason: format!(
                "dropped a {}: the relay is not reading ({WRITE_QUEUE} frames queued)",
                frame.kind()
            ),
        });
    }

    fn serial(&mut self) -> u64 {
        self.next_serial += 1;
        self.next_serial
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Send { to, message } => match to {
                To::Root => self.send_relay(Frame::Forward {
                    to: Dest::Root,
                    message,
                }),
                To::Node(id) => self.send_relay(Frame::Forward {
                    to: Dest::Node(id),
                    message,
                }),
                To::Parent | To::Child(_) => {
                    let link = match to {
                        To::Child(id) => Link::Child(id),
                        _ => Link::Parent,
                    };
                    // A link that just ended has its close on the way to the
                    // core: the message is dropped with it.
                    let full = self
                        .links
                        .get(&link)
                        .and_then(|l| l.writer.as_ref())
                        .is_some_and(|w| {
                            matches!(w.try_send(Frame::Peer { message }), Err(TrySendError::Full(_)))
                        });
                    // A peer that does not read its frames has failed.
                    if full {
                        self.links.remove(&link);
                        let reason = format!("the peer is not reading ({WRITE_QUEUE} frames queued)");
                        self.node.handle_closed(link, Some(reason), now());
                    }
                }
            },
            Action::Open(link) => {
                let serial = self.serial();
                let ticket = self.tickets.0.next_u64();
                self.links.insert(
                    link,
                    LinkState {
                        serial,
                        ticket,
                        connecting: false,
                        writer: None,
                        tasks: Vec::new(),
                        app: None,
                        leaves: None,
                    },
                );
                let signal = match (link, &self.listen_url) {
                    (Link::Parent, _) => WsSignal::Join,
                    (Link::Child(_), Some(url)) => WsSignal::Offer {
                        url: url.clone(),
                        ticket,
                    },
                    (Link::Child(_), None) => {
                        self.links.remove(&link);
                        let reason = "this node does not listen: it takes no children".into();
                        return self.node.handle_closed(link, Some(reason), now());
                    }
                };
                self.node
                    .handle_local_signal(link, Signal(signal.encode()), now());
            }
            Action::Signal { link, signal } => self.signal(link, &signal),
            Action::Close(link) => {
                self.links.remove(&link);
            }
            Action::RegisterRoot { secret } => {
                if let Some(id) = self.node.id() {
                    self.send_relay(Frame::RegisterRoot { secret, id });
                }
            }
        }
    }

    fn signal(&mut self, link: Link, signal: &Signal) {
        let from = match link {
            Link::Parent => From::Parent,
            Link::Child(id) => From::Child(id),
        };
        let decoded = match WsSignal::decode(&signal.0) {
            Ok(s) => s,
            Err(e) => {
                return self.error(GenetError::BadFrame {
                    from,
                    reason: format!("a signal that does not decode: {e}"),
                });
            }
        };
        match (link, decoded) {
            // The joiner's signal: the WebSocket needs nothing from it.
            (Link::Child(_), WsSignal::Join) => {}
            (Link::Parent, WsSignal::Offer { url, ticket }) => {
                let Some(me) = self.node.id() else { return };
                let Some(l) = self.links.get_mut(&Link::Parent) else {
                    return;
                };
                if l.connecting || l.writer.is_some() {
                    return;
                }
                l.connecting = true;
                let serial = l.serial;
                let tx = self.inbox_tx.clone();
                let deadline = self.handshake;
                let limits = (self.max_app_frame, self.link_timeout);
                let net = Arc::clone(&self.net);
                let task = tokio::spawn(async move {
                    let input = match connect_parent(&*net, &url, me, ticket, deadline, limits).await {
                        Ok(conn) => Input::ParentOpened { serial, conn },
                        Err(reason) => Input::Closed {
                            link: Link::Parent,
                            serial,
                            failure: Some(format!("{url}: {reason}")),
                        },
                    };
                    let _ = tx.send(input).await;
                });
                l.tasks.push(task.abort_handle());
            }
            (_, other) => self.error(GenetError::BadFrame {
                from,
                reason: format!("a signal of the wrong side: {other:?}"),
            }),
        }
    }
}

/// How often an idle direct link is pinged: a third of its timeout.
fn ping_interval(link_timeout: Duration) -> Duration {
    (link_timeout / 3).max(Duration::from_millis(1))
}

/// Opens a WebSocket connection to `url` (`ws://HOST:PORT/`) over `net`.
async fn connect_ws<N: Network>(
    net: &N,
    url: &str,
    config: tokio_tungstenite::tungstenite::protocol::WebSocketConfig,
) -> Result<tokio_tungstenite::WebSocketStream<N::Stream>, String> {
    let addr = address(url)?;
    let stream = net
        .dial(&addr)
        .await
        .map_err(|e| format!("cannot reach {addr}: {e}"))?;
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

/// The child's side of a direct link: connect, `PeerHello`, `PeerWelcome`.
async fn connect_parent<N: Network>(
    net: &N,
    url: &str,
    me: NodeId,
    ticket: u64,
    deadline: Duration,
    (max_app_frame, link_timeout): (usize, Duration),
) -> Result<PeerConn, String> {
    let config = peer_ws_config(max_app_frame);
    let ws = match tokio::time::timeout(deadline, connect_ws(net, url, config)).await {
        Err(_) => return Err(format!("no connection within {deadline:?}")),
        Ok(r) => r?,
    };
    let mut conn = split_peer(ws, max_app_frame, ping_interval(link_timeout));
    let _ = conn.writer.try_send(Frame::PeerHello {
        version: GENET_VERSION,
        child: me,
        ticket,
    });
    match first_frame(&mut conn.stream, deadline, "PeerWelcome").await? {
        Frame::PeerWelcome => Ok(conn),
        Frame::Refused { reason } => Err(format!("refused: {reason}")),
        other => Err(format!("expected PeerWelcome, got {}", other.kind())),
    }
}

/// Sets up the application's channels of a link that just opened: the
/// payloads to the peer go to the link's writer (`to_peer`), those from
/// the peer come from its reader, whose sender this returns. Without
/// application links, nothing: the writer's queue of payloads closes, and
/// the reader fails the link on an App frame.
fn open_app(
    l: &mut LinkState,
    to_peer: mpsc::Sender<Vec<u8>>,
    app_links: bool,
) -> Option<mpsc::Sender<Vec<u8>>> {
    if !app_links {
        return None;
    }
    let (from_peer, rx) = mpsc::channel(APP_QUEUE);
    l.app = Some(PendingApp { tx: to_peer, rx });
    Some(from_peer)
}
