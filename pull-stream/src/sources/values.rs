use core::fmt;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::{Answer, Source, Termination};

/// A source of the values of an iterator. See [`values`].
#[must_use = "sources do nothing unless asked"]
pub struct Values<I, E> {
    iter: Option<I>,
    termination: Option<Termination<E>>,
    _error: PhantomData<fn() -> E>,
}

/// A source that answers each ask with the next value of `iter`, then `done`.
///
/// The iterator is advanced only when asked (lazily), and dropped as soon as
/// it is exhausted or the source is terminated.
///
/// ```
/// use pando_pull_stream::{collect, pull, values};
///
/// # futures::executor::block_on(async {
/// let got = pull!(values::<_, ()>(["a", "b"]), collect::<Vec<_>>()).await;
/// assert_eq!(got, Ok(vec!["a", "b"]));
/// # });
/// ```
pub fn values<I: IntoIterator, E>(iter: I) -> Values<I::IntoIter, E> {
    Values {
        iter: Some(iter.into_iter()),
        termination: None,
        _error: PhantomData,
    }
}

impl<I, E> Unpin for Values<I, E> {}

impl<I: Iterator, E> Source for Values<I, E> {
    type Item = I::Item;
    type Error = E;

    #[inline]
    fn poll_ask(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Answer<I::Item, E>> {
        match self.iter.as_mut().and_then(Iterator::next) {
            Some(v) => Poll::Ready(Answer::Value(v)),
            None => {
                self.iter = None;
                Poll::Ready(Answer::Done)
            }
        }
    }

    fn terminate(mut self: Pin<&mut Self>, request: Termination<E>) {
        self.iter = None;
        self.termination = Some(request);
    }

    fn poll_terminated(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), E>> {
        super::confirm(&mut self.termination)
    }
}

impl<I: fmt::Debug, E> fmt::Debug for Values<I, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Values")
            .field("iter", &self.iter)
            .finish_non_exhaustive()
    }
}
