//! One execution: the interleaving algorithm of seed 000 (Algorithms 26-29)
//! over the real async module, driven by a deterministic, single-threaded
//! executor of our own. Every future and every source the harness polls is
//! a *task* with its own waker, which only records the wake-up; a task is
//! polled again only after it was woken, so a lost wake-up shows as a task
//! that could progress but was never woken (checked whenever nothing else can
//! happen). Nothing here uses threads or time.

use std::collections::VecDeque;
use std::fmt::{self, Write};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use pando_pull_stream::{Answer, Connect, Request, Source, Termination};

use super::modules::{ResultsState, SourceState, lock_state};
use super::{
    Config, Execution, Failure, HarnessInput, Property, Scenario, SinkOutcome, SubStreamModule, TestError,
    TestResults, TestSource, unwork, work,
};
use crate::rng::SplitMix64 as Rng;
use crate::{Checker, Monitor, Probe};

/// The percentage of "normal" choices among a sub-stream's actions (seed
/// 000, §4.6.3: 90%).
const NORMAL_BIAS: u64 = 90;
/// Ids of unexpected results that were never lent.
const BOGUS_IDS: u64 = 1 << 40;

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A task of the executor: its waker only records that it was woken.
struct Task {
    flag: Arc<Flag>,
    waker: Waker,
}

impl Task {
    /// A new task, to be polled for the first time.
    fn new() -> Self {
        let flag = Arc::new(Flag(AtomicBool::new(true)));
        Task {
            waker: Waker::from(flag.clone()),
            flag,
        }
    }
    fn woken(&self) -> bool {
        self.flag.0.load(Ordering::Relaxed)
    }
    fn set(&self) {
        self.flag.0.store(true, Ordering::Relaxed);
    }
    fn clear(&self) {
        self.flag.0.store(false, Ordering::Relaxed);
    }
}

/// The state of a test transformer's input (Algorithm 24, with concurrent asks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InputState {
    /// Ready or waiting (asks pending).
    Open,
    /// Aborted or failed; the confirmation is pending.
    Terminating,
    /// Done, error, or the termination confirmed.
    Terminated,
}

/// The test sink (Algorithm 23).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SinkState {
    Idle,
    Asking,
    Terminating { fail: bool },
    Ended,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TaskId {
    Output,
    Sink(usize),
    Ask(usize, usize),
    Single(usize),
    Term(usize),
}

/// The top-level choices of Algorithm 26, plus connecting the input late.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Choice {
    Source,
    Sink,
    Create,
    Connect,
    Sub,
}

/// A sub-stream's actions (Tables 4.3 and 4.4, extended).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SubAction {
    /// Input: ask (concurrently, up to the sub-stream's limit).
    Ask,
    /// Input: abort.
    Abort,
    /// Input: fail.
    Fail,
    /// Output: the result of the oldest value held.
    Value,
    /// Output: `done`, or confirm a termination, once the input terminated.
    Done,
    /// Output: `error`, or confirm a termination with an error, once the input terminated.
    Error,
    /// Output: end first (`done`), while the input is open or values are held.
    EarlyDone,
    /// Output: end first with `error`.
    EarlyError,
    /// Output: a result for a value the sub-stream does not hold.
    Bogus,
    /// Drop the whole sub-stream.
    Crash,
}

enum Note {
    Connect,
    Lend { n: usize, correct: bool, asks: usize },
    Crash(usize),
    Finished(usize),
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Connect => f.write_str("the input is connected"),
            Note::Lend { n, correct, asks } => {
                write!(f, "lendStream⟨⟩ = S{n} (")?;
                match asks {
                    1 => f.write_str("one ask at a time")?,
                    k => write!(f, "up to {k} concurrent asks")?,
                }
                if *correct {
                    f.write_str(", correct: never fails")?;
                }
                f.write_str(")")
            }
            Note::Crash(n) => write!(f, "S{n} crashes: both halves dropped"),
            Note::Finished(n) => write!(f, "S{n} finished: removed"),
        }
    }
}

struct Sub<M: SubStreamModule> {
    n: usize,
    correct: bool,
    max_asks: usize,
    source: M::SubSource,
    mon: Monitor,
    input: InputState,
    asks: Vec<(u64, M::Ask, Task)>,
    single: Option<(u64, Task)>,
    term: Option<(u64, Task, bool)>,
    results: Arc<Mutex<ResultsState<M::Result>>>,
    sink: Option<(Pin<Box<M::SinkFuture>>, Task)>,
    /// The values received and not answered yet (Output.values), oldest first.
    values: VecDeque<(u64, u64)>,
    /// The ids of the results answered.
    answered: Vec<u64>,
}

impl<M: SubStreamModule> Sub<M> {
    fn pending_asks(&self) -> usize {
        self.asks.len() + usize::from(self.single.is_some())
    }

    /// Live: neither side ended, from the transformer's side. The module may
    /// take values back from a sub-stream only once it is not live.
    fn live(&self) -> bool {
        self.input == InputState::Open && !lock_state(&self.results).ended()
    }

    fn holds(&self, id: u64) -> bool {
        self.values.iter().any(|&(i, _)| i == id) || lock_state(&self.results).answer_id == Some(id)
    }

    fn finished(&self) -> bool {
        self.input == InputState::Terminated
            && self.asks.is_empty()
            && self.single.is_none()
            && self.term.is_none()
            && self.sink.is_none()
    }

    fn actions(&self, out: &mut Vec<SubAction>) {
        out.clear();
        let r = lock_state(&self.results);
        let input_done = self.input == InputState::Terminated;
        let output_ended = r.ended();
        if self.input == InputState::Open {
            if !output_ended && self.pending_asks() < self.max_asks {
                out.push(SubAction::Ask);
            }
            if !self.correct {
                out.extend([SubAction::Abort, SubAction::Fail]);
            } else if output_ended {
                out.push(SubAction::Abort);
            }
        }
        if r.can_answer() {
            if !self.values.is_empty() {
                out.push(SubAction::Value);
            }
            if self.values.is_empty() && input_done {
                out.push(SubAction::Done);
                if !self.correct {
                    out.push(SubAction::Error);
                }
            } else if !self.correct {
                out.extend([SubAction::EarlyDone, SubAction::EarlyError]);
            }
            if !self.correct {
                out.push(SubAction::Bogus);
            }
        }
        if r.can_confirm() {
            if input_done {
                out.push(SubAction::Done);
                if !self.correct {
                    out.push(SubAction::Error);
                }
            } else if !self.correct {
                out.extend([SubAction::EarlyDone, SubAction::EarlyError]);
            }
        }
        if !self.correct {
            out.push(SubAction::Crash);
        }
    }

    fn describe(&self) -> String {
        let r = lock_state(&self.results);
        format!(
            "S{}{}: input {:?} with {} ask(s) pending{}, output {:?}{}, holding {:?}, sink future {}",
            self.n,
            if self.correct { " (correct)" } else { "" },
            self.input,
            self.pending_asks(),
            if self.term.is_some() {
                " and its termination pending"
            } else {
                ""
            },
            r.state,
            if r.ending { " (ending)" } else { "" },
            self.values.iter().map(|&(id, _)| id).collect::<Vec<_>>(),
            if self.sink.is_some() {
                "pending"
            } else {
                "finished"
            },
        )
    }
}

struct Exec<M: SubStreamModule> {
    cfg: Config,
    scenario: Scenario,
    rng: Rng,
    checker: Checker,
    notes: Vec<(usize, Note)>,
    module: M,
    source: Arc<Mutex<SourceState>>,
    input: Option<HarnessInput>,
    output: Option<Probe<M::Output>>,
    sink: SinkState,
    output_task: Task,
    /// The values whose results were output, in output order.
    outputs: Vec<u64>,
    seen: Vec<bool>,
    /// The values produced by the test source.
    sourced: u64,
    subs: Vec<Sub<M>>,
    created: usize,
    sub_asks: u64,
    steps: u64,
    scratch: Vec<SubAction>,
}

fn fail<T>(property: Property, message: String) -> Result<T, Failure> {
    Err(Failure { property, message })
}

pub(super) fn execute<M: SubStreamModule>(config: &Config) -> Execution {
    let mut ex = Exec::<M>::new(config);
    let failure = ex.run().err().map(|mut f| {
        let found = ex.checker.violations();
        if f.property != Property::Protocol && !found.is_empty() {
            let _ = write!(f.message, "\n  (protocol violations so far: {})", found.len());
            for v in &found {
                let _ = write!(f.message, "\n    {v}");
            }
        }
        f
    });
    let trace = (failure.is_some() || config.trace).then(|| ex.render());
    Execution {
        config: config.clone(),
        scenario: ex.scenario,
        steps: ex.steps,
        sub_streams: ex.created,
        failure,
        trace,
    }
}

impl<M: SubStreamModule> Exec<M> {
    fn new(cfg: &Config) -> Self {
        let mut rng = Rng::new(cfg.seed);
        let scenario = match cfg.scenario {
            Some(s) => s,
            None => match (rng.percent(50), rng.percent(50)) {
                (true, true) => Scenario::Done,
                (true, false) => Scenario::Error,
                (false, true) => Scenario::Abort,
                (false, false) => Scenario::Fail,
            },
        };
        let checker = Checker::collecting();
        let source = Arc::new(Mutex::new(SourceState::default()));
        let input = checker.probe("Input").connect(TestSource {
            state: source.clone(),
        });
        let connect_now = rng.percent(50);
        let mut ex = Exec {
            cfg: cfg.clone(),
            scenario,
            rng,
            checker,
            notes: Vec::new(),
            module: M::create(cfg.ordered),
            source,
            input: Some(input),
            output: None,
            sink: SinkState::Idle,
            output_task: Task::new(),
            outputs: Vec::new(),
            seen: Vec::new(),
            sourced: 0,
            subs: Vec::new(),
            created: 0,
            sub_asks: 0,
            steps: 0,
            scratch: Vec::new(),
        };
        if connect_now {
            ex.connect();
        }
        ex
    }

    fn note(&mut self, note: Note) {
        self.notes.push((self.checker.trace_len(), note));
    }

    fn run(&mut self) -> Result<(), Failure> {
        let mut woken = Vec::new();
        let mut choices = Vec::new();
        loop {
            if self.steps >= self.cfg.step_bound {
                return fail(
                    Property::Progress,
                    format!(
                        "no progress: the step bound ({} steps) was reached before the execution ended; {}",
                        self.cfg.step_bound,
                        self.describe()
                    ),
                );
            }
            self.woken(&mut woken, true);
            self.choices(&mut choices);
            if woken.is_empty() && choices.is_empty() {
                self.sweep()?;
                return self.final_checks();
            }
            self.steps += 1;
            if !woken.is_empty() && (choices.is_empty() || self.rng.percent(50)) {
                let task = self.rng.pick(&woken);
                self.poll_task(task)?;
            } else {
                match self.rng.pick(&choices) {
                    Choice::Source => self.next_input(),
                    Choice::Sink => self.next_output(),
                    Choice::Create => self.create_sub_stream(),
                    Choice::Connect => self.connect(),
                    Choice::Sub => self.sub_stream_action()?,
                }
            }
            self.after_step()?;
        }
    }

    fn woken(&self, out: &mut Vec<TaskId>, only_woken: bool) {
        out.clear();
        let keep = |t: &Task| !only_woken || t.woken();
        if matches!(self.sink, SinkState::Asking | SinkState::Terminating { .. }) && keep(&self.output_task) {
            out.push(TaskId::Output);
        }
        for (i, s) in self.subs.iter().enumerate() {
            if s.sink.as_ref().is_some_and(|(_, t)| keep(t)) {
                out.push(TaskId::Sink(i));
            }
            for (j, (_, _, t)) in s.asks.iter().enumerate() {
                if keep(t) {
                    out.push(TaskId::Ask(i, j));
                }
            }
            if s.single.as_ref().is_some_and(|(_, t)| keep(t)) {
                out.push(TaskId::Single(i));
            }
            if s.term.as_ref().is_some_and(|(_, t, _)| keep(t)) {
                out.push(TaskId::Term(i));
            }
        }
    }

    fn has_next_input(&self) -> bool {
        let st = lock_state(&self.source);
        match st.termination {
            Some(_) => !st.confirmed,
            None => st.asked && st.answer.is_none(),
        }
    }

    fn choices(&mut self, out: &mut Vec<Choice>) {
        out.clear();
        if self.has_next_input() {
            out.push(Choice::Source);
        }
        if self.output.is_some() && self.sink == SinkState::Idle {
            out.push(Choice::Sink);
        }
        if self.created < self.cfg.max_sub_streams && self.subs.len() < self.cfg.parallelism {
            out.push(Choice::Create);
        }
        if self.output.is_none() {
            out.push(Choice::Connect);
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        if self.subs.iter().any(|s| {
            s.actions(&mut scratch);
            !scratch.is_empty()
        }) {
            out.push(Choice::Sub);
        }
        self.scratch = scratch;
    }

    fn connect(&mut self) {
        let input = self.input.take().expect("connected once");
        let output = self.module.connect(input);
        self.output = Some(self.checker.probe("Output").connect(output));
        self.note(Note::Connect);
    }

    /// Algorithm 22: the test source answers its pending request.
    fn next_input(&mut self) {
        let mut st = lock_state(&self.source);
        if st.termination.is_some() {
            st.confirm();
            return;
        }
        let answer = if self.scenario.source_ends() && self.sourced >= self.cfg.count {
            match self.scenario {
                Scenario::Done => Answer::Done,
                _ => Answer::Error(TestError::Source),
            }
        } else {
            self.sourced += 1;
            Answer::Value(self.sourced)
        };
        st.answer(answer);
    }

    /// Algorithm 23: the test sink asks, or ends the output after `count` results.
    fn next_output(&mut self) {
        let end = !self.scenario.source_ends() && self.outputs.len() as u64 >= self.cfg.count;
        let output = self.output.as_mut().expect("connected");
        if end {
            let fail = self.scenario == Scenario::Fail;
            let request = if fail {
                Termination::Fail(M::output_failure())
            } else {
                Termination::Abort
            };
            Pin::new(output).terminate(request);
            self.sink = SinkState::Terminating { fail };
        } else {
            self.sink = SinkState::Asking;
        }
        self.output_task.set();
    }

    /// Algorithm 28: a new sub-stream with its test transformer.
    fn create_sub_stream(&mut self) {
        self.created += 1;
        let n = self.created;
        let correct = n == self.cfg.max_sub_streams;
        let max_asks = if self.rng.percent(50) {
            1
        } else {
            2 + self.rng.below(2)
        };
        let mut mon = self.checker.monitor(&format!("S{n}:Source"));
        if max_asks > 1 {
            mon = mon.allow_answers_in_any_order();
        }
        let results = Arc::new(Mutex::new(ResultsState::new(
            self.checker.monitor(&format!("S{n}:Results")),
        )));
        self.note(Note::Lend {
            n,
            correct,
            asks: max_asks,
        });
        let (source, sink) = self.module.lend_stream(TestResults {
            state: results.clone(),
        });
        self.subs.push(Sub {
            n,
            correct,
            max_asks,
            source,
            mon,
            input: InputState::Open,
            asks: Vec::new(),
            single: None,
            term: None,
            results,
            sink: Some((Box::pin(sink), Task::new())),
            values: VecDeque::new(),
            answered: Vec::new(),
        });
    }

    /// Algorithm 29: one action of one sub-stream, with the 90% bias
    /// towards normal actions.
    fn sub_stream_action(&mut self) -> Result<(), Failure> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut candidates = Vec::with_capacity(self.subs.len());
        for (i, s) in self.subs.iter().enumerate() {
            s.actions(&mut scratch);
            if !scratch.is_empty() {
                candidates.push(i);
            }
        }
        let i = self.rng.pick(&candidates);
        let sub = &self.subs[i];
        sub.actions(&mut scratch);
        let normal = sub.correct || self.rng.percent(NORMAL_BIAS);
        let action = if normal {
            let n = scratch
                .iter()
                .filter(|a| matches!(a, SubAction::Ask | SubAction::Value))
                .count();
            if n > 0 {
                let k = self.rng.below(n);
                scratch
                    .iter()
                    .copied()
                    .filter(|a| matches!(a, SubAction::Ask | SubAction::Value))
                    .nth(k)
            } else if scratch.contains(&SubAction::Done) {
                Some(SubAction::Done)
            } else if sub.correct && scratch.contains(&SubAction::Abort) {
                Some(SubAction::Abort)
            } else {
                None
            }
        } else {
            scratch.retain(|a| !matches!(a, SubAction::Ask | SubAction::Value));
            (!scratch.is_empty()).then(|| self.rng.pick(&scratch))
        };
        self.scratch = scratch;
        match action {
            Some(action) => self.do_sub_action(i, action),
            None => Ok(()),
        }
    }

    fn do_sub_action(&mut self, i: usize, action: SubAction) -> Result<(), Failure> {
        let bogus_id = if action == SubAction::Bogus {
            let sub = &self.subs[i];
            if !sub.answered.is_empty() && self.rng.percent(50) {
                // A second result for a value already answered.
                self.rng.pick(&sub.answered)
            } else {
                BOGUS_IDS + self.rng.below(1000) as u64
            }
        } else {
            0
        };
        let sub = &mut self.subs[i];
        match action {
            SubAction::Ask => {
                let index = sub.mon.ask();
                if sub.max_asks == 1 {
                    sub.single = Some((index, Task::new()));
                } else {
                    sub.asks.push((index, M::ask(&sub.source), Task::new()));
                }
                self.sub_asks += 1;
            }
            SubAction::Abort | SubAction::Fail => {
                let fail = action == SubAction::Fail;
                let request = if fail {
                    Termination::Fail(TestError::SubInput)
                } else {
                    Termination::Abort
                };
                let index = sub.mon.request(&Request::from(request));
                Pin::new(&mut sub.source).terminate(request);
                // A pending ask is abandoned (the poll-based protocol); the
                // concurrent asks are independent futures, still polled.
                sub.single = None;
                sub.term = Some((index, Task::new(), fail));
                sub.input = InputState::Terminating;
            }
            SubAction::Value => {
                let (id, value) = sub.values.pop_front().expect("a value held");
                sub.answered.push(id);
                lock_state(&sub.results).answer(Answer::Value(M::result(id, work(value))), Some(id), None);
            }
            SubAction::Done | SubAction::Error | SubAction::EarlyDone | SubAction::EarlyError => {
                let error = matches!(action, SubAction::Error | SubAction::EarlyError);
                let mut r = lock_state(&sub.results);
                if r.can_confirm() {
                    r.confirm(if error { Err(TestError::SubOutput) } else { Ok(()) });
                } else {
                    let answer = if error {
                        Answer::Error(TestError::SubOutput)
                    } else {
                        Answer::Done
                    };
                    r.answer(answer, None, None);
                }
            }
            SubAction::Bogus => {
                let result = M::result(bogus_id, work(bogus_id.wrapping_add(1)));
                lock_state(&sub.results).answer(Answer::Value(result), None, Some(bogus_id));
            }
            SubAction::Crash => {
                let sub = self.subs.remove(i);
                sub.mon.dropped();
                lock_state(&sub.results).monitor.dropped();
                let n = sub.n;
                drop(sub);
                self.note(Note::Crash(n));
            }
        }
        Ok(())
    }

    /// Polls a task; returns whether it completed.
    fn poll_task(&mut self, task: TaskId) -> Result<bool, Failure> {
        match task {
            TaskId::Output => self.poll_output(),
            TaskId::Sink(i) => {
                let sub = &mut self.subs[i];
                let (future, task) = sub.sink.as_mut().expect("a sink future");
                task.clear();
                let Poll::Ready(outcome) = future.as_mut().poll(&mut Context::from_waker(&task.waker)) else {
                    return Ok(false);
                };
                sub.sink = None;
                let got = M::sink_outcome(&outcome);
                let r = lock_state(&sub.results);
                let expected = match (r.delivered_bogus, r.delivered_error) {
                    (Some(id), _) => SinkOutcome::Unexpected(id),
                    (None, true) => SinkOutcome::Failed,
                    (None, false) => SinkOutcome::Ok,
                };
                if got != expected {
                    return fail(
                        Property::SubStreams,
                        format!(
                            "S{}'s sink future ended with {outcome:?}, but {expected:?} was expected",
                            sub.n
                        ),
                    );
                }
                Ok(true)
            }
            TaskId::Ask(i, j) => {
                let sub = &mut self.subs[i];
                let (index, future, task) = &mut sub.asks[j];
                task.clear();
                let Poll::Ready(answer) = Pin::new(future).poll(&mut Context::from_waker(&task.waker)) else {
                    return Ok(false);
                };
                let index = *index;
                drop(sub.asks.remove(j));
                sub.mon.answer(index, &answer);
                self.on_sub_answer(i, answer)?;
                Ok(true)
            }
            TaskId::Single(i) => {
                let sub = &mut self.subs[i];
                let (index, task) = sub.single.as_ref().expect("an ask");
                task.clear();
                let Poll::Ready(answer) =
                    Pin::new(&mut sub.source).poll_ask(&mut Context::from_waker(&task.waker))
                else {
                    return Ok(false);
                };
                let index = *index;
                sub.single = None;
                sub.mon.answer(index, &answer);
                self.on_sub_answer(i, answer)?;
                Ok(true)
            }
            TaskId::Term(i) => {
                let sub = &mut self.subs[i];
                let (index, task, fail_) = sub.term.as_ref().expect("a termination");
                task.clear();
                let Poll::Ready(end) =
                    Pin::new(&mut sub.source).poll_terminated(&mut Context::from_waker(&task.waker))
                else {
                    return Ok(false);
                };
                let (index, failed) = (*index, *fail_);
                sub.mon.terminated(index, &end);
                sub.term = None;
                sub.input = InputState::Terminated;
                let expected = if failed { Err(TestError::SubInput) } else { Ok(()) };
                if end != expected {
                    return fail(
                        Property::SubStreams,
                        format!(
                            "S{}'s source confirmed its {} with {end:?}, expected {expected:?}",
                            sub.n,
                            if failed { "fail" } else { "abort" }
                        ),
                    );
                }
                Ok(true)
            }
        }
    }

    fn poll_output(&mut self) -> Result<bool, Failure> {
        let output = self.output.as_mut().expect("connected");
        self.output_task.clear();
        let mut cx = Context::from_waker(&self.output_task.waker);
        match self.sink {
            SinkState::Asking => {
                let Poll::Ready(answer) = Pin::new(output).poll_ask(&mut cx) else {
                    return Ok(false);
                };
                self.sink = SinkState::Idle;
                self.on_output(answer)?;
            }
            SinkState::Terminating { fail: failed } => {
                let Poll::Ready(end) = Pin::new(output).poll_terminated(&mut cx) else {
                    return Ok(false);
                };
                self.sink = SinkState::Ended;
                if end.is_err() != failed {
                    return fail(
                        Property::OutputTerminated,
                        format!(
                            "the output confirmed the sink's {} with {end:?}",
                            if failed { "fail" } else { "abort" }
                        ),
                    );
                }
            }
            SinkState::Idle | SinkState::Ended => return Ok(false),
        }
        Ok(true)
    }

    /// The test sink receives an answer: checks order, exactly-once, and the
    /// termination the scenario calls for.
    fn on_output(&mut self, answer: Answer<u64, M::OutputError>) -> Result<(), Failure> {
        match answer {
            Answer::Value(result) => {
                let position = self.outputs.len() + 1;
                let Some(value) = unwork(result).filter(|&v| v >= 1 && v <= self.sourced) else {
                    return fail(
                        Property::ExactlyOnce,
                        format!("output #{position} is {result}, the result of no value read from the input"),
                    );
                };
                let v = value as usize;
                if self.seen.len() <= v {
                    self.seen.resize(v + 1, false);
                }
                if self.seen[v] {
                    return fail(
                        Property::ExactlyOnce,
                        format!(
                            "output #{position} is the result of value {value} (id {}) again",
                            value - 1
                        ),
                    );
                }
                if self.cfg.ordered && v != position {
                    return fail(
                        Property::Ordered,
                        format!(
                            "output #{position} is the result of value {value} (id {}); expected that of value {position}",
                            value - 1
                        ),
                    );
                }
                self.seen[v] = true;
                self.outputs.push(value);
                Ok(())
            }
            Answer::Done => {
                self.sink = SinkState::Ended;
                if self.scenario != Scenario::Done {
                    return fail(
                        Property::OutputTerminated,
                        format!("the output answered done in scenario {}", self.scenario.name()),
                    );
                }
                self.check_complete()
            }
            Answer::Error(e) => {
                self.sink = SinkState::Ended;
                if self.scenario != Scenario::Error || M::input_error(&e) != Some(TestError::Source) {
                    return fail(
                        Property::OutputTerminated,
                        format!(
                            "the output answered error {e:?} in scenario {}",
                            self.scenario.name()
                        ),
                    );
                }
                self.check_complete()
            }
        }
    }

    fn check_complete(&self) -> Result<(), Failure> {
        let missing: Vec<u64> = (1..=self.cfg.count)
            .filter(|&v| !self.seen.get(v as usize).copied().unwrap_or(false))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        fail(
            Property::FaultTolerant,
            format!(
                "the output ended after {} of {} results; no result for the values {missing:?}",
                self.outputs.len(),
                self.cfg.count
            ),
        )
    }

    /// A sub-stream's input receives an answer: checks the lent value and
    /// that no other live sub-stream holds it.
    fn on_sub_answer(&mut self, i: usize, answer: Answer<M::Lent, TestError>) -> Result<(), Failure> {
        match answer {
            Answer::Value(lent) => {
                let (id, value) = M::lent(&lent);
                let n = self.subs[i].n;
                if value != id.wrapping_add(1) || value > self.sourced {
                    return fail(
                        Property::SubStreams,
                        format!(
                            "S{n} was lent {lent:?}: not a value read from the input with its position as id"
                        ),
                    );
                }
                if self.subs[i].holds(id) {
                    return fail(
                        Property::Conservative,
                        format!("value #{id} was lent to S{n}, which already holds it"),
                    );
                }
                if let Some(other) = self.subs.iter().find(|s| s.n != n && s.live() && s.holds(id)) {
                    return fail(
                        Property::Conservative,
                        format!(
                            "value #{id} was lent to S{n} while S{}, still live, holds it",
                            other.n
                        ),
                    );
                }
                self.subs[i].values.push_back((id, value));
            }
            Answer::Done | Answer::Error(_) => {
                let sub = &mut self.subs[i];
                if sub.input == InputState::Open {
                    sub.input = InputState::Terminated;
                }
            }
        }
        Ok(())
    }

    fn after_step(&mut self) -> Result<(), Failure> {
        let asks = lock_state(&self.source).asks;
        if asks > self.sub_asks {
            return fail(
                Property::Lazy,
                format!(
                    "the input was asked {asks} times, but the sub-streams asked only {} times",
                    self.sub_asks
                ),
            );
        }
        if let Some(v) = self.checker.violations().into_iter().next() {
            return fail(Property::Protocol, v.to_string());
        }
        while let Some(p) = self.subs.iter().position(Sub::finished) {
            let n = self.subs.remove(p).n;
            self.note(Note::Finished(n));
        }
        Ok(())
    }

    /// Nothing can happen: polls every task that was not woken; any that
    /// makes progress had lost its wake-up.
    fn sweep(&mut self) -> Result<(), Failure> {
        let mut all = Vec::new();
        self.woken(&mut all, false);
        for task in all {
            let events = self.checker.trace_len();
            let asks = lock_state(&self.source).asks;
            let what = self.task_name(task);
            let done = self.poll_task(task)?;
            if done || self.checker.trace_len() != events || lock_state(&self.source).asks != asks {
                return fail(
                    Property::WakeUps,
                    format!(
                        "nothing was left to do, yet task {} made progress when polled: it was never woken",
                        what
                    ),
                );
            }
        }
        Ok(())
    }

    fn task_name(&self, task: TaskId) -> String {
        match task {
            TaskId::Output => format!("the test sink's {:?} on the output", self.sink),
            TaskId::Sink(i) => format!("S{}'s sink future", self.subs[i].n),
            TaskId::Ask(i, j) => format!(
                "S{}'s concurrent ask ⟨{}⟩",
                self.subs[i].n, self.subs[i].asks[j].0
            ),
            TaskId::Single(i) => format!("S{}'s ask", self.subs[i].n),
            TaskId::Term(i) => format!("S{}'s termination", self.subs[i].n),
        }
    }

    fn final_checks(&mut self) -> Result<(), Failure> {
        if self.sink != SinkState::Ended {
            return fail(
                Property::Progress,
                format!(
                    "no progress: nothing can happen, but the output has not terminated; {}",
                    self.describe()
                ),
            );
        }
        if !self.subs.is_empty() {
            return fail(
                Property::Progress,
                format!(
                    "no progress: nothing can happen, but some sub-streams have not finished; {}",
                    self.describe()
                ),
            );
        }
        let report = self.checker.finish();
        if !report.is_ok() {
            let list: Vec<String> = report.violations().iter().map(ToString::to_string).collect();
            return fail(Property::Protocol, list.join("\n    "));
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let st = lock_state(&self.source);
        let mut s = format!(
            "sink {:?} with {} of {} results; source: {} values, {} asks, {}; sub-streams: ",
            self.sink,
            self.outputs.len(),
            self.cfg.count,
            self.sourced,
            st.asks,
            if st.asked {
                "an ask pending"
            } else {
                "no ask pending"
            },
        );
        drop(st);
        if self.subs.is_empty() {
            s.push_str("none");
        }
        for sub in &self.subs {
            let _ = write!(s, "\n    {}", sub.describe());
        }
        let module = self.module.describe();
        if !module.is_empty() {
            let _ = write!(s, "\n    module: {module}");
        }
        s
    }

    fn render(&self) -> String {
        let events = self.checker.trace();
        let mut out = format!(
            "  trace ({} events; `--` lines are the harness's own actions):\n",
            events.len()
        );
        let mut notes = self.notes.iter().peekable();
        for event in &events {
            while let Some((_, note)) = notes.next_if(|(p, _)| *p <= event.position) {
                let _ = writeln!(out, "          -- {note}");
            }
            let _ = writeln!(out, "    #{:<5} {event}", event.position);
        }
        for (_, note) in notes {
            let _ = writeln!(out, "          -- {note}");
        }
        out
    }
}
