//! Sources for testing modules (feature `test-util`, off by default).
//!
//! Enable it in the `[dev-dependencies]` of a crate that tests pull-stream
//! modules:
//!
//! ```toml
//! [dev-dependencies]
//! pando-pull-stream = { version = "0.1", features = ["test-util"] }
//! ```

use core::fmt;
use core::pin::Pin;
use core::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::{Answer, Source, Termination};

pin_project! {
    /// A source that answers every other poll `Pending` (waking its task at
    /// once), and passes the others to its upstream: it exercises the
    /// `Pending` paths of the modules downstream, which must continue the
    /// same request when polled again. Made by [`yielding`].
    ///
    /// Both [`Source::poll_ask`] and [`Source::poll_terminated`] yield first;
    /// [`Source::terminate`] goes straight upstream.
    ///
    /// ```
    /// use core::task::{Context, Poll, Waker};
    /// use pando_pull_stream::test_util::yielding;
    /// use pando_pull_stream::{Answer, SourceExt, values};
    ///
    /// let mut source = yielding(values::<_, ()>([7]));
    /// let mut cx = Context::from_waker(Waker::noop());
    /// assert_eq!(source.poll_ask_unpin(&mut cx), Poll::Pending);
    /// assert_eq!(source.poll_ask_unpin(&mut cx), Poll::Ready(Answer::Value(7)));
    /// assert_eq!(source.poll_ask_unpin(&mut cx), Poll::Pending);
    /// assert_eq!(source.poll_ask_unpin(&mut cx), Poll::Ready(Answer::Done));
    /// ```
    #[must_use = "sources do nothing unless asked"]
    pub struct Yielding<S> {
        #[pin]
        upstream: S,
        ready: bool,
    }
}

/// Wraps `upstream` in a [`Yielding`] source. As a function from source to
/// source, it is also a through: `pull!(source, yielding, …)`.
///
/// ```
/// use pando_pull_stream::test_util::yielding;
/// use pando_pull_stream::{collect, count, pull};
///
/// # futures::executor::block_on(async {
/// let got = pull!(count::<()>(3), yielding, collect::<Vec<_>>()).await;
/// assert_eq!(got, Ok(vec![1, 2, 3]));
/// # });
/// ```
pub fn yielding<S: Source>(upstream: S) -> Yielding<S> {
    Yielding {
        upstream,
        ready: true,
    }
}

impl<S: Source> Source for Yielding<S> {
    type Item = S::Item;
    type Error = S::Error;

    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>> {
        let this = self.project();
        if yield_now(this.ready, cx) {
            return Poll::Pending;
        }
        this.upstream.poll_ask(cx)
    }

    fn terminate(self: Pin<&mut Self>, request: Termination<S::Error>) {
        self.project().upstream.terminate(request)
    }

    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        let this = self.project();
        if yield_now(this.ready, cx) {
            return Poll::Pending;
        }
        this.upstream.poll_terminated(cx)
    }
}

/// Flips `ready`; if it is now `false`, wakes the task and says to yield.
fn yield_now(ready: &mut bool, cx: &mut Context<'_>) -> bool {
    *ready = !*ready;
    if !*ready {
        cx.waker().wake_by_ref();
    }
    !*ready
}

impl<S: fmt::Debug> fmt::Debug for Yielding<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Yielding")
            .field("upstream", &self.upstream)
            .field("ready", &self.ready)
            .finish()
    }
}
