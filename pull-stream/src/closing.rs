//! Termination bookkeeping for throughs that may end their upstream on their
//! own initiative (for example [`take`](crate::take) once it has its values).

use core::pin::Pin;
use core::task::{Context, Poll, ready};

use crate::{Source, Termination};

/// Where a through stands with respect to terminating its upstream.
///
/// A through can terminate its upstream for two reasons: because its
/// downstream asked for it (the request is forwarded), or on its own, to
/// answer a pending ask with `done` or `error` (then the downstream may still
/// abandon that ask and terminate in turn). In every case the upstream is
/// terminated exactly once and nothing is requested from it afterwards
/// (invariant 1).
#[derive(Debug)]
pub enum Closing<E> {
    /// The upstream is open.
    Open,
    /// This module terminated the upstream itself; the confirmation answers the pending ask.
    ForAsk,
    /// The downstream's termination request was forwarded upstream.
    Forwarded,
    /// This module had terminated the upstream itself, then the downstream asked to terminate too.
    Joined(Option<Termination<E>>),
    /// The upstream has ended; a later termination request is answered locally.
    Ended(Option<Termination<E>>),
}

impl<E> Closing<E> {
    /// Whether the upstream can still be asked.
    ///
    /// ```
    /// use pando_pull_stream::closing::Closing;
    /// assert!(Closing::<()>::Open.is_open());
    /// assert!(!Closing::<()>::Ended(None).is_open());
    /// ```
    pub fn is_open(&self) -> bool {
        matches!(self, Closing::Open)
    }

    /// Records that the upstream answered `done` or `error`.
    ///
    /// ```
    /// use pando_pull_stream::closing::Closing;
    /// let mut c = Closing::<()>::Open;
    /// c.ended();
    /// assert!(matches!(c, Closing::Ended(None)));
    /// ```
    pub fn ended(&mut self) {
        *self = Closing::Ended(None);
    }

    /// Terminates the upstream on this module's own initiative, with `request`.
    /// The confirmation is then polled with [`poll_closed_for_ask`](Closing::poll_closed_for_ask).
    ///
    /// ```
    /// use core::pin::pin;
    /// use pando_pull_stream::{closing::Closing, count, Termination};
    /// use futures::future::poll_fn;
    ///
    /// # futures::executor::block_on(async {
    /// let mut upstream = pin!(count::<()>(10));
    /// let mut c = Closing::Open;
    /// c.close_for_ask(upstream.as_mut(), Termination::Abort);
    /// assert_eq!(poll_fn(|cx| c.poll_closed_for_ask(upstream.as_mut(), cx)).await, Ok(()));
    /// assert!(!c.is_open());
    /// # });
    /// ```
    pub fn close_for_ask<S: Source<Error = E>>(&mut self, upstream: Pin<&mut S>, request: Termination<E>) {
        if self.is_open() {
            upstream.terminate(request);
            *self = Closing::ForAsk;
        }
    }

    /// Polls the upstream's confirmation of a termination started with
    /// [`close_for_ask`](Closing::close_for_ask).
    ///
    /// See [`close_for_ask`](Closing::close_for_ask) for an example.
    pub fn poll_closed_for_ask<S: Source<Error = E>>(
        &mut self,
        upstream: Pin<&mut S>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), E>> {
        match self {
            Closing::ForAsk => {
                let r = ready!(upstream.poll_terminated(cx));
                *self = Closing::Ended(None);
                Poll::Ready(r)
            }
            _ => Poll::Ready(Ok(())),
        }
    }

    /// Handles the downstream's termination request: forwards it if the
    /// upstream is open, and otherwise remembers it to answer it locally.
    ///
    /// ```
    /// use core::pin::pin;
    /// use pando_pull_stream::{closing::Closing, count, Termination};
    /// use futures::future::poll_fn;
    ///
    /// # futures::executor::block_on(async {
    /// let mut upstream = pin!(count::<&str>(10));
    /// let mut c = Closing::Open;
    /// c.terminate(upstream.as_mut(), Termination::Fail("stop"));
    /// assert_eq!(poll_fn(|cx| c.poll_terminated(upstream.as_mut(), cx)).await, Err("stop"));
    /// # });
    /// ```
    pub fn terminate<S: Source<Error = E>>(&mut self, upstream: Pin<&mut S>, request: Termination<E>) {
        match self {
            Closing::Open => {
                upstream.terminate(request);
                *self = Closing::Forwarded;
            }
            Closing::ForAsk => *self = Closing::Joined(Some(request)),
            Closing::Forwarded | Closing::Joined(_) | Closing::Ended(_) => {
                *self = Closing::Ended(Some(request))
            }
        }
    }

    /// Polls the answer to the downstream's termination request.
    ///
    /// A `fail` is answered with its own error; an `abort` with the upstream's
    /// answer (or `done` when the upstream had already ended).
    pub fn poll_terminated<S: Source<Error = E>>(
        &mut self,
        upstream: Pin<&mut S>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), E>> {
        let answer = match self {
            Closing::Forwarded => ready!(upstream.poll_terminated(cx)),
            Closing::Joined(request) => {
                let upstream_answer = ready!(upstream.poll_terminated(cx));
                match request.take() {
                    Some(Termination::Fail(e)) => Err(e),
                    _ => upstream_answer,
                }
            }
            Closing::Ended(request) => request.take().map_or(Ok(()), Termination::confirm),
            Closing::Open | Closing::ForAsk => Ok(()),
        };
        *self = Closing::Ended(None);
        Poll::Ready(answer)
    }
}
