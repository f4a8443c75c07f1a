//! [`DistributedMap`]: the master (seed 000, Algorithm 14).

use std::future::Future;
use std::marker::PhantomData;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use pando_lend_stream::{LenderOutput, StreamLender};
use pando_pull_stream::{Connect, Source};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::config::{ConfigError, MapConfig, default_workers};
use crate::stats::{MapStats, Registry};
use crate::transport::Listener;

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
#[must_use = "a DistributedMap does nothing until its input is connected with `pull!`"]
pub struct DistributedMap<In, Out, E> {
    pub(crate) lender: StreamLender<In, Out, E>,
    pub(crate) config: Arc<MapConfig>,
    pub(crate) registry: Registry,
    /// Cancelled when the first remote worker joins (for `start_idle`).
    pub(crate) remote_joined: CancellationToken,
    /// The tasks serving worker connections.
    pub(crate) connections: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    /// Workers connected now (for `max_workers`).
    pub(crate) workers: Arc<AtomicUsize>,
    _types: PhantomData<fn(In) -> Out>,
}

impl<In, Out, E> Clone for DistributedMap<In, Out, E> {
    fn clone(&self) -> Self {
        DistributedMap {
            lender: self.lender.clone(),
            config: self.config.clone(),
            registry: self.registry.clone(),
            remote_joined: self.remote_joined.clone(),
            connections: self.connections.clone(),
            workers: self.workers.clone(),
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
    /// # Panics
    ///
    /// If the configuration cannot work ([`MapConfig::validate`]); use
    /// [`try_new`](Self::try_new) to get the error instead.
    ///
    /// ```
    /// use pando_distributed_map::{DistributedMap, MapConfig};
    /// let map = DistributedMap::<u64, u64, ()>::new(MapConfig::default());
    /// assert_eq!(map.stats().workers.len(), 0);
    /// ```
    pub fn new(config: MapConfig) -> Self {
        match Self::try_new(config) {
            Ok(map) => map,
            Err(e) => panic!("invalid MapConfig: {e}"),
        }
    }

    /// A master with `config`, or the reason the configuration cannot work.
    ///
    /// ```
    /// use pando_distributed_map::{ConfigError, DistributedMap, MapConfig};
    /// let config = MapConfig { max_workers: 0, ..MapConfig::default() };
    /// let e = DistributedMap::<u64, u64, ()>::try_new(config).unwrap_err();
    /// assert_eq!(e, ConfigError::ZeroLimit("max_workers"));
    /// ```
    pub fn try_new(config: MapConfig) -> Result<Self, ConfigError> {
        config.validate()?;
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
        if let Some(k) = NonZeroU32::new(config.replicas).filter(|k| k.get() > 1) {
            lender = lender.with_replicas_by(k, byte_equal::<Out>);
        }
        Ok(DistributedMap {
            lender,
            config: Arc::new(config),
            registry: Registry::default(),
            remote_joined: CancellationToken::new(),
            connections: Arc::default(),
            workers: Arc::default(),
            _types: PhantomData,
        })
    }

    /// Waits until every value read has its result (or the output was
    /// terminated), then lets the workers finish their conversation (each is
    /// told `Done` and answers `Done`) for at most `grace`; connections
    /// still open after that are dropped. Call it after the output has
    /// ended, before the process exits, so that workers see a clean end
    /// rather than a broken connection.
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
        let local = config.local_workers.unwrap_or_else(default_workers);
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
        self.remote_joined.cancelled().await;
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
    /// its own from the moment it is accepted (a WebSocket upgrade
    /// included), with a deadline for its handshake; a worker that fails its
    /// handshake, breaks the protocol or disconnects never stops the others.
    /// At most [`MapConfig::max_pending`] connections may be in their
    /// handshake at once, and [`MapConfig::max_workers`] connected.
    ///
    /// The join URL for remote workers is
    /// [`join_url`](crate::join_url)`(&listener.url(), &map.config().token)`.
    ///
    /// See the [crate documentation](crate) for an example.
    pub fn serve<L: Listener>(&self, listener: L) -> tokio::task::JoinHandle<()> {
        self.serve_as(listener, true)
    }
}

/// Whether two results are byte-equal: the same postcard encoding (how
/// replicas vote). A result that cannot be encoded equals nothing.
fn byte_equal<Out: Serialize>(a: &Out, b: &Out) -> bool {
    match (postcard::to_allocvec(a), postcard::to_allocvec(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
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
