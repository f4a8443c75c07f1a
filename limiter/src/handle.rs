//! [`LimitHandle`]: update the limit and observe the flow, from any task.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::LimitError;
use crate::state::Shared;

/// A cloneable, thread-safe handle on a Limiter: the seeds' `updateLimit`
/// request, and the observation of the flow (the original's `flow-rate`
/// event, here a value to read whenever needed).
///
/// ```
/// use pando_limiter::limit;
/// use pando_pull_stream::{count, drain, map, pull};
///
/// # futures::executor::block_on(async {
/// let limited = limit(map(|x: u64| x), 2)?;
/// let handle = limited.handle();
/// let monitor = handle.clone(); // e.g. for a monitoring task
/// pull!(count::<()>(100), limited, drain()).await.unwrap();
/// assert_eq!(monitor.results(), 100);
/// assert_eq!(monitor.in_process(), 0);
/// assert!(monitor.flow_rate() > 0.0);
/// # Ok::<(), pando_limiter::LimitError>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct LimitHandle {
    shared: Arc<Shared>,
}

impl LimitHandle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        LimitHandle { shared }
    }

    /// `updateLimit⟨n⟩`: sets the limit to `n`, at any time.
    ///
    /// Raising the limit releases a waiting ask at once. Lowering it below the
    /// number in process is allowed: no new ask is forwarded until that
    /// number drops under `n`. A limit of 0 is rejected with
    /// [`LimitError::Zero`] and leaves the limit unchanged.
    ///
    /// ```
    /// use pando_limiter::{LimitError, limit};
    /// use pando_pull_stream::map;
    ///
    /// let handle = limit(map(|x: u64| x), 4).unwrap().handle();
    /// handle.update_limit(1).unwrap();
    /// assert_eq!(handle.update_limit(0), Err(LimitError::Zero));
    /// assert_eq!(handle.limit(), 1);
    /// ```
    pub fn update_limit(&self, n: usize) -> Result<(), LimitError> {
        if n == 0 {
            return Err(LimitError::Zero);
        }
        self.shared.apply(|s| s.update_limit(n));
        Ok(())
    }

    /// The current limit.
    ///
    /// ```
    /// use pando_limiter::Limit;
    /// use pando_pull_stream::map;
    /// assert_eq!(Limit::new(map(|x: u64| x)).handle().limit(), 1);
    /// ```
    pub fn limit(&self) -> usize {
        self.shared.lock().limit()
    }

    /// The number of values in process: asked for by the wrapped module (and
    /// forwarded upstream) but not yet output.
    ///
    /// ```
    /// use pando_limiter::limit;
    /// use pando_pull_stream::{Answer, SourceExt, count, map, pull};
    ///
    /// # futures::executor::block_on(async {
    /// let mut limited = pull!(count::<()>(5), limit(map(|x: u64| x), 2)?);
    /// let handle = limited.handle();
    /// assert_eq!(handle.in_process(), 0);
    /// assert_eq!(limited.ask().await, Answer::Value(1)); // asked and output
    /// assert_eq!(handle.in_process(), 0);
    /// # Ok::<(), pando_limiter::LimitError>(())
    /// # }).unwrap();
    /// ```
    pub fn in_process(&self) -> usize {
        self.shared.lock().in_process()
    }

    /// The number of results output so far.
    ///
    /// ```
    /// use pando_limiter::Limit;
    /// use pando_pull_stream::{count, drain, map, pull};
    ///
    /// # futures::executor::block_on(async {
    /// let limited = Limit::new(map(|x: u64| x));
    /// let handle = limited.handle();
    /// pull!(count::<()>(7), limited, drain()).await.unwrap();
    /// assert_eq!(handle.results(), 7);
    /// # });
    /// ```
    pub fn results(&self) -> u64 {
        self.shared.lock().results()
    }

    /// The flow rate: results output per second over the recent window (see
    /// [`flow_window`](LimitHandle::flow_window)), measured with the
    /// Limiter's clock. Before a full window has elapsed, the rate is over
    /// the time elapsed since the Limiter was made.
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
    /// clock.advance(Duration::from_millis(100));
    /// pull!(count::<()>(30), limited, drain()).await.unwrap();
    /// clock.advance(Duration::from_millis(200));
    /// assert_eq!(handle.flow_rate(), 100.0); // 30 results in 0.3 s
    /// clock.advance(Duration::from_secs(2));
    /// assert_eq!(handle.flow_rate(), 0.0); // nothing in the last second
    /// # });
    /// ```
    pub fn flow_rate(&self) -> f64 {
        self.shared.lock().flow_rate()
    }

    /// The length of the window over which [`flow_rate`](LimitHandle::flow_rate)
    /// is measured.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pando_limiter::Limit;
    /// use pando_pull_stream::map;
    /// assert_eq!(Limit::new(map(|x: u64| x)).handle().flow_window(), Duration::from_secs(1));
    /// ```
    pub fn flow_window(&self) -> Duration {
        self.shared.lock().window()
    }
}

impl fmt::Debug for LimitHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitHandle")
            .field("state", &self.shared)
            .finish()
    }
}
