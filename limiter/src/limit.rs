//! [`Limit`] and [`limit`]: the Limiter module (Abstraction 1).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use pando_pull_stream::{Connect, Duplex, Source};

use crate::clock::Clock;
use crate::state::Shared;
use crate::{LimitError, LimitHandle, Limited, LimitedInput, LimitedSink};

/// A through or duplex wrapped by a Limiter: at most `limit` values in
/// process at a time. See [`limit`].
///
/// `Limit<M>` is itself a module: connecting it to a source connects `M` to a
/// [`LimitedInput`] and returns `M`'s output wrapped in [`Limited`]. A
/// [`LimitHandle`], taken with [`handle`](Limit::handle) before or after
/// connecting, updates the limit and observes the flow rate.
///
/// ```
/// use pando_limiter::Limit;
/// use pando_pull_stream::{collect, count, map, pull};
///
/// # futures::executor::block_on(async {
/// let limited = Limit::new(map(|x: u64| x + 1)); // the default limit, 1
/// assert_eq!(limited.handle().limit(), 1);
/// let got = pull!(count::<()>(3), limited, collect::<Vec<_>>()).await;
/// assert_eq!(got, Ok(vec![2, 3, 4]));
/// # });
/// ```
#[must_use = "modules do nothing until connected"]
pub struct Limit<M> {
    module: M,
    shared: Arc<Shared>,
}

/// Wraps `module`, a through or a duplex, so that at most `n` values are in
/// process at a time: asked for by `module` and not yet output by it.
///
/// This is the Limiter of the Pando dissertation (seed 000, Abstraction 1,
/// Algorithms 8-9). Its properties:
///
/// 1. **Bounded eagerness**: an ask of `module` is forwarded upstream only
///    while fewer than `n` values are in process.
/// 2. **Output-based flow control**: once the limit is reached, values are
///    asked for at the rate at which `module` outputs results.
/// 3. **Dynamic**: the limit can be changed at any time with
///    [`LimitHandle::update_limit`].
///
/// `n` is checked: a limit of 0 is rejected with [`LimitError::Zero`] (it would
/// never let a value in). Use [`Limit::new`] for the default limit of 1.
///
/// `module` must follow the pull-stream protocol and output exactly one result
/// per value it receives (the abstraction's expectations).
///
/// ```
/// use pando_limiter::{LimitError, limit};
/// use pando_pull_stream::{collect, count, map, pull};
///
/// # futures::executor::block_on(async {
/// let got = pull!(count::<()>(4), limit(map(|x: u64| x * x), 2)?, collect::<Vec<_>>()).await;
/// assert_eq!(got, Ok(vec![1, 4, 9, 16]));
/// assert_eq!(limit(map(|x: u64| x), 0).err(), Some(LimitError::Zero));
/// # Ok::<(), LimitError>(())
/// # }).unwrap();
/// ```
pub fn limit<M>(module: M, n: usize) -> Result<Limit<M>, LimitError> {
    if n == 0 {
        return Err(LimitError::Zero);
    }
    Ok(Limit {
        module,
        shared: Shared::new(n),
    })
}

impl<M> Limit<M> {
    /// Wraps `module` with the default limit of 1 value in process.
    ///
    /// ```
    /// use pando_limiter::Limit;
    /// use pando_pull_stream::map;
    /// assert_eq!(Limit::new(map(|x: u8| x)).handle().limit(), 1);
    /// ```
    pub fn new(module: M) -> Self {
        Limit {
            module,
            shared: Shared::new(1),
        }
    }

    /// A handle to update the limit and observe the flow rate, from any task.
    ///
    /// ```
    /// use pando_limiter::limit;
    /// use pando_pull_stream::map;
    ///
    /// let limited = limit(map(|x: u64| x), 4).unwrap();
    /// let handle = limited.handle();
    /// handle.update_limit(8).unwrap();
    /// assert_eq!(handle.limit(), 8);
    /// ```
    pub fn handle(&self) -> LimitHandle {
        LimitHandle::new(self.shared.clone())
    }

    /// Sets the length of the recent window over which the flow rate is
    /// measured (1 second by default). A zero window is rejected with
    /// [`LimitError::ZeroWindow`].
    ///
    /// ```
    /// use std::time::Duration;
    /// use pando_limiter::Limit;
    /// use pando_pull_stream::map;
    ///
    /// let limited = Limit::new(map(|x: u64| x)).flow_window(Duration::from_secs(10)).unwrap();
    /// assert_eq!(limited.handle().flow_window(), Duration::from_secs(10));
    /// assert!(Limit::new(map(|x: u64| x)).flow_window(Duration::ZERO).is_err());
    /// ```
    pub fn flow_window(self, window: Duration) -> Result<Self, LimitError> {
        if window.is_zero() {
            return Err(LimitError::ZeroWindow);
        }
        self.shared.lock().set_window(window);
        Ok(self)
    }

    /// Measures the flow rate with `clock` instead of the system clock (for
    /// example a [`ManualClock`](crate::ManualClock) in tests).
    ///
    /// ```
    /// use std::time::Duration;
    /// use pando_limiter::{Limit, ManualClock};
    /// use pando_pull_stream::{count, drain, map, pull};
    ///
    /// # futures::executor::block_on(async {
    /// let clock = ManualClock::new();
    /// let limited = Limit::new(map(|x: u64| x)).clock(clock.clone());
    /// let handle = limited.handle();
    /// pull!(count::<()>(5), limited, drain()).await.unwrap();
    /// clock.advance(Duration::from_millis(500));
    /// assert_eq!(handle.flow_rate(), 10.0); // 5 results in 0.5 s
    /// # });
    /// ```
    pub fn clock(self, clock: impl Clock) -> Self {
        self.shared.lock().set_clock(Arc::new(clock));
        self
    }
}

impl<So, Si> Limit<Duplex<So, Si>> {
    /// Splits a limited duplex into a limited duplex: a source half
    /// ([`Limited`]) and a sink half ([`LimitedSink`]) that share the limit.
    ///
    /// A `Limit<Duplex<…>>` is a through already; the split form lets the two
    /// halves be used apart, for example with the sink half driven by a task
    /// of its own.
    ///
    /// ```
    /// use pando_limiter::limit;
    /// use pando_pull_stream::{Connect, collect, count, duplex_pair};
    ///
    /// # futures::executor::block_on(async {
    /// let (near, far) = duplex_pair::<u64, u64, ()>(16);
    /// let echo = far.loopback();
    /// let limited = limit(near, 2)?.into_duplex();
    /// let handle = limited.source.handle();
    /// let sending = limited.sink.connect(count(10));
    /// let reading = collect::<Vec<_>>().connect(limited.source);
    /// let (echoed, sent, got) = futures::join!(echo, sending, reading);
    /// assert_eq!((echoed, sent), (Ok(()), Ok(())));
    /// assert_eq!(got, Ok((1..=10).collect()));
    /// assert_eq!(handle.results(), 10);
    /// # Ok::<(), pando_limiter::LimitError>(())
    /// # }).unwrap();
    /// ```
    pub fn into_duplex(self) -> Duplex<Limited<So>, LimitedSink<Si>> {
        let Limit { module, shared } = self;
        let (source, sink) = module.into_parts();
        Duplex::new(
            Limited::new(source, shared.clone()),
            LimitedSink::new(sink, shared),
        )
    }
}

impl<S, M> Connect<S> for Limit<M>
where
    S: Source,
    M: Connect<LimitedInput<S>>,
    M::Output: Source,
{
    type Output = Limited<M::Output>;

    fn connect(self, upstream: S) -> Limited<M::Output> {
        let input = LimitedInput::new(upstream, self.shared.clone());
        Limited::new(self.module.connect(input), self.shared)
    }
}

impl<M> fmt::Debug for Limit<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limit")
            .field("state", &self.shared)
            .finish_non_exhaustive()
    }
}
