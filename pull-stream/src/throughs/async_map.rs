use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::closing::Closing;
use crate::{Answer, Connect, Source, Termination};

/// The `async_map` through module (the seeds' AsyncMap). See [`async_map`](fn@async_map).
#[derive(Clone, Copy)]
#[must_use = "modules do nothing until connected"]
pub struct AsyncMap<F> {
    f: F,
}

/// A through that applies an asynchronous, fallible function to every value.
///
/// One value is processed at a time: the next value is asked only after the
/// previous result has been answered downstream. If `f` fails with `e`, the
/// upstream is aborted and, once it confirms, the pending ask is answered with
/// `error(e)`. If the downstream terminates while `f` is running, the running
/// future is dropped and the termination is forwarded upstream.
///
/// This is what a worker runs (seed 000, Algorithm 15: `Input ⇒ AsyncMap(F) ⇒ Output`).
///
/// ```
/// use pando_pull_stream::{async_map, collect, count, pull};
///
/// # futures::executor::block_on(async {
/// let got = pull!(
///     count(4),
///     async_map(|x: u64| async move { if x < 3 { Ok(x * x) } else { Err(format!("{x} is too big")) } }),
///     collect::<Vec<_>>(),
/// );
/// assert_eq!(got.await, Err("3 is too big".to_string()));
/// # });
/// ```
pub fn async_map<F>(f: F) -> AsyncMap<F> {
    AsyncMap { f }
}

impl<S, F, Fut, U> Connect<S> for AsyncMap<F>
where
    S: Source,
    F: FnMut(S::Item) -> Fut,
    Fut: Future<Output = Result<U, S::Error>>,
{
    type Output = AsyncMapSource<S, F, Fut>;

    fn connect(self, upstream: S) -> Self::Output {
        AsyncMapSource {
            upstream,
            f: self.f,
            pending: None,
            failure: None,
            closing: Closing::Open,
        }
    }
}

pin_project! {
    /// The source made by connecting [`async_map`](fn@async_map) to an upstream source.
    #[must_use = "sources do nothing unless asked"]
    pub struct AsyncMapSource<S: Source, F, Fut> {
        #[pin]
        upstream: S,
        f: F,
        #[pin]
        pending: Option<Fut>,
        failure: Option<S::Error>,
        closing: Closing<S::Error>,
    }
}

impl<S, F, Fut, U> Source for AsyncMapSource<S, F, Fut>
where
    S: Source,
    F: FnMut(S::Item) -> Fut,
    Fut: Future<Output = Result<U, S::Error>>,
{
    type Item = U;
    type Error = S::Error;

    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<U, S::Error>> {
        let mut this = self.project();
        loop {
            if let Some(running) = this.pending.as_mut().as_pin_mut() {
                let result = ready!(running.poll(cx));
                this.pending.set(None);
                match result {
                    Ok(u) => return Poll::Ready(Answer::Value(u)),
                    Err(e) => {
                        *this.failure = Some(e);
                        this.closing
                            .close_for_ask(this.upstream.as_mut(), Termination::Abort);
                    }
                }
            }
            if this.failure.is_some() {
                // The upstream's answer to our abort is superseded by the cause.
                let _ = ready!(this.closing.poll_closed_for_ask(this.upstream.as_mut(), cx));
                return Poll::Ready(this.failure.take().map_or(Answer::Done, Answer::Error));
            }
            if !this.closing.is_open() {
                return Poll::Ready(Answer::Done);
            }
            match ready!(this.upstream.as_mut().poll_ask(cx)) {
                Answer::Value(v) => this.pending.set(Some((this.f)(v))),
                Answer::Done => {
                    this.closing.ended();
                    return Poll::Ready(Answer::Done);
                }
                Answer::Error(e) => {
                    this.closing.ended();
                    return Poll::Ready(Answer::Error(e));
                }
            }
        }
    }

    fn terminate(self: Pin<&mut Self>, request: Termination<S::Error>) {
        let mut this = self.project();
        this.pending.set(None);
        *this.failure = None;
        this.closing.terminate(this.upstream, request)
    }

    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        let this = self.project();
        this.closing.poll_terminated(this.upstream, cx)
    }
}

impl<F> fmt::Debug for AsyncMap<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncMap").finish_non_exhaustive()
    }
}

impl<S: Source + fmt::Debug, F, Fut> fmt::Debug for AsyncMapSource<S, F, Fut> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncMapSource")
            .field("upstream", &self.upstream)
            .field("running", &self.pending.is_some())
            .finish_non_exhaustive()
    }
}
