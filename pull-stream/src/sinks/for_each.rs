use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::{Answer, Connect, Source};

/// The `for_each` sink module. See [`for_each`](fn@for_each).
#[derive(Clone, Copy)]
#[must_use = "modules do nothing until connected"]
pub struct ForEach<F> {
    f: F,
}

/// A sink that asks for every value and calls `f` on it.
///
/// ```
/// use pando_pull_stream::{count, for_each, pull};
///
/// # futures::executor::block_on(async {
/// let mut sum = 0;
/// pull!(count::<()>(4), for_each(|x| sum += x)).await.unwrap();
/// assert_eq!(sum, 10);
/// # });
/// ```
pub fn for_each<F>(f: F) -> ForEach<F> {
    ForEach { f }
}

impl<S: Source, F: FnMut(S::Item)> Connect<S> for ForEach<F> {
    type Output = ForEachFuture<S, F>;

    fn connect(self, source: S) -> ForEachFuture<S, F> {
        ForEachFuture { source, f: self.f }
    }
}

pin_project! {
    /// The future made by connecting [`for_each`](fn@for_each) to a source.
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct ForEachFuture<S, F> {
        #[pin]
        source: S,
        f: F,
    }
}

impl<S: Source, F: FnMut(S::Item)> Future for ForEachFuture<S, F> {
    type Output = Result<(), S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match ready!(this.source.as_mut().poll_ask(cx)) {
                Answer::Value(v) => (this.f)(v),
                Answer::Done => return Poll::Ready(Ok(())),
                Answer::Error(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl<F> fmt::Debug for ForEach<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForEach").finish_non_exhaustive()
    }
}

impl<S: fmt::Debug, F> fmt::Debug for ForEachFuture<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ForEachFuture")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}
