use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::inner::{Inner, lock};
use crate::sync::{Arc, Mutex};
use crate::{Answer, Source};

/// The future returned by [`Serializer::ask_owned`](super::Serializer::ask_owned),
/// and held by [`AskNow::Pending`](super::AskNow::Pending): the answer to one
/// ask.
///
/// It owns a handle on the serializer, so it is `'static` when the source
/// is, and can be stored or moved to another task. Dropping it before it
/// resolves cancels the ask; an answer already obtained for it goes to the
/// next ask.
///
/// ```
/// use pando_pull_stream::{Answer, OwnedAsk, Serializer, values};
/// # futures::executor::block_on(async {
/// let s = Serializer::new(values::<_, ()>(["a", "b"]));
/// let asks: Vec<OwnedAsk<_>> = vec![s.ask_owned(), s.ask_owned()];
/// drop(s);
/// let answers = futures::future::join_all(asks).await;
/// assert_eq!(answers, [Answer::Value("a"), Answer::Value("b")]);
/// # });
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct OwnedAsk<S: Source> {
    pub(super) shared: Arc<Mutex<Inner<S>>>,
    pub(super) ticket: Option<u64>,
}

impl<S: Source> Unpin for OwnedAsk<S> {}

impl<S: Source> Future for OwnedAsk<S>
where
    S::Error: Clone,
{
    type Output = Answer<S::Item, S::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let ticket = self.ticket.expect("OwnedAsk polled after completion");
        let answer = std::task::ready!(lock(&self.shared).poll_ticket(ticket, cx));
        self.ticket = None;
        Poll::Ready(answer)
    }
}

impl<S: Source> Drop for OwnedAsk<S> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket {
            lock(&self.shared).cancel(ticket);
        }
    }
}

impl<S: Source> fmt::Debug for OwnedAsk<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedAsk").field("ticket", &self.ticket).finish()
    }
}
