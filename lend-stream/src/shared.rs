//! The lender's shared lock state: the [`machine`](crate::machine) core, the
//! input and its read in progress, and the wakers of whoever waits on them.
//! The public types ([`StreamLender`](crate::StreamLender), the sub-stream
//! halves, the asks) are thin adapters over this module; they never reach
//! into each other.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::task::{Context, Poll, Wake, Waker};

use pando_pull_stream::Answer;

use crate::Lent;
use crate::input::InputCell;
use crate::machine::{Core, InputEnd, SubAsk, SubId};
use crate::sync::{Arc, AtomicBool, Mutex, MutexGuard, Ordering};

/// The lender's input: a handle on its source (see `input.rs`).
pub(crate) type Input<T, E> = Arc<InputCell<T, E>>;

/// Everything the lender's parties share: the core, the input, and the
/// wakers of whoever waits on the core.
pub(crate) struct State<T, R, E> {
    pub(crate) core: Core<T, R>,
    pub(crate) input_error: Option<E>,
    /// The message of the input's panic, if it panicked.
    pub(crate) input_panic: Option<String>,
    output_waker: Option<Waker>,
    /// Sub-stream asks waiting on others (or on the input being connected).
    waiting: Vec<Waker>,
    /// Whether a read of the input is in progress. The lender reads its
    /// input one value at a time, so that values (and the input's end) reach
    /// the core in input order: the ids are input positions (bug found by the
    /// interleaving checker, seed 1899: two concurrent asks each holding a
    /// ticket of the Serializer then on the input delivered the second
    /// value before the first, which
    /// then got id 1 — and `done` could overtake a value not yet delivered).
    reading: bool,
    /// The read in progress is parked between polls (its source answered
    /// `Pending`). It belongs to the lender, not to the ask that started it:
    /// any ask that needs a value may poll it, and dropping an ask does not
    /// cancel it. `false` while `reading` means an ask has checked it out to
    /// poll it (never under this lock).
    parked: bool,
    /// Sub-stream sinks waiting for results, to be woken if they must stop.
    sinks: Vec<(SubId, Waker)>,
    /// The asks waiting for the input (woken by it, through the fan-out waker).
    fan_out: std::sync::Arc<FanOut>,
    /// Whether an ask registered in `fan_out` since it was last woken from
    /// here (registrations are made under the state's lock).
    fan_waiters: bool,
}

/// The waker the input is polled with: it wakes every ask waiting for the
/// input (not only the one that polled it last), so that an ask that stops
/// being polled cannot keep the others waiting. Its own small lock, never
/// taken before the state's.
struct FanOut {
    wakers: Mutex<Vec<Waker>>,
    /// Set by every wake: a poll that returned `Pending` checks it after
    /// parking the read, so that a wake during the poll is not lost.
    woken: AtomicBool,
}

impl FanOut {
    fn register(&self, cx: &Context<'_>) {
        let mut wakers = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        if !wakers.iter().any(|w| w.will_wake(cx.waker())) {
            wakers.push(cx.waker().clone());
        }
    }

    fn wake_all(&self) {
        self.woken.store(true, Ordering::SeqCst);
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|p| p.into_inner()));
        for w in wakers {
            w.wake();
        }
    }
}

impl Wake for FanOut {
    fn wake(self: std::sync::Arc<Self>) {
        self.wake_all();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.wake_all();
    }
}

pub(crate) struct Shared<T, R, E> {
    state: Mutex<State<T, R, E>>,
    /// The lender's input, once connected. It is set once and never taken
    /// back, so a read uses it without cloning the handle (an `Arc` count
    /// up and down per value) and without the state's lock.
    pub(crate) input: OnceLock<Input<T, E>>,
    /// The fan-out waker the input is polled with, made once.
    fan_out_waker: Waker,
    fan_out: std::sync::Arc<FanOut>,
}

impl<T, R, E> Shared<T, R, E> {
    pub(crate) fn new(core: Core<T, R>) -> Self {
        let fan_out = std::sync::Arc::new(FanOut {
            wakers: Mutex::new(Vec::new()),
            woken: AtomicBool::new(false),
        });
        Shared {
            state: Mutex::new(State {
                core,
                input_error: None,
                input_panic: None,
                output_waker: None,
                waiting: Vec::new(),
                reading: false,
                parked: false,
                sinks: Vec::new(),
                fan_out: fan_out.clone(),
                fan_waiters: false,
            }),
            input: OnceLock::new(),
            fan_out_waker: Waker::from(fan_out.clone()),
            fan_out,
        }
    }

    /// The input was connected: the asks that came before it decide again.
    ///
    /// # Panics
    ///
    /// If the input is already connected: a lender has one input.
    pub(crate) fn connect(&self, input: Input<T, E>) {
        assert!(
            self.input.set(input).is_ok(),
            "a StreamLender's input is connected once"
        );
        // An ask that found no input registered under the lock, before this.
        let mut state = self.lock();
        for w in state.waiting.drain(..) {
            w.wake();
        }
    }

    /// A handle on the input, if it is connected and did not panic (an
    /// input that panicked is not touched again); `state` is this lender's.
    pub(crate) fn input_handle(&self, state: &State<T, R, E>) -> Option<Input<T, E>> {
        if state.input_panic.is_none() {
            self.input.get().cloned()
        } else {
            None
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State<T, R, E>> {
        // Every critical section leaves the state consistent before anything
        // that could panic, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sub-stream `k`'s sink ended: no more results come from it.
    pub(crate) fn sink_ended(&self, k: SubId) {
        let mut state = self.lock();
        state.core.on_sub_sink_end(k);
        state.forget_sink(k);
        state.wake();
    }

    /// Records the input's panic (caught at its poll) as its end, and releases the read.
    fn input_panicked(&self, payload: Box<dyn Any + Send>) {
        let message = match payload.downcast::<String>() {
            Ok(s) => *s,
            Err(payload) => payload
                .downcast_ref::<&str>()
                .map_or_else(|| "unknown panic".to_owned(), |s| (*s).to_owned()),
        };
        let mut state = self.lock();
        if state.core.input_open() && state.input_panic.is_none() {
            state.input_panic = Some(message);
        }
        state.core.on_input_end(InputEnd::Panicked);
        state.end_read();
        state.wake();
        state.parked = false;
    }
}

impl<T, R, E> State<T, R, E> {
    /// Wakes the parties the last events concern.
    #[inline]
    pub(crate) fn wake(&mut self) {
        let wake = self.core.take_wake();
        if wake.output {
            if let Some(w) = self.output_waker.take() {
                w.wake();
            }
        }
        if wake.waiting {
            self.wake_waiting();
            // The asks waiting for the input decide again too (it may have
            // been closed, or the lender terminated).
            self.wake_fan_out();
        }
        if wake.sinks && !self.sinks.is_empty() {
            for (_, w) in self.sinks.drain(..) {
                w.wake();
            }
        }
    }

    /// Wakes the sub-stream asks waiting on others.
    #[inline]
    fn wake_waiting(&mut self) {
        // Most calls find none: not even a drain then.
        if !self.waiting.is_empty() {
            for w in self.waiting.drain(..) {
                w.wake();
            }
        }
    }

    /// The read of the input in progress ended: the asks waiting for it
    /// decide again.
    fn end_read(&mut self) {
        self.reading = false;
        self.wake_waiting();
        self.wake_fan_out();
    }

    /// Registers the ask of `cx` to be woken by the input (or the end of the read).
    fn wait_input(&mut self, cx: &Context<'_>) {
        self.fan_out.register(cx);
        self.fan_waiters = true;
    }

    #[inline]
    fn wake_fan_out(&mut self) {
        if std::mem::take(&mut self.fan_waiters) {
            self.fan_out.wake_all();
        }
    }

    /// Gives up the parked read once the input can no longer be read (it
    /// was closed or the output terminated): its answer, if any, is not
    /// wanted (the input's termination answers it).
    pub(crate) fn drop_stale_read(&mut self) {
        if !self.core.input_open() && std::mem::take(&mut self.parked) {
            self.reading = false;
        }
    }

    pub(crate) fn wait(&mut self, cx: &Context<'_>) {
        if !self.waiting.iter().any(|w| w.will_wake(cx.waker())) {
            self.waiting.push(cx.waker().clone());
        }
    }

    pub(crate) fn wait_output(&mut self, cx: &Context<'_>) {
        match &mut self.output_waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
    }

    /// Whether sub-stream `k`'s sink must stop; if not, its waker is
    /// registered to be woken when it must, unless `registered` says it was
    /// already, in this poll (with this `cx`): a registration lasts until
    /// the sinks are woken, and they are woken only when they must stop
    /// (the lender terminated or cut off: for good), or when the sink ends.
    pub(crate) fn sink_must_stop_or_wait(
        &mut self,
        k: SubId,
        cx: &Context<'_>,
        registered: &mut bool,
    ) -> bool {
        let stop = self.core.sink_must_stop(k);
        if !stop && !std::mem::replace(registered, true) {
            self.wait_sink(k, cx);
        }
        stop
    }

    fn wait_sink(&mut self, k: SubId, cx: &Context<'_>) {
        match self.sinks.iter_mut().find(|(s, _)| *s == k) {
            Some((_, w)) if w.will_wake(cx.waker()) => {}
            Some((_, w)) => *w = cx.waker().clone(),
            None => self.sinks.push((k, cx.waker().clone())),
        }
    }

    pub(crate) fn forget_sink(&mut self, k: SubId) {
        self.sinks.retain(|(s, _)| *s != k);
    }

    /// Hands the input's answer to the core: a value is lent to `k` (the
    /// answer to its ask); the end of the input is recorded (the ask is
    /// decided again). The read ends with it, in the same critical section,
    /// so that the next value cannot overtake this one.
    fn deliver<F>(&mut self, k: SubId, answer: Answer<T, E>) -> Option<Answer<Lent<T>, F>>
    where
        T: Clone,
    {
        let lent = match answer {
            Answer::Value(v) => match self.core.on_input_value(k, v) {
                SubAsk::Lend(l) => Some(Answer::Value(l)),
                // `k` may not take a value now: the value waits for the next ask.
                SubAsk::Wait => None,
                _ => Some(Answer::Done),
            },
            Answer::Done => {
                self.core.on_input_end(InputEnd::Done);
                None
            }
            Answer::Error(e) => {
                if self.core.input_open() && self.input_error.is_none() {
                    self.input_error = Some(e);
                }
                self.core.on_input_end(InputEnd::Error);
                None
            }
        };
        self.end_read();
        self.wake();
        lent
    }
}

/// Polls one ask of sub-stream `k` (Algorithm 11, lines 34-50).
///
/// The input is polled without holding the lender's lock, so an input that
/// reads from the lender's own output (a feedback loop) cannot deadlock, and
/// a panic in it is caught there ([`InputEnd::Panicked`]). One read of the
/// input is in progress at a time; it lives in the shared state, and is
/// polled with the fan-out waker by whichever ask needing a value is polled
/// when it is ready, so no ask (and no sub-stream) depends on another being
/// polled.
pub(crate) fn poll_sub_ask<T, R, E, F>(
    shared: &Shared<T, R, E>,
    k: SubId,
    cx: &mut Context<'_>,
) -> Poll<Answer<Lent<T>, F>>
where
    T: Clone + Send + 'static,
    E: Clone + Send + 'static,
{
    loop {
        let mut state = shared.lock();
        match state.core.sub_ask(k) {
            SubAsk::Lend(l) => {
                state.wake();
                return Poll::Ready(Answer::Value(l));
            }
            SubAsk::Done => return Poll::Ready(Answer::Done),
            SubAsk::Wait => {
                state.wait(cx);
                return Poll::Pending;
            }
            SubAsk::ReadInput => {}
        }
        let Some(input) = shared.input.get() else {
            // The lender's input is not connected yet.
            state.wait(cx);
            return Poll::Pending;
        };
        if state.reading {
            if !std::mem::take(&mut state.parked) {
                // Another ask is polling the read: its answer, or the
                // input's wake, wakes this one (registered under the
                // state's lock, so neither can be missed).
                state.wait_input(cx);
                return Poll::Pending;
            }
            // The parked read is checked out, to be polled.
        } else {
            state.reading = true;
        }
        drop(state);
        // Only a wake since the last poll of the input leaves `woken` set;
        // clearing it when it is clear would cost an atomic swap per value.
        // (A wake between this load and the poll is either seen by the
        // poll, or leaves `woken` set: at worst one more poll.)
        if shared.fan_out.woken.load(Ordering::Relaxed) {
            shared.fan_out.woken.store(false, Ordering::SeqCst);
        }
        let mut fan_cx = Context::from_waker(&shared.fan_out_waker);
        match catch_unwind(AssertUnwindSafe(|| input.poll_read(&mut fan_cx))) {
            Ok(Poll::Ready(answer)) => {
                let mut state = shared.lock();
                if let Some(lent) = state.deliver(k, answer) {
                    return Poll::Ready(lent);
                }
            }
            Ok(Poll::Pending) => {
                {
                    let mut state = shared.lock();
                    state.wait_input(cx);
                    state.parked = true;
                    state.drop_stale_read();
                }
                if !shared.fan_out.woken.load(Ordering::SeqCst) {
                    return Poll::Pending;
                }
                // Woken while it was checked out: poll again.
            }
            Err(payload) => shared.input_panicked(payload),
        }
    }
}
