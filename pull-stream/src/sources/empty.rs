use core::fmt;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::{Answer, Source, Termination};

/// A source with no values. See [`empty`].
#[must_use = "sources do nothing unless asked"]
pub struct Empty<T, E> {
    termination: Option<Termination<E>>,
    _types: PhantomData<fn() -> (T, E)>,
}

/// A source that answers its first ask with `done`.
///
/// ```
/// use pando_pull_stream::{collect, empty, pull};
///
/// # futures::executor::block_on(async {
/// assert_eq!(pull!(empty::<u8, ()>(), collect::<Vec<_>>()).await, Ok(vec![]));
/// # });
/// ```
pub fn empty<T, E>() -> Empty<T, E> {
    Empty {
        termination: None,
        _types: PhantomData,
    }
}

impl<T, E> Unpin for Empty<T, E> {}

impl<T, E> Source for Empty<T, E> {
    type Item = T;
    type Error = E;

    fn poll_ask(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Answer<T, E>> {
        Poll::Ready(Answer::Done)
    }

    fn terminate(mut self: Pin<&mut Self>, request: Termination<E>) {
        self.termination = Some(request);
    }

    fn poll_terminated(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), E>> {
        super::confirm(&mut self.termination)
    }
}

impl<T, E> fmt::Debug for Empty<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Empty").finish_non_exhaustive()
    }
}
