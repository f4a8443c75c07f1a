use core::fmt;
use core::future::Future;
use core::marker::PhantomData;
use core::mem;
use core::pin::Pin;
use core::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::{Answer, Connect, Source};

/// The `collect` sink module. See [`collect`](fn@collect).
#[must_use = "modules do nothing until connected"]
pub struct Collect<C> {
    _collection: PhantomData<fn() -> C>,
}

/// A sink that asks for every value and collects them into `C` (a `Vec`, a
/// `String`, a `HashSet`, …).
///
/// The future resolves to `Ok(collection)` on `done`, and to `Err(e)` on
/// `error(e)` (the values collected so far are dropped).
///
/// ```
/// use std::collections::BTreeSet;
/// use pando_pull_stream::{collect, pull, values};
///
/// # futures::executor::block_on(async {
/// let got = pull!(values::<_, ()>([3, 1, 3]), collect::<BTreeSet<_>>()).await;
/// assert_eq!(got, Ok(BTreeSet::from([1, 3])));
/// # });
/// ```
pub fn collect<C>() -> Collect<C> {
    Collect {
        _collection: PhantomData,
    }
}

impl<S: Source, C: Default + Extend<S::Item>> Connect<S> for Collect<C> {
    type Output = CollectFuture<S, C>;

    fn connect(self, source: S) -> CollectFuture<S, C> {
        CollectFuture {
            source,
            collection: C::default(),
        }
    }
}

pin_project! {
    /// The future made by connecting [`collect`](fn@collect) to a source.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct CollectFuture<S, C> {
        #[pin]
        source: S,
        collection: C,
    }
}

impl<S: Source, C: Default + Extend<S::Item>> Future for CollectFuture<S, C> {
    type Output = Result<C, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match ready!(this.source.as_mut().poll_ask(cx)) {
                Answer::Value(v) => this.collection.extend(Some(v)),
                Answer::Done => return Poll::Ready(Ok(mem::take(this.collection))),
                Answer::Error(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl<C> Clone for Collect<C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for Collect<C> {}

impl<C> fmt::Debug for Collect<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Collect").finish()
    }
}

impl<S: fmt::Debug, C: fmt::Debug> fmt::Debug for CollectFuture<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CollectFuture")
            .field("source", &self.source)
            .field("collection", &self.collection)
            .finish()
    }
}
