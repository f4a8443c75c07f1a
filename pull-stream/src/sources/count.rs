use core::fmt;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::{Answer, Source, Termination};

/// A source counting from 1 to `n`. See [`count`].
#[must_use = "sources do nothing unless asked"]
pub struct Count<E> {
    next: u64,
    last: u64,
    termination: Option<Termination<E>>,
    _error: PhantomData<fn() -> E>,
}

/// A source that lazily counts from 1 to `n` (`n` values), then answers `done`.
///
/// This is the source of the seeds' Figure 4.2. (JavaScript's `pull.count(n)`
/// counts from 0 to `n` inclusive; here the stream has exactly `n` values.)
/// `count(u64::MAX)` is, for all practical purposes, infinite.
///
/// ```
/// use pando_pull_stream::{collect, count, pull};
///
/// # futures::executor::block_on(async {
/// assert_eq!(pull!(count::<()>(4), collect::<Vec<u64>>()).await, Ok(vec![1, 2, 3, 4]));
/// assert_eq!(pull!(count::<()>(0), collect::<Vec<u64>>()).await, Ok(vec![]));
/// # });
/// ```
pub fn count<E>(n: u64) -> Count<E> {
    Count {
        next: 1,
        last: n,
        termination: None,
        _error: PhantomData,
    }
}

impl<E> Unpin for Count<E> {}

impl<E> Source for Count<E> {
    type Item = u64;
    type Error = E;

    #[inline]
    fn poll_ask(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Answer<u64, E>> {
        let i = self.next;
        if i > self.last || i == 0 {
            // `i == 0` after wrapping past u64::MAX.
            Poll::Ready(Answer::Done)
        } else {
            self.next = i.wrapping_add(1);
            Poll::Ready(Answer::Value(i))
        }
    }

    fn terminate(mut self: Pin<&mut Self>, request: Termination<E>) {
        self.termination = Some(request);
    }

    fn poll_terminated(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), E>> {
        super::confirm(&mut self.termination)
    }
}

impl<E> fmt::Debug for Count<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Count")
            .field("next", &self.next)
            .field("last", &self.last)
            .finish()
    }
}
