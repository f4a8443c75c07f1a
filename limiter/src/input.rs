//! [`LimitedInput`]: the input the Limiter hands to the wrapped module
//! (the seeds' `NLInput`, Algorithm 9).

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pando_pull_stream::closing::Closing;
use pando_pull_stream::{Answer, Source, Termination};
use pin_project_lite::pin_project;

use crate::state::{AskDecision, Shared};

pin_project! {
    /// The source the wrapped module reads from: the Limiter's upstream,
    /// behind the limit.
    ///
    /// An ask is forwarded upstream only while fewer than `limit` values are
    /// in process (asked for and not yet output by the wrapped module);
    /// otherwise it waits until a result is output or the limit is raised.
    /// Terminations (`abort`, `fail`) go straight upstream, abandoning a
    /// waiting ask, and are answered once the upstream confirms.
    ///
    /// If the Limiter's output ends while an ask waits, nothing more will be
    /// output: the input then aborts its upstream and, once it confirms,
    /// answers `done`, so that a wrapped duplex whose sink half runs on its own
    /// never waits forever.
    ///
    /// It is made by connecting a [`Limit`](crate::Limit) or a
    /// [`LimitedSink`](crate::LimitedSink); the wrapped module sees it as an
    /// ordinary source.
    ///
    /// ```
    /// use pando_limiter::{LimitedInput, limit};
    /// use pando_pull_stream::{collect, count, pull, Source};
    ///
    /// /// A through written against the limited input, for illustration.
    /// fn passthrough<S: Source>(input: LimitedInput<S>) -> LimitedInput<S> { input }
    ///
    /// # futures::executor::block_on(async {
    /// let got = pull!(count::<()>(3), limit(passthrough, 1)?, collect::<Vec<_>>()).await;
    /// assert_eq!(got, Ok(vec![1, 2, 3]));
    /// # Ok::<(), pando_limiter::LimitError>(())
    /// # }).unwrap();
    /// ```
    #[must_use = "sources do nothing unless asked"]
    pub struct LimitedInput<S: Source> {
        #[pin]
        upstream: S,
        shared: Arc<Shared>,
        // Whether the current ask has been counted and forwarded upstream.
        forwarded: bool,
        closing: Closing<S::Error>,
    }
}

impl<S: Source> LimitedInput<S> {
    pub(crate) fn new(upstream: S, shared: Arc<Shared>) -> Self {
        LimitedInput {
            upstream,
            shared,
            forwarded: false,
            closing: Closing::Open,
        }
    }
}

impl<S: Source> Source for LimitedInput<S> {
    type Item = S::Item;
    type Error = S::Error;

    #[inline]
    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>> {
        let mut this = self.project();
        if this.closing.is_open() {
            if !*this.forwarded {
                let decision = this.shared.lock().ask(cx.waker());
                match decision {
                    AskDecision::Forward => *this.forwarded = true,
                    AskDecision::Wait => return Poll::Pending,
                    AskDecision::Close => this
                        .closing
                        .close_for_ask(this.upstream.as_mut(), Termination::Abort),
                }
            }
            if *this.forwarded {
                let answer = ready!(this.upstream.as_mut().poll_ask(cx));
                *this.forwarded = false;
                if answer.is_terminal() {
                    this.shared.apply(|s| s.ask_ended());
                    this.closing.ended();
                }
                return Poll::Ready(answer);
            }
        }
        let end = ready!(this.closing.poll_closed_for_ask(this.upstream, cx));
        Poll::Ready(Answer::from_end(end))
    }

    /// `upon NLInput:abort/fail` (Algorithm 9, lines 41-44): forwarded
    /// upstream; a waiting ask is abandoned.
    fn terminate(self: Pin<&mut Self>, request: Termination<S::Error>) {
        let this = self.project();
        if std::mem::take(this.forwarded) {
            this.shared.apply(|s| s.ask_ended());
        }
        this.closing.terminate(this.upstream, request);
    }

    /// Answered once the upstream has confirmed (unlike the original
    /// `pull-limit`, which answered at once).
    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        let this = self.project();
        this.closing.poll_terminated(this.upstream, cx)
    }
}

impl<S: Source + fmt::Debug> fmt::Debug for LimitedInput<S>
where
    S::Error: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitedInput")
            .field("upstream", &self.upstream)
            .field("state", &self.shared)
            .field("forwarded", &self.forwarded)
            .field("closing", &self.closing)
            .finish()
    }
}
