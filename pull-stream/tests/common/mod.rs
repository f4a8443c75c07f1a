//! Helpers shared by the protocol tests.

#![allow(dead_code, unreachable_pub)]

use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use pando_checker::Checker;
use pando_pull_stream::{Answer, Source, Termination};

/// The trace of a checker, in the seeds' notation.
pub fn trace(checker: &Checker) -> Vec<String> {
    checker.trace().iter().map(ToString::to_string).collect()
}

/// A context whose waker does nothing: for polling by hand.
pub fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

/// Wraps a source so that every request is first answered `Pending` (with a
/// wake-up), exercising the `Pending` paths of the modules downstream.
pub struct Yielding<S> {
    upstream: S,
    ready: bool,
}

/// See [`Yielding`]. The upstream is boxed, so that it can be any source.
pub fn yielding<S: Source>(upstream: S) -> Yielding<Pin<Box<S>>> {
    Yielding {
        upstream: Box::pin(upstream),
        ready: true,
    }
}

impl<S: Source + Unpin> Source for Yielding<S> {
    type Item = S::Item;
    type Error = S::Error;
    fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>> {
        self.ready = !self.ready;
        if !self.ready {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Pin::new(&mut self.upstream).poll_ask(cx)
    }
    fn terminate(mut self: Pin<&mut Self>, request: Termination<S::Error>) {
        Pin::new(&mut self.upstream).terminate(request)
    }
    fn poll_terminated(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.ready = !self.ready;
        if !self.ready {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Pin::new(&mut self.upstream).poll_terminated(cx)
    }
}

/// A source that never answers an ask (until terminated), like a silent peer.
pub fn silent<T, E>() -> impl Source<Item = T, Error = E> + Unpin {
    pando_pull_stream::from_stream(futures::stream::pending::<T>())
}

/// A future that returns `Pending` once (waking its task), then `Ready`.
pub async fn yield_once() {
    let mut yielded = false;
    futures::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}
