//! [`SourceExt`]: `async` conveniences and adapter methods for every [`Source`].

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::sinks::{CollectFuture, DrainFuture, ForEachFuture};
use crate::throughs::{AsyncMapSource, FilterSource, MapSource, TakeSource};
use crate::{Answer, BoxSource, Connect, Source, Termination};

/// Methods available on every [`Source`]: one-request futures (`ask`,
/// `abort`, `fail`), flow-order composition (`pipe`), and the standard
/// throughs and sinks as methods.
///
/// ```
/// use pando_pull_stream::{Answer, SourceExt, count};
///
/// # futures::executor::block_on(async {
/// let mut source = count::<()>(10).map(|x| x * 2);
/// assert_eq!(source.ask().await, Answer::Value(2));
/// assert_eq!(source.ask().await, Answer::Value(4));
/// assert_eq!(source.abort().await, Ok(())); // early termination, confirmed
/// # });
/// ```
pub trait SourceExt: Source {
    /// Makes one `ask` request; resolves to its answer.
    ///
    /// Dropping the future before it resolves leaves the request pending: the
    /// next `ask` continues it.
    ///
    /// ```
    /// use pando_pull_stream::{Answer, SourceExt, values};
    /// # futures::executor::block_on(async {
    /// let mut s = values::<_, ()>([1]);
    /// assert_eq!(s.ask().await, Answer::Value(1));
    /// assert_eq!(s.ask().await, Answer::Done);
    /// # });
    /// ```
    fn ask(&mut self) -> Ask<'_, Self>
    where
        Self: Unpin,
    {
        Ask { source: self }
    }

    /// Makes an `abort` request; resolves to its answer, `Ok(())` for `done`.
    ///
    /// ```
    /// use pando_pull_stream::{SourceExt, count};
    /// # futures::executor::block_on(async {
    /// assert_eq!(count::<()>(5).abort().await, Ok(()));
    /// # });
    /// ```
    fn abort(&mut self) -> Terminate<'_, Self>
    where
        Self: Unpin,
    {
        Terminate {
            source: self,
            request: Some(Termination::Abort),
        }
    }

    /// Makes a `fail` request with `error`; resolves to its answer (usually
    /// `Err(error)` echoed back).
    ///
    /// ```
    /// use pando_pull_stream::{SourceExt, count};
    /// # futures::executor::block_on(async {
    /// assert_eq!(count(5).fail("cancelled").await, Err("cancelled"));
    /// # });
    /// ```
    fn fail(&mut self, error: Self::Error) -> Terminate<'_, Self>
    where
        Self: Unpin,
    {
        Terminate {
            source: self,
            request: Some(Termination::Fail(error)),
        }
    }

    /// Connects `module` (a through or a sink) to this source, in flow order.
    ///
    /// ```
    /// use pando_pull_stream::{SourceExt, collect, count, map};
    /// # futures::executor::block_on(async {
    /// let got = count::<()>(2).pipe(map(|x| x * 10)).pipe(collect::<Vec<_>>()).await;
    /// assert_eq!(got, Ok(vec![10, 20]));
    /// # });
    /// ```
    fn pipe<M: Connect<Self>>(self, module: M) -> M::Output
    where
        Self: Sized,
    {
        module.connect(self)
    }

    /// The [`map`](crate::map) through, as a method.
    ///
    /// ```
    /// use pando_pull_stream::{SourceExt, count};
    /// # futures::executor::block_on(async {
    /// assert_eq!(count::<()>(3).map(|x| x + 1).collect::<Vec<_>>().await, Ok(vec![2, 3, 4]));
    /// # });
    /// ```
    fn map<U, F: FnMut(Self::Item) -> U>(self, f: F) -> MapSource<Self, F>
    where
        Self: Sized,
    {
        crate::map(f).connect(self)
    }

    /// The [`filter`](crate::filter) through, as a method.
    ///
    /// ```
    /// use pando_pull_stream::{SourceExt, count};
    /// # futures::executor::block_on(async {
    /// assert_eq!(count::<()>(4).filter(|x| x % 2 == 0).collect::<Vec<_>>().await, Ok(vec![2, 4]));
    /// # });
    /// ```
    fn filter<P: FnMut(&Self::Item) -> bool>(self, predicate: P) -> FilterSource<Self, P>
    where
        Self: Sized,
    {
        crate::filter(predicate).connect(self)
    }

    /// The [`take`](crate::take) through, as a method.
    ///
    /// ```
    /// use pando_pull_stream::{SourceExt, count};
    /// # futures::executor::block_on(async {
    /// assert_eq!(count::<()>(100).take(2).collect::<Vec<_>>().await, Ok(vec![1, 2]));
    /// # });
    /// ```
    fn take(self, n: u64) -> TakeSource<Self>
    where
        Self: Sized,
    {
        crate::take(n).connect(self)
    }

    /// The [`async_map`](crate::async_map) through, as a method.
    ///
    /// ```
    /// use pando_pull_stream::{SourceExt, count};
    /// # futures::executor::block_on(async {
    /// let got = count::<()>(2).async_map(|x| async move { Ok(x * 3) }).collect::<Vec<_>>().await;
    /// assert_eq!(got, Ok(vec![3, 6]));
    /// # });
    /// ```
    fn async_map<U, F, Fut>(self, f: F) -> AsyncMapSource<Self, F, Fut>
    where
        Self: Sized,
        F: FnMut(Self::Item) -> Fut,
        Fut: Future<Output = Result<U, Self::Error>>,
    {
        crate::async_map(f).connect(self)
    }

    /// The [`drain`](crate::drain) sink, as a method.
    ///
    /// ```
    /// use pando_pull_stream::{SourceExt, count};
    /// # futures::executor::block_on(async {
    /// assert_eq!(count::<()>(3).drain().await, Ok(()));
    /// # });
    /// ```
    fn drain(self) -> DrainFuture<Self>
    where
        Self: Sized,
    {
        crate::drain().connect(self)
    }

    /// The [`collect`](crate::collect) sink, as a method.
    ///
    /// ```
    /// use pando_pull_stream::{SourceExt, values};
    /// # futures::executor::block_on(async {
    /// assert_eq!(values::<_, ()>("ab".chars()).collect::<String>().await, Ok("ab".into()));
    /// # });
    /// ```
    fn collect<C: Default + Extend<Self::Item>>(self) -> CollectFuture<Self, C>
    where
        Self: Sized,
    {
        crate::collect().connect(self)
    }

    /// The [`for_each`](crate::for_each) sink, as a method.
    ///
    /// ```
    /// use pando_pull_stream::{SourceExt, count};
    /// # futures::executor::block_on(async {
    /// let mut seen = vec![];
    /// count::<()>(2).for_each(|x| seen.push(x)).await.unwrap();
    /// assert_eq!(seen, [1, 2]);
    /// # });
    /// ```
    fn for_each<F: FnMut(Self::Item)>(self, f: F) -> ForEachFuture<Self, F>
    where
        Self: Sized,
    {
        crate::for_each(f).connect(self)
    }

    /// Erases the type of this source (one allocation, here, not per item).
    ///
    /// ```
    /// use pando_pull_stream::{BoxSource, SourceExt, count, empty};
    /// let sources: Vec<BoxSource<'static, u64, ()>> = vec![count(3).boxed(), empty().boxed()];
    /// assert_eq!(sources.len(), 2);
    /// ```
    fn boxed<'a>(self) -> BoxSource<'a, Self::Item, Self::Error>
    where
        Self: Sized + Send + 'a,
    {
        Box::pin(self)
    }

    /// Uses this source as a `futures::Stream` of `Result<Item, Error>`.
    /// See [`IntoStream`](crate::IntoStream).
    ///
    /// ```
    /// use futures::TryStreamExt;
    /// use pando_pull_stream::{SourceExt, count};
    /// # futures::executor::block_on(async {
    /// let v: Vec<u64> = count::<()>(3).into_stream().try_collect().await.unwrap();
    /// assert_eq!(v, [1, 2, 3]);
    /// # });
    /// ```
    #[cfg(feature = "futures-interop")]
    fn into_stream(self) -> crate::IntoStream<Self>
    where
        Self: Sized,
    {
        crate::into_stream(self)
    }

    /// Polls [`poll_ask`](Source::poll_ask) on an `Unpin` source.
    ///
    /// ```
    /// use core::task::Poll;
    /// use pando_pull_stream::{Answer, SourceExt, count};
    /// let mut cx = core::task::Context::from_waker(core::task::Waker::noop());
    /// assert_eq!(count::<()>(1).poll_ask_unpin(&mut cx), Poll::Ready(Answer::Value(1)));
    /// ```
    fn poll_ask_unpin(&mut self, cx: &mut Context<'_>) -> Poll<Answer<Self::Item, Self::Error>>
    where
        Self: Unpin,
    {
        Pin::new(self).poll_ask(cx)
    }
}

impl<S: Source + ?Sized> SourceExt for S {}

/// The future returned by [`SourceExt::ask`].
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Ask<'a, S: ?Sized> {
    source: &'a mut S,
}

impl<S: Source + Unpin + ?Sized> Future for Ask<'_, S> {
    type Output = Answer<S::Item, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut *self.source).poll_ask(cx)
    }
}

/// The future returned by [`SourceExt::abort`] and [`SourceExt::fail`].
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Terminate<'a, S: Source + ?Sized> {
    source: &'a mut S,
    request: Option<Termination<S::Error>>,
}

impl<S: Source + ?Sized> Unpin for Terminate<'_, S> {}

impl<S: Source + Unpin + ?Sized> Future for Terminate<'_, S> {
    type Output = Result<(), S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(request) = this.request.take() {
            Pin::new(&mut *this.source).terminate(request);
        }
        Pin::new(&mut *this.source).poll_terminated(cx)
    }
}
