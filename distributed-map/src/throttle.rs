//! [`Throttle`]: control, from outside the map, the flow of values to one
//! connection: pause and resume lending to it, and set its Limiter's limit.
//!
//! The scalable DistributedMap (seed 000, Algorithms 20-21) needs both: a
//! node pauses its local processing while it has children, and lends to
//! each child through a Limiter whose limit follows the leaves the child
//! reports (`updateLimit⟨BatchSize × n⟩`).

use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use pando_limiter::LimitHandle;
use pando_pull_stream::{Answer, Connect, Source, Termination};
use pin_project_lite::pin_project;

#[derive(Debug, Default)]
struct Shared {
    paused: AtomicBool,
    /// The map has nothing more to lend: the gate lets asks through, so
    /// that a paused connection hears the end.
    ended: AtomicBool,
    waker: AtomicWaker,
    limit: Mutex<Limit>,
}

#[derive(Debug, Default)]
struct Limit {
    /// The limit asked for, applied when the Limiter exists.
    wanted: Option<NonZeroUsize>,
    /// The connection's Limiter, once its worker has joined.
    handle: Option<LimitHandle>,
}

/// A handle on the flow of values to one connection, given to the map with
/// [`Incoming::with_throttle`](crate::transport::Incoming::with_throttle).
///
/// - [`pause`](Throttle::pause): no new value is lent to the connection;
///   the values it holds finish. [`resume`](Throttle::resume) lends again.
/// - [`update_limit`](Throttle::update_limit): the connection's Limiter
///   lets that many values be in process (instead of the map's
///   `batch_size`). Set before the worker joins, it is its first limit.
///
/// Clones control the same connection. A throttle outlives its connection
/// harmlessly: its calls then do nothing. Once the map has nothing more to
/// lend (its input ended and every value has its result), a paused
/// connection is let through, so that it ends like the others.
///
/// ```
/// use std::num::NonZeroUsize;
/// use pando_distributed_map::{DistributedMap, MapConfig, Throttle, Worker, join_url};
/// use pando_distributed_map::transport::{Connector, Incoming, Listener, memory};
/// use pando_pull_stream::{collect, count, pull};
///
/// # #[tokio::main] async fn main() {
/// let map = DistributedMap::<u64, u64, ()>::new(MapConfig::default());
/// let (mut listener, connector) = memory::endpoint("m");
/// let throttle = Throttle::new();
/// throttle.update_limit(NonZeroUsize::new(3).unwrap());
/// // Hand the map the worker's connection with the throttle attached.
/// let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
/// let url = join_url("memory://m", &map.config().token);
/// tokio::spawn(async move { Worker::new("w").run_with(&connector, &url, |x: u64| async move { Ok::<_, String>(x + 1) }).await });
/// let incoming = listener.accept().await.unwrap();
/// tx.send(incoming.with_throttle(throttle.clone())).unwrap();
/// map.serve(pando_distributed_map::transport::ChannelListener::new("tree", rx));
/// let out = pull!(count(10), map.clone(), collect::<Vec<_>>()).await.unwrap();
/// assert_eq!(out, (2..=11).collect::<Vec<u64>>());
/// assert_eq!(throttle.limit(), Some(3));
/// # }
/// ```
#[derive(Clone, Debug, Default)]
pub struct Throttle {
    shared: Arc<Shared>,
}

impl Throttle {
    /// A throttle that lends (not paused), with the map's `batch_size` as
    /// the limit until [`update_limit`](Throttle::update_limit).
    ///
    /// ```
    /// let t = pando_distributed_map::Throttle::new();
    /// assert!(!t.is_paused());
    /// assert_eq!(t.limit(), None);
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops lending new values to the connection. The values it holds
    /// still finish.
    ///
    /// ```
    /// let t = pando_distributed_map::Throttle::new();
    /// t.pause();
    /// assert!(t.is_paused());
    /// ```
    pub fn pause(&self) {
        self.shared.paused.store(true, Ordering::Release);
    }

    /// Lends to the connection again.
    ///
    /// ```
    /// let t = pando_distributed_map::Throttle::new();
    /// t.pause();
    /// t.resume();
    /// assert!(!t.is_paused());
    /// ```
    pub fn resume(&self) {
        self.shared.paused.store(false, Ordering::Release);
        self.shared.waker.wake();
    }

    /// Whether lending is paused.
    ///
    /// See [`Throttle::pause`] for an example.
    #[must_use]
    pub fn is_paused(&self) -> bool {
        self.shared.paused.load(Ordering::Acquire)
    }

    /// `updateLimit⟨n⟩` on the connection's Limiter: at most `n` values in
    /// process at the worker. Applied at once if the worker has joined, else
    /// when it does.
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// let t = pando_distributed_map::Throttle::new();
    /// t.update_limit(NonZeroUsize::new(40).unwrap());
    /// assert_eq!(t.limit(), Some(40));
    /// ```
    pub fn update_limit(&self, n: NonZeroUsize) {
        let mut limit = self.shared.limit.lock().unwrap_or_else(|p| p.into_inner());
        limit.wanted = Some(n);
        if let Some(handle) = &limit.handle {
            // Nonzero: never refused.
            let _ = handle.update_limit(n.get());
        }
    }

    /// The limit set with [`update_limit`](Throttle::update_limit), if any.
    ///
    /// See [`Throttle::update_limit`] for an example.
    #[must_use]
    pub fn limit(&self) -> Option<usize> {
        let limit = self.shared.limit.lock().unwrap_or_else(|p| p.into_inner());
        limit.wanted.map(NonZeroUsize::get)
    }

    /// The map has nothing more to lend: open the gate for good.
    pub(crate) fn end(&self) {
        self.shared.ended.store(true, Ordering::Release);
        self.shared.waker.wake();
    }

    /// Attaches the connection's Limiter, and sets its first limit.
    pub(crate) fn attach(&self, handle: LimitHandle, batch_size: usize) {
        let mut limit = self.shared.limit.lock().unwrap_or_else(|p| p.into_inner());
        let n = limit.wanted.map_or(batch_size, NonZeroUsize::get);
        let _ = handle.update_limit(n);
        limit.handle = Some(handle);
    }

    /// The through that holds asks while paused.
    pub(crate) fn gate(self) -> Gate {
        Gate { throttle: self }
    }
}

/// The through before a connection's Limiter: while its throttle is paused,
/// it holds the Limiter's asks for new values (terminations pass).
pub(crate) struct Gate {
    throttle: Throttle,
}

impl<S: Source> Connect<S> for Gate {
    type Output = Gated<S>;

    fn connect(self, upstream: S) -> Gated<S> {
        Gated {
            upstream,
            throttle: self.throttle,
        }
    }
}

pin_project! {
    /// A source gated by a [`Throttle`].
    #[must_use = "sources do nothing unless asked"]
    pub(crate) struct Gated<S> {
        #[pin]
        upstream: S,
        throttle: Throttle,
    }
}

impl<S: Source> Source for Gated<S> {
    type Item = S::Item;
    type Error = S::Error;

    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>> {
        let this = self.project();
        let held = |t: &Throttle| t.is_paused() && !t.shared.ended.load(Ordering::Acquire);
        if held(this.throttle) {
            this.throttle.shared.waker.register(cx.waker());
            // Resumed or ended between the check and the registration: go on.
            if held(this.throttle) {
                return Poll::Pending;
            }
        }
        this.upstream.poll_ask(cx)
    }

    fn terminate(self: Pin<&mut Self>, request: Termination<S::Error>) {
        self.project().upstream.terminate(request);
    }

    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.project().upstream.poll_terminated(cx)
    }
}
