use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::Serializer;
use crate::{Answer, Source};

/// The future returned by [`Serializer::ask`]: the answer to one ask.
///
/// It borrows the serializer. Dropping it before it resolves cancels the ask;
/// an answer already obtained for it goes to the next ask.
///
/// ```
/// use pando_pull_stream::{Answer, SerialAsk, Serializer, count};
/// # futures::executor::block_on(async {
/// let s = Serializer::new(count::<()>(2));
/// let first: SerialAsk<'_, _> = s.ask();
/// drop(first); // cancelled: the value 1 is not lost
/// assert_eq!(s.ask().await, Answer::Value(1));
/// # });
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct SerialAsk<'a, S: Source> {
    pub(super) serializer: &'a Serializer<S>,
    pub(super) ticket: Option<u64>,
}

impl<S: Source> Future for SerialAsk<'_, S>
where
    S::Error: Clone,
{
    type Output = Answer<S::Item, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let ticket = self.ticket.expect("SerialAsk polled after completion");
        let answer = std::task::ready!(self.serializer.lock().poll_ticket(ticket, cx));
        self.ticket = None;
        Poll::Ready(answer)
    }
}

impl<S: Source> Drop for SerialAsk<'_, S> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket {
            self.serializer.lock().cancel(ticket);
        }
    }
}

impl<S: Source> fmt::Debug for SerialAsk<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SerialAsk").field("ticket", &self.ticket).finish()
    }
}
