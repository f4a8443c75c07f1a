use core::fmt;
use core::pin::Pin;
use core::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::{Answer, Connect, Source, Termination};

/// The `map` through module. See [`map`](fn@map).
#[derive(Clone, Copy)]
#[must_use = "modules do nothing until connected"]
pub struct Map<F> {
    f: F,
}

/// A through that applies `f` to every value.
///
/// Requests and termination pass straight through; `map` adds no state and no
/// allocation.
///
/// ```
/// use pando_pull_stream::{collect, count, map, pull};
///
/// # futures::executor::block_on(async {
/// let got = pull!(count::<()>(3), map(|x: u64| x + 1), collect::<Vec<_>>()).await;
/// assert_eq!(got, Ok(vec![2, 3, 4]));
/// # });
/// ```
pub fn map<F>(f: F) -> Map<F> {
    Map { f }
}

impl<S: Source, U, F: FnMut(S::Item) -> U> Connect<S> for Map<F> {
    type Output = MapSource<S, F>;

    #[inline]
    fn connect(self, upstream: S) -> MapSource<S, F> {
        MapSource { upstream, f: self.f }
    }
}

pin_project! {
    /// The source made by connecting [`map`](fn@map) to an upstream source.
    #[must_use = "sources do nothing unless asked"]
    pub struct MapSource<S, F> {
        #[pin]
        upstream: S,
        f: F,
    }
}

impl<S: Source, U, F: FnMut(S::Item) -> U> Source for MapSource<S, F> {
    type Item = U;
    type Error = S::Error;

    #[inline]
    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<U, S::Error>> {
        let this = self.project();
        Poll::Ready(ready!(this.upstream.poll_ask(cx)).map(this.f))
    }

    #[inline]
    fn terminate(self: Pin<&mut Self>, request: Termination<S::Error>) {
        self.project().upstream.terminate(request)
    }

    #[inline]
    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.project().upstream.poll_terminated(cx)
    }
}

impl<F> fmt::Debug for Map<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Map").finish_non_exhaustive()
    }
}

impl<S: fmt::Debug, F> fmt::Debug for MapSource<S, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapSource")
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}
