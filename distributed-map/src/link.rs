//! A closed flag shared by the two halves of one worker connection, so that
//! when one half ends the other stops too (like closing a socket).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Context;

use futures::task::AtomicWaker;

#[derive(Debug, Default)]
struct Inner {
    closed: AtomicBool,
    waker: AtomicWaker,
}

/// Both halves hold a clone; either may close it; the sending half waits on it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Link(Arc<Inner>);

impl Link {
    pub(crate) fn close(&self) {
        self.0.closed.store(true, Ordering::Release);
        self.0.waker.wake();
    }

    /// Whether the link is closed; registers the task to be woken when it closes.
    pub(crate) fn poll_closed(&self, cx: &Context<'_>) -> bool {
        self.0.waker.register(cx.waker());
        self.0.closed.load(Ordering::Acquire)
    }
}
