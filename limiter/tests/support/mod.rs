//! Test support: a seeded PRNG, an eager inner module with random stalls, a
//! meter that checks the in-process bound at every forwarded ask, and an
//! upstream that confirms terminations slowly.

#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use pando_limiter::LimitHandle;
use pando_pull_stream::closing::Closing;
use pando_pull_stream::{Answer, Connect, Source, Termination};

/// The seeded PRNG and the seed-printing guard are the checker's.
pub use pando_checker::rng::{SeedGuard, SplitMix64};

/// An eager through: it asks its input for as many values as it can (until
/// the input is pending), buffers them, and outputs them in order, applying
/// `f`. It outputs the front value only once more than `hold` values are
/// buffered (or its input ended), and stalls at random (`stall` percent of
/// the polls) to vary the interleavings. On its input's `done` or `error`,
/// it outputs its buffered values first.
pub struct Eager<S: Source> {
    input: Pin<Box<S>>,
    buffer: VecDeque<S::Item>,
    end: Option<Result<(), S::Error>>,
    ended: bool,
    hold: usize,
    stall: u64,
    rng: SplitMix64,
    closing: Closing<S::Error>,
}

#[derive(Clone, Debug)]
pub struct EagerModule {
    pub hold: usize,
    pub stall: u64,
    pub seed: u64,
}

/// An eager through with no hold and `stall` percent of random stalls.
pub fn eager(stall: u64, seed: u64) -> EagerModule {
    EagerModule { hold: 0, stall, seed }
}

/// An eager through that needs `hold + 1` values in process to output one.
pub fn lookahead(hold: usize) -> EagerModule {
    EagerModule {
        hold,
        stall: 0,
        seed: 0,
    }
}

impl<S: Source> Connect<S> for EagerModule {
    type Output = Eager<S>;
    fn connect(self, input: S) -> Eager<S> {
        Eager {
            input: Box::pin(input),
            buffer: VecDeque::new(),
            end: None,
            ended: false,
            hold: self.hold,
            stall: self.stall,
            rng: SplitMix64::new(self.seed),
            closing: Closing::Open,
        }
    }
}

// No field is pinned: the input is boxed.
impl<S: Source> Unpin for Eager<S> {}

impl<S: Source> Source for Eager<S> {
    type Item = S::Item;
    type Error = S::Error;

    fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>> {
        let this = &mut *self;
        while this.closing.is_open() {
            match this.input.as_mut().poll_ask(cx) {
                Poll::Pending => break,
                Poll::Ready(Answer::Value(v)) => this.buffer.push_back(v),
                Poll::Ready(end) => {
                    this.closing.ended();
                    this.end = Some(match end {
                        Answer::Error(e) => Err(e),
                        _ => Ok(()),
                    });
                }
            }
        }
        if this.stall > 0 && this.rng.percent(this.stall) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if this.buffer.len() > this.hold || ((this.end.is_some() || this.ended) && !this.buffer.is_empty()) {
            return Poll::Ready(Answer::Value(this.buffer.pop_front().expect("checked")));
        }
        if let Some(end) = this.end.take() {
            this.ended = true;
            return Poll::Ready(Answer::from_end(end));
        }
        Poll::Pending
    }

    fn terminate(mut self: Pin<&mut Self>, request: Termination<S::Error>) {
        let this = &mut *self;
        this.buffer.clear();
        this.closing.terminate(this.input.as_mut(), request);
    }

    fn poll_terminated(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        let this = &mut *self;
        this.closing.poll_terminated(this.input.as_mut(), cx)
    }
}

/// What a [`Meter`] saw.
#[derive(Debug, Default)]
pub struct MeterState {
    /// Asks forwarded upstream by the Limiter.
    pub asked: u64,
    /// Values output by the Limiter.
    pub out: u64,
    /// The largest number in process right after an ask.
    pub peak: u64,
    /// For each forwarded ask: (number in process before it, limit at that time).
    pub asks: Vec<(u64, usize)>,
}

/// Independent instrumentation of a Limiter: counts the asks it forwards
/// upstream and the values it outputs, and asserts at every forwarded ask
/// that the number in process stays within the limit read from the handle.
#[derive(Clone)]
pub struct Meter {
    state: Arc<Mutex<MeterState>>,
    handle: Option<LimitHandle>,
}

impl Meter {
    /// A meter checking against `handle`'s limit.
    pub fn new(handle: LimitHandle) -> Self {
        Meter {
            state: Arc::default(),
            handle: Some(handle),
        }
    }

    /// A meter that only counts (for modules without a Limiter).
    pub fn unchecked() -> Self {
        Meter {
            state: Arc::default(),
            handle: None,
        }
    }

    /// The through to put right upstream of the Limiter.
    pub fn input(&self) -> impl FnOnce(BoxedSource) -> Metered + use<> {
        let meter = self.clone();
        move |s| Metered {
            inner: s,
            meter,
            input: true,
            asking: false,
        }
    }

    /// The through to put right downstream of the Limiter.
    pub fn output(&self) -> impl FnOnce(BoxedSource) -> Metered + use<> {
        let meter = self.clone();
        move |s| Metered {
            inner: s,
            meter,
            input: false,
            asking: false,
        }
    }

    pub fn peak(&self) -> u64 {
        self.state.lock().unwrap().peak
    }

    pub fn asked(&self) -> u64 {
        self.state.lock().unwrap().asked
    }

    pub fn out(&self) -> u64 {
        self.state.lock().unwrap().out
    }

    pub fn in_process(&self) -> u64 {
        let s = self.state.lock().unwrap();
        s.asked - s.out
    }

    pub fn asks(&self) -> Vec<(u64, usize)> {
        self.state.lock().unwrap().asks.clone()
    }
}

pub type Error = String;
pub type BoxedSource = Pin<Box<dyn Source<Item = u64, Error = Error> + Send>>;

/// A metered interface (see [`Meter`]); items are `u64`, errors `String`.
pub struct Metered {
    inner: BoxedSource,
    meter: Meter,
    input: bool,
    asking: bool,
}

impl Source for Metered {
    type Item = u64;
    type Error = Error;

    fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<u64, Error>> {
        let this = &mut *self;
        if this.input && !this.asking {
            this.asking = true;
            let mut s = this.meter.state.lock().unwrap();
            let before = s.asked - s.out;
            if let Some(handle) = &this.meter.handle {
                let limit = handle.limit();
                assert!(
                    (before as usize) < limit,
                    "ask #{} forwarded with {before} values in process, limit {limit}",
                    s.asked + 1
                );
                s.asks.push((before, limit));
            }
            s.asked += 1;
            s.peak = s.peak.max(before + 1);
        }
        let answer = ready!(this.inner.as_mut().poll_ask(cx));
        this.asking = false;
        let mut s = this.meter.state.lock().unwrap();
        if this.input && answer.is_terminal() {
            // The ask brought nothing into process.
            s.asked -= 1;
        }
        if !this.input && !answer.is_terminal() {
            s.out += 1;
        }
        Poll::Ready(answer)
    }

    fn terminate(mut self: Pin<&mut Self>, request: Termination<Error>) {
        self.asking = false;
        self.inner.as_mut().terminate(request)
    }

    fn poll_terminated(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.as_mut().poll_terminated(cx)
    }
}

/// Boxes a source of `u64` and `String` errors (to keep test types short).
pub fn boxed<S>(s: S) -> BoxedSource
where
    S: Source<Item = u64, Error = Error> + Send + 'static,
{
    Box::pin(s)
}

/// An upstream of `n` values (1..=n) that answers a termination only after
/// `delay` extra polls, and records when it confirmed.
pub struct SlowConfirm {
    next: u64,
    n: u64,
    delay: u32,
    termination: Option<Termination<Error>>,
    pub confirmed: Arc<Mutex<bool>>,
}

impl SlowConfirm {
    pub fn new(n: u64, delay: u32) -> Self {
        SlowConfirm {
            next: 0,
            n,
            delay,
            termination: None,
            confirmed: Arc::default(),
        }
    }
}

impl Source for SlowConfirm {
    type Item = u64;
    type Error = Error;

    fn poll_ask(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Answer<u64, Error>> {
        if self.next == self.n {
            return Poll::Ready(Answer::Done);
        }
        self.next += 1;
        Poll::Ready(Answer::Value(self.next))
    }

    fn terminate(mut self: Pin<&mut Self>, request: Termination<Error>) {
        self.termination = Some(request);
    }

    fn poll_terminated(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.delay > 0 {
            self.delay -= 1;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        *self.confirmed.lock().unwrap() = true;
        Poll::Ready(self.termination.take().expect("terminate first").confirm())
    }
}

/// The position of the first event of the trace printed as `event`.
pub fn position(trace: &[String], event: &str) -> usize {
    trace
        .iter()
        .position(|e| e == event)
        .unwrap_or_else(|| panic!("no event {event} in the trace {trace:#?}"))
}
