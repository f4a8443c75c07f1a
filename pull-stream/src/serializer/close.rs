use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Serializer;
use crate::{Source, Termination};

/// The future returned by [`Serializer::close`]: the confirmation of the
/// termination of the shared upstream.
///
/// The termination is sent when the future is first polled.
///
/// ```
/// use pando_pull_stream::{Answer, Close, Serializer, Termination, count};
/// # futures::executor::block_on(async {
/// let s = Serializer::new(count::<&str>(10));
/// let close: Close<'_, _> = s.close(Termination::Fail("stop"));
/// // The upstream had not ended: the fail is forwarded, and confirmed.
/// assert_eq!(close.await, Err("stop"));
/// assert_eq!(s.ask().await, Answer::Done);
/// # });
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Close<'a, S: Source> {
    pub(super) serializer: &'a Serializer<S>,
    pub(super) request: Option<Termination<S::Error>>,
}

impl<S: Source> Unpin for Close<'_, S> {}

impl<S: Source> Future for Close<'_, S> {
    type Output = Result<(), S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut inner = self.serializer.lock();
        if let Some(request) = self.request.take() {
            if let Some(local) = inner.terminate(request) {
                return Poll::Ready(local.confirm());
            }
        }
        inner.poll_terminating(cx)
    }
}

impl<S: Source> fmt::Debug for Close<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Close")
            .field("started", &self.request.is_none())
            .finish()
    }
}
