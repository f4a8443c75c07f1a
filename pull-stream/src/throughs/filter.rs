use core::fmt;
use core::pin::Pin;
use core::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::{Answer, Connect, Source, Termination};

/// The `filter` through module. See [`filter`](fn@filter).
#[derive(Clone, Copy)]
#[must_use = "modules do nothing until connected"]
pub struct Filter<P> {
    predicate: P,
}

/// A through that passes on only the values for which `predicate` is true.
///
/// One ask downstream may cause several asks upstream, one at a time.
///
/// ```
/// use pando_pull_stream::{collect, count, filter, pull};
///
/// # futures::executor::block_on(async {
/// let odd = pull!(count::<()>(6), filter(|x: &u64| x % 2 == 1), collect::<Vec<_>>()).await;
/// assert_eq!(odd, Ok(vec![1, 3, 5]));
/// # });
/// ```
pub fn filter<P>(predicate: P) -> Filter<P> {
    Filter { predicate }
}

impl<S: Source, P: FnMut(&S::Item) -> bool> Connect<S> for Filter<P> {
    type Output = FilterSource<S, P>;

    fn connect(self, upstream: S) -> FilterSource<S, P> {
        FilterSource {
            upstream,
            predicate: self.predicate,
        }
    }
}

pin_project! {
    /// The source made by connecting [`filter`](fn@filter) to an upstream source.
    #[must_use = "sources do nothing unless asked"]
    pub struct FilterSource<S, P> {
        #[pin]
        upstream: S,
        predicate: P,
    }
}

impl<S: Source, P: FnMut(&S::Item) -> bool> Source for FilterSource<S, P> {
    type Item = S::Item;
    type Error = S::Error;

    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>> {
        let mut this = self.project();
        loop {
            match ready!(this.upstream.as_mut().poll_ask(cx)) {
                Answer::Value(v) if !(this.predicate)(&v) => continue,
                answer => return Poll::Ready(answer),
            }
        }
    }

    fn terminate(self: Pin<&mut Self>, request: Termination<S::Error>) {
        self.project().upstream.terminate(request)
    }

    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.project().upstream.poll_terminated(cx)
    }
}

impl<P> fmt::Debug for Filter<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Filter").finish_non_exhaustive()
    }
}

impl<S: fmt::Debug, P> fmt::Debug for FilterSource<S, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FilterSource")
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}
