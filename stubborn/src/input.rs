//! [`StubbornInput`]: the input stubborn processing hands to the through.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pando_pull_stream::closing::Closing;
use pando_pull_stream::{Answer, Source, Termination};
use pin_project_lite::pin_project;

use crate::Tagged;
use crate::core::{Feed, Shared};

pin_project! {
    /// The source the wrapped through reads from: resubmissions first, then
    /// new values from upstream, each [`Tagged`] with its position and
    /// attempt.
    ///
    /// * Upstream is read lazily: one upstream ask per ask of the through,
    ///   and only when no resubmission is waiting.
    /// * When upstream ends (`done` or `error`), the input does not end at
    ///   once: values still in process may be resubmitted. It ends with
    ///   `done` once every value read has been accepted (an upstream error is
    ///   delivered by the output, after the results before it).
    /// * If a value exhausts its retries, no new value is read; the input
    ///   aborts upstream and ends once the values in process are resolved.
    /// * A termination by the through is forwarded upstream (or answered
    ///   locally if upstream has ended) and answered once upstream confirms.
    ///
    /// It is made when a [`Stubborn`](crate::Stubborn) module is connected;
    /// the through sees it as an ordinary source.
    ///
    /// ```
    /// use pando_pull_stream::{collect, count, pull, Source};
    /// use pando_stubborn::{StubbornInput, Tagged, Verdict, stubborn};
    ///
    /// /// A through written against the input type, for illustration.
    /// fn identity<S: Source>(input: StubbornInput<S>) -> StubbornInput<S>
    /// where S::Item: Clone {
    ///     input
    /// }
    ///
    /// # futures::executor::block_on(async {
    /// let got = pull!(
    ///     count::<Box<dyn std::error::Error + Send + Sync>>(2),
    ///     stubborn(identity, |input: u64, _result: u64| async move { Verdict::<_, u64>::Accept(input) }),
    ///     collect::<Vec<_>>(),
    /// )
    /// .await;
    /// assert_eq!(got.unwrap(), [1, 2]);
    /// # });
    /// ```
    #[must_use = "sources do nothing unless asked"]
    pub struct StubbornInput<S: Source> {
        #[pin]
        upstream: S,
        shared: Arc<Shared<S::Item, S::Error>>,
        // Whether an upstream ask is in progress.
        reading: bool,
        closing: Closing<S::Error>,
    }
}

impl<S: Source> StubbornInput<S>
where
    S::Item: Clone,
{
    pub(crate) fn new(upstream: S, shared: Arc<Shared<S::Item, S::Error>>) -> Self {
        StubbornInput {
            upstream,
            shared,
            reading: false,
            closing: Closing::Open,
        }
    }
}

impl<S: Source> Source for StubbornInput<S>
where
    S::Item: Clone,
{
    type Item = Tagged<S::Item>;
    type Error = S::Error;

    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<Tagged<S::Item>, S::Error>> {
        let mut this = self.project();
        loop {
            let mut feed = this.shared.lock().feed(*this.reading, cx.waker());
            if matches!(feed, Feed::Read) && !this.closing.is_open() {
                // Upstream has been terminated: nothing more to read.
                feed = Feed::End;
            }
            match feed {
                Feed::Submit(tagged) => return Poll::Ready(Answer::Value(tagged)),
                Feed::Wait => return Poll::Pending,
                Feed::End => {
                    // Upstream is still open only if reading stopped early
                    // or the output ended: abort it, and end once it confirms.
                    *this.reading = false;
                    this.closing
                        .close_for_ask(this.upstream.as_mut(), Termination::Abort);
                    let end = ready!(this.closing.poll_closed_for_ask(this.upstream.as_mut(), cx));
                    return Poll::Ready(Answer::from_end(end));
                }
                Feed::Read => {
                    *this.reading = true;
                    let answer = ready!(this.upstream.as_mut().poll_ask(cx));
                    *this.reading = false;
                    match answer {
                        Answer::Value(v) => {
                            let tagged = this.shared.lock().read(v);
                            return Poll::Ready(Answer::Value(tagged));
                        }
                        Answer::Done => {
                            this.closing.ended();
                            this.shared.lock().upstream_ended(None);
                        }
                        Answer::Error(e) => {
                            this.closing.ended();
                            this.shared.lock().upstream_ended(Some(e));
                        }
                    }
                }
            }
        }
    }

    fn terminate(self: Pin<&mut Self>, request: Termination<S::Error>) {
        let this = self.project();
        *this.reading = false;
        this.closing.terminate(this.upstream, request);
    }

    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        let this = self.project();
        this.closing.poll_terminated(this.upstream, cx)
    }
}

impl<S: Source + fmt::Debug> fmt::Debug for StubbornInput<S>
where
    S::Error: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StubbornInput")
            .field("upstream", &self.upstream)
            .field("reading", &self.reading)
            .field("closing", &self.closing)
            .finish_non_exhaustive()
    }
}
