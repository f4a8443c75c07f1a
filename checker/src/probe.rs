//! The poll-level [`Probe`], inserted between two modules of a pipeline.

use core::pin::Pin;
use core::task::{Context, Poll, ready};
use std::fmt;

use pando_pull_stream::{Answer, Connect, Source, Termination};
use pin_project_lite::pin_project;

use crate::Checker;
use crate::report::EventKind;

/// The probe module made by [`Checker::probe`]: connect it to a source (for
/// example with [`pull!`](pando_pull_stream::pull!)) to get a [`Probe`].
///
/// ```
/// use pando_checker::Checker;
/// use pando_pull_stream::{Connect, SourceExt, count};
///
/// # futures::executor::block_on(async {
/// let checker = Checker::panicking();
/// let module = checker.probe("Input");
/// let mut probed = module.connect(count::<()>(1));
/// assert_eq!(probed.collect::<Vec<_>>().await, Ok(vec![1]));
/// checker.assert_ok();
/// # });
/// ```
#[must_use = "modules do nothing until connected"]
pub struct ProbeModule {
    checker: Checker,
    id: usize,
}

impl ProbeModule {
    pub(crate) fn new(checker: Checker, id: usize) -> Self {
        ProbeModule { checker, id }
    }
}

impl fmt::Debug for ProbeModule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProbeModule")
            .field("name", &self.checker.interface_name(self.id))
            .finish_non_exhaustive()
    }
}

impl<S> Connect<S> for ProbeModule
where
    S: Source,
    S::Item: fmt::Debug,
    S::Error: fmt::Debug,
{
    type Output = Probe<S>;

    fn connect(self, upstream: S) -> Probe<S> {
        Probe {
            upstream,
            checker: self.checker,
            id: self.id,
            asking: None,
            terminating: None,
        }
    }
}

pin_project! {
    /// A source that forwards every request to its upstream and every answer
    /// downstream, unchanged, and records them in its [`Checker`].
    ///
    /// The requests of the poll-based protocol are recorded as follows:
    ///
    /// | call | event |
    /// |------|-------|
    /// | the first `poll_ask` after the previous answer | `Name:ask⟨i⟩` (polls that return `Pending` continue the same request) |
    /// | `poll_ask` returns `Ready(Value(v))` / `Ready(Done)` / `Ready(Error(e))` | `Name:value⟨i, v⟩` / `Name:done⟨i⟩` / `Name:error⟨i, e⟩` |
    /// | `terminate(Abort)` / `terminate(Fail(e))` | `Name:abort⟨j⟩` / `Name:fail⟨j, e⟩` |
    /// | `poll_terminated` returns `Ready(Ok(()))` / `Ready(Err(e))` | `Name:done⟨j⟩` / `Name:error⟨j, e⟩` |
    ///
    /// A termination while an ask is pending is allowed (the exception of
    /// invariant 4): the abandoned ask is answered by the termination's answer.
    /// Values and errors appear in their `Debug` formatting.
    ///
    /// ```
    /// use pando_checker::Checker;
    /// use pando_pull_stream::{SourceExt, count, pull};
    ///
    /// # futures::executor::block_on(async {
    /// let checker = Checker::panicking();
    /// let mut output = pull!(count::<()>(10), checker.probe("Output"));
    /// output.ask().await;
    /// output.abort().await.unwrap();
    /// let trace: Vec<String> = checker.trace().iter().map(ToString::to_string).collect();
    /// assert_eq!(trace, ["Output:ask⟨1⟩", "Output:value⟨1, 1⟩", "Output:abort⟨2⟩", "Output:done⟨2⟩"]);
    /// checker.assert_ok();
    /// # });
    /// ```
    #[must_use = "sources do nothing unless asked"]
    pub struct Probe<S> {
        #[pin]
        upstream: S,
        checker: Checker,
        id: usize,
        // The index of the ask in progress.
        asking: Option<u64>,
        // The index of the termination request in progress.
        terminating: Option<u64>,
    }
}

impl<S> Source for Probe<S>
where
    S: Source,
    S::Item: fmt::Debug,
    S::Error: fmt::Debug,
{
    type Item = S::Item;
    type Error = S::Error;

    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>> {
        let this = self.project();
        let index = *this
            .asking
            .get_or_insert_with(|| this.checker.request(*this.id, EventKind::Ask, None));
        let answer = ready!(this.upstream.poll_ask(cx));
        *this.asking = None;
        let (kind, payload) = match &answer {
            Answer::Value(v) => (EventKind::Value, Some(format!("{v:?}"))),
            Answer::Done => (EventKind::Done, None),
            Answer::Error(e) => (EventKind::Error, Some(format!("{e:?}"))),
        };
        this.checker.answer(*this.id, index, kind, payload);
        Poll::Ready(answer)
    }

    fn terminate(self: Pin<&mut Self>, request: Termination<S::Error>) {
        let this = self.project();
        let index = match &request {
            Termination::Abort => this.checker.request(*this.id, EventKind::Abort, None),
            Termination::Fail(e) => this
                .checker
                .request(*this.id, EventKind::Fail, Some(format!("{e:?}"))),
        };
        // An ask in progress is abandoned: the termination's answer answers it.
        *this.asking = None;
        *this.terminating = Some(index);
        this.upstream.terminate(request)
    }

    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        let this = self.project();
        let end = ready!(this.upstream.poll_terminated(cx));
        if let Some(index) = this.terminating.take() {
            match &end {
                Ok(()) => this.checker.answer(*this.id, index, EventKind::Done, None),
                Err(e) => this
                    .checker
                    .answer(*this.id, index, EventKind::Error, Some(format!("{e:?}"))),
            }
        }
        Poll::Ready(end)
    }
}

impl<S: fmt::Debug> fmt::Debug for Probe<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probe")
            .field("name", &self.checker.interface_name(self.id))
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}
