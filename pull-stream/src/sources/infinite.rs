use core::fmt;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::{Answer, Source, Termination};

/// A source that never ends. See [`infinite`].
#[must_use = "sources do nothing unless asked"]
pub struct Infinite<F, E> {
    generate: Option<F>,
    termination: Option<Termination<E>>,
    _error: PhantomData<fn() -> E>,
}

/// A source that answers every ask with `generate()`: an infinite stream.
///
/// It only ends when terminated by its consumer (abort or fail). Values are
/// generated only when asked, so an infinite source is safe to use with a
/// consumer that stops early.
///
/// ```
/// use pando_pull_stream::{collect, infinite, pull, take};
///
/// # futures::executor::block_on(async {
/// let got = pull!(infinite::<_, _, ()>(|| 'x'), take(3), collect::<String>()).await;
/// assert_eq!(got, Ok("xxx".to_string()));
/// # });
/// ```
pub fn infinite<T, F: FnMut() -> T, E>(generate: F) -> Infinite<F, E> {
    Infinite {
        generate: Some(generate),
        termination: None,
        _error: PhantomData,
    }
}

impl<F, E> Unpin for Infinite<F, E> {}

impl<T, F: FnMut() -> T, E> Source for Infinite<F, E> {
    type Item = T;
    type Error = E;

    #[inline]
    fn poll_ask(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Answer<T, E>> {
        match self.generate.as_mut() {
            Some(generate) => Poll::Ready(Answer::Value(generate())),
            // Only reachable by a consumer asking after terminating (invariant 1).
            None => Poll::Ready(Answer::Done),
        }
    }

    fn terminate(mut self: Pin<&mut Self>, request: Termination<E>) {
        self.generate = None;
        self.termination = Some(request);
    }

    fn poll_terminated(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), E>> {
        super::confirm(&mut self.termination)
    }
}

impl<F, E> fmt::Debug for Infinite<F, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Infinite")
            .field("terminated", &self.generate.is_none())
            .finish_non_exhaustive()
    }
}
