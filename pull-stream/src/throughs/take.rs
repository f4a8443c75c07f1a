use core::fmt;
use core::pin::Pin;
use core::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::closing::Closing;
use crate::{Answer, Connect, Source, Termination};

/// The `take` through module. See [`take`](fn@take).
#[derive(Clone, Copy, Debug)]
#[must_use = "modules do nothing until connected"]
pub struct Take {
    n: u64,
}

/// A through that passes on the first `n` values, then ends the stream.
///
/// This is early termination from the consumer's end: on the ask after the
/// `n`-th value, `take` aborts its upstream, waits for the confirmation, and
/// only then answers `done`. Nothing more is read from upstream, so `take`
/// works on infinite sources.
///
/// ```
/// use pando_pull_stream::{collect, count, pull, take};
///
/// # futures::executor::block_on(async {
/// let got = pull!(count::<()>(u64::MAX), take(2), collect::<Vec<_>>()).await;
/// assert_eq!(got, Ok(vec![1, 2]));
/// # });
/// ```
pub fn take(n: u64) -> Take {
    Take { n }
}

impl<S: Source> Connect<S> for Take {
    type Output = TakeSource<S>;

    fn connect(self, upstream: S) -> TakeSource<S> {
        TakeSource {
            upstream,
            remaining: self.n,
            closing: Closing::Open,
        }
    }
}

pin_project! {
    /// The source made by connecting [`take`](fn@take) to an upstream source.
    #[must_use = "sources do nothing unless asked"]
    pub struct TakeSource<S: Source> {
        #[pin]
        upstream: S,
        remaining: u64,
        closing: Closing<S::Error>,
    }
}

impl<S: Source> Source for TakeSource<S> {
    type Item = S::Item;
    type Error = S::Error;

    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>> {
        let mut this = self.project();
        if this.closing.is_open() {
            if *this.remaining > 0 {
                let answer = ready!(this.upstream.as_mut().poll_ask(cx));
                match answer {
                    Answer::Value(_) => *this.remaining -= 1,
                    _ => this.closing.ended(),
                }
                return Poll::Ready(answer);
            }
            this.closing
                .close_for_ask(this.upstream.as_mut(), Termination::Abort);
        }
        let end = ready!(this.closing.poll_closed_for_ask(this.upstream, cx));
        Poll::Ready(Answer::from_end(end))
    }

    fn terminate(self: Pin<&mut Self>, request: Termination<S::Error>) {
        let this = self.project();
        this.closing.terminate(this.upstream, request)
    }

    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        let this = self.project();
        this.closing.poll_terminated(this.upstream, cx)
    }
}

impl<S: Source + fmt::Debug> fmt::Debug for TakeSource<S>
where
    S::Error: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TakeSource")
            .field("upstream", &self.upstream)
            .field("remaining", &self.remaining)
            .field("closing", &self.closing)
            .finish()
    }
}
