use super::OwnedAsk;
use crate::{Answer, Source};

/// What [`Serializer::ask_now`](super::Serializer::ask_now) gives: the
/// answer, or the pending ask.
///
/// ```
/// use core::task::{Context, Waker};
/// use pando_pull_stream::{Answer, AskNow, Serializer, count};
/// # futures::executor::block_on(async {
/// let s = Serializer::new(count::<()>(1));
/// let mut cx = Context::from_waker(Waker::noop());
/// let answer = match s.ask_now(&mut cx) {
///     AskNow::Answered(answer) => answer,
///     AskNow::Pending(ask) => ask.await,
/// };
/// assert_eq!(answer, Answer::Value(1));
/// # });
/// ```
#[derive(Debug)]
#[must_use = "an ask was made: its answer, or the pending ask, is lost if ignored"]
pub enum AskNow<S: Source> {
    /// The ask was answered at once.
    Answered(Answer<S::Item, S::Error>),
    /// The ask is pending; poll this future for its answer (the current
    /// task was registered to be woken).
    Pending(OwnedAsk<S>),
}
