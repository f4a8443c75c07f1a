//! The lender's input: its source behind a small lock of its own, so that
//! it is polled outside the lender's lock, and terminated by whoever closes
//! the lender.
//!
//! It behaves as the [`Serializer`](pando_pull_stream::Serializer) the
//! lender used to put on its input, without the queue of asks: the lender
//! itself makes one read at a time (see `shared.rs`), so a read is one poll
//! of the source under this lock, with no ticket and no allocation.

use std::task::{Context, Poll, Waker};

use pando_pull_stream::{Answer, BoxSource, Termination};

use crate::sync::{Mutex, MutexGuard};

enum State<E> {
    /// The source can be asked.
    Open,
    /// The source answered `done` (`None`) or `error` (`Some`), or a fail
    /// was asked of an input that had already ended.
    Ended(Option<E>),
    /// A termination was forwarded to the source; its confirmation is pending.
    Terminating,
    /// The source was terminated and confirmed.
    Terminated,
}

struct Inner<T, E> {
    source: BoxSource<'static, T, E>,
    state: State<E>,
    /// The waker of the read left pending, woken by a termination (which
    /// answers it).
    reader: Option<Waker>,
}

/// The lender's input (`Input` in Algorithms 10-12).
pub(crate) struct InputCell<T, E> {
    inner: Mutex<Inner<T, E>>,
}

impl<T, E: Clone> InputCell<T, E> {
    pub(crate) fn new(source: BoxSource<'static, T, E>) -> Self {
        InputCell {
            inner: Mutex::new(Inner {
                source,
                state: State::Open,
                reader: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner<T, E>> {
        // A panic of the source while it is polled under this lock leaves
        // `state` as it was; the lender never polls a source that panicked.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Polls the read in progress (the lender makes one at a time): the
    /// source's answer; once it has ended or been terminated, `done` (or a
    /// clone of its error) without asking it.
    pub(crate) fn poll_read(&self, cx: &mut Context<'_>) -> Poll<Answer<T, E>> {
        let mut inner = self.lock();
        match &inner.state {
            State::Open => {}
            State::Ended(Some(e)) => return Poll::Ready(Answer::Error(e.clone())),
            State::Ended(None) | State::Terminating | State::Terminated => {
                return Poll::Ready(Answer::Done);
            }
        }
        match inner.source.as_mut().poll_ask(cx) {
            Poll::Pending => {
                match &mut inner.reader {
                    Some(w) if w.will_wake(cx.waker()) => {}
                    w => *w = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            Poll::Ready(answer) => {
                inner.reader = None;
                match &answer {
                    Answer::Value(_) => {}
                    Answer::Done => inner.state = State::Ended(None),
                    Answer::Error(e) => inner.state = State::Ended(Some(e.clone())),
                }
                Poll::Ready(answer)
            }
        }
    }

    /// Whether the source has ended (`done`, `error`) or been terminated.
    pub(crate) fn is_ended(&self) -> bool {
        !matches!(self.lock().state, State::Open)
    }

    /// Terminates the source with `request`, unless it has already ended
    /// or been terminated: then the request is answered here (an abort
    /// confirms, a fail confirms with its own error).
    pub(crate) fn terminate(&self, request: Termination<E>) {
        let mut inner = self.lock();
        inner.state = match (request, &inner.state) {
            (request, State::Open) => {
                inner.source.as_mut().terminate(request);
                // The read in progress, if any, is answered by the termination.
                if let Some(w) = inner.reader.take() {
                    w.wake();
                }
                State::Terminating
            }
            (Termination::Fail(e), _) => State::Ended(Some(e)),
            (Termination::Abort, State::Ended(Some(_))) => State::Ended(None),
            (Termination::Abort, _) => State::Terminated,
        };
    }

    /// The confirmation of the termination: the source's, once it is in, if
    /// it was forwarded to it.
    pub(crate) fn poll_terminated(&self, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        let mut inner = self.lock();
        match &inner.state {
            State::Ended(Some(e)) => Poll::Ready(Err(e.clone())),
            State::Terminating => {
                let end = std::task::ready!(inner.source.as_mut().poll_terminated(cx));
                inner.state = State::Terminated;
                Poll::Ready(end)
            }
            State::Open | State::Ended(None) | State::Terminated => Poll::Ready(Ok(())),
        }
    }
}

impl<T, E> std::fmt::Debug for InputCell<T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputCell").finish_non_exhaustive()
    }
}
