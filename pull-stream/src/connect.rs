//! [`Connect`]: how throughs and sinks consume a source, and [`Compose`] for
//! partial composition.

/// A module that consumes a source: a *through* (its output is another
/// [`Source`](crate::Source)) or a *sink* (its output is a [`Future`] that
/// drives the pipeline).
///
/// This is the function form of the seeds' modules: a through is a function
/// from a source to a source, a sink a function from a source to the
/// computation that reads it. Any `FnOnce(S) -> O` closure is a module.
///
/// ```
/// use pando_pull_stream::{Connect, collect, count, map, pull};
///
/// # futures::executor::block_on(async {
/// // `connect` in inverted order, like the seeds' `sink(transformer(source))`…
/// let squares = collect::<Vec<u64>>().connect(map(|x: u64| x * x).connect(count::<()>(3)));
/// assert_eq!(squares.await, Ok(vec![1, 4, 9]));
/// // …and the same in flow order with `pull!`.
/// let squares = pull!(count::<()>(3), map(|x: u64| x * x), collect::<Vec<u64>>());
/// assert_eq!(squares.await, Ok(vec![1, 4, 9]));
/// # });
/// ```
pub trait Connect<S> {
    /// What connecting produces: a source for a through, a future for a sink.
    type Output;

    /// Connects this module to its upstream `source`.
    fn connect(self, source: S) -> Self::Output;
}

impl<S, O, F: FnOnce(S) -> O> Connect<S> for F {
    type Output = O;

    #[inline]
    fn connect(self, source: S) -> O {
        self(source)
    }
}

/// Two modules composed in flow order: `first` then `second`.
///
/// Composition is partial, as in the seeds (Figure 4.11): through + through is
/// a through, and through + sink is a sink. Build it with
/// [`compose!`](crate::compose!).
///
/// ```
/// use pando_pull_stream::{Compose, Connect, collect, count, map};
///
/// # futures::executor::block_on(async {
/// let inc_by_two = Compose::new(map(|x: u64| x + 1), map(|x: u64| x + 1));
/// let got = collect::<Vec<u64>>().connect(inc_by_two.connect(count::<()>(2)));
/// assert_eq!(got.await, Ok(vec![3, 4]));
/// # });
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use = "modules do nothing until connected"]
pub struct Compose<A, B> {
    first: A,
    second: B,
}

impl<A, B> Compose<A, B> {
    /// Composes `first` and then `second`.
    ///
    /// ```
    /// use pando_pull_stream::{Compose, map, take};
    /// let first_three_doubled = Compose::new(take(3), map(|x: u64| 2 * x));
    /// # let _ = first_three_doubled;
    /// ```
    pub fn new(first: A, second: B) -> Self {
        Compose { first, second }
    }
}

impl<S, A, B> Connect<S> for Compose<A, B>
where
    A: Connect<S>,
    B: Connect<A::Output>,
{
    type Output = B::Output;

    #[inline]
    fn connect(self, source: S) -> B::Output {
        self.second.connect(self.first.connect(source))
    }
}

/// Builds a pipeline in flow order: a source, then throughs, then (optionally) a sink.
///
/// `pull!(source, t1, …, tn)` is a source; `pull!(source, t1, …, sink)` is the
/// future returned by the sink, which runs the pipeline when awaited. It is the
/// seeds' `pull` (Figure 4.5). For compositions that do not start with a
/// source, use [`compose!`](crate::compose!).
///
/// ```
/// use pando_pull_stream::{collect, filter, map, pull, take, infinite};
///
/// # futures::executor::block_on(async {
/// let mut n = 0;
/// let evens = pull!(
///     infinite::<_, _, ()>(move || { n += 1; n }),
///     filter(|x: &u32| x % 2 == 0),
///     map(|x: u32| x * 10),
///     take(3),
///     collect::<Vec<_>>(),
/// );
/// assert_eq!(evens.await, Ok(vec![20, 40, 60]));
/// # });
/// ```
#[macro_export]
macro_rules! pull {
    ($source:expr $(,)?) => { $source };
    ($source:expr, $($module:expr),+ $(,)?) => {{
        let source = $source;
        $( let source = $crate::Connect::connect($module, source); )+
        source
    }};
}

/// Composes modules in flow order without a source: the result is a through
/// (if the last module is a through) or a sink (if it is a sink).
///
/// `compose!(a, b, c)` is `Compose::new(a, Compose::new(b, c))`.
///
/// ```
/// use pando_pull_stream::{collect, compose, count, map, pull};
///
/// # futures::executor::block_on(async {
/// let inc_by_2 = compose!(map(|x: u64| x + 1), map(|x: u64| x + 1)); // through + through = through
/// let sink2 = compose!(inc_by_2, collect::<Vec<u64>>());                // through + sink = sink
/// assert_eq!(pull!(count::<()>(3), sink2).await, Ok(vec![3, 4, 5]));
/// # });
/// ```
#[macro_export]
macro_rules! compose {
    ($module:expr $(,)?) => { $module };
    ($first:expr, $($rest:expr),+ $(,)?) => {
        $crate::Compose::new($first, $crate::compose!($($rest),+))
    };
}
