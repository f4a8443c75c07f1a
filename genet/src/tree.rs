//! The scalable DistributedMap (seed 000, Abstraction 5, Algorithms 20-21)
//! over real Genet nodes (the `map` feature): pando-distributed-map's
//! protocol runs, unchanged, over each tree link's duplex
//! ([`AppLink`]), and every node runs a
//! [`DistributedMap`], whose StreamLender lends to the node's children.
//!
//! ```text
//!  root: input ─▶ DistributedMap ─▶ output            (plain workers and browser tabs too)
//!                     │ one sub-stream per child, through a Throttle:
//!                     └─ Limiter(batch_size × the child's leaves) ⇄ tree link
//!  node: parent link ─▶ Worker session ─▶ DistributedMap ─▶ results back up the link
//!                                           ├─ local processing (paused while it has children)
//!                                           └─ one sub-stream per child, as at the root
//! ```
//!
//! - **Leaves compute.** A node processes values locally while it has no
//!   child. Its first child pauses local processing; the values it is
//!   processing finish. When its last child leaves, it resumes. (The
//!   seeds' `n = 0` test never fires, since a childless node reports one
//!   leaf: we follow [`Coordinator`], which resumes on the last child's
//!   departure.)
//! - **Flow.** Each child is lent to through a Limiter of limit
//!   `batch_size × the leaves the child last reported` (1 until its first
//!   report), updated on each report.
//! - **Failures.** A child that leaves or fails holds values that the
//!   node's lender lends again, to its other children or to local
//!   processing. An intermediate node that fails is a child that failed
//!   for its parent: the parent lends its values again, in another
//!   subtree. A node whose parent fails leaves its tree (Genet closes its
//!   subtree), and the values it held are lent again above.
//! - **Failed values.** A value whose function fails at a leaf is retried
//!   within that leaf's parent's subtree, up to the map's retries (5). A
//!   value that fails that often there makes the node give up its parent
//!   session with the reason: the parent lends everything the node held
//!   again, charging each value one failure, so that the root's own retry
//!   cap names the culprit in the end.
//! - **The root's own workers** (a DistributedMap's local workers, plain
//!   `pando work` workers and browser tabs connected to the master) are not
//!   Genet children: they take no child slot and keep working while the
//!   root has children.
//!
//! A root, a relay and two volunteers on loopback, one of which ends up
//! the other's child (`children_limit` 1):
//!
//! ```
//! use std::num::NonZeroUsize;
//! use std::time::Duration;
//! use pando_distributed_map::{DistributedMap, MapConfig};
//! use pando_genet::Config;
//! use pando_genet::tree::{self, TreeConfig, Volunteer};
//! use pando_genet::ws::{Relay, RelayConfig, WsNode, WsNodeConfig};
//! use pando_pull_stream::{collect, count, pull};
//!
//! # #[tokio::main] async fn main() {
//! let map = DistributedMap::<u64, u64, ()>::new(MapConfig { local_workers: Some(0), ..MapConfig::default() });
//! let token = map.config().token.clone();
//! let relay = Relay::bind("127.0.0.1:0", RelayConfig::new("secret", &token)).await.unwrap();
//! let node_config = |seed| {
//!     let mut c = WsNodeConfig::new(relay.url(), &token, seed);
//!     c.listen = Some("127.0.0.1:0".into());
//!     c.app_links = true;
//!     c.genet = Config { children_limit: 1, ..Config::default() };
//!     c
//! };
//! let mut root = WsNode::start(node_config(1)).await.unwrap();
//! tree::lend_to_children(&map, root.take_links().unwrap(), NonZeroUsize::new(2).unwrap());
//! root.become_root("secret").await.unwrap();
//! for seed in [2, 3] {
//!     let node = WsNode::start(node_config(seed)).await.unwrap();
//!     let mut volunteer = Volunteer::new(node, &token, TreeConfig::new(format!("v{seed}"))).unwrap();
//!     tokio::spawn(async move {
//!         let session = volunteer.next_parent(Duration::from_secs(30)).await?;
//!         volunteer.serve(session, |x: u64| async move { Ok::<_, String>(x * x) }).await?;
//!         volunteer.shutdown().await;
//!         Ok::<_, tree::TreeError>(())
//!     });
//! }
//! let squares = pull!(count(100), map.clone(), collect::<Vec<_>>()).await.unwrap();
//! assert_eq!(squares, (1..=100).map(|x| x * x).collect::<Vec<u64>>());
//! # }
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt::Display;
use std::future::Future;
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use async_trait::async_trait;
use futures::{Sink, StreamExt};
use pando_distributed_map::codec::Codec;
use pando_distributed_map::frame::Frame;
use pando_distributed_map::transport::{
    ChannelListener, Connection, Connector, FrameSink, Incoming, Listener, TransportError, memory,
};
use pando_distributed_map::{
    DistributedMap, JoinError, MapConfig, Session, Throttle, Worker, WorkerSummary, join_url,
};
use pando_pull_stream::{for_each, from_stream, pull};
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot, watch};

use crate::coordinator::{Coordinator, Step};
use crate::ws::AppLink;
use crate::ws::{WsError, WsNode};
use crate::{Event, Link, NodeId, State};

/// The options of a volunteer's map.
///
/// ```
/// let c = pando_genet::tree::TreeConfig::new("laptop");
/// assert_eq!(c.batch_size.get(), 1);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TreeConfig {
    /// The volunteer's name, in its parent's logs (with its Genet id).
    pub name: String,
    /// Values lent per leaf: a child's Limiter lets `batch_size × its
    /// leaves` values be in process (the seeds' `BatchSize`). Default 1.
    pub batch_size: NonZeroUsize,
    /// Values processed at once locally, while the node has no child.
    /// Default 1.
    pub jobs: NonZeroUsize,
    /// How long a child's or the parent's map handshake may take. Default 10 s.
    pub handshake_timeout: Duration,
}

impl TreeConfig {
    /// The defaults, with this name.
    ///
    /// See [`TreeConfig`] for an example.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            batch_size: NonZeroUsize::MIN,
            jobs: NonZeroUsize::MIN,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a volunteer's session ended, or could not start.
///
/// ```
/// use std::time::Duration;
/// let e = pando_genet::tree::TreeError::NoParent(Duration::from_secs(3));
/// assert_eq!(e.to_string(), "no parent link within 3s");
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TreeError {
    /// The node got no parent link in time.
    #[error("no parent link within {0:?}")]
    NoParent(Duration),
    /// The node stopped: it gives no more links.
    #[error("the node stopped")]
    Stopped,
    /// The node was started without
    /// [`app_links`](crate::ws::WsNodeConfig::app_links).
    #[error("the node gives no links: start it with app_links")]
    NoLinks,
    /// The node could not join its tree.
    #[error("cannot join the tree: {0}")]
    Join(String),
    /// The map's session with the parent failed or could not start.
    #[error("parent {parent}: {source}")]
    Parent {
        /// The parent.
        parent: NodeId,
        /// What happened.
        source: JoinError,
    },
    /// The node's own map gave up: a value failed too often in its subtree.
    #[error("this node's subtree gave up: {0}")]
    Subtree(String),
}

/// A child's map connection reports its end when dropped.
struct Gone {
    id: NodeId,
    tx: mpsc::UnboundedSender<Control>,
}

impl Drop for Gone {
    fn drop(&mut self) {
        let _ = self.tx.send(Control::Gone(self.id));
    }
}

enum Control {
    Leaves(NodeId, u64),
    Gone(NodeId),
}

/// The children of one node, driven by the [`Coordinator`]: each gets a
/// map connection over its link, through a [`Throttle`].
struct Children {
    coordinator: Coordinator,
    throttles: HashMap<NodeId, Throttle>,
    incoming: mpsc::UnboundedSender<Incoming>,
    control: mpsc::UnboundedSender<Control>,
    /// Local processing (a volunteer's); the root has none here.
    local: Option<Throttle>,
    /// The link of a child being lent to, until its Lend step.
    arriving: Option<AppLink>,
}

impl Children {
    fn new(
        batch_size: NonZeroUsize,
        incoming: mpsc::UnboundedSender<Incoming>,
        control: mpsc::UnboundedSender<Control>,
        local: Option<Throttle>,
    ) -> Self {
        let mut coordinator = Coordinator::new(batch_size.get()).expect("batch_size is nonzero");
        // The node processes locally from the start (Algorithm 20, line 9;
        // Algorithm 21, when the parent connects).
        let _ = coordinator.start();
        Self {
            coordinator,
            throttles: HashMap::new(),
            incoming,
            control,
            local,
            arriving: None,
        }
    }

    fn on_link(&mut self, link: AppLink) {
        let Link::Child(id) = link.link else {
            tracing::warn!(
                "genet: a second parent link ({}) while one is served; ignored",
                link.peer
            );
            return;
        };
        let mut leaves = link.leaves.clone();
        let control = self.control.clone();
        tokio::spawn(async move {
            loop {
                let n = *leaves.borrow_and_update();
                if control.send(Control::Leaves(id, n)).is_err() || leaves.changed().await.is_err() {
                    return;
                }
            }
        });
        self.arriving = Some(link);
        let steps = self.coordinator.on_event(&Event::ChildConnected { id });
        self.apply(steps);
        self.arriving = None;
    }

    fn on_control(&mut self, control: Control) {
        let steps = match control {
            Control::Leaves(id, n) => self.coordinator.on_event(&Event::LeafNumber { id, n }),
            Control::Gone(id) => self.coordinator.on_event(&Event::ChildDisconnected { id }),
        };
        self.apply(steps);
    }

    fn apply(&mut self, steps: Vec<Step>) {
        for step in steps {
            match step {
                Step::PauseLocal => {
                    if let Some(local) = &self.local {
                        tracing::info!("genet: a child joined; local processing paused");
                        local.pause();
                    }
                }
                Step::ResumeLocal => {
                    if let Some(local) = &self.local {
                        tracing::info!("genet: the last child left; local processing resumed");
                        local.resume();
                    }
                }
                Step::StopLocal => {
                    if let Some(local) = &self.local {
                        local.pause();
                    }
                }
                Step::Lend { child, limit } => {
                    let Some(link) = self.arriving.take() else {
                        continue;
                    };
                    let throttle = Throttle::new();
                    throttle.update_limit(NonZeroUsize::new(limit).unwrap_or(NonZeroUsize::MIN));
                    let mut connection =
                        Connection::from_channels(format!("genet child {child}"), link.tx, link.rx);
                    let gone = Gone {
                        id: child,
                        tx: self.control.clone(),
                    };
                    connection.stream = Box::pin(connection.stream.map(move |frame| {
                        let _ = &gone;
                        frame
                    }));
                    let _ = self
                        .incoming
                        .send(Incoming::ready(connection).with_throttle(throttle.clone()));
                    self.throttles.insert(child, throttle);
                }
                Step::UpdateLimit { child, limit } => {
                    if let (Some(t), Some(n)) = (self.throttles.get(&child), NonZeroUsize::new(limit)) {
                        t.update_limit(n);
                    }
                }
                Step::Reclaim { child } => {
                    // Its connection ended (or is stale): the map lends its
                    // values again on its own.
                    self.throttles.remove(&child);
                }
            }
        }
    }
}

/// Algorithm 20, the master's side: lends `map`'s values to the tree's
/// children. Each child link becomes one of the map's connections, through
/// a Limiter of limit `batch_size × the leaves the child reports`. Runs
/// until the node gives no more links.
///
/// See the [module](self) for an example.
pub fn lend_to_children<In, Out, E>(
    map: &DistributedMap<In, Out, E>,
    mut links: mpsc::UnboundedReceiver<AppLink>,
    batch_size: NonZeroUsize,
) -> tokio::task::JoinHandle<()>
where
    In: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    Out: Serialize + DeserializeOwned + Send + 'static,
    E: Clone + Send + 'static,
{
    let (incoming, accepted) = mpsc::unbounded_channel();
    map.serve(ChannelListener::new("genet://children", accepted));
    tokio::spawn(async move {
        let (control_tx, mut control) = mpsc::unbounded_channel();
        let mut children = Children::new(batch_size, incoming, control_tx, None);
        loop {
            tokio::select! {
                link = links.recv() => match link {
                    Some(link) => children.on_link(link),
                    None => return,
                },
                Some(c) = control.recv() => children.on_control(c),
            }
        }
    })
}

/// The connector of one link: gives its connection once.
struct LinkConnector(Mutex<Option<Connection>>);

#[async_trait]
impl Connector for LinkConnector {
    async fn connect(&self, url: &str) -> Result<Connection, TransportError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| TransportError::Closed {
                peer: url.to_string(),
            })
    }
}

/// A volunteer's side (Algorithm 21): a node whose parent link carries
/// its parent's map, as a worker of it; it lends what it gets to its own
/// [`DistributedMap`], which processes locally while the node has no child
/// and lends to its children otherwise.
///
/// See the [module](self) for an example.
#[derive(Debug)]
pub struct Volunteer {
    node: WsNode,
    links: mpsc::UnboundedReceiver<AppLink>,
    token: String,
    config: TreeConfig,
    /// The parent of the session from [`Volunteer::next_parent`].
    parent: Option<NodeId>,
    /// The end of that session.
    end: End,
    /// The parent of the last session, if it ended well.
    finished: Option<NodeId>,
    /// A parent link that came while the previous session was served.
    pending_parent: Option<AppLink>,
}

/// The end of a session with the parent: the parent's `Done` is seen
/// coming in, and this node's own `Done` going up waits for its subtree.
#[derive(Debug)]
struct End {
    parent_done: watch::Receiver<bool>,
    subtree_done: watch::Sender<bool>,
}

impl End {
    fn new() -> Self {
        Self {
            parent_done: watch::channel(false).1,
            subtree_done: watch::channel(false).0,
        }
    }

    /// Watches `connection` for the ends: a fresh pair for each session.
    fn watch(&mut self, connection: Connection) -> Connection {
        let done = Codec::Postcard.encode(&Frame::Done);
        let (parent_tx, parent_rx) = watch::channel(false);
        let (subtree_tx, subtree_rx) = watch::channel(false);
        self.parent_done = parent_rx;
        self.subtree_done = subtree_tx;
        let Connection { peer, sink, stream } = connection;
        let seen = done.clone();
        let stream = stream.inspect(move |frame| {
            if matches!(frame, Ok(f) if *f == seen) {
                let _ = parent_tx.send(true);
            }
        });
        let mut subtree = subtree_rx;
        let release = Box::pin(async move {
            // Released when the subtree is done, or when the session is
            // over (the sender dropped).
            let _ = subtree.wait_for(|d| *d).await;
        });
        Connection {
            peer,
            sink: Box::pin(HoldDone {
                inner: sink,
                done,
                held: None,
                release,
            }),
            stream: Box::pin(stream),
        }
    }
}

/// A sink that holds this node's `Done` until its subtree is done.
struct HoldDone {
    inner: FrameSink,
    done: Vec<u8>,
    held: Option<Vec<u8>>,
    release: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl HoldDone {
    fn drive(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        if self.held.is_some() {
            ready!(self.release.as_mut().poll(cx));
            ready!(self.inner.as_mut().poll_ready(cx))?;
            let done = self.held.take().expect("held");
            self.inner.as_mut().start_send(done)?;
        }
        Poll::Ready(Ok(()))
    }
}

impl Sink<Vec<u8>> for HoldDone {
    type Error = TransportError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        ready!(self.drive(cx))?;
        self.inner.as_mut().poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, frame: Vec<u8>) -> Result<(), TransportError> {
        if frame == self.done {
            self.held = Some(frame);
            Ok(())
        } else {
            self.inner.as_mut().start_send(frame)
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        ready!(self.drive(cx))?;
        self.inner.as_mut().poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TransportError>> {
        ready!(self.drive(cx))?;
        self.inner.as_mut().poll_close(cx)
    }
}

impl Volunteer {
    /// A volunteer on `node`, which must have been started with
    /// [`WsNodeConfig::app_links`](crate::ws::WsNodeConfig::app_links), with
    /// the tree's join token. It joins the tree at
    /// [`next_parent`](Volunteer::next_parent).
    ///
    /// ```
    /// use pando_genet::tree::{TreeConfig, TreeError, Volunteer};
    /// use pando_genet::ws::{Relay, RelayConfig, WsNode, WsNodeConfig};
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let relay = Relay::bind("127.0.0.1:0", RelayConfig::new("s", "t")).await.unwrap();
    /// let node = WsNode::start(WsNodeConfig::new(relay.url(), "t", 1)).await.unwrap();
    /// // Without app_links, the node gives no duplex to run the map over.
    /// let e = Volunteer::new(node, "t", TreeConfig::new("v")).unwrap_err();
    /// assert!(matches!(e, TreeError::NoLinks));
    /// # }
    /// ```
    pub fn new(mut node: WsNode, token: &str, config: TreeConfig) -> Result<Self, TreeError> {
        let links = node.take_links().ok_or(TreeError::NoLinks)?;
        Ok(Self {
            node,
            links,
            token: token.to_string(),
            config,
            parent: None,
            end: End::new(),
            finished: None,
            pending_parent: None,
        })
    }

    /// The node.
    ///
    /// See the [module](self) for an example.
    #[must_use]
    pub fn node(&self) -> &WsNode {
        &self.node
    }

    /// Stops the node: it leaves its tree. After a session that ended well,
    /// it first lets the parent close the link (it does once it has this
    /// node's `Done` and has finished), up to the handshake timeout: this
    /// node's `Done` may still be on its way up.
    ///
    /// See the [module](self) for an example.
    pub async fn shutdown(self) {
        if let Some(parent) = self.finished {
            let mut status = self.node.status();
            let gone = async {
                let _ = status.wait_for(|s| s.parent() != Some(parent) || s.stopped).await;
            };
            let _ = tokio::time::timeout(self.config.handshake_timeout, gone).await;
        }
        let stopping = self.node.shutdown();
        if tokio::time::timeout(self.config.handshake_timeout, stopping)
            .await
            .is_err()
        {
            tracing::warn!(
                "genet: the node's task did not stop within {:?}",
                self.config.handshake_timeout
            );
        }
    }

    /// Joins the tree if the node is idle (not yet joined, or after it
    /// left), waits up to `within` for its parent link, and joins the
    /// parent's map over it: the [`Session`] says what to run
    /// ([`Session::command`], [`Session::value_timeout`]). A node that
    /// re-joins on its own after losing its parent
    /// ([`Config::rejoin`](crate::Config::rejoin)) is waited for. Child
    /// links that come first (of a subtree that is going away) are dropped.
    ///
    /// See the [module](self) for an example.
    pub async fn next_parent(&mut self, within: Duration) -> Result<Session, TreeError> {
        let deadline = tokio::time::Instant::now() + within;
        self.finished = None;
        let mut status = self.node.status();
        let link = loop {
            if let Some(link) = self.pending_parent.take() {
                break link;
            }
            // Idle (not joined yet, or after leaving): join. A node that
            // re-joins on its own is waited for.
            let idle = status.borrow_and_update().state == State::Idle;
            if idle {
                self.node.join().await.map_err(|e| match e {
                    WsError::Stopped => TreeError::Stopped,
                    e => TreeError::Join(e.to_string()),
                })?;
            }
            tokio::select! {
                link = self.links.recv() => match link {
                    None => return Err(TreeError::Stopped),
                    Some(link) if link.link == Link::Parent => break link,
                    Some(_) => {}
                },
                changed = status.changed() => {
                    if changed.is_err() {
                        return Err(TreeError::Stopped);
                    }
                }
                () = tokio::time::sleep_until(deadline) => return Err(TreeError::NoParent(within)),
            }
        };
        let parent = link.peer;
        self.parent = Some(parent);
        let connection = Connection::from_channels(format!("genet parent {parent}"), link.tx, link.rx);
        let connection = self.end.watch(connection);
        let connector = LinkConnector(Mutex::new(Some(connection)));
        let url = join_url("genet://parent", &self.token);
        let session = Worker::new(&self.config.name)
            .handshake_timeout(self.config.handshake_timeout)
            .connect_with(&connector, &url)
            .await;
        session.map_err(|source| {
            // The link is of no use without the map: leave, so that the tree heals.
            let _ = self.node.leave();
            TreeError::Parent { parent, source }
        })
    }

    /// Serves the parent's `session` until the parent says it is done (then
    /// the node's own map finishes, and its children with it) or the link
    /// fails. `f` is applied to the values processed locally. Call
    /// [`shutdown`](Volunteer::shutdown) after it, so that its `Done`
    /// reaches the parent. On an error
    /// the node leaves its tree (its subtree goes with it), so that its
    /// values are lent again above it; [`next_parent`](Volunteer::next_parent)
    /// joins again.
    ///
    /// See the [module](self) for an example.
    pub async fn serve<In, Out, F, Fut, Err>(
        &mut self,
        session: Session,
        f: F,
    ) -> Result<WorkerSummary, TreeError>
    where
        In: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        Out: Serialize + DeserializeOwned + Send + 'static,
        F: Fn(In) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Out, Err>> + Send + 'static,
        Err: Display + Send + 'static,
    {
        let parent = self.parent.unwrap_or(NodeId(0));
        let cfg = &self.config;
        let map = DistributedMap::<In, Out, std::convert::Infallible>::try_new(MapConfig {
            token: self.token.clone(),
            batch_size: cfg.batch_size,
            value_timeout: session.value_timeout(),
            command: session.command().to_vec(),
            command_mode: session.command_mode(),
            local_workers: Some(0),
            ..MapConfig::default()
        })
        .map_err(|e| TreeError::Subtree(e.to_string()))?;
        let (incoming, accepted) = mpsc::unbounded_channel();
        map.serve(ChannelListener::new("genet://children", accepted));

        // Local processing: one worker of the node's map, over the
        // in-process transport, through a throttle the Coordinator pauses.
        let local = Throttle::new();
        let (mut listener, connector) = memory::endpoint("local");
        let url = join_url("memory://local", &self.token);
        let worker = Worker::new(format!("{} (local)", cfg.name)).jobs(cfg.jobs.get());
        let local_task = tokio::spawn(async move { worker.run_with(&connector, &url, f).await });
        match listener.accept().await {
            Ok(i) => {
                let _ = incoming.send(i.with_throttle(local.clone()));
            }
            Err(e) => return Err(TreeError::Subtree(e.to_string())),
        }

        // The parent's values go into the node's map, in order; its results
        // come out in the same order and answer them.
        let (values, mut input) = mpsc::unbounded_channel::<In>();
        // Dropped when the parent says it is done: the node's input ends.
        let values = Arc::new(Mutex::new(Some(values)));
        let waiting: Waiting<Out> = Arc::default();
        let pipeline = {
            let waiting = waiting.clone();
            let answer = move |out: Out| {
                if let Some(tx) = lock(&waiting).pop_front() {
                    let _ = tx.send(Ok(out));
                }
            };
            let input = from_stream::<_, std::convert::Infallible>(futures::stream::poll_fn(move |cx| {
                input.poll_recv(cx)
            }));
            pull!(input, map.clone(), for_each(answer))
        };
        let mut pipeline = tokio::spawn(pipeline);
        // If this future is dropped (a signal, a caller's timeout), the
        // node's local work and map go with it.
        let _tasks = AbortOnDrop(vec![local_task.abort_handle(), pipeline.abort_handle()]);
        let forward = {
            let waiting = waiting.clone();
            let values = values.clone();
            move |x: In| {
                let (tx, rx) = oneshot::channel();
                {
                    // One lock for both: the queue and the input stay in step.
                    let mut w = lock(&waiting);
                    w.push_back(tx);
                    if let Some(values) = &*lock(&values) {
                        let _ = values.send(x);
                    }
                }
                async move {
                    match rx.await {
                        Ok(r) => r,
                        Err(_) => Err("this node's map ended".to_string()),
                    }
                }
            }
        };
        // The parent's Limiter bounds what this node holds: take all of it.
        let session = session.jobs(usize::MAX).own_deadlines();
        let mut served = Box::pin(session.run(forward));

        let (control_tx, mut control) = mpsc::unbounded_channel();
        let mut children = Children::new(cfg.batch_size, incoming, control_tx, Some(local));
        let mut links_open = true;
        let mut parent_done = false;
        let mut map_done = false;
        let grace = cfg.handshake_timeout;
        let result = loop {
            tokio::select! {
                r = &mut served => break r.map_err(|source| TreeError::Parent { parent, source }),
                link = self.links.recv(), if links_open => match link {
                    Some(link) if link.link == Link::Parent => {
                        // Genet already re-joined, before this session saw
                        // its link go: the next session's.
                        self.pending_parent = Some(link);
                    }
                    Some(link) => children.on_link(link),
                    // The node stopped; its parent link goes with it.
                    None => links_open = false,
                },
                Some(c) = control.recv() => children.on_control(c),
                () = async { let _ = self.end.parent_done.wait_for(|d| *d).await; }, if !parent_done => {
                    // The parent sent its last value: the node's input ends.
                    parent_done = true;
                    lock(&values).take();
                }
                r = &mut pipeline, if !map_done => {
                    map_done = true;
                    match r {
                        Ok(Ok(())) if parent_done => {
                            // Every value answered: the children hear the
                            // end before this node says its own `Done`
                            // upward (held until then), so that the parent
                            // going away does not cut them short.
                            if tokio::time::timeout(grace + grace, map.finish(grace)).await.is_err() {
                                tracing::warn!("genet: this node's children did not finish within {grace:?}");
                            }
                            let _ = self.end.subtree_done.send(true);
                        }
                        r => {
                            // The node's map ended before its parent did: a
                            // value failed too often in this subtree. The
                            // values waiting stay unanswered: the node
                            // leaves, and its parent lends them again
                            // (charging each, so that the culprit, lent
                            // alone, is named in the end).
                            let reason = match r {
                                Ok(Err(e)) => e.to_string(),
                                Ok(Ok(())) => "the node's map ended".to_string(),
                                Err(e) => format!("the node's map panicked: {e}"),
                            };
                            break Err(TreeError::Subtree(reason));
                        }
                    }
                }
            }
        };
        drop(served);
        local_task.abort();
        pipeline.abort();
        if result.is_err() {
            // The map failed while the tree link may still be up: leave, so
            // that the tree heals and the parent lends the values again. A
            // node that already lost its parent is left alone: Genet
            // re-joins it on its own if it is set to.
            let still_below = self.node.status().borrow().parent() == Some(parent);
            if still_below {
                let _ = self.node.leave();
            }
        } else {
            self.finished = Some(parent);
        }
        result
    }
}

/// Aborts its tasks when dropped.
struct AbortOnDrop(Vec<tokio::task::AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// The answers awaited from the node's map, in input order.
type Waiting<Out> = Arc<Mutex<VecDeque<oneshot::Sender<Result<Out, String>>>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
