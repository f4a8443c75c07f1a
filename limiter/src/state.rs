//! The Limiter's deterministic core: the state shared by the limited input
//! and output, and its transitions, which mirror the `upon` handlers of
//! Algorithms 8 and 9 (seed 000, §4.3.2).
//!
//! The poll adapters ([`LimitedInput`](crate::LimitedInput),
//! [`Limited`](crate::Limited), [`LimitHandle`](crate::LimitHandle)) call
//! these transitions under one lock and wake the returned waker after
//! releasing it.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;
use std::time::{Duration, Instant};

use crate::clock::{Clock, SystemClock};
use crate::flow::FlowMeter;

/// What the limited input does with an ask from the wrapped module.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum AskDecision {
    /// `k < nLimit`: `k ← k + 1`, and the ask is forwarded upstream.
    Forward,
    /// `k ≥ nLimit`: the ask waits (the waker is registered).
    Wait,
    /// The limited output has ended: nothing more will be output, so the
    /// upstream is aborted and the ask answered `done` once it confirms.
    Close,
}

pub(crate) struct State {
    /// `k`: values requested by the wrapped module and not yet output.
    in_process: usize,
    /// `nLimit`.
    limit: usize,
    /// Whether the limited output has ended or been terminated.
    closed: bool,
    /// The waker of an ask waiting for `k < nLimit`.
    waiting: Option<Waker>,
    flow: FlowMeter,
    clock: Arc<dyn Clock>,
}

impl State {
    pub(crate) fn new(limit: usize, window: Duration, clock: Arc<dyn Clock>) -> Self {
        State {
            in_process: 0,
            limit,
            closed: false,
            waiting: None,
            flow: FlowMeter::new(clock.now(), window),
            clock,
        }
    }

    /// `upon NLInput:ask⟨j⟩` (Algorithm 9, lines 30-36): forward if
    /// `k < nLimit` (and count it), otherwise wait.
    #[inline]
    pub(crate) fn ask(&mut self, waker: &Waker) -> AskDecision {
        if self.closed {
            return AskDecision::Close;
        }
        if self.in_process >= self.limit {
            match &self.waiting {
                Some(w) if w.will_wake(waker) => {}
                _ => self.waiting = Some(waker.clone()),
            }
            return AskDecision::Wait;
        }
        self.in_process += 1;
        AskDecision::Forward
    }

    /// The waiting ask, if the condition it waits for now holds.
    #[inline]
    fn release(&mut self) -> Option<Waker> {
        if self.in_process < self.limit || self.closed {
            self.waiting.take()
        } else {
            None
        }
    }

    /// `upon NLOutput:value⟨i, v⟩` (Algorithm 8, line 21): `k ← k − 1`.
    ///
    /// The wrapped module is expected to output one result per value
    /// (Expectation 2); an extra result does not make `k` negative.
    #[inline]
    pub(crate) fn value_out(&mut self) -> Option<Waker> {
        let now = self.clock.now();
        self.flow.record(now);
        self.in_process = self.in_process.saturating_sub(1);
        self.release()
    }

    /// A forwarded ask was answered `done` or `error`, or abandoned by a
    /// termination: it brought no value into process, so it is no longer
    /// counted.
    pub(crate) fn ask_ended(&mut self) -> Option<Waker> {
        self.in_process = self.in_process.saturating_sub(1);
        self.release()
    }

    /// `upon Limited:updateLimit⟨n⟩` (Algorithm 8, line 11): `nLimit ← n`.
    /// `n` is at least 1 (checked by the caller).
    pub(crate) fn update_limit(&mut self, n: usize) -> Option<Waker> {
        self.limit = n;
        self.release()
    }

    /// The limited output answered `done` or `error`, or was terminated.
    pub(crate) fn close(&mut self) -> Option<Waker> {
        self.closed = true;
        self.release()
    }

    pub(crate) fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.flow = FlowMeter::new(clock.now(), self.flow.window());
        self.clock = clock;
    }

    pub(crate) fn set_window(&mut self, window: Duration) {
        self.flow = FlowMeter::new(self.clock.now(), window);
    }

    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    pub(crate) fn in_process(&self) -> usize {
        self.in_process
    }

    pub(crate) fn results(&self) -> u64 {
        self.flow.total()
    }

    pub(crate) fn window(&self) -> Duration {
        self.flow.window()
    }

    pub(crate) fn flow_rate(&mut self) -> f64 {
        let now: Instant = self.clock.now();
        self.flow.rate(now)
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("State")
            .field("in_process", &self.in_process)
            .field("limit", &self.limit)
            .field("closed", &self.closed)
            .field("ask_waiting", &self.waiting.is_some())
            .field("results", &self.flow.total())
            .finish()
    }
}

/// The state shared by the limited input, the limited output and the handles.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
}

/// The default flow-rate window.
pub(crate) const DEFAULT_WINDOW: Duration = Duration::from_secs(1);

impl Shared {
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Shared {
            state: Mutex::new(State::new(limit, DEFAULT_WINDOW, Arc::new(SystemClock))),
        })
    }

    /// Locks the state. Every transition completes before anything that can
    /// panic, so a poisoned lock still guards consistent state.
    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a transition and wakes the waker it returns, outside the lock.
    #[inline]
    pub(crate) fn apply(&self, transition: impl FnOnce(&mut State) -> Option<Waker>) {
        let waker = transition(&mut self.lock());
        if let Some(w) = waker {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn state(limit: usize) -> State {
        State::new(limit, DEFAULT_WINDOW, Arc::new(SystemClock))
    }

    #[test]
    fn asks_are_forwarded_up_to_the_limit_then_wait() {
        let woken = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(woken.clone());
        let mut s = state(2);
        assert_eq!(s.ask(&waker), AskDecision::Forward);
        assert_eq!(s.ask(&waker), AskDecision::Forward);
        assert_eq!(s.ask(&waker), AskDecision::Wait);
        assert_eq!(s.in_process(), 2);
        // One result out: the waiting ask is released, and may now go.
        s.value_out().expect("released").wake();
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert_eq!(s.ask(&waker), AskDecision::Forward);
        assert_eq!(s.in_process(), 2);
    }

    #[test]
    fn lowering_the_limit_holds_asks_until_the_count_drops_under_it() {
        let waker = Waker::noop().clone();
        let mut s = state(3);
        for _ in 0..3 {
            assert_eq!(s.ask(&waker), AskDecision::Forward);
        }
        assert!(s.update_limit(1).is_none());
        assert_eq!(s.ask(&waker), AskDecision::Wait);
        assert!(s.value_out().is_none()); // k = 2
        assert!(s.value_out().is_none()); // k = 1
        assert_eq!(s.ask(&waker), AskDecision::Wait);
        assert!(s.value_out().is_some()); // k = 0 < 1
        assert_eq!(s.ask(&waker), AskDecision::Forward);
    }

    #[test]
    fn raising_the_limit_releases_a_waiting_ask() {
        let waker = Waker::noop().clone();
        let mut s = state(1);
        assert_eq!(s.ask(&waker), AskDecision::Forward);
        assert_eq!(s.ask(&waker), AskDecision::Wait);
        assert!(s.update_limit(2).is_some());
        assert_eq!(s.ask(&waker), AskDecision::Forward);
    }

    #[test]
    fn closing_releases_a_waiting_ask_which_then_closes() {
        let waker = Waker::noop().clone();
        let mut s = state(1);
        assert_eq!(s.ask(&waker), AskDecision::Forward);
        assert_eq!(s.ask(&waker), AskDecision::Wait);
        assert!(s.close().is_some());
        assert_eq!(s.ask(&waker), AskDecision::Close);
    }

    #[test]
    fn extra_results_do_not_underflow() {
        let mut s = state(1);
        assert!(s.value_out().is_none());
        assert_eq!(s.in_process(), 0);
        assert_eq!(s.results(), 1);
    }
}
