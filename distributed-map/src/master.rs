//! [`DistributedMap`]: the master (seed 000, Algorithm 14).

use std::future::Future;
use std::marker::PhantomData;
use std::num::{NonZeroU64, NonZeroUsize};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pando_lend_stream::{LenderOutput, PoisonPolicy, StreamLender};
use pando_limiter::limit;
use pando_pull_stream::{Connect, Duplex, Source, pull};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::Notify;

use crate::connection::{FromWorker, RejectFailures, ToWorker};
use crate::error::WorkerError;
use crate::frame::{DEFAULT_MAX_FRAME, Frame, PROTOCOL_VERSION};
use crate::link::Link;
use crate::stats::{MapStats, Registry, WorkerStats};
use crate::transport::{Connection, Listener, memory};
use crate::worker::Worker;

/// How a [`DistributedMap`] runs. Build it with [`MapConfig::default`] and
/// change the fields you need.
///
/// ```
/// use std::num::NonZeroUsize;
/// use pando_distributed_map::MapConfig;
///
/// let config = MapConfig { batch_size: NonZeroUsize::new(4).unwrap(), ..MapConfig::default() };
/// assert_eq!(config.token.len(), 32); // a fresh random join token
/// ```
#[derive(Clone, Debug)]
pub struct MapConfig {
    /// The most values a worker holds at once (the Limiter's limit; seed 000
    /// §3.4.3): larger batches hide transmission latency. Default 2.
    pub batch_size: NonZeroUsize,
    /// How often each side sends a heartbeat when idle. Default 1 s.
    pub heartbeat: Duration,
    /// How long without hearing from a worker before it is considered dead
    /// and its values are lent again. Default 10 s.
    pub heartbeat_timeout: Duration,
    /// The join token, part of the join URL; workers without it are rejected
    /// before any value is sent. Default: 128 random bits, in hex.
    pub token: String,
    /// How many times a value may fail (its worker died holding it, or the
    /// function failed on it) before it is poisoned. Default 5; `None`
    /// retries forever.
    pub max_retries: Option<u32>,
    /// What to do with a poisoned value: end the map with an error naming
    /// it (the default), or skip it.
    pub poison: PoisonPolicy,
    /// Output in input order (the default) or as results arrive.
    pub ordered: bool,
    /// The largest frame accepted. Default 16 MiB.
    pub max_frame: usize,
    /// The command the master's workers run, shown to volunteers (`pando work`).
    pub command: Vec<String>,
    /// At most this many values read and not yet output (bounded memory
    /// with a slow consumer). Default 65 536.
    pub read_ahead: Option<NonZeroU64>,
    /// Local workers started by [`DistributedMap::with_function`]: `None`
    /// (the default) is one per core; `Some(0)` turns local processing off.
    pub local_workers: Option<usize>,
    /// With [`DistributedMap::with_function`], start the local workers only
    /// once the first remote worker has joined.
    pub start_idle: bool,
}

impl Default for MapConfig {
    fn default() -> Self {
        MapConfig {
            batch_size: NonZeroUsize::new(2).expect("nonzero"),
            heartbeat: Duration::from_secs(1),
            heartbeat_timeout: Duration::from_secs(10),
            token: generate_token(),
            max_retries: Some(5),
            poison: PoisonPolicy::Fail,
            ordered: true,
            max_frame: DEFAULT_MAX_FRAME,
            command: Vec::new(),
            read_ahead: NonZeroU64::new(65_536),
            local_workers: None,
            start_idle: false,
        }
    }
}

/// A fresh join token: 128 bits from the operating system's random source, in hex.
///
/// ```
/// let a = pando_distributed_map::generate_token();
/// assert_eq!(a.len(), 32);
/// assert_ne!(a, pando_distributed_map::generate_token());
/// ```
pub fn generate_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The join URL for a listener URL and a token: `URL?token=TOKEN`.
///
/// ```
/// assert_eq!(pando_distributed_map::join_url("ws://127.0.0.1:9000/", "ab"), "ws://127.0.0.1:9000/?token=ab");
/// ```
pub fn join_url(listener_url: &str, token: &str) -> String {
    format!("{listener_url}?token={token}")
}

/// Splits a join URL into the transport URL and the token (empty if none).
///
/// ```
/// assert_eq!(pando_distributed_map::split_join_url("ws://h:1/?token=ab"), ("ws://h:1/", "ab"));
/// ```
pub fn split_join_url(url: &str) -> (&str, &str) {
    match url.split_once('?') {
        Some((base, query)) => {
            let token = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("token="))
                .unwrap_or("");
            (base, token)
        }
        None => (url, ""),
    }
}

/// DistributedMap (seed 000, Abstraction 3): a through that maps a function
/// over a stream with the workers that join, over any transport.
///
/// Each worker connection, after a versioned handshake with the join token,
/// becomes a duplex wrapped in a Limiter (`batch_size`) and attached to a
/// StreamLender sub-stream (Algorithm 14). The properties of Abstraction 3
/// follow: unbounded and dynamic (workers join and leave at any time), lazy,
/// conservative, fault-tolerant (a worker that disconnects, times out, or
/// breaks the protocol has its values lent again), ordered, and
/// capability-balanced (faster workers ask for more).
///
/// See the [crate documentation](crate) for an example.
pub struct DistributedMap<In, Out, E> {
    lender: StreamLender<In, Out, E>,
    config: Arc<MapConfig>,
    registry: Registry,
    /// Notified when the first remote worker joins (for `start_idle`).
    remote_joined: Arc<Notify>,
    /// Whether a remote worker has joined.
    has_remote: Arc<std::sync::atomic::AtomicBool>,
    /// The tasks serving worker connections.
    connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    _types: PhantomData<fn(In) -> Out>,
}

impl<In, Out, E> Clone for DistributedMap<In, Out, E> {
    fn clone(&self) -> Self {
        DistributedMap {
            lender: self.lender.clone(),
            config: self.config.clone(),
            registry: self.registry.clone(),
            remote_joined: self.remote_joined.clone(),
            has_remote: self.has_remote.clone(),
            connections: self.connections.clone(),
            _types: PhantomData,
        }
    }
}

impl<In, Out, E> DistributedMap<In, Out, E>
where
    In: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    Out: Serialize + DeserializeOwned + Send + 'static,
    E: Clone + Send + 'static,
{
    /// A master with `config`. Connect it to its input with `pull!`, and
    /// give it workers with [`serve`](Self::serve) (remote workers) and
    /// [`local_workers`](Self::local_workers).
    ///
    /// ```
    /// use pando_distributed_map::{DistributedMap, MapConfig};
    /// let map = DistributedMap::<u64, u64, ()>::new(MapConfig::default());
    /// assert_eq!(map.stats().workers.len(), 0);
    /// ```
    pub fn new(config: MapConfig) -> Self {
        let mut lender = if config.ordered {
            StreamLender::new()
        } else {
            StreamLender::unordered()
        };
        if let Some(max) = config.max_retries {
            lender = lender.with_max_retries(max, config.poison);
        }
        if let Some(bound) = config.read_ahead {
            lender = lender.with_read_ahead(bound);
        }
        DistributedMap {
            lender,
            config: Arc::new(config),
            registry: Registry::default(),
            remote_joined: Arc::new(Notify::new()),
            has_remote: Arc::default(),
            connections: Arc::default(),
            _types: PhantomData,
        }
    }

    /// Waits until every value read has its result, then lets the workers
    /// finish their conversation (each is told `Done` and answers `Done`)
    /// for at most `grace`; connections still open after that are dropped.
    /// Call it after the output has ended, before the process exits, so that
    /// workers see a clean end rather than a broken connection.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pando_distributed_map::{DistributedMap, MapConfig};
    /// use pando_pull_stream::{count, drain, pull};
    ///
    /// # #[tokio::main] async fn main() {
    /// let map = DistributedMap::<u64, u64, ()>::new(MapConfig::default());
    /// map.local_workers(1, false, |x: u64| async move { Ok::<_, String>(x + 1) });
    /// pull!(count(10), map.clone(), drain()).await.unwrap();
    /// map.finish(Duration::from_secs(5)).await;
    /// assert!(map.stats().workers.iter().all(|w| !w.connected));
    /// # }
    /// ```
    pub async fn finish(&self, grace: Duration) {
        self.lender.settled().await;
        let handles = std::mem::take(&mut *self.connections.lock().unwrap_or_else(|p| p.into_inner()));
        let all = futures::future::join_all(handles);
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("some workers did not finish within {grace:?}; their connections are dropped");
        }
    }

    /// A master that also processes values itself: local processing is on
    /// by default, with [`MapConfig::local_workers`] workers (one per core
    /// unless set) applying `f`, started at once or, with
    /// [`MapConfig::start_idle`], when the first remote worker joins. Remote
    /// workers still join through [`serve`](Self::serve).
    ///
    /// ```
    /// use pando_distributed_map::{DistributedMap, MapConfig};
    /// use pando_pull_stream::{collect, count, pull};
    ///
    /// # #[tokio::main] async fn main() {
    /// let map = DistributedMap::<u64, u64, ()>::with_function(MapConfig::default(), |x: u64| async move {
    ///     Ok::<_, String>(x + 1)
    /// });
    /// assert_eq!(pull!(count(3), map.clone(), collect::<Vec<_>>()).await, Ok(vec![2, 3, 4]));
    /// # }
    /// ```
    pub fn with_function<F, Fut, Err>(config: MapConfig, f: F) -> Self
    where
        F: Fn(In) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Out, Err>> + Send + 'static,
        Err: std::fmt::Display + Send + 'static,
    {
        let local = config
            .local_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let start_idle = config.start_idle;
        let map = Self::new(config);
        map.local_workers(local, start_idle, f);
        map
    }

    /// Resolves once a remote worker (one accepted by [`serve`](Self::serve))
    /// has joined; at once if one already has.
    ///
    /// ```
    /// use pando_distributed_map::{DistributedMap, MapConfig, Worker, join_url, transport::{Listener, memory}};
    ///
    /// # #[tokio::main] async fn main() {
    /// let map = DistributedMap::<u64, u64, ()>::new(MapConfig::default());
    /// let (listener, connector) = memory::endpoint("m");
    /// let url = join_url(&listener.url(), &map.config().token);
    /// map.serve(listener);
    /// let _session = Worker::new("w").connect_with(&connector, &url).await.unwrap();
    /// map.remote_worker_joined().await;
    /// # }
    /// ```
    pub async fn remote_worker_joined(&self) {
        // Created before the check, so a join between the two is not missed.
        let notified = self.remote_joined.notified();
        if !self.has_remote.load(std::sync::atomic::Ordering::Acquire) {
            notified.await;
        }
    }

    /// The configuration.
    ///
    /// ```
    /// use pando_distributed_map::{DistributedMap, MapConfig};
    /// let map = DistributedMap::<u64, u64, ()>::new(MapConfig::default());
    /// assert!(map.config().ordered);
    /// ```
    pub fn config(&self) -> &MapConfig {
        &self.config
    }

    /// The lender at the heart of the map (to close it, or read its state).
    ///
    /// ```
    /// use pando_distributed_map::{DistributedMap, MapConfig};
    /// let map = DistributedMap::<u64, u64, ()>::new(MapConfig::default());
    /// assert_eq!(map.lender().state().read, 0);
    /// ```
    pub fn lender(&self) -> &StreamLender<In, Out, E> {
        &self.lender
    }

    /// A snapshot of every worker's statistics and of the lender's counters.
    ///
    /// See [`DistributedMap::new`] for an example.
    pub fn stats(&self) -> MapStats {
        MapStats {
            workers: self.registry.reports(),
            lender: self.lender.state(),
        }
    }

    /// Accepts workers from `listener` (on the current tokio runtime) until
    /// every value has its result. Each connection is served by a task of
    /// its own; a worker that fails its handshake, breaks the protocol or
    /// disconnects never stops the others.
    ///
    /// The join URL for remote workers is
    /// [`join_url`]`(&listener.url(), &map.config().token)`.
    ///
    /// See the [crate documentation](crate) for an example.
    pub fn serve<L: Listener>(&self, listener: L) -> tokio::task::JoinHandle<()> {
        self.serve_as(listener, true)
    }

    fn serve_as<L: Listener>(&self, mut listener: L, remote: bool) -> tokio::task::JoinHandle<()> {
        let map = self.clone();
        tokio::spawn(async move {
            let settled = map.lender.settled();
            tokio::pin!(settled);
            loop {
                let connection = tokio::select! {
                    _ = &mut settled => break,
                    c = listener.accept() => c,
                };
                match connection {
                    Ok(connection) => {
                        let served = map.clone();
                        let task = tokio::spawn(async move { served.handle(connection, remote).await });
                        let mut connections = map.connections.lock().unwrap_or_else(|p| p.into_inner());
                        connections.retain(|t| !t.is_finished());
                        connections.push(task);
                    }
                    Err(e) => {
                        tracing::error!(url = %listener.url(), error = %e, "cannot accept workers");
                        break;
                    }
                }
            }
        })
    }

    /// Runs `n` workers in this process (over the in-process transport, with
    /// the same handshake and heartbeats as remote ones), applying `f`. With
    /// `start_idle`, they only start once the first remote worker has joined.
    ///
    /// See the [crate documentation](crate) for an example.
    pub fn local_workers<F, Fut, Err>(&self, n: usize, start_idle: bool, f: F)
    where
        F: Fn(In) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<Out, Err>> + Send + 'static,
        Err: std::fmt::Display + Send + 'static,
    {
        if n == 0 {
            return;
        }
        let (listener, connector) = memory::endpoint("local");
        self.serve_as(listener, false);
        let url = join_url("memory://local", &self.config.token);
        for i in 0..n {
            let connector = connector.clone();
            let url = url.clone();
            let f = f.clone();
            let map = self.clone();
            let max_frame = self.config.max_frame;
            tokio::spawn(async move {
                if start_idle {
                    map.remote_worker_joined().await;
                }
                let worker = Worker::new(format!("local-{i}")).max_frame(max_frame);
                if let Err(e) = worker.run_with(&connector, &url, f).await {
                    tracing::warn!(worker = i, error = %e, "local worker stopped");
                }
            });
        }
    }

    async fn handle(self, mut connection: Connection, remote: bool) {
        let config = &self.config;
        let peer = connection.peer.clone();
        let first = tokio::time::timeout(config.heartbeat_timeout, connection.stream.next()).await;
        let verdict = match first {
            Err(_) => Err(format!("no Hello within {:?}", config.heartbeat_timeout)),
            Ok(None) => Err("closed before its Hello".to_string()),
            Ok(Some(Err(e))) => Err(e.to_string()),
            Ok(Some(Ok(bytes))) => match Frame::decode(&bytes, config.max_frame) {
                Ok(Frame::Hello { version, .. }) if version != PROTOCOL_VERSION => Err(format!(
                    "protocol version {version} is not supported (this master speaks version {PROTOCOL_VERSION})"
                )),
                Ok(Frame::Hello { token, .. }) if !same_token(&token, &config.token) => {
                    Err(if token.is_empty() {
                        "missing join token"
                    } else {
                        "wrong join token"
                    }
                    .to_string())
                }
                Ok(Frame::Hello { name, .. }) => Ok(name),
                Ok(other) => Err(format!("expected a Hello frame, got {}", other.name())),
                Err(e) => Err(format!("malformed first frame: {e}")),
            },
        };
        let name = match verdict {
            Ok(name) => name,
            Err(reason) => {
                tracing::warn!(peer = %peer, reason = %reason, "worker rejected");
                let _ = connection.sink.send(Frame::Reject { reason }.encode()).await;
                let _ = connection.sink.close().await;
                return;
            }
        };
        let welcome = Frame::Welcome {
            version: PROTOCOL_VERSION,
            heartbeat_ms: config.heartbeat.as_millis() as u64,
            command: config.command.clone(),
        };
        if let Err(e) = connection.sink.send(welcome.encode()).await {
            tracing::warn!(peer = %peer, error = %e, "worker lost during the handshake");
            return;
        }
        if remote {
            self.has_remote.store(true, std::sync::atomic::Ordering::Release);
            self.remote_joined.notify_waiters();
        }
        let worker = format!("{name} ({peer})");
        tracing::info!(worker = %worker, "worker joined");
        let stats = Arc::new(WorkerStats::new(name, peer));
        self.registry.add(stats.clone());

        let sub = self.lender.lend_stream::<WorkerError>();
        let link = Link::default();
        let rejections = RejectFailures {
            rejecter: sub.source.rejecter(),
            worker: worker.clone(),
        };
        let from = FromWorker::<Out> {
            stream: connection.stream,
            worker: worker.clone(),
            link: link.clone(),
            deadline: Box::pin(tokio::time::sleep(config.heartbeat_timeout)),
            timeout: config.heartbeat_timeout,
            max_frame: config.max_frame,
            stats: stats.clone(),
            ended: false,
            termination: None,
            _out: PhantomData,
        };
        let to = ToWorker::<In> {
            sink: connection.sink,
            worker: worker.clone(),
            link,
            heartbeat: config.heartbeat,
            stats: stats.clone(),
            _in: PhantomData,
        };
        let limited = limit(Duplex::new(from, to), config.batch_size.get()).expect("batch_size is nonzero");
        let _ = stats.limit.set(limited.handle());
        let result = pull!(sub.source, limited, rejections, sub.sink).await;
        stats.disconnected();
        match result {
            Ok(()) => tracing::info!(worker = %worker, "worker finished"),
            Err(e) => tracing::warn!(worker = %worker, error = %e, "worker left; its values are lent again"),
        }
    }
}

/// Compares tokens in time independent of where they differ.
fn same_token(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |d, (a, b)| d | (a ^ b))
            == 0
}

impl<S, In, Out, E> Connect<S> for DistributedMap<In, Out, E>
where
    S: Source<Item = In, Error = E> + Send + 'static,
    In: Clone + Send + 'static,
    Out: Send,
    E: Clone + Send + 'static,
{
    type Output = LenderOutput<In, Out, E>;

    /// Connects the map's input; its output answers with the results.
    fn connect(self, input: S) -> Self::Output {
        self.lender.connect(input)
    }
}

impl<In, Out, E> std::fmt::Debug for DistributedMap<In, Out, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DistributedMap")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
