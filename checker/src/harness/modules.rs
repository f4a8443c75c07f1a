//! The test modules of seed 000, Appendix A: the test source (Algorithm 22),
//! and the output side of the sub-streams' test transformers (Algorithm 25),
//! which answers only when the harness picks one of its actions.

use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use pando_pull_stream::{Answer, Request, Source, Termination};

use crate::{Monitor, Probe};

/// The errors raised by the harness's test modules, by origin.
///
/// ```
/// use pando_checker::TestError;
/// assert_eq!(TestError::Source.to_string(), "the test source failed");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TestError {
    /// The test source ended with an error (scenario [`Scenario::Error`](crate::Scenario::Error)).
    #[error("the test source failed")]
    Source,
    /// The test sink failed the module's output (scenario [`Scenario::Fail`](crate::Scenario::Fail)).
    #[error("the test sink failed")]
    Sink,
    /// A sub-stream's transformer failed its input (the sub-stream's source).
    #[error("a sub-stream's input failed")]
    SubInput,
    /// A sub-stream's transformer ended its results with an error.
    #[error("a sub-stream's output failed")]
    SubOutput,
}

/// The input the harness connects to the module under test: the
/// [`TestSource`] behind a probe named `Input`.
pub type HarnessInput = Probe<TestSource>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn register(slot: &mut Option<Waker>, cx: &Context<'_>) {
    match slot {
        Some(w) if w.will_wake(cx.waker()) => {}
        w => *w = Some(cx.waker().clone()),
    }
}

#[derive(Default)]
pub(crate) struct SourceState {
    /// An ask is pending (polled, not answered yet).
    pub(crate) asked: bool,
    /// How many asks were made.
    pub(crate) asks: u64,
    /// The answer chosen by the harness, returned at the next poll.
    pub(crate) answer: Option<Answer<u64, TestError>>,
    waker: Option<Waker>,
    /// The termination requested by the module.
    pub(crate) termination: Option<Termination<TestError>>,
    /// Whether the harness confirmed the termination.
    pub(crate) confirmed: bool,
    term_waker: Option<Waker>,
    /// The values taken by the module (answers returned by `poll_ask`).
    pub(crate) delivered: u64,
    /// The end taken by the module: `Some(false)` for `done`, `Some(true)` for `error`.
    pub(crate) end_delivered: Option<bool>,
    /// The harness chose to make the source panic: every later `poll_ask` panics.
    pub(crate) panic: bool,
    /// The source has panicked.
    pub(crate) panicked: bool,
}

/// The message of the test source's panic.
pub(crate) const PANIC_MESSAGE: &str = "pando-checker: the test source panics (a chosen fault)";

impl SourceState {
    /// The harness answers the pending ask.
    pub(crate) fn answer(&mut self, answer: Answer<u64, TestError>) {
        self.answer = Some(answer);
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// The harness makes the pending ask (and every later one) panic.
    pub(crate) fn arm_panic(&mut self) {
        self.panic = true;
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// The harness confirms the termination.
    pub(crate) fn confirm(&mut self) {
        self.confirmed = true;
        if let Some(w) = self.term_waker.take() {
            w.wake();
        }
    }
}

/// The test source (seed 000, Algorithm 22): it answers an ask only when the
/// harness picks its action, with the values `1, 2, 3, …` then `done` or
/// `error` (or forever, in the scenarios where the sink ends the stream), and
/// confirms a termination only when picked too.
///
/// Only the harness makes test sources; a [`SubStreamModule`](crate::SubStreamModule)
/// receives one, behind a probe, in [`connect`](crate::SubStreamModule::connect):
///
/// ```
/// use pando_checker::{HarnessInput, TestError, TestSource};
/// use pando_pull_stream::Source;
///
/// fn takes_any_source(_: impl Source<Item = u64, Error = TestError> + Send + 'static) {}
/// fn connect(input: HarnessInput) {
///     takes_any_source(input); // a probed TestSource is a Send + 'static source
/// }
/// # let _ = connect;
/// # let _: Option<TestSource> = None;
/// ```
pub struct TestSource {
    pub(crate) state: Arc<Mutex<SourceState>>,
}

impl Source for TestSource {
    type Item = u64;
    type Error = TestError;

    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<u64, TestError>> {
        let mut st = lock(&self.state);
        if st.panic {
            st.panicked = true;
            drop(st);
            std::panic::panic_any(PANIC_MESSAGE);
        }
        if let Some(answer) = st.answer.take() {
            st.asked = false;
            match &answer {
                Answer::Value(_) => st.delivered += 1,
                Answer::Done => st.end_delivered = Some(false),
                Answer::Error(_) => st.end_delivered = Some(true),
            }
            return Poll::Ready(answer);
        }
        if !st.asked {
            st.asked = true;
            st.asks += 1;
        }
        register(&mut st.waker, cx);
        Poll::Pending
    }

    fn terminate(self: Pin<&mut Self>, request: Termination<TestError>) {
        let mut st = lock(&self.state);
        // A pending ask is abandoned, with any answer not taken yet.
        st.asked = false;
        st.answer = None;
        st.termination = Some(request);
    }

    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TestError>> {
        let mut st = lock(&self.state);
        if st.confirmed {
            return Poll::Ready(st.termination.map_or(Ok(()), Termination::confirm));
        }
        register(&mut st.term_waker, cx);
        Poll::Pending
    }
}

impl fmt::Debug for TestSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.state);
        f.debug_struct("TestSource")
            .field("asks", &st.asks)
            .field("asked", &st.asked)
            .field("terminated", &st.termination.is_some())
            .finish()
    }
}

/// The state of a test transformer's output (seed 000, Algorithm 25).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OutState {
    /// No ask from the module.
    Waiting,
    /// Asked; no answer chosen yet.
    Ready,
    /// An answer was chosen and waits to be taken by the module.
    Answering,
    /// The module aborted or failed it; the harness has not confirmed.
    Terminating,
    /// Ended (an answer `done` or `error` taken, or the termination confirmed).
    Terminated,
}

/// What the module took from a test transformer's output, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Delivered {
    /// The result of the value with this id.
    Value(u64),
    /// An unexpected result with this id.
    Bogus(u64),
    /// `done` or `error`.
    End,
}

pub(crate) struct ResultsState<R> {
    /// What the module took since the harness last looked.
    pub(crate) log: Vec<Delivered>,
    pub(crate) monitor: Monitor,
    pub(crate) state: OutState,
    ask_index: u64,
    answer: Option<Answer<R, TestError>>,
    /// The id of the value whose result is in `answer`.
    pub(crate) answer_id: Option<u64>,
    /// The id of the unexpected result in `answer`, if it is one.
    bogus_pending: Option<u64>,
    /// The answer in `answer` ends the results.
    pub(crate) ending: bool,
    /// The first unexpected result the module took.
    pub(crate) delivered_bogus: Option<u64>,
    /// Whether the module took an answer `error`.
    pub(crate) delivered_error: bool,
    waker: Option<Waker>,
    term_index: u64,
    pub(crate) confirm: Option<Result<(), TestError>>,
    term_waker: Option<Waker>,
}

impl<R> ResultsState<R> {
    pub(crate) fn new(monitor: Monitor) -> Self {
        ResultsState {
            log: Vec::new(),
            monitor,
            state: OutState::Waiting,
            ask_index: 0,
            answer: None,
            answer_id: None,
            bogus_pending: None,
            ending: false,
            delivered_bogus: None,
            delivered_error: false,
            waker: None,
            term_index: 0,
            confirm: None,
            term_waker: None,
        }
    }

    /// Whether an answer can be chosen now.
    pub(crate) fn can_answer(&self) -> bool {
        self.state == OutState::Ready
    }

    /// Whether a termination waits for the harness's confirmation.
    pub(crate) fn can_confirm(&self) -> bool {
        self.state == OutState::Terminating && self.confirm.is_none()
    }

    /// Whether the results have ended or are ending, from the transformer's side.
    pub(crate) fn ended(&self) -> bool {
        self.ending || matches!(self.state, OutState::Terminating | OutState::Terminated)
    }

    /// The harness chooses the answer to the pending ask.
    pub(crate) fn answer(&mut self, answer: Answer<R, TestError>, id: Option<u64>, bogus: Option<u64>) {
        self.ending = answer.is_terminal();
        self.answer = Some(answer);
        self.answer_id = id;
        self.bogus_pending = bogus;
        self.state = OutState::Answering;
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }

    /// Value `id` was lent again to this sub-stream while an unexpected
    /// result for it waits to be taken: that result is now a proper one.
    pub(crate) fn legitimize(&mut self, id: u64) -> bool {
        if self.bogus_pending == Some(id) {
            self.bogus_pending = None;
            self.answer_id = Some(id);
            return true;
        }
        false
    }

    /// The harness confirms the termination.
    pub(crate) fn confirm(&mut self, end: Result<(), TestError>) {
        self.confirm = Some(end);
        if let Some(w) = self.term_waker.take() {
            w.wake();
        }
    }
}

/// The output side of a sub-stream's test transformer (seed 000,
/// Algorithm 25, Table 4.4): the source of results that the module under
/// test reads through a sub-stream's sink. It answers with the results of
/// the values the transformer's input received, `done` or `error`, or an
/// unexpected result, only when the harness picks the action.
///
/// Its interface is recorded on a monitor named `S<k>:Results`. Only the
/// harness makes them; a [`SubStreamModule`](crate::SubStreamModule) receives
/// one in [`lend_stream`](crate::SubStreamModule::lend_stream):
///
/// ```
/// use pando_checker::{TestError, TestResults};
/// use pando_lend_stream::Lent;
/// use pando_pull_stream::Source;
///
/// fn takes_results(_: impl Source<Item = Lent<u64>, Error = TestError>) {}
/// fn lend(results: TestResults<Lent<u64>>) {
///     takes_results(results);
/// }
/// # let _ = lend;
/// ```
pub struct TestResults<R> {
    pub(crate) state: Arc<Mutex<ResultsState<R>>>,
}

impl<R: fmt::Debug> Source for TestResults<R> {
    type Item = R;
    type Error = TestError;

    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<R, TestError>> {
        let mut guard = lock(&self.state);
        let st = &mut *guard;
        if let Some(answer) = st.answer.take() {
            st.monitor.answer(st.ask_index, &answer);
            let id = st.answer_id.take();
            st.ending = false;
            match &answer {
                Answer::Value(_) => {
                    if let Some(id) = st.bogus_pending.take() {
                        st.delivered_bogus.get_or_insert(id);
                        st.log.push(Delivered::Bogus(id));
                    } else if let Some(id) = id {
                        st.log.push(Delivered::Value(id));
                    }
                    st.state = OutState::Waiting;
                }
                Answer::Done => {
                    st.log.push(Delivered::End);
                    st.state = OutState::Terminated;
                }
                Answer::Error(_) => {
                    st.log.push(Delivered::End);
                    st.delivered_error = true;
                    st.state = OutState::Terminated;
                }
            }
            return Poll::Ready(answer);
        }
        match st.state {
            OutState::Waiting => {
                st.ask_index = st.monitor.ask();
                st.state = OutState::Ready;
            }
            OutState::Ready | OutState::Answering => {}
            OutState::Terminating | OutState::Terminated => {
                // A request after termination: the monitor reports it
                // (invariant 1); answer it `done` so nothing hangs.
                let i = st.monitor.ask();
                st.monitor.done(i);
                return Poll::Ready(Answer::Done);
            }
        }
        register(&mut st.waker, cx);
        Poll::Pending
    }

    fn terminate(self: Pin<&mut Self>, request: Termination<TestError>) {
        let mut st = lock(&self.state);
        st.term_index = st.monitor.request(&Request::from(request));
        // A pending ask is abandoned, with any answer not taken yet.
        st.answer = None;
        st.answer_id = None;
        st.bogus_pending = None;
        st.ending = false;
        st.state = OutState::Terminating;
    }

    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), TestError>> {
        let mut st = lock(&self.state);
        if let Some(end) = st.confirm.take() {
            st.monitor.terminated(st.term_index, &end);
            st.state = OutState::Terminated;
            return Poll::Ready(end);
        }
        register(&mut st.term_waker, cx);
        Poll::Pending
    }
}

impl<R> fmt::Debug for TestResults<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = lock(&self.state);
        f.debug_struct("TestResults")
            .field("interface", &st.monitor.name())
            .field("state", &st.state)
            .finish()
    }
}

pub(crate) fn lock_state<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    lock(m)
}
