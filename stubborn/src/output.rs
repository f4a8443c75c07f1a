//! [`StubbornSource`]: the output of stubborn processing.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use pando_pull_stream::closing::Closing;
use pando_pull_stream::{Answer, Source, Termination};
use pin_project_lite::pin_project;

use crate::core::{Shared, wake};
use crate::stubborn::Config;
use crate::{StubbornError, StubbornHandle, Tagged, Verdict};

/// What became of a value, waiting for its turn to be output.
enum Outcome<O> {
    Accepted(O),
    Failed(StubbornError),
}

pin_project! {
    /// The output of stubborn processing: accepted results, in input order
    /// (or in acceptance order, when [unordered](crate::Stubborn::unordered)).
    ///
    /// Each ask drives the feedback loop until a result can be output: it
    /// runs the testers (up to the configured concurrency), reads results
    /// from the through, drops stale ones, and queues resubmissions for the
    /// through's input.
    ///
    /// The stream ends:
    ///
    /// * with `done`, once upstream ended normally and every value before
    ///   was output (or the through itself ended the stream early, with
    ///   every value it took output);
    /// * with upstream's `error(e)`, after every value before it was output;
    /// * with [`StubbornError::RetriesExhausted`] in place of the value that
    ///   exhausted its retries, after the values before it (in order mode) —
    ///   the through is aborted first, and the error given once it confirms;
    /// * with [`StubbornError::ThroughEnded`] if the through ended while
    ///   values were still unresolved;
    /// * with the through's own `error(e)`, at once.
    ///
    /// A termination (`abort`, `fail`) drops the running tests and pending
    /// resubmissions and is forwarded to the through, which forwards it to
    /// the input, and so upstream.
    ///
    /// ```
    /// use pando_pull_stream::{Answer, SourceExt, count, map, pull};
    /// use pando_stubborn::{Tagged, Verdict, stubborn};
    ///
    /// # futures::executor::block_on(async {
    /// let mut output = pull!(
    ///     count::<Box<dyn std::error::Error + Send + Sync>>(u64::MAX),
    ///     stubborn(map(|t: Tagged<u64>| t.map(|x| x * 2)), |_, r: u64| async move {
    ///         Verdict::<u64, u64>::Accept(r)
    ///     }),
    /// );
    /// assert!(matches!(output.ask().await, Answer::Value(2)));
    /// assert!(output.abort().await.is_ok());
    /// # });
    /// ```
    #[must_use = "sources do nothing unless asked"]
    pub struct StubbornSource<T: Source, F, Fut, I, O> {
        #[pin]
        inner: T,
        tester: F,
        // The running tests, by position.
        testing: Vec<(u64, Pin<Box<Fut>>)>,
        shared: Arc<Shared<I, T::Error>>,
        config: Config,
        // Order mode: outcomes waiting for the values before them.
        reorder: BTreeMap<u64, Outcome<O>>,
        // Unordered mode: accepted values, and a failure to report.
        ready: VecDeque<O>,
        failure: Option<StubbornError>,
        // Values output (in order mode, the next position to output).
        delivered: u64,
        // The through answered `done`.
        inner_done: bool,
        closing: Closing<T::Error>,
        // The error to answer once the through confirms our abort.
        ending: Option<T::Error>,
        finished: bool,
        stats: StubbornHandle,
    }
}

impl<T: Source, F, Fut, I: Clone, O> StubbornSource<T, F, Fut, I, O> {
    pub(crate) fn new(
        inner: T,
        tester: F,
        shared: Arc<Shared<I, T::Error>>,
        config: Config,
        stats: StubbornHandle,
    ) -> Self {
        StubbornSource {
            inner,
            tester,
            testing: Vec::new(),
            shared,
            config,
            reorder: BTreeMap::new(),
            ready: VecDeque::new(),
            failure: None,
            delivered: 0,
            inner_done: false,
            closing: Closing::Open,
            ending: None,
            finished: false,
            stats,
        }
    }
}

impl<T, F, Fut, I, R, O> Source for StubbornSource<T, F, Fut, I, O>
where
    T: Source<Item = Tagged<R>>,
    T::Error: From<StubbornError>,
    I: Clone,
    F: FnMut(I, R) -> Fut,
    Fut: Future<Output = Verdict<O, I>>,
{
    type Item = O;
    type Error = T::Error;

    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<O, T::Error>> {
        let mut this = self.project();
        loop {
            // We ended the stream ourselves: answer once the through confirmed.
            if this.ending.is_some() {
                // The through's answer to our abort is superseded by the cause.
                let _ = ready!(this.closing.poll_closed_for_ask(this.inner.as_mut(), cx));
                *this.finished = true;
                return Poll::Ready(Answer::Error(this.ending.take().expect("checked above")));
            }
            if *this.finished {
                return Poll::Ready(Answer::Done);
            }

            // 1. Output what can be output.
            let mut failed = None;
            if this.config.ordered {
                if let Some(entry) = this.reorder.first_entry() {
                    if *entry.key() == *this.delivered {
                        match entry.remove() {
                            Outcome::Accepted(o) => {
                                *this.delivered += 1;
                                this.stats.lock().output += 1;
                                return Poll::Ready(Answer::Value(o));
                            }
                            Outcome::Failed(e) => failed = Some(e),
                        }
                    }
                }
            } else if let Some(o) = this.ready.pop_front() {
                *this.delivered += 1;
                this.stats.lock().output += 1;
                return Poll::Ready(Answer::Value(o));
            } else {
                failed = this.failure.take();
            }
            if let Some(e) = failed {
                // Stop everything; abort the through (and so upstream).
                this.testing.clear();
                this.reorder.clear();
                this.ready.clear();
                wake(this.shared.lock().close());
                this.closing
                    .close_for_ask(this.inner.as_mut(), Termination::Abort);
                *this.ending = Some(T::Error::from(e));
                continue;
            }

            // 2. The through ended and every test is over: the stream ends.
            if *this.inner_done && this.testing.is_empty() {
                *this.finished = true;
                let mut core = this.shared.lock();
                let waker = core.close();
                let unresolved = core.unresolved();
                let answer = if unresolved == 0 {
                    core.take_upstream_error().map_or(Answer::Done, Answer::Error)
                } else {
                    Answer::Error(T::Error::from(StubbornError::ThroughEnded { unresolved }))
                };
                drop(core);
                wake(waker);
                return Poll::Ready(answer);
            }

            // 3. Collect the verdicts of finished tests.
            let mut progressed = false;
            let mut i = 0;
            while i < this.testing.len() {
                let Poll::Ready(verdict) = this.testing[i].1.as_mut().poll(cx) else {
                    i += 1;
                    continue;
                };
                let (position, _) = this.testing.remove(i);
                progressed = true;
                match verdict {
                    Verdict::Accept(o) => {
                        wake(this.shared.lock().accept(position));
                        if this.config.ordered {
                            this.reorder.insert(position, Outcome::Accepted(o));
                        } else {
                            this.ready.push_back(o);
                        }
                    }
                    Verdict::Resubmit(value) => {
                        let (result, waker) =
                            this.shared
                                .lock()
                                .resubmit(position, value, this.config.max_attempts);
                        wake(waker);
                        if let Err(e) = result {
                            if this.config.ordered {
                                this.reorder.insert(position, Outcome::Failed(e));
                            } else if this.failure.is_none() {
                                *this.failure = Some(e);
                            }
                        }
                    }
                }
            }
            if progressed {
                continue;
            }

            // 4. Read a result from the through, if a tester is free.
            if *this.inner_done || this.testing.len() >= this.config.tester_concurrency {
                return Poll::Pending;
            }
            match ready!(this.inner.as_mut().poll_ask(cx)) {
                Answer::Value(Tagged { tag, value }) => {
                    let input = this.shared.lock().result(tag);
                    if let Some(input) = input {
                        let test = (this.tester)(input, value);
                        this.testing.push((tag.position, Box::pin(test)));
                    }
                }
                Answer::Done => {
                    *this.inner_done = true;
                    this.closing.ended();
                }
                Answer::Error(e) => {
                    this.closing.ended();
                    this.testing.clear();
                    *this.finished = true;
                    wake(this.shared.lock().close());
                    return Poll::Ready(Answer::Error(e));
                }
            }
        }
    }

    fn terminate(self: Pin<&mut Self>, request: Termination<T::Error>) {
        let this = self.project();
        this.testing.clear();
        this.reorder.clear();
        this.ready.clear();
        *this.failure = None;
        *this.ending = None;
        wake(this.shared.lock().close());
        this.closing.terminate(this.inner, request);
    }

    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), T::Error>> {
        let this = self.project();
        this.closing.poll_terminated(this.inner, cx)
    }
}

impl<T: Source + fmt::Debug, F, Fut, I, O> fmt::Debug for StubbornSource<T, F, Fut, I, O> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StubbornSource")
            .field("inner", &self.inner)
            .field("config", &self.config)
            .field("testing", &self.testing.len())
            .field("delivered", &self.delivered)
            .field("inner_done", &self.inner_done)
            .field("stats", &self.stats.stats())
            .finish_non_exhaustive()
    }
}
