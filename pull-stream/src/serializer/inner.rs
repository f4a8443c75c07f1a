//! The state shared by the handles and the asks of a [`Serializer`](super::Serializer).

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::sync::{Mutex, MutexGuard};
use crate::{Answer, Source, Termination};

/// Locks the shared state. A panic while holding the lock leaves consistent
/// state (every mutation completes before anything that can panic), so a
/// poisoned lock is used as it is.
pub(super) fn lock<S: Source>(shared: &Mutex<Inner<S>>) -> MutexGuard<'_, Inner<S>> {
    shared.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(super) enum State<E> {
    /// The upstream can be asked.
    Open,
    /// The upstream answered `done` (`None`) or `error` (`Some`).
    Ended(Option<E>),
    /// A termination was forwarded upstream; its confirmation is pending.
    Terminating,
    /// The upstream was terminated and confirmed.
    Terminated,
}

pub(super) struct Inner<S: Source> {
    pub(super) upstream: Pin<Box<S>>,
    pub(super) state: State<S::Error>,
    /// The live (not answered, not cancelled) asks, in request order, with
    /// the waker of the task waiting on each.
    pub(super) tickets: VecDeque<(u64, Option<Waker>)>,
    /// Answers obtained from upstream and not yet delivered: `ready[i]` is
    /// the answer of `tickets[i]`.
    pub(super) ready: VecDeque<Answer<S::Item, S::Error>>,
    next_ticket: u64,
    pub(super) upstream_requests: u64,
    /// Whether an upstream ask is outstanding.
    asking: bool,
}

impl<S: Source> Inner<S> {
    pub(super) fn new(upstream: S) -> Self {
        Inner {
            upstream: Box::pin(upstream),
            state: State::Open,
            tickets: VecDeque::new(),
            ready: VecDeque::new(),
            next_ticket: 0,
            upstream_requests: 0,
            asking: false,
        }
    }

    pub(super) fn new_ticket(&mut self) -> u64 {
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        self.tickets.push_back((ticket, None));
        ticket
    }

    /// Wakes the asks at positions `from..` that have an answer waiting.
    fn wake_ready(&mut self, from: usize) {
        let until = self.ready.len().min(self.tickets.len());
        for (_, waker) in self.tickets.range_mut(from.min(until)..until) {
            if let Some(w) = waker.take() {
                w.wake();
            }
        }
    }

    pub(super) fn cancel(&mut self, ticket: u64) {
        if let Ok(p) = self.tickets.binary_search_by_key(&ticket, |(t, _)| *t) {
            self.tickets.remove(p);
            // Answers already obtained move on to the next asks: nothing is lost.
            self.wake_ready(p);
            // The upstream request in progress may hold the waker of the
            // cancelled ask only (the last one to poll it): wake the next
            // ask waiting for an answer, so that it polls the upstream with
            // its own waker. Without this, that ask could wait forever (found
            // by the interleaving checker through StreamLender, seed 413).
            if self.asking {
                if let Some((_, waker)) = self.tickets.get_mut(self.ready.len()) {
                    if let Some(w) = waker.take() {
                        w.wake();
                    }
                }
            }
        }
    }

    pub(super) fn poll_ticket(&mut self, ticket: u64, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>>
    where
        S::Error: Clone,
    {
        let p = self
            .tickets
            .binary_search_by_key(&ticket, |(t, _)| *t)
            .expect("a live ask has a ticket");
        loop {
            if p < self.ready.len() {
                let answer = self.ready.remove(p).expect("checked above");
                self.tickets.remove(p);
                return Poll::Ready(answer);
            }
            // The asks before this one are answered first, in order: any
            // polled ask drives the upstream on their behalf.
            let answer = match &self.state {
                State::Open => {
                    if !self.asking {
                        self.asking = true;
                        self.upstream_requests += 1;
                    }
                    let answer = match self.upstream.as_mut().poll_ask(cx) {
                        Poll::Pending => {
                            match &mut self.tickets[p].1 {
                                Some(w) if w.will_wake(cx.waker()) => {}
                                w => *w = Some(cx.waker().clone()),
                            }
                            return Poll::Pending;
                        }
                        Poll::Ready(answer) => answer,
                    };
                    self.asking = false;
                    match &answer {
                        Answer::Value(_) => {}
                        Answer::Done => self.state = State::Ended(None),
                        Answer::Error(e) => self.state = State::Ended(Some(e.clone())),
                    }
                    answer
                }
                State::Ended(Some(e)) => Answer::Error(e.clone()),
                State::Ended(None) | State::Terminating | State::Terminated => Answer::Done,
            };
            self.ready.push_back(answer);
            self.wake_ready(self.ready.len() - 1);
        }
    }

    /// Forwards `request` upstream if it is open; otherwise gives it back,
    /// to be answered locally.
    pub(super) fn terminate(&mut self, request: Termination<S::Error>) -> Option<Termination<S::Error>> {
        match self.state {
            State::Open => {
                self.upstream.as_mut().terminate(request);
                self.upstream_requests += 1;
                self.asking = false;
                self.state = State::Terminating;
                // Pending asks are answered by the termination.
                for waker in self.tickets.iter_mut().filter_map(|(_, w)| w.take()) {
                    waker.wake();
                }
                None
            }
            _ => Some(request),
        }
    }

    /// The confirmation of a termination forwarded upstream, once it is in;
    /// `Ok(())` if none was forwarded.
    pub(super) fn poll_terminating(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        match self.state {
            State::Terminating => {
                let end = std::task::ready!(self.upstream.as_mut().poll_terminated(cx));
                self.state = State::Terminated;
                Poll::Ready(end)
            }
            _ => Poll::Ready(Ok(())),
        }
    }
}
