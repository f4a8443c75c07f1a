//! Helpers shared by the protocol tests.

#![allow(dead_code, unreachable_pub)]

use std::task::{Context, Poll, Waker};

use pando_checker::Checker;
use pando_pull_stream::Source;

/// The trace of a checker, in the seeds' notation.
pub fn trace(checker: &Checker) -> Vec<String> {
    checker.trace().iter().map(ToString::to_string).collect()
}

/// A context whose waker does nothing: for polling by hand.
pub fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
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
