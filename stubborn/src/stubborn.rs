//! [`Stubborn`] and [`stubborn`]: the stubborn processing module.

use std::fmt;
use std::future::Future;
use std::num::{NonZeroU32, NonZeroUsize};

use pando_pull_stream::{Connect, Source};

use crate::core::Shared;
use crate::{StubbornError, StubbornHandle, StubbornInput, StubbornSource, Tagged, Verdict};

/// The default maximum number of submissions of one value.
///
/// ```
/// assert_eq!(pando_stubborn::DEFAULT_MAX_ATTEMPTS, 10);
/// ```
pub const DEFAULT_MAX_ATTEMPTS: u32 = 10;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Config {
    pub(crate) ordered: bool,
    pub(crate) max_attempts: Option<u32>,
    pub(crate) tester_concurrency: usize,
}

/// A through wrapped for stubborn processing. See [`stubborn`].
///
/// The builder methods configure it before it is connected:
///
/// | method | default |
/// |--------|---------|
/// | [`unordered`](Stubborn::unordered) | outputs in input order |
/// | [`max_attempts`](Stubborn::max_attempts), [`unlimited_attempts`](Stubborn::unlimited_attempts) | [`DEFAULT_MAX_ATTEMPTS`] (10) submissions per value |
/// | [`tester_concurrency`](Stubborn::tester_concurrency) | 1 test at a time |
///
/// ```
/// use std::num::{NonZeroU32, NonZeroUsize};
/// use pando_pull_stream::map;
/// use pando_stubborn::{Tagged, Verdict, stubborn};
///
/// let module = stubborn(map(|t: Tagged<u64>| t), |_: u64, r: u64| async move { Verdict::<u64, u64>::Accept(r) })
///     .unordered()
///     .max_attempts(NonZeroU32::new(3).unwrap())
///     .tester_concurrency(NonZeroUsize::new(4).unwrap());
/// assert_eq!(module.handle().stats().output, 0);
/// ```
#[must_use = "modules do nothing until connected"]
pub struct Stubborn<T, F> {
    through: T,
    tester: F,
    config: Config,
    stats: StubbornHandle,
}

/// Stubborn processing: every result of `through` is passed to the async
/// `tester`, which either accepts it, with the value to output, or has a
/// value (the same input or a new one) sent through `through` again.
///
/// This is the `pull-stubborn` module of the Pando dissertation (seed 000,
/// §5.3: resubmitting inputs whose results could not be downloaded), with
/// these guarantees beyond the original:
///
/// * **Ordered** by default: outputs come in input order
///   ([`unordered`](Stubborn::unordered) is opt-in).
/// * **Resubmissions first**: resubmitted values go to the through before
///   new upstream values (lowest position first), and upstream is read
///   lazily, only when the through asks and nothing waits for resubmission.
/// * **Errors are kept**: an upstream error is propagated after the results
///   before it, not turned into a normal end.
/// * **Retry cap**: each value is submitted at most
///   [`max_attempts`](Stubborn::max_attempts) times (10 by default); when the
///   tester still rejects it, the stream ends with
///   [`StubbornError::RetriesExhausted`] naming its position and attempts.
///   No cap is an explicit opt-in: [`unlimited_attempts`](Stubborn::unlimited_attempts).
/// * **Attempt ids**: the through receives each value [`Tagged`] with its
///   position and attempt number, and must return results with the same
///   tag. A result that is not the value's current submission (stale,
///   duplicate, or for a value already accepted) is dropped and counted in
///   [`StubbornStats::stale`](crate::StubbornStats::stale), never output
///   twice.
/// * **Concurrency**: the through may ask its input while the output is
///   being asked, from another task (e.g. a duplex whose sink half is
///   spawned); several consumers can share the output through a
///   [`Serializer`](pando_pull_stream::Serializer); up to
///   [`tester_concurrency`](Stubborn::tester_concurrency) tests run at once.
///
/// The tester is called as `tester(input, result)` with the value that was
/// submitted and the through's result, and returns a future of a
/// [`Verdict`]. The stream's error type `E` must convert from
/// [`StubbornError`]. The through must output (eventually) a result for each
/// submission, without waiting for its input to end: stubborn processing
/// ends the through's input only once every value has been accepted.
///
/// ```
/// use pando_pull_stream::{async_map, collect, count, pull};
/// use pando_stubborn::{Tagged, Verdict, stubborn};
///
/// # futures::executor::block_on(async {
/// // A flaky computation: every third submission is lost (`None`).
/// let mut submissions = 0;
/// let flaky = async_map(move |t: Tagged<u64>| {
///     submissions += 1;
///     let lost = submissions % 3 == 0;
///     async move { Ok(t.map(|x| if lost { None } else { Some(x * x) })) }
/// });
/// let module = stubborn(flaky, |input: u64, result: Option<u64>| async move {
///     match result {
///         Some(square) => Verdict::Accept(square),
///         None => Verdict::Resubmit(input),
///     }
/// });
/// let stats = module.handle();
/// let got = pull!(
///     count::<Box<dyn std::error::Error + Send + Sync>>(6),
///     module,
///     collect::<Vec<_>>(),
/// )
/// .await;
/// assert_eq!(got.unwrap(), [1, 4, 9, 16, 25, 36]);
/// assert_eq!(stats.stats().resubmissions, 2);
/// # });
/// ```
pub fn stubborn<T, F>(through: T, tester: F) -> Stubborn<T, F> {
    Stubborn {
        through,
        tester,
        config: Config {
            ordered: true,
            max_attempts: Some(DEFAULT_MAX_ATTEMPTS),
            tester_concurrency: 1,
        },
        stats: StubbornHandle::default(),
    }
}

impl<T, F> Stubborn<T, F> {
    /// Outputs results as soon as they are accepted, instead of in input
    /// order. A value that exhausts its retries then ends the stream at once.
    ///
    /// ```
    /// use pando_pull_stream::{collect, count, map, pull};
    /// use pando_stubborn::{Tagged, Verdict, stubborn};
    ///
    /// # futures::executor::block_on(async {
    /// let module = stubborn(map(|t: Tagged<u64>| t), |_, r: u64| async move { Verdict::<u64, u64>::Accept(r) });
    /// let got = pull!(count::<Box<dyn std::error::Error + Send + Sync>>(3), module.unordered(), collect::<Vec<_>>()).await;
    /// assert_eq!(got.unwrap(), [1, 2, 3]); // a sequential through keeps the order anyway
    /// # });
    /// ```
    pub fn unordered(mut self) -> Self {
        self.config.ordered = false;
        self
    }

    /// Submits each value at most `n` times (the default is
    /// [`DEFAULT_MAX_ATTEMPTS`]). When the tester rejects the `n`-th result,
    /// the stream ends with [`StubbornError::RetriesExhausted`].
    ///
    /// ```
    /// use std::num::NonZeroU32;
    /// use pando_pull_stream::{collect, count, map, pull};
    /// use pando_stubborn::{StubbornError, Tagged, Verdict, stubborn};
    ///
    /// # futures::executor::block_on(async {
    /// let never = stubborn(map(|t: Tagged<u64>| t), |input: u64, _| async move { Verdict::<u64, u64>::Resubmit(input) })
    ///     .max_attempts(NonZeroU32::new(3).unwrap());
    /// let got = pull!(count::<Box<dyn std::error::Error + Send + Sync>>(5), never, collect::<Vec<_>>()).await;
    /// let err = got.unwrap_err();
    /// assert_eq!(
    ///     err.downcast_ref::<StubbornError>(),
    ///     Some(&StubbornError::RetriesExhausted { position: 0, attempts: 3 })
    /// );
    /// # });
    /// ```
    pub fn max_attempts(mut self, n: NonZeroU32) -> Self {
        self.config.max_attempts = Some(n.get());
        self
    }

    /// Resubmits values for as long as the tester asks: a value that never
    /// passes keeps the stream busy forever. This has to be asked for
    /// explicitly.
    ///
    /// ```
    /// use pando_pull_stream::{collect, count, map, pull};
    /// use pando_stubborn::{Tagged, Verdict, stubborn};
    ///
    /// # futures::executor::block_on(async {
    /// // Accepted at the 25th attempt, beyond the default cap.
    /// let mut tries = 0;
    /// let module = stubborn(map(|t: Tagged<u64>| t), move |input: u64, r: u64| {
    ///     tries += 1;
    ///     let verdict = if tries < 25 { Verdict::Resubmit(input) } else { Verdict::Accept(r) };
    ///     async move { verdict }
    /// })
    /// .unlimited_attempts();
    /// let got = pull!(count::<Box<dyn std::error::Error + Send + Sync>>(1), module, collect::<Vec<_>>()).await;
    /// assert_eq!(got.unwrap(), [1]);
    /// # });
    /// ```
    pub fn unlimited_attempts(mut self) -> Self {
        self.config.max_attempts = None;
        self
    }

    /// Runs up to `n` tests at the same time (1 by default).
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use pando_pull_stream::map;
    /// use pando_stubborn::{Tagged, Verdict, stubborn};
    ///
    /// use pando_pull_stream::{collect, count, pull};
    ///
    /// # futures::executor::block_on(async {
    /// let module = stubborn(map(|t: Tagged<u64>| t), |_: u64, r: u64| async move { Verdict::<u64, u64>::Accept(r) })
    ///     .tester_concurrency(NonZeroUsize::new(8).unwrap());
    /// let got = pull!(count::<Box<dyn std::error::Error + Send + Sync>>(3), module, collect::<Vec<_>>()).await;
    /// assert_eq!(got.unwrap(), [1, 2, 3]);
    /// # });
    /// ```
    pub fn tester_concurrency(mut self, n: NonZeroUsize) -> Self {
        self.config.tester_concurrency = n.get();
        self
    }

    /// A handle on the counters of this module (see
    /// [`StubbornStats`](crate::StubbornStats)), usable from any task.
    ///
    /// See [`StubbornHandle`] for an example.
    pub fn handle(&self) -> StubbornHandle {
        self.stats.clone()
    }
}

impl<S, T, F, Fut, R, O> Connect<S> for Stubborn<T, F>
where
    S: Source,
    S::Item: Clone,
    S::Error: From<StubbornError>,
    T: Connect<StubbornInput<S>>,
    T::Output: Source<Item = Tagged<R>, Error = S::Error>,
    F: FnMut(S::Item, R) -> Fut,
    Fut: Future<Output = Verdict<O, S::Item>>,
{
    type Output = StubbornSource<T::Output, F, Fut, S::Item, O>;

    fn connect(self, upstream: S) -> Self::Output {
        let shared = Shared::new(self.stats.clone());
        let input = StubbornInput::new(upstream, shared.clone());
        StubbornSource::new(
            self.through.connect(input),
            self.tester,
            shared,
            self.config,
            self.stats,
        )
    }
}

impl<T, F> fmt::Debug for Stubborn<T, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stubborn")
            .field("config", &self.config)
            .field("stats", &self.stats.stats())
            .finish_non_exhaustive()
    }
}
