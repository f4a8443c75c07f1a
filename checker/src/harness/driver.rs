//! One execution: the interleaving algorithm of seed 000 (Algorithms 26-29)
//! over the real async module, driven by a deterministic, single-threaded
//! executor of our own. Every future and every source the harness polls is
//! a *task* with its own waker, which only records the wake-up; a task is
//! polled again only after it was woken, so a lost wake-up shows as a task
//! that could progress but was never woken (checked whenever nothing else can
//! happen). Nothing here uses threads or time.

use std::any::Any;
use std::collections::{BTreeSet, VecDeque};
use std::fmt::{self, Write};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use pando_pull_stream::{Answer, Connect, Request, Source, Termination};

use super::modules::{Delivered, PANIC_MESSAGE, ResultsState, SourceState, lock_state};
use super::{
    Config, Execution, Failure, Fault, HarnessInput, OutputError, Poison, Property, Scenario, SinkOutcome,
    SubStreamModule, TestError, TestResults, TestSource, unwork, work,
};
use crate::rng::SplitMix64 as Rng;
use crate::{Checker, Monitor, Probe};

/// The percentage of "normal" choices among a sub-stream's actions (seed
/// 000, §4.6.3: 90%).
const NORMAL_BIAS: u64 = 90;
/// Ids of unexpected results that were never lent.
const BOGUS_IDS: u64 = 1 << 40;
/// A stalled sub-stream is dropped after this many steps even if other
/// things can still happen (its heartbeat timeout): with an infinite input
/// and no read-ahead bound, the others would otherwise read forever.
const STALL_TIMEOUT: u64 = 400;
/// The percentage of steps at which an optional top-level action (close,
/// cut off, await `settled()`) is offered.
const OPTIONAL: u64 = 5;

/// Installs, once, a panic hook that keeps quiet about the test source's
/// chosen panics (and reports every other panic as before).
fn quiet_source_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&PANIC_MESSAGE) {
                previous(info);
            }
        }));
    });
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

/// How the module's input ended first, as the harness saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Done,
    Error,
    Closed,
    Panicked,
    /// The module aborted its input on its own (neither closed nor
    /// terminated): only before an error that ends its output.
    Aborted,
}

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
    Close,
    Settled,
}

/// The top-level choices of Algorithm 26, plus connecting the input late.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Choice {
    Source,
    Sink,
    Create,
    Connect,
    Sub,
    Close,
    CutOff,
    Settled,
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
    /// Reject a value held (its own failure; the sub-stream goes on).
    Reject,
    /// Give a value held back unanswered (a timeout); it may be answered later.
    Reclaim,
    /// Stop polling one of the pending concurrent asks, without dropping it.
    Stall,
}

/// Which of the extended sub-stream actions are possible now.
#[derive(Clone, Copy)]
struct Allowed {
    reject: bool,
    reclaim: bool,
    stall: bool,
}

enum Note {
    Connect,
    Lend { n: usize, correct: bool, asks: usize },
    Crash(usize),
    Finished(usize),
    Close,
    CutOff,
    Settled,
    Panic,
    Panicked(usize),
    Reject(usize, u64),
    Reclaim(usize, u64),
    Stall(usize, u64),
    StallDropped(usize, u64),
    StallTimeout(usize, u64),
    EarlyEnd,
    Lie(usize, u64, u64),
}

/// The model of one value's vote, with replicas (the lender's own rules,
/// seen from outside): the copies it still wants, the answers so far, and
/// the result decided.
#[derive(Clone, Debug, Default)]
struct Ballot {
    /// Copies still to lend; `None` until the value is first lent (then `k`).
    want: Option<u32>,
    /// The answers: a result and the sub-streams (by number) that gave it.
    groups: Vec<(u64, Vec<usize>)>,
    /// The result decided by a majority.
    decided: Option<u64>,
}

impl Ballot {
    fn voted(&self, n: usize) -> bool {
        self.groups.iter().any(|(_, v)| v.contains(&n))
    }
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
            Note::Close => f.write_str("the lender is closed"),
            Note::CutOff => f.write_str("the lender cuts its sub-streams off"),
            Note::Settled => f.write_str("settled() is awaited"),
            Note::Panic => f.write_str("the test source will panic at its next poll"),
            Note::Panicked(n) => write!(f, "the input's panic reached S{n}'s task: S{n} crashes"),
            Note::Reject(n, id) => write!(f, "S{n} rejects value #{id}"),
            Note::Reclaim(n, id) => write!(f, "S{n} gives value #{id} back unanswered (reclaimed)"),
            Note::Stall(n, i) => write!(f, "S{n} stops polling its ask ⟨{i}⟩ (stalled, not dropped)"),
            Note::StallDropped(n, i) => {
                write!(f, "nothing else can happen: S{n}'s stalled ask ⟨{i}⟩ is dropped")
            }
            Note::StallTimeout(n, i) => write!(f, "S{n}'s stalled ask ⟨{i}⟩ times out: dropped"),
            Note::EarlyEnd => f.write_str("the test sink ends the output early"),
            Note::Lie(n, id, r) => write!(f, "S{n} lies: it answers {r} for value #{id}"),
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
    /// The values the module considers held by this sub-stream: lent to it,
    /// without a result from it, not rejected or reclaimed, and not taken
    /// back when it ended a side.
    holds: BTreeSet<u64>,
    /// The values it rejected (a later result for one is unexpected).
    rejected: Vec<u64>,
    /// Its stalled concurrent asks: never polled again.
    stalled: Vec<(u64, M::Ask)>,
    /// The step at which it stalled.
    stalled_at: u64,
    /// The results it answered and the module has not taken yet, by id.
    said: Vec<(u64, u64)>,
}

impl<M: SubStreamModule> Sub<M> {
    fn pending_asks(&self) -> usize {
        self.asks.len() + usize::from(self.single.is_some())
    }

    /// Whether the sub-stream works on value `id` (received, not answered yet).
    fn works_on(&self, id: u64) -> bool {
        self.values.iter().any(|&(i, _)| i == id) || lock_state(&self.results).answer_id == Some(id)
    }

    fn finished(&self) -> bool {
        self.input == InputState::Terminated
            && self.asks.is_empty()
            && self.single.is_none()
            && self.term.is_none()
            && self.sink.is_none()
            && self.stalled.is_empty()
    }

    /// A value the sub-stream works on that the module considers it holds.
    fn held_value(&self) -> impl Iterator<Item = u64> + '_ {
        self.values
            .iter()
            .map(|&(id, _)| id)
            .filter(|id| self.holds.contains(id))
    }

    fn actions(&self, allowed: Allowed, out: &mut Vec<SubAction>) {
        out.clear();
        if !self.stalled.is_empty() {
            // A stalled sub-stream is hung: it does nothing more until its
            // stalled asks are dropped, when nothing else can happen.
            return;
        }
        if !self.correct {
            if (allowed.reject || allowed.reclaim) && self.held_value().next().is_some() {
                if allowed.reject {
                    out.push(SubAction::Reject);
                }
                if allowed.reclaim {
                    out.push(SubAction::Reclaim);
                }
            }
            if allowed.stall && !self.asks.is_empty() {
                out.push(SubAction::Stall);
            }
        }
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
            "S{}{}: input {:?} with {} ask(s) pending ({} stalled){}, output {:?}{}, holding {:?} (the module's view: {:?}), sink future {}",
            self.n,
            if self.correct { " (correct)" } else { "" },
            self.input,
            self.pending_asks() + self.stalled.len(),
            self.stalled.len(),
            if self.term.is_some() {
                " and its termination pending"
            } else {
                ""
            },
            r.state,
            if r.ending { " (ending)" } else { "" },
            self.values.iter().map(|&(id, _)| id).collect::<Vec<_>>(),
            self.holds,
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
    /// How the input ended first (the module records the first end only).
    first_end: Option<End>,
    closed: bool,
    cut: bool,
    /// The test sink terminated the output.
    terminated: bool,
    /// The output answered an error that ends the module (a poisoned
    /// value): it stopped as if terminated.
    poison_ended: bool,
    /// The values (by id) a sub-stream's failure was charged to, as the
    /// blame rule counts them.
    fails: Vec<u32>,
    /// The values whose own failures took them over the retry cap.
    culprit: Vec<bool>,
    /// The values whose result the module accepted.
    has_result: Vec<bool>,
    /// With replicas: the model of each value's vote.
    ballots: Vec<Ballot>,
    /// The largest value output (ordered mode).
    last_out: u64,
    close: Option<(M::CloseFuture, Task)>,
    settled: Option<(M::Settled, Task)>,
    settled_done: bool,
    /// The test source panics instead of producing this value.
    panic_at: Option<u64>,
    /// The test sink ends the output after this many results.
    early_end_at: Option<u64>,
}

fn fail<T>(property: Property, message: String) -> Result<T, Failure> {
    Err(Failure { property, message })
}

pub(super) fn execute<M: SubStreamModule>(config: &Config) -> Execution {
    if config.faults.contains(Fault::Panic) {
        quiet_source_panics();
    }
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
        let panic_at = cfg
            .faults
            .contains(Fault::Panic)
            .then(|| rng.below(cfg.count as usize + 1) as u64);
        let early_end_at = cfg
            .faults
            .contains(Fault::EarlyEnd)
            .then(|| rng.below(cfg.count as usize + 1) as u64);
        let mut ex = Exec {
            cfg: cfg.clone(),
            scenario,
            rng,
            checker,
            notes: Vec::new(),
            module: M::create(&cfg.settings()),
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
            first_end: None,
            closed: false,
            cut: false,
            terminated: false,
            poison_ended: false,
            fails: Vec::new(),
            culprit: Vec::new(),
            has_result: Vec::new(),
            ballots: Vec::new(),
            last_out: 0,
            close: None,
            settled: None,
            settled_done: false,
            panic_at,
            early_end_at,
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
            if let Some(p) = self
                .subs
                .iter()
                .position(|s| !s.stalled.is_empty() && self.steps - s.stalled_at > STALL_TIMEOUT)
            {
                let sub = &mut self.subs[p];
                let n = sub.n;
                for (index, ask) in std::mem::take(&mut sub.stalled) {
                    sub.mon.withdraw(index);
                    drop(ask);
                    self.notes
                        .push((self.checker.trace_len(), Note::StallTimeout(n, index)));
                }
            }
            self.woken(&mut woken, true);
            self.choices(&mut choices, woken.is_empty());
            if woken.is_empty() && choices.is_empty() {
                self.sweep()?;
                if self.subs.iter().any(|s| !s.stalled.is_empty()) {
                    self.drop_stalled_asks()?;
                    continue;
                }
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
                    Choice::Close => self.close(),
                    Choice::CutOff => {
                        self.cut = true;
                        self.note(Note::CutOff);
                        self.module.cut_off();
                    }
                    Choice::Settled => {
                        self.settled = Some((self.module.settled(), Task::new()));
                        self.note(Note::Settled);
                    }
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
        if self.close.as_ref().is_some_and(|(_, t)| keep(t)) {
            out.push(TaskId::Close);
        }
        if self.settled.as_ref().is_some_and(|(_, t)| keep(t)) {
            out.push(TaskId::Settled);
        }
    }

    /// Which extended sub-stream actions are possible: the module still
    /// takes values back (it was neither terminated nor cut off).
    fn allowed(&self) -> Allowed {
        let live = !self.stopped();
        Allowed {
            reject: live && self.cfg.faults.contains(Fault::Reject),
            reclaim: live && M::CAN_RECLAIM && self.cfg.faults.contains(Fault::Reclaim),
            stall: self.cfg.faults.contains(Fault::Stall),
        }
    }

    fn has_next_input(&self) -> bool {
        let st = lock_state(&self.source);
        match st.termination {
            Some(_) => !st.confirmed,
            None => st.asked && st.answer.is_none() && !st.panic,
        }
    }

    fn choices(&mut self, out: &mut Vec<Choice>, nothing_woken: bool) {
        out.clear();
        let faults = self.cfg.faults;
        let output_open = self.output.is_some() && self.sink != SinkState::Ended;
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
        let allowed = self.allowed();
        if self.subs.iter().any(|s| {
            s.actions(allowed, &mut scratch);
            !scratch.is_empty()
        }) {
            out.push(Choice::Sub);
        }
        self.scratch = scratch;
        // Optional actions, offered now and then: never when nothing else
        // can happen, where they would hide a hang (but `settled()`, which
        // only observes, is then always awaited).
        if faults.contains(Fault::Close) && output_open && !self.closed && self.rng.percent(OPTIONAL) {
            out.push(Choice::Close);
        }
        if faults.contains(Fault::CutOff)
            && self.closed
            && !self.cut
            && output_open
            && self.rng.percent(OPTIONAL)
        {
            out.push(Choice::CutOff);
        }
        if faults.contains(Fault::Settled)
            && self.output.is_some()
            && self.settled.is_none()
            && !self.settled_done
            && ((nothing_woken && out.is_empty()) || self.rng.percent(OPTIONAL))
        {
            out.push(Choice::Settled);
        }
    }

    fn close(&mut self) {
        self.closed = true;
        self.first_end.get_or_insert(End::Closed);
        self.note(Note::Close);
        self.close = Some((self.module.close(), Task::new()));
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
        if self.panic_at == Some(self.sourced) && !st.panic {
            st.arm_panic();
            drop(st);
            // Its ask is never answered: the interface is abandoned.
            self.checker.set_dropped_named("Input");
            self.note(Note::Panic);
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
        let read = self.outputs.len() as u64;
        let early = self.early_end_at.is_some_and(|k| read >= k);
        let end = early || (!self.scenario.source_ends() && read >= self.cfg.count);
        if early {
            self.note(Note::EarlyEnd);
        }
        let output = self.output.as_mut().expect("connected");
        if end {
            self.terminated = true;
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
        // The last sub-streams are correct, one per replica.
        let correct = n + self.cfg.replicas as usize > self.cfg.max_sub_streams;
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
            holds: BTreeSet::new(),
            rejected: Vec::new(),
            stalled: Vec::new(),
            stalled_at: 0,
            said: Vec::new(),
        });
    }

    /// Algorithm 29: one action of one sub-stream, with the 90% bias
    /// towards normal actions.
    fn sub_stream_action(&mut self) -> Result<(), Failure> {
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut candidates = Vec::with_capacity(self.subs.len());
        let allowed = self.allowed();
        for (i, s) in self.subs.iter().enumerate() {
            s.actions(allowed, &mut scratch);
            if !scratch.is_empty() {
                candidates.push(i);
            }
        }
        let i = self.rng.pick(&candidates);
        let sub = &self.subs[i];
        sub.actions(allowed, &mut scratch);
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
            let rejected: Vec<u64> = sub
                .rejected
                .iter()
                .copied()
                .filter(|id| !sub.holds.contains(id) && !sub.works_on(*id))
                .collect();
            if !rejected.is_empty() && self.rng.percent(50) {
                // A result for a value it rejected.
                self.rng.pick(&rejected)
            } else if !sub.answered.is_empty() && self.rng.percent(50) {
                // A second result for a value already answered.
                self.rng.pick(&sub.answered)
            } else {
                BOGUS_IDS + self.rng.below(1000) as u64
            }
        } else {
            0
        };
        let lie = (action == SubAction::Value
            && self.voting()
            && self.cfg.faults.contains(Fault::Lie)
            && !self.subs[i].correct
            && self.rng.percent(30))
        .then(|| 1 + self.rng.below(2) as u64);
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
                let holds = std::mem::take(&mut sub.holds);
                self.blame(holds);
            }
            SubAction::Reject | SubAction::Reclaim => {
                let ids: Vec<u64> = sub.held_value().collect();
                let id = self.rng.pick(&ids);
                let reject = action == SubAction::Reject;
                let accepted = if reject {
                    M::reject(&sub.source, id)
                } else {
                    M::reclaim(&sub.source, id)
                };
                sub.holds.remove(&id);
                if reject {
                    sub.values.retain(|&(v, _)| v != id);
                    sub.rejected.push(id);
                }
                let n = sub.n;
                self.note(if reject {
                    Note::Reject(n, id)
                } else {
                    Note::Reclaim(n, id)
                });
                if !accepted {
                    return fail(
                        Property::SubStreams,
                        format!(
                            "S{n} {} value #{id}, which it holds, and the module refused",
                            if reject { "rejected" } else { "gave back" }
                        ),
                    );
                }
                self.own_failure(id);
            }
            SubAction::Stall => {
                let j = self.rng.below(sub.asks.len());
                let (index, ask, _) = sub.asks.remove(j);
                sub.stalled.push((index, ask));
                sub.stalled_at = self.steps;
                let n = sub.n;
                self.note(Note::Stall(n, index));
            }
            SubAction::Value => {
                let (id, value) = sub.values.pop_front().expect("a value held");
                sub.answered.push(id);
                // A lie is another result of the same value: 3v+2 (shared
                // by every liar) or 3v+3 (the other one).
                let result = work(value) + lie.unwrap_or(0);
                sub.said.push((id, result));
                lock_state(&sub.results).answer(Answer::Value(M::result(id, result)), Some(id), None);
                if lie.is_some() {
                    let n = sub.n;
                    self.note(Note::Lie(n, id, result));
                }
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
                let mut sub = self.subs.remove(i);
                let holds = std::mem::take(&mut sub.holds);
                self.blame(holds);
                sub.mon.dropped();
                lock_state(&sub.results).monitor.dropped();
                let n = sub.n;
                drop(sub);
                self.note(Note::Crash(n));
            }
        }
        Ok(())
    }

    /// Polls a task; returns whether it completed. The input's chosen panic,
    /// if it reaches a sub-stream's task, crashes that sub-stream (as a
    /// runtime drops a panicked task); any other panic is a failure.
    fn poll_task(&mut self, task: TaskId) -> Result<bool, Failure> {
        let name = self.task_name(task);
        match catch_unwind(AssertUnwindSafe(|| self.poll_task_inner(task))) {
            Ok(outcome) => outcome,
            Err(payload) => {
                let message = panic_message(&*payload);
                let i = match task {
                    TaskId::Sink(i) | TaskId::Ask(i, _) | TaskId::Single(i) | TaskId::Term(i) => Some(i),
                    TaskId::Output | TaskId::Close | TaskId::Settled => None,
                };
                match i {
                    Some(i) if message == PANIC_MESSAGE => {
                        let mut sub = self.subs.remove(i);
                        let holds = std::mem::take(&mut sub.holds);
                        self.blame(holds);
                        sub.mon.dropped();
                        lock_state(&sub.results).monitor.dropped();
                        let n = sub.n;
                        drop(sub);
                        self.note(Note::Panicked(n));
                        Ok(true)
                    }
                    _ => fail(Property::NoPanic, format!("polling {name} panicked: {message}")),
                }
            }
        }
    }

    fn poll_task_inner(&mut self, task: TaskId) -> Result<bool, Failure> {
        match task {
            TaskId::Output => self.poll_output(),
            TaskId::Close => {
                let (future, task) = self.close.as_mut().expect("a close future");
                task.clear();
                let Poll::Ready(end) = Pin::new(future).poll(&mut Context::from_waker(&task.waker)) else {
                    return Ok(false);
                };
                self.close = None;
                if end.is_err() && self.first_end != Some(End::Panicked) {
                    return fail(
                        Property::OutputTerminated,
                        format!("close() resolved to {end:?}, but the input confirmed its abort with Ok"),
                    );
                }
                Ok(true)
            }
            TaskId::Settled => {
                let (future, task) = self.settled.as_mut().expect("a settled future");
                task.clear();
                let Poll::Ready(()) = Pin::new(future).poll(&mut Context::from_waker(&task.waker)) else {
                    return Ok(false);
                };
                self.settled = None;
                self.settled_done = true;
                self.check_settled()?;
                Ok(true)
            }
            TaskId::Sink(i) => {
                let sub = &mut self.subs[i];
                let (future, task) = sub.sink.as_mut().expect("a sink future");
                task.clear();
                let poll = future.as_mut().poll(&mut Context::from_waker(&task.waker));
                self.take_deliveries(i)?;
                let Poll::Ready(outcome) = poll else {
                    return Ok(false);
                };
                let sub = &mut self.subs[i];
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

    fn grow(&mut self, id: u64) -> usize {
        let i = id as usize;
        if self.fails.len() <= i {
            self.fails.resize(i + 1, 0);
            self.culprit.resize(i + 1, false);
            self.has_result.resize(i + 1, false);
            self.ballots.resize(i + 1, Ballot::default());
        }
        i
    }

    /// Whether the module votes (replicas).
    fn voting(&self) -> bool {
        self.cfg.replicas > 1
    }

    /// The answers needed for a majority.
    fn quorum(&self) -> usize {
        self.cfg.replicas as usize / 2 + 1
    }

    /// How many live sub-streams hold value `id` (lent, not answered, not
    /// taken back).
    fn holders(&self, id: u64) -> usize {
        self.subs.iter().filter(|s| s.holds.contains(&id)).count()
    }

    /// Value `id` has a result or was poisoned: the copies still out are late.
    fn release(&mut self, id: u64) {
        for s in &mut self.subs {
            s.holds.remove(&id);
        }
    }

    /// Sub-stream `n`'s answer `result` counts as a vote on value `id`.
    fn vote(&mut self, id: u64, n: usize, result: u64) {
        let quorum = self.quorum();
        let i = self.grow(id);
        let ballot = &mut self.ballots[i];
        let size = match ballot.groups.iter_mut().find(|(r, _)| *r == result) {
            Some((_, voters)) => {
                voters.push(n);
                voters.len()
            }
            None => {
                ballot.groups.push((result, vec![n]));
                1
            }
        };
        if size >= quorum {
            ballot.decided = Some(result);
            self.has_result[i] = true;
            self.release(id);
            return;
        }
        let largest = ballot.groups.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
        if ballot.want == Some(0) && self.holders(id) == 0 {
            // Every copy answered, no majority: a failure of the value's own,
            // and the missing votes are wanted.
            self.own_failure_wanting(id, (quorum - largest) as u32);
        }
    }

    fn is_culprit(&self, id: u64) -> bool {
        self.culprit.get(id as usize).copied().unwrap_or(false)
    }

    fn result_of(&self, id: u64) -> bool {
        self.has_result.get(id as usize).copied().unwrap_or(false)
    }

    /// Whether a value may be missing from the output: it was poisoned and
    /// the policy skips it.
    fn skippable(&self, id: u64) -> bool {
        self.cfg.poison == Poison::Skip && self.is_culprit(id)
    }

    /// A failure of value `id` that is its own (a rejection, a reclaim, or
    /// its holder ending while it held only this value).
    fn own_failure(&mut self, id: u64) {
        self.own_failure_wanting(id, 1);
    }

    /// An own failure of value `id`, which then wants `more` copies (with replicas).
    fn own_failure_wanting(&mut self, id: u64, more: u32) {
        if self.stopped() {
            return;
        }
        let i = self.grow(id);
        self.fails[i] += 1;
        if self.cfg.max_retries.is_some_and(|max| self.fails[i] > max) {
            self.culprit[i] = true;
        }
        if self.voting() {
            if self.culprit[i] {
                self.release(id);
            } else {
                let k = self.cfg.replicas;
                let want = self.ballots[i].want.get_or_insert(k);
                *want += more;
            }
        }
    }

    /// The blame rule: a sub-stream ended holding these values. With one
    /// value, the failure is its own; with several, each is charged one
    /// failure that never takes it over the cap.
    fn blame(&mut self, holds: BTreeSet<u64>) {
        if self.stopped() {
            return;
        }
        if holds.len() == 1 {
            self.own_failure(*holds.first().expect("one value"));
            return;
        }
        for id in holds {
            let i = self.grow(id);
            self.fails[i] = match self.cfg.max_retries {
                Some(max) => (self.fails[i] + 1).min(max.max(self.fails[i])),
                None => self.fails[i] + 1,
            };
            if self.voting() {
                let k = self.cfg.replicas;
                *self.ballots[i].want.get_or_insert(k) += 1;
            }
        }
    }

    /// The results the module took from sub-stream `i` since the last look.
    fn take_deliveries(&mut self, i: usize) -> Result<(), Failure> {
        let (log, ended) = {
            let mut r = lock_state(&self.subs[i].results);
            (std::mem::take(&mut r.log), r.ended())
        };
        for d in log {
            match d {
                Delivered::Value(id) if self.voting() => {
                    let sub = &mut self.subs[i];
                    let n = sub.n;
                    // A result it said, or a bogus one lent again: the right one.
                    let result = match sub.said.iter().position(|&(s, _)| s == id) {
                        Some(p) => sub.said.remove(p).1,
                        None => work(id + 1),
                    };
                    if sub.holds.remove(&id) {
                        self.vote(id, n, result);
                    } else if !self.result_of(id)
                        && !self.is_culprit(id)
                        && !self.terminated
                        && !self.poison_ended
                        && !self.ballots.get(id as usize).is_some_and(|b| b.voted(n))
                    {
                        // Late, and a vote.
                        self.vote(id, n, result);
                    }
                }
                Delivered::Value(id) => {
                    if self.subs[i].holds.remove(&id) {
                        let k = self.grow(id);
                        self.has_result[k] = true;
                    } else if !self.result_of(id) && !self.is_culprit(id) && !self.stopped() {
                        // A late result, accepted: the copy lent elsewhere is late in turn.
                        let k = self.grow(id);
                        self.has_result[k] = true;
                        for s in &mut self.subs {
                            s.holds.remove(&id);
                        }
                    }
                }
                Delivered::Bogus(id) => {
                    let stopped = self.stopped();
                    let sub = &mut self.subs[i];
                    let n = sub.n;
                    if !ended && !stopped {
                        return fail(
                            Property::SubStreams,
                            format!(
                                "S{n} returned a result for value #{id}, which it does not hold{}, and the module went on reading its results",
                                if sub.rejected.contains(&id) {
                                    " (it rejected it)"
                                } else {
                                    ""
                                }
                            ),
                        );
                    }
                    let holds = std::mem::take(&mut sub.holds);
                    self.blame(holds);
                }
                Delivered::End => {
                    let holds = std::mem::take(&mut self.subs[i].holds);
                    self.blame(holds);
                }
            }
        }
        Ok(())
    }

    /// The test sink receives an answer: checks order, exactly-once, the
    /// blame rule, and the termination the scenario calls for.
    fn on_output(&mut self, answer: Answer<u64, M::OutputError>) -> Result<(), Failure> {
        match answer {
            Answer::Value(result) => {
                let position = self.outputs.len() + 1;
                let of = if self.voting() {
                    // A lie is a result of its value too: 3v+1 to 3v+3.
                    (result >= 4).then(|| (result - 1) / 3)
                } else {
                    unwork(result)
                };
                let Some(value) = of.filter(|&v| v >= 1 && v <= self.sourced) else {
                    return fail(
                        Property::ExactlyOnce,
                        format!("output #{position} is {result}, the result of no value read from the input"),
                    );
                };
                let v = value as usize;
                let id = value - 1;
                if self.voting() {
                    let ballot = self.ballots.get(id as usize).cloned().unwrap_or_default();
                    if ballot.decided != Some(result) {
                        return fail(
                            Property::Majority,
                            format!(
                                "output #{position} is {result} for value {value} (id {id}), but the votes {}: {:?}",
                                match ballot.decided {
                                    Some(d) => format!("decided {d}"),
                                    None => "decided nothing yet".to_string(),
                                },
                                ballot.groups
                            ),
                        );
                    }
                }
                if self.seen.len() <= v {
                    self.seen.resize(v + 1, false);
                }
                if self.seen[v] {
                    return fail(
                        Property::ExactlyOnce,
                        format!("output #{position} is the result of value {value} (id {id}) again"),
                    );
                }
                if self.is_culprit(id) {
                    return fail(
                        Property::Blame,
                        format!(
                            "output #{position} is the result of value {value} (id {id}), which was poisoned"
                        ),
                    );
                }
                if self.cfg.ordered {
                    if value < self.last_out {
                        return fail(
                            Property::Ordered,
                            format!(
                                "output #{position} is the result of value {value} (id {id}), after that of value {}",
                                self.last_out
                            ),
                        );
                    }
                    if let Some(w) = (self.last_out + 1..value).find(|&w| !self.skippable(w - 1)) {
                        let (property, why) = if self.cfg.max_retries.is_some()
                            && self.cfg.poison == Poison::Skip
                        {
                            (
                                Property::Blame,
                                format!(
                                    "; value {w} (id {}) was skipped, but it is no culprit: {} failure(s) under the blame rule, cap {}",
                                    w - 1,
                                    self.fails.get(w as usize - 1).copied().unwrap_or(0),
                                    self.cfg.max_retries.unwrap_or(0)
                                ),
                            )
                        } else {
                            (Property::Ordered, String::new())
                        };
                        return fail(
                            property,
                            format!(
                                "output #{position} is the result of value {value} (id {id}); expected that of value {w}{why}"
                            ),
                        );
                    }
                    self.last_out = value;
                }
                self.seen[v] = true;
                self.outputs.push(value);
                Ok(())
            }
            Answer::Done => {
                self.sink = SinkState::Ended;
                if !matches!(self.first_end, Some(End::Done | End::Closed)) {
                    return fail(
                        Property::OutputTerminated,
                        format!(
                            "the output answered done in scenario {}, the input having ended with {:?}",
                            self.scenario.name(),
                            self.first_end
                        ),
                    );
                }
                self.check_complete(u64::MAX, "done")
            }
            Answer::Error(e) => {
                self.sink = SinkState::Ended;
                let kind = M::output_error(&e);
                let wrong = |why: &str| {
                    fail(
                        Property::OutputTerminated,
                        format!(
                            "the output answered error {e:?} in scenario {}, {why}",
                            self.scenario.name()
                        ),
                    )
                };
                match kind {
                    OutputError::Input(TestError::Source) if self.first_end == Some(End::Error) => {
                        self.check_complete(u64::MAX, "the input's error")
                    }
                    OutputError::Input(_) => wrong("but the input did not end with that error first"),
                    OutputError::InputPanicked if self.first_end == Some(End::Panicked) => {
                        self.check_complete(u64::MAX, "the input's panic")
                    }
                    OutputError::InputPanicked => wrong("but the input did not panic first"),
                    OutputError::Poisoned { id } => {
                        if self.cfg.max_retries.is_none() || self.cfg.poison != Poison::Fail {
                            return wrong("but no value can be poisoned with that policy");
                        }
                        if self.first_end.is_none() && lock_state(&self.source).termination.is_none() {
                            return wrong(
                                "an error that ends the output, but the input is still open: the module did not abort it",
                            );
                        }
                        self.poison_ended = true;
                        if !self.is_culprit(id) {
                            return fail(
                                Property::Blame,
                                format!(
                                    "the output names value #{id} as poisoned, but it is no culprit: {} failure(s) under the blame rule, cap {}",
                                    self.fails.get(id as usize).copied().unwrap_or(0),
                                    self.cfg.max_retries.unwrap_or(0)
                                ),
                            );
                        }
                        if self.cfg.ordered {
                            self.check_complete(id, "the poisoned value's error")
                        } else {
                            Ok(())
                        }
                    }
                    OutputError::Closed { first } => {
                        if !self.cut {
                            return wrong("but the lender was not cut off");
                        }
                        if self.seen.get(first as usize + 1).copied().unwrap_or(false) {
                            return fail(
                                Property::OutputTerminated,
                                format!(
                                    "the output's error {e:?} names value #{first}, whose result was output"
                                ),
                            );
                        }
                        if self.cfg.ordered {
                            self.check_complete(first, "the cut-off error")
                        } else {
                            Ok(())
                        }
                    }
                    OutputError::Other(what) => wrong(&what),
                }
            }
        }
    }

    /// Every value read with an id below `below` has its result on the
    /// output (or was skipped as poisoned).
    fn check_complete(&self, below: u64, end: &str) -> Result<(), Failure> {
        let delivered = lock_state(&self.source).delivered;
        let missing: Vec<u64> = (1..=delivered.min(below))
            .filter(|&v| !self.seen.get(v as usize).copied().unwrap_or(false) && !self.skippable(v - 1))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        fail(
            Property::FaultTolerant,
            format!(
                "the output ended ({end}) after {} results of {delivered} values read; no result for the values {missing:?}",
                self.outputs.len(),
            ),
        )
    }

    /// A sub-stream's input receives an answer: checks the lent value and
    /// that no other sub-stream holds it.
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
                if self.voting() {
                    self.check_copy(i, id)?;
                } else if self.subs[i].works_on(id) && !self.subs[i].holds.contains(&id) {
                    return fail(
                        Property::Conservative,
                        format!(
                            "value #{id} was lent back to S{n}, which was taken it back unanswered and may still answer it"
                        ),
                    );
                } else if let Some(other) = self.subs.iter().find(|s| s.holds.contains(&id)) {
                    return fail(
                        Property::Conservative,
                        if other.n == n {
                            format!("value #{id} was lent to S{n}, which already holds it")
                        } else {
                            format!("value #{id} was lent to S{n} while S{} holds it", other.n)
                        },
                    );
                }
                if self.is_culprit(id) {
                    return fail(
                        Property::Blame,
                        format!("value #{id} was lent to S{n} after its own failures took it over the cap"),
                    );
                }
                if self.result_of(id) && !self.stopped() {
                    return fail(
                        Property::Conservative,
                        format!("value #{id} was lent to S{n}, but it already has its result"),
                    );
                }
                let sub = &mut self.subs[i];
                sub.holds.insert(id);
                sub.rejected.retain(|&r| r != id);
                let answering = lock_state(&sub.results).legitimize(id);
                if !answering && !sub.works_on(id) {
                    sub.values.push_back((id, value));
                }
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

    /// With replicas, a copy of value `id` is lent to sub-stream `i`: not one
    /// that holds it, may still answer it, or answered it; at most `k` held at
    /// once; no more copies than wanted.
    fn check_copy(&mut self, i: usize, id: u64) -> Result<(), Failure> {
        let k = self.cfg.replicas;
        let sub = &self.subs[i];
        let n = sub.n;
        let j = self.grow(id);
        let ballot = &self.ballots[j];
        let why = if self.subs[i].holds.contains(&id) {
            Some(format!("value #{id} was lent to S{n}, which already holds it"))
        } else if self.subs[i].works_on(id) {
            Some(format!("value #{id} was lent to S{n}, which may still answer it"))
        } else if ballot.voted(n) {
            Some(format!("value #{id} was lent to S{n}, which computed it already"))
        } else if self.holders(id) >= k as usize {
            Some(format!(
                "value #{id} was lent to S{n} while {k} sub-streams hold it"
            ))
        } else if ballot.want == Some(0) {
            Some(format!(
                "value #{id} was lent to S{n}: more copies than its {k} replicas, failures and votes call for ({:?})",
                ballot.groups
            ))
        } else {
            None
        };
        if let Some(why) = why {
            return fail(Property::Conservative, why);
        }
        let want = self.ballots[j].want.get_or_insert(k);
        *want -= 1;
        Ok(())
    }

    /// `settled()` resolved: unless the module was terminated or cut off,
    /// the input has ended and every value read has its result.
    fn check_settled(&self) -> Result<(), Failure> {
        if self.stopped() {
            return Ok(());
        }
        if self.first_end.is_none() {
            return fail(
                Property::Settled,
                "settled() resolved before the input ended".to_string(),
            );
        }
        let delivered = lock_state(&self.source).delivered;
        if let Some(id) = (0..delivered).find(|&id| !self.result_of(id) && !self.is_culprit(id)) {
            return fail(
                Property::Settled,
                format!("settled() resolved while value #{id} has no result"),
            );
        }
        Ok(())
    }

    /// Nothing else can happen, and some asks are stalled: they are dropped
    /// (as a worker's connection would be, after its heartbeat timeout). A
    /// stalled ask must not have stalled the others: no task may progress
    /// now that could not before.
    fn drop_stalled_asks(&mut self) -> Result<(), Failure> {
        let mut dropped = Vec::new();
        for sub in &mut self.subs {
            for (index, ask) in sub.stalled.drain(..) {
                sub.mon.withdraw(index);
                drop(ask);
                dropped.push((sub.n, index));
            }
        }
        for &(n, index) in &dropped {
            self.note(Note::StallDropped(n, index));
        }
        let mut woken = Vec::new();
        self.woken(&mut woken, true);
        for task in woken {
            let events = self.checker.trace_len();
            let asks = lock_state(&self.source).asks;
            let what = self.task_name(task);
            let done = self.poll_task(task)?;
            if done || self.checker.trace_len() != events || lock_state(&self.source).asks != asks {
                let stalled: Vec<String> = dropped.iter().map(|(n, i)| format!("S{n}'s ask ⟨{i}⟩")).collect();
                return fail(
                    Property::Progress,
                    format!(
                        "stall: {what} could proceed only once the stalled {} (never polled again, not dropped) was dropped: a sub-stream that stops polling its ask stalls the others; {}",
                        stalled.join(" and "),
                        self.describe()
                    ),
                );
            }
        }
        self.after_step()
    }

    /// Whether the module stopped taking values back: it was cut off, its
    /// output terminated, or ended by a poisoned value's error.
    fn stopped(&self) -> bool {
        self.cut || self.terminated || self.poison_ended
    }

    fn after_step(&mut self) -> Result<(), Failure> {
        if self.first_end.is_none() {
            let st = lock_state(&self.source);
            self.first_end = if st.panicked {
                Some(End::Panicked)
            } else if st.termination.is_some() && !self.terminated {
                Some(End::Aborted)
            } else {
                st.end_delivered
                    .map(|error| if error { End::Error } else { End::Done })
            };
        }
        if let (Some(bound), Some(held), false) = (
            self.cfg.read_ahead,
            self.module.held(),
            self.terminated || self.poison_ended,
        ) {
            if held > bound {
                return fail(
                    Property::Bounded,
                    format!(
                        "the module holds {held} values, more than its read-ahead bound of {bound}; {}",
                        self.describe()
                    ),
                );
            }
        }
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
            TaskId::Close => "the close() future".to_string(),
            TaskId::Settled => "the settled() future".to_string(),
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
        if self.close.is_some() {
            return fail(
                Property::Progress,
                format!(
                    "no progress: nothing can happen, but close() has not resolved; {}",
                    self.describe()
                ),
            );
        }
        if self.settled.is_some() {
            return fail(
                Property::Settled,
                format!(
                    "settled() never resolved, though the output ended ({}); {}",
                    if self.terminated {
                        "terminated by the test sink"
                    } else {
                        "answered by the lender"
                    },
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
