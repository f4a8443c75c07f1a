//! [`ConcurrentAsk`] and [`OwnedConcurrentAsk`]: asks of a sub-stream that
//! may run concurrently with others.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use pando_pull_stream::Answer;

use crate::machine::SubId;
use crate::shared::{Shared, poll_sub_ask};
use crate::sync::Arc;
use crate::{Lent, SubSource};

/// The future returned by [`SubSource::ask`](crate::SubSource::ask).
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct ConcurrentAsk<'a, T, R, E, F> {
    source: &'a SubSource<T, R, E, F>,
}

impl<'a, T, R, E, F> ConcurrentAsk<'a, T, R, E, F> {
    pub(crate) fn new(source: &'a SubSource<T, R, E, F>) -> Self {
        ConcurrentAsk { source }
    }
}

impl<T, R, E, F> Unpin for ConcurrentAsk<'_, T, R, E, F> {}

impl<T, R, E, F> Future for ConcurrentAsk<'_, T, R, E, F>
where
    T: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    type Output = Answer<Lent<T>, F>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let source = self.source;
        if source.is_ended() {
            return Poll::Ready(Answer::Done);
        }
        poll_sub_ask(source.shared(), source.sub_stream(), cx)
    }
}

/// The future returned by [`SubSource::ask_owned`](crate::SubSource::ask_owned): a concurrent ask that
/// owns a handle on the lender.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct OwnedConcurrentAsk<T, R, E, F> {
    shared: Arc<Shared<T, R, E>>,
    k: SubId,
    _error: PhantomData<fn() -> F>,
}

impl<T, R, E, F> OwnedConcurrentAsk<T, R, E, F> {
    pub(crate) fn new(shared: Arc<Shared<T, R, E>>, k: SubId) -> Self {
        OwnedConcurrentAsk {
            shared,
            k,
            _error: PhantomData,
        }
    }
}

impl<T, R, E, F> Unpin for OwnedConcurrentAsk<T, R, E, F> {}

impl<T, R, E, F> Future for OwnedConcurrentAsk<T, R, E, F>
where
    T: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    type Output = Answer<Lent<T>, F>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // An ended source is not alive in the core: `sub_ask` answers `done`.
        poll_sub_ask(&self.shared, self.k, cx)
    }
}

impl<T, R, E, F> fmt::Debug for OwnedConcurrentAsk<T, R, E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedConcurrentAsk")
            .field("sub_stream", &self.k)
            .finish()
    }
}

impl<T, R, E, F> fmt::Debug for ConcurrentAsk<'_, T, R, E, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrentAsk")
            .field("sub_stream", &self.source.sub_stream())
            .finish()
    }
}
