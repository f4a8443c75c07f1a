//! [`StubbornStats`] and [`StubbornHandle`]: observing stubborn processing.

use std::sync::{Arc, Mutex, MutexGuard};

/// Counters of stubborn processing.
///
/// ```
/// use pando_stubborn::StubbornStats;
/// let stats = StubbornStats::default();
/// assert_eq!(stats.submissions, 0);
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub struct StubbornStats {
    /// Values read from upstream.
    pub read: u64,
    /// Submissions to the through: first submissions and resubmissions.
    pub submissions: u64,
    /// Resubmissions (tester verdicts [`Resubmit`](crate::Verdict::Resubmit)).
    pub resubmissions: u64,
    /// Results accepted by the tester.
    pub accepted: u64,
    /// Results dropped because their tag was not the value's current
    /// submission: stale results of an earlier attempt, duplicates, results
    /// for a value already accepted, or tags never submitted.
    pub stale: u64,
    /// Values output downstream.
    pub output: u64,
}

/// A cloneable handle on the [`StubbornStats`] of one stubborn module.
///
/// ```
/// use pando_pull_stream::{collect, count, map, pull};
/// use pando_stubborn::{Tagged, Verdict, stubborn};
///
/// # futures::executor::block_on(async {
/// let module = stubborn(
///     map(|t: Tagged<u64>| t),
///     |_input: u64, result: u64| async move { Verdict::<_, u64>::Accept(result) },
/// );
/// let handle = module.handle();
/// let got = pull!(count::<Box<dyn std::error::Error + Send + Sync>>(3), module, collect::<Vec<_>>()).await;
/// assert_eq!(got.unwrap(), [1, 2, 3]);
/// assert_eq!(handle.stats().accepted, 3);
/// # });
/// ```
#[derive(Clone, Debug, Default)]
pub struct StubbornHandle {
    stats: Arc<Mutex<StubbornStats>>,
}

impl StubbornHandle {
    pub(crate) fn lock(&self) -> MutexGuard<'_, StubbornStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The counters so far.
    ///
    /// See [`StubbornHandle`] for an example.
    pub fn stats(&self) -> StubbornStats {
        *self.lock()
    }
}
