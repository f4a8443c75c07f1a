//! Clocks for the flow-rate measurement: [`SystemClock`] and, for tests,
//! [`ManualClock`].

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A source of the current time, used to measure the flow rate.
///
/// The Limiter reads the clock once per result. [`SystemClock`] is the
/// default; [`ManualClock`] makes flow-rate measurements deterministic in
/// tests.
///
/// ```
/// use std::time::Instant;
/// use pando_limiter::Clock;
///
/// /// A clock frozen at one instant.
/// #[derive(Debug)]
/// struct Frozen(Instant);
///
/// impl Clock for Frozen {
///     fn now(&self) -> Instant { self.0 }
/// }
///
/// let t = Instant::now();
/// assert_eq!(Frozen(t).now(), t);
/// ```
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> Instant;
}

/// The system's monotonic clock, [`Instant::now`].
///
/// ```
/// use pando_limiter::{Clock, SystemClock};
/// let a = SystemClock.now();
/// assert!(SystemClock.now() >= a);
/// ```
#[derive(Clone, Copy, Default, Debug)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that only moves when told to, for deterministic tests.
///
/// Clones share the same time.
///
/// ```
/// use std::time::Duration;
/// use pando_limiter::{Clock, ManualClock};
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// clock.clone().advance(Duration::from_millis(250));
/// assert_eq!(clock.now() - start, Duration::from_millis(250));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<Instant>>,
}

impl ManualClock {
    /// A manual clock, initially at the current system time.
    ///
    /// ```
    /// use pando_limiter::{Clock, ManualClock};
    /// let clock = ManualClock::new();
    /// assert_eq!(clock.now(), clock.now());
    /// ```
    pub fn new() -> Self {
        ManualClock {
            now: Arc::new(Mutex::new(Instant::now())),
        }
    }

    /// Moves the clock forward by `by`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pando_limiter::{Clock, ManualClock};
    /// let clock = ManualClock::new();
    /// let before = clock.now();
    /// clock.advance(Duration::from_secs(1));
    /// assert_eq!(clock.now() - before, Duration::from_secs(1));
    /// ```
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        *now += by;
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self.now.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock").finish_non_exhaustive()
    }
}
