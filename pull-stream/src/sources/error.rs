use core::fmt;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::{Answer, Source, Termination};

/// A source that fails at once. See [`error`](fn@error).
#[must_use = "sources do nothing unless asked"]
pub struct Error<T, E> {
    error: Option<E>,
    termination: Option<Termination<E>>,
    _item: PhantomData<fn() -> T>,
}

/// A source that answers its first ask with `error(err)`.
///
/// If it is terminated before being asked, the error is dropped and the
/// termination is confirmed normally.
///
/// ```
/// use pando_pull_stream::{collect, error, pull};
///
/// # futures::executor::block_on(async {
/// let got = pull!(error::<u8, _>("no disk"), collect::<Vec<_>>()).await;
/// assert_eq!(got, Err("no disk"));
/// # });
/// ```
pub fn error<T, E>(err: E) -> Error<T, E> {
    Error {
        error: Some(err),
        termination: None,
        _item: PhantomData,
    }
}

impl<T, E> Unpin for Error<T, E> {}

impl<T, E> Source for Error<T, E> {
    type Item = T;
    type Error = E;

    fn poll_ask(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Answer<T, E>> {
        Poll::Ready(self.error.take().map_or(Answer::Done, Answer::Error))
    }

    fn terminate(mut self: Pin<&mut Self>, request: Termination<E>) {
        self.error = None;
        self.termination = Some(request);
    }

    fn poll_terminated(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), E>> {
        super::confirm(&mut self.termination)
    }
}

impl<T, E: fmt::Debug> fmt::Debug for Error<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}
