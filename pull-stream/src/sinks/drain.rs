use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::{Answer, Connect, Source};

/// The `drain` sink module. See [`drain`](fn@drain).
#[derive(Clone, Copy, Debug, Default)]
#[must_use = "modules do nothing until connected"]
pub struct Drain;

/// A sink that asks for every value and discards it.
///
/// The future resolves to `Ok(())` when the source answers `done`, and to
/// `Err(e)` when it answers `error(e)`.
///
/// ```
/// use pando_pull_stream::{count, drain, pull};
///
/// # futures::executor::block_on(async {
/// assert_eq!(pull!(count::<()>(1000), drain()).await, Ok(()));
/// # });
/// ```
pub fn drain() -> Drain {
    Drain
}

impl<S: Source> Connect<S> for Drain {
    type Output = DrainFuture<S>;

    fn connect(self, source: S) -> DrainFuture<S> {
        DrainFuture { source }
    }
}

pin_project! {
    /// The future made by connecting [`drain`](fn@drain) to a source.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct DrainFuture<S> {
        #[pin]
        source: S,
    }
}

impl<S: Source> Future for DrainFuture<S> {
    type Output = Result<(), S::Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut source = self.project().source;
        loop {
            match ready!(source.as_mut().poll_ask(cx)) {
                Answer::Value(_) => {}
                Answer::Done => return Poll::Ready(Ok(())),
                Answer::Error(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}
