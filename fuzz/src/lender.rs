//! The `lender_core` target: the StreamLender's sans-IO core
//! ([`Core`]), with the fuzzer's bytes choosing the settings (order,
//! read-ahead bound, retry cap and poison policy, number of values and how
//! the input ends) and every action, in the manner of `pando-checker`'s
//! interleaving harness: sub-streams join, ask (several asks at once),
//! answer, reject, reclaim, answer late, send results for values they do not
//! hold, end either side or crash; the input answers, or panics; the output
//! is polled; the lender is closed, cut off or terminated. Asks and the
//! output are polled again only once the core's [`Wake`](pando_lend_stream::machine::Wake)
//! says so, as the async adapter does. This is a coverage-guided search of
//! interleavings on top of the checker's seeded random one.
//!
//! When the actions run out, the sub-streams crash and one correct
//! sub-stream finishes the run, woken only by the core: a task that could
//! progress but was never woken is a lost wake-up, and a run that cannot
//! finish is a lack of progress.
//!
//! The checker's properties, checked on the core:
//!
//! * **protocol**: the input, the output and every sub-stream's source are
//!   recorded on [`pando_checker::Monitor`]s, which check the pull-stream
//!   invariants (no read after the input's end, no value after `done`, …);
//! * **ordered**, **exactly once**: the output carries results of values
//!   read, once each, in input order when ordered;
//! * **fault tolerant**: when the output ends, every value read before its
//!   end has its result (or was skipped as poisoned);
//! * **output terminated**: the output ends as the input ended (or with a
//!   poisoned value's error, or the cut-off error);
//! * **conservative**: a value is lent to at most one sub-stream at a time,
//!   and never once it has its result;
//! * **blame**: only a value whose own failures (rejections, reclaims, its
//!   holder ending while it held only that value) exceed the retry cap is
//!   poisoned; shared failures never take a value over the cap;
//! * **memory bound**: never more values held than the read-ahead bound;
//! * **sub-streams**: a result for a value held is accepted, a result for a
//!   value never lent is refused;
//! * **wake-ups** and **progress**, as above; and no panic.
//!
//! The model of these properties is written against the core: the
//! checker's own model drives the async lender and is not public (only its
//! [`Monitor`] and [`work`] are reused).

use std::collections::BTreeSet;

use arbitrary::{Arbitrary, Unstructured};
use pando_checker::{Checker, Monitor, work};
use pando_lend_stream::PoisonPolicy;
use pando_lend_stream::machine::{Core, InputEnd, OutputStep, SubAsk, SubId};

/// At most this many actions per input.
const MAX_STEPS: usize = 600;
/// At most this many sub-streams.
const MAX_SUBS: usize = 6;
/// At most this many asks pending at once on one sub-stream.
const MAX_ASKS: usize = 3;
/// Ids of results for values never lent.
const BOGUS: u64 = 1 << 40;
/// The steps the final run may take.
const DRAIN_STEPS: usize = 20_000;

/// The lender's settings and its input, from the fuzzer's bytes.
#[derive(Arbitrary, Debug, Clone, Copy)]
struct Settings {
    ordered: bool,
    /// 0: no bound; otherwise 1 to 4.
    read_ahead: u8,
    /// 0: retry forever; otherwise a cap of 0 to 2.
    retries: u8,
    skip: bool,
    /// The number of values: 0 to 10.
    count: u8,
    /// How the input ends after them.
    ends_with_error: bool,
}

/// One action of the harness.
#[derive(Arbitrary, Debug)]
enum Action {
    /// A new sub-stream.
    Join,
    /// Sub-stream `sub` makes a new ask (if it has fewer than [`MAX_ASKS`]).
    Ask { sub: u8 },
    /// Sub-stream `sub` polls its pending asks that were woken.
    Poll { sub: u8 },
    /// The input answers the read in progress.
    Input,
    /// The input panics while it is read.
    InputPanics,
    /// Sub-stream `sub` answers the `which`-th value it holds.
    Answer { sub: u8, which: u8 },
    /// Sub-stream `sub` answers a value taken back from it (late).
    Late { sub: u8, which: u8 },
    /// Sub-stream `sub` rejects a value it holds (it failed).
    Reject { sub: u8, which: u8 },
    /// Sub-stream `sub` gives a value back unanswered (a timeout).
    Reclaim { sub: u8, which: u8 },
    /// Sub-stream `sub` answers a value never lent (its results then end).
    Bogus { sub: u8, id: u8 },
    /// Sub-stream `sub` says why it will end.
    EndReason { sub: u8 },
    /// Sub-stream `sub` aborts its source (it takes no more values).
    SourceEnd { sub: u8 },
    /// Sub-stream `sub` ends its results.
    SinkEnd { sub: u8 },
    /// Sub-stream `sub` is dropped.
    Crash { sub: u8 },
    /// The output is polled (a new ask, or the pending one if woken).
    Output,
    /// The lender closes its input (`StreamLender::close`).
    Close,
    /// The lender cuts its sub-streams off.
    CutOff,
    /// The output's consumer aborts it.
    Terminate,
}

/// A sub-stream, as the harness sees it.
struct Sub {
    k: SubId,
    source: Monitor,
    /// Pending asks: their index on `source`, and whether they were woken.
    asks: Vec<(u64, bool)>,
    /// The ids lent to it and not answered nor taken back.
    holds: BTreeSet<u64>,
    /// The ids taken back from it without an answer: it may answer them late.
    taken_back: BTreeSet<u64>,
    source_open: bool,
    /// An ask of its source was answered `done`: it asks no more.
    told_done: bool,
    sink_open: bool,
}

/// How the input ended first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Done,
    Error,
    Panicked,
    /// Closed, cut off, terminated, or aborted before a poisoned value's error.
    Closed,
}

/// The harness: the core, the parties around it, and the model.
struct Run {
    s: Settings,
    max_retries: Option<u32>,
    core: Core<u64, u64>,
    checker: Checker,
    input: Monitor,
    output: Monitor,
    subs: Vec<Sub>,
    /// The read of the input in progress: the sub-stream whose ask started
    /// it, and the read's index on `input`.
    reading: Option<(usize, u64)>,
    /// Values read so far (value `v` has id `v - 1`).
    sourced: u64,
    first_end: Option<End>,
    /// The output's pending ask, and whether it was woken.
    output_ask: Option<(u64, bool)>,
    output_ended: bool,
    terminated: bool,
    cut: bool,
    poison_ended: bool,
    /// Per id: whether its result was output.
    seen: Vec<bool>,
    /// Per id: whether its result was accepted by the core.
    has_result: Vec<bool>,
    /// Per id: failures under the blame rule.
    fails: Vec<u32>,
    /// The last value output (ordered).
    last_out: u64,
    trace: Vec<String>,
}

/// Runs the `lender_core` target on one input.
///
/// # Panics
///
/// On a violated property, naming it, with the actions that led to it
/// (libFuzzer records the input).
///
/// ```
/// pando_fuzz::lender::check(b"");
/// pando_fuzz::lender::check(&[3; 100]);
/// ```
pub fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(settings) = Settings::arbitrary(&mut u) else {
        return;
    };
    let mut run = Run::new(settings);
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let Ok(action) = Action::arbitrary(&mut u) else {
            break;
        };
        run.trace.push(format!("{action:?}"));
        run.act(action);
        run.after_step();
    }
    run.drain();
    let report = run.checker.finish();
    if !report.is_ok() {
        run.violated("protocol", &report.to_string());
    }
}

impl Run {
    fn new(s: Settings) -> Self {
        let mut core = Core::new(s.ordered);
        core.set_read_ahead(read_ahead(s));
        let max_retries = (s.retries > 0).then_some(u32::from(s.retries % 3));
        let policy = if s.skip {
            PoisonPolicy::Skip
        } else {
            PoisonPolicy::Fail
        };
        core.set_max_retries(max_retries.map(|m| (m, policy)));
        let checker = Checker::collecting();
        Run {
            input: checker.monitor("Input"),
            output: checker.monitor("Output"),
            checker,
            s,
            max_retries,
            core,
            subs: Vec::new(),
            reading: None,
            sourced: 0,
            first_end: None,
            output_ask: None,
            output_ended: false,
            terminated: false,
            cut: false,
            poison_ended: false,
            seen: Vec::new(),
            has_result: Vec::new(),
            fails: Vec::new(),
            last_out: 0,
            trace: vec![format!("{s:?}")],
        }
    }

    fn violated(&self, property: &str, message: &str) -> ! {
        panic!(
            "{property} violated: {message}\nactions:\n  {}",
            self.trace.join("\n  ")
        )
    }

    fn read_ahead(&self) -> Option<u64> {
        read_ahead(self.s)
    }

    fn count(&self) -> u64 {
        u64::from(self.s.count % 11)
    }

    fn stopped(&self) -> bool {
        self.cut || self.terminated || self.poison_ended
    }

    fn grow(v: &mut Vec<bool>, id: u64) -> &mut bool {
        let i = id as usize;
        if v.len() <= i {
            v.resize(i + 1, false);
        }
        &mut v[i]
    }

    fn is_culprit(&self, id: u64) -> bool {
        self.max_retries
            .is_some_and(|max| self.fails.get(id as usize).copied().unwrap_or(0) > max)
    }

    fn skippable(&self, id: u64) -> bool {
        self.s.skip && self.is_culprit(id)
    }

    fn own_failure(&mut self, id: u64) {
        if self.stopped() {
            return;
        }
        let i = id as usize;
        if self.fails.len() <= i {
            self.fails.resize(i + 1, 0);
        }
        self.fails[i] += 1;
    }

    /// A sub-stream ended holding these values: with one, its own failure;
    /// with several, each is charged one that never takes it over the cap.
    fn blame(&mut self, holds: BTreeSet<u64>) {
        if self.stopped() {
            return;
        }
        if holds.len() == 1 {
            self.own_failure(*holds.first().expect("one value"));
            return;
        }
        for id in holds {
            let i = id as usize;
            if self.fails.len() <= i {
                self.fails.resize(i + 1, 0);
            }
            self.fails[i] = match self.max_retries {
                Some(max) => (self.fails[i] + 1).min(max.max(self.fails[i])),
                None => self.fails[i] + 1,
            };
        }
    }

    /// The index of sub-stream `sub` among those whose sink is open, if any.
    fn live(&self, sub: u8) -> Option<usize> {
        let live: Vec<usize> = (0..self.subs.len()).filter(|&i| self.subs[i].sink_open).collect();
        (!live.is_empty()).then(|| live[usize::from(sub) % live.len()])
    }

    fn join(&mut self) -> usize {
        let k = self.core.lend_stream();
        let n = self.subs.len();
        self.subs.push(Sub {
            k,
            source: self
                .checker
                .monitor(&format!("S{n}:Source"))
                .allow_answers_in_any_order(),
            asks: Vec::new(),
            holds: BTreeSet::new(),
            taken_back: BTreeSet::new(),
            source_open: true,
            told_done: false,
            sink_open: true,
        });
        n
    }

    fn act(&mut self, action: Action) {
        match action {
            Action::Join => {
                if self.subs.len() < MAX_SUBS {
                    self.join();
                }
            }
            Action::Ask { sub } => {
                if let Some(i) = self.live(sub) {
                    let sub = &mut self.subs[i];
                    if sub.source_open && !sub.told_done && sub.asks.len() < MAX_ASKS {
                        let index = sub.source.ask();
                        sub.asks.push((index, true));
                        self.poll_asks(i);
                    }
                }
            }
            Action::Poll { sub } => {
                if let Some(i) = self.live(sub) {
                    self.poll_asks(i);
                }
            }
            Action::Input => {
                self.answer_input();
            }
            Action::InputPanics => {
                if let Some((_, index)) = self.reading.take() {
                    self.input.error(index, &"panicked");
                    self.end_input(End::Panicked);
                    self.core.on_input_end(InputEnd::Panicked);
                    self.read_ended();
                }
            }
            Action::Answer { sub, which } => {
                if let Some(i) = self.live(sub) {
                    if let Some(id) = nth(&self.subs[i].holds, which) {
                        self.result(i, id);
                    }
                }
            }
            Action::Late { sub, which } => {
                if let Some(i) = self.live(sub) {
                    if let Some(id) = nth(&self.subs[i].taken_back, which) {
                        self.result(i, id);
                    }
                }
            }
            Action::Reject { sub, which } => {
                if let Some(i) = self.live(sub) {
                    if let Some(id) = nth(&self.subs[i].holds, which) {
                        if self.core.sink_must_stop(self.subs[i].k) {
                            return;
                        }
                        if let Err(e) = self.core.on_sub_reject(self.subs[i].k, id, "rejected".into()) {
                            self.violated(
                                "sub-streams",
                                &format!("the rejection of value #{id}, held, was refused: {e:?}"),
                            );
                        }
                        self.subs[i].holds.remove(&id);
                        self.own_failure(id);
                    }
                }
            }
            Action::Reclaim { sub, which } => {
                if let Some(i) = self.live(sub) {
                    if let Some(id) = nth(&self.subs[i].holds, which) {
                        if self.core.sink_must_stop(self.subs[i].k) {
                            return;
                        }
                        if let Err(e) = self.core.on_sub_reclaim(self.subs[i].k, id, "timed out".into()) {
                            self.violated(
                                "sub-streams",
                                &format!("the reclaim of value #{id}, held, was refused: {e:?}"),
                            );
                        }
                        self.subs[i].holds.remove(&id);
                        self.subs[i].taken_back.insert(id);
                        self.own_failure(id);
                    }
                }
            }
            Action::Bogus { sub, id } => {
                if let Some(i) = self.live(sub) {
                    if self.core.sink_must_stop(self.subs[i].k) {
                        return;
                    }
                    let id = BOGUS + u64::from(id);
                    if self.core.on_sub_result(self.subs[i].k, id, 0).is_ok() {
                        self.violated(
                            "sub-streams",
                            &format!("a result for value #{id}, never lent, was accepted"),
                        );
                    }
                    // The adapter ends the sub-stream's results.
                    self.sink_end(i);
                }
            }
            Action::EndReason { sub } => {
                if let Some(i) = self.live(sub) {
                    self.core.set_end_reason(self.subs[i].k, format!("S{i} ended"));
                }
            }
            Action::SourceEnd { sub } => {
                if let Some(i) = self.live(sub) {
                    self.source_end(i);
                }
            }
            Action::SinkEnd { sub } => {
                if let Some(i) = self.live(sub) {
                    self.sink_end(i);
                }
            }
            Action::Crash { sub } => {
                if let Some(i) = self.live(sub) {
                    self.crash(i);
                }
            }
            Action::Output => self.poll_output(true),
            Action::Close => {
                if self.first_end.is_none() {
                    self.abort_input();
                    self.core.on_input_end(InputEnd::Closed);
                }
            }
            Action::CutOff => {
                if self.first_end.is_none() {
                    self.abort_input();
                }
                self.core.cut_off();
                self.cut = true;
            }
            Action::Terminate => {
                if !self.output_ended {
                    let index = self.output.abort();
                    self.output.done(index);
                    self.output_ask = None;
                    self.output_ended = true;
                    if self.first_end.is_none() {
                        self.abort_input();
                    }
                    self.core.terminate_output();
                    self.terminated = true;
                }
            }
        }
    }

    /// Records the input's first end.
    fn end_input(&mut self, end: End) {
        self.first_end.get_or_insert(end);
    }

    /// The lender aborts its input (closed, cut off, terminated, or before a
    /// poisoned value's error): a read in progress is dropped.
    fn abort_input(&mut self) {
        if self.first_end.is_some() {
            return;
        }
        self.end_input(End::Closed);
        self.reading = None;
        let index = self.input.abort();
        self.input.done(index);
        self.read_ended();
    }

    /// The read ended: the asks waiting for it decide again.
    fn read_ended(&mut self) {
        for sub in &mut self.subs {
            for ask in &mut sub.asks {
                ask.1 = true;
            }
        }
    }

    /// The input answers the read in progress, if there is one and an ask
    /// to poll it; whether it did.
    fn answer_input(&mut self) -> bool {
        let Some((i, index)) = self.reading.take() else {
            return false;
        };
        // The read is polled by an ask that needs a value: the one that
        // started it, or another one if that one was answered meanwhile.
        let Some(i) = std::iter::once(i)
            .chain(0..self.subs.len())
            .find(|&j| !self.subs[j].asks.is_empty())
        else {
            self.reading = Some((i, index));
            return false;
        };
        if self.sourced < self.count() {
            self.sourced += 1;
            let value = self.sourced;
            self.input.value(index, &value);
            let answer = self.core.on_input_value(self.subs[i].k, value);
            self.read_ended();
            // The value answers the ask that started the read, if it is still there.
            if !self.subs[i].asks.is_empty() {
                let (ask, _) = self.subs[i].asks[0];
                match answer {
                    SubAsk::Lend(lent) => {
                        self.subs[i].asks.remove(0);
                        self.lent(i, ask, lent.id, lent.value);
                    }
                    SubAsk::Done => {
                        self.subs[i].asks.remove(0);
                        self.subs[i].source.done(ask);
                        self.subs[i].told_done = true;
                    }
                    SubAsk::Wait | SubAsk::ReadInput => {}
                }
            } else if let SubAsk::Lend(lent) = answer {
                self.violated(
                    "sub-streams",
                    &format!("value #{} was lent to S{i}, which has no ask", lent.id),
                );
            }
        } else {
            let end = if self.s.ends_with_error {
                self.input.error(index, &"input error");
                End::Error
            } else {
                self.input.done(index);
                End::Done
            };
            self.end_input(end);
            self.core.on_input_end(if end == End::Error {
                InputEnd::Error
            } else {
                InputEnd::Done
            });
            self.read_ended();
        }
        true
    }

    /// Polls the woken asks of sub-stream `i`.
    fn poll_asks(&mut self, i: usize) {
        let mut j = 0;
        while j < self.subs[i].asks.len() {
            let (index, woken) = self.subs[i].asks[j];
            if !woken {
                j += 1;
                continue;
            }
            match self.core.sub_ask(self.subs[i].k) {
                SubAsk::Lend(lent) => {
                    self.subs[i].asks.remove(j);
                    self.lent(i, index, lent.id, lent.value);
                }
                SubAsk::Done => {
                    self.subs[i].asks.remove(j);
                    self.subs[i].source.done(index);
                    self.subs[i].told_done = true;
                }
                SubAsk::Wait => {
                    self.subs[i].asks[j].1 = false;
                    j += 1;
                }
                SubAsk::ReadInput => {
                    self.subs[i].asks[j].1 = false;
                    if self.reading.is_none() {
                        let read = self.input.ask();
                        // Only the first ask of a sub-stream starts a read here.
                        if j != 0 {
                            let ask = self.subs[i].asks.remove(j);
                            self.subs[i].asks.insert(0, ask);
                        }
                        self.reading = Some((i, read));
                    }
                    j += 1;
                }
            }
        }
    }

    /// Value `id` was lent to sub-stream `i`, answering its ask `index`.
    fn lent(&mut self, i: usize, index: u64, id: u64, value: u64) {
        self.subs[i].source.value(index, &(id, value));
        if value != id + 1 || value > self.sourced {
            self.violated(
                "sub-streams",
                &format!("S{i} was lent ({id}, {value}): not a value read with its position as id"),
            );
        }
        if let Some(other) = self.subs.iter().position(|s| s.holds.contains(&id)) {
            self.violated(
                "conservative",
                &format!("value #{id} was lent to S{i} while S{other} holds it"),
            );
        }
        if self.is_culprit(id) {
            self.violated(
                "blame",
                &format!("value #{id} was lent to S{i} after its own failures took it over the cap"),
            );
        }
        if self.has_result.get(id as usize).copied().unwrap_or(false) && !self.stopped() {
            self.violated(
                "conservative",
                &format!("value #{id} was lent to S{i}, but it already has its result"),
            );
        }
        let sub = &mut self.subs[i];
        sub.holds.insert(id);
        sub.taken_back.remove(&id);
    }

    /// Sub-stream `i` answers value `id` (held, or taken back from it).
    fn result(&mut self, i: usize, id: u64) {
        let k = self.subs[i].k;
        if self.core.sink_must_stop(k) {
            return;
        }
        let held = self.subs[i].holds.remove(&id);
        let late = !held && self.subs[i].taken_back.remove(&id);
        if let Err(e) = self.core.on_sub_result(k, id, work(id + 1)) {
            self.violated(
                "sub-streams",
                &format!("the result of value #{id} from S{i} (held {held}, late {late}) was refused: {e:?}"),
            );
        }
        let has = Self::grow(&mut self.has_result, id);
        if held {
            *has = true;
        } else if !*has && !self.is_culprit(id) && !self.stopped() {
            // A late result, accepted: the copy lent elsewhere is late in turn.
            *Self::grow(&mut self.has_result, id) = true;
            for sub in &mut self.subs {
                if sub.holds.remove(&id) {
                    sub.taken_back.insert(id);
                }
            }
        }
    }

    fn source_end(&mut self, i: usize) {
        let sub = &mut self.subs[i];
        if !sub.source_open {
            return;
        }
        sub.source_open = false;
        if !sub.told_done {
            let index = sub.source.abort();
            sub.source.done(index);
        }
        sub.asks.clear();
        let holds = std::mem::take(&mut sub.holds);
        sub.taken_back.extend(holds.iter().copied());
        self.core.on_sub_source_end(sub.k);
        self.blame(holds);
    }

    fn sink_end(&mut self, i: usize) {
        self.source_end(i);
        let sub = &mut self.subs[i];
        if !sub.sink_open {
            return;
        }
        sub.sink_open = false;
        sub.taken_back.clear();
        self.core.on_sub_sink_end(sub.k);
    }

    fn crash(&mut self, i: usize) {
        let sub = &mut self.subs[i];
        sub.source.dropped();
        sub.asks.clear();
        sub.source_open = false;
        let holds = std::mem::take(&mut sub.holds);
        sub.taken_back.clear();
        sub.sink_open = false;
        self.core.on_sub_source_end(sub.k);
        self.core.on_sub_sink_end(sub.k);
        self.blame(holds);
    }

    /// Polls the output: a new ask, or (`woken_only`: only if woken) the
    /// pending one.
    fn poll_output(&mut self, woken_only: bool) {
        if self.output_ended {
            return;
        }
        let index = match self.output_ask {
            Some((_, false)) if woken_only => return,
            Some((index, _)) => index,
            None => self.output.ask(),
        };
        self.output_ask = Some((index, false));
        loop {
            match self.core.poll_output() {
                OutputStep::Pending => return,
                OutputStep::AbortInput => {
                    if self.first_end.is_none() {
                        self.abort_input();
                    } else {
                        self.violated("output terminated", "AbortInput after the input ended");
                    }
                }
                OutputStep::Value(result) => {
                    self.output_ask = None;
                    self.output.value(index, &result);
                    self.on_value(result);
                    return;
                }
                end => {
                    self.output_ask = None;
                    self.output_ended = true;
                    match &end {
                        OutputStep::Done => self.output.done(index),
                        other => self.output.error(index, other),
                    }
                    self.on_end(end);
                    return;
                }
            }
        }
    }

    fn on_value(&mut self, result: u64) {
        let position = self.seen.iter().filter(|&&s| s).count() + 1;
        let value = pando_checker_unwork(result).filter(|&v| v >= 1 && v <= self.sourced);
        let Some(value) = value else {
            self.violated(
                "exactly once",
                &format!("output #{position} is {result}, the result of no value read"),
            );
        };
        let id = value - 1;
        if *Self::grow(&mut self.seen, id) {
            self.violated(
                "exactly once",
                &format!("output #{position} is the result of value #{id} again"),
            );
        }
        if self.is_culprit(id) {
            self.violated(
                "blame",
                &format!("output #{position} is the result of value #{id}, which was poisoned"),
            );
        }
        if self.s.ordered {
            if value < self.last_out {
                self.violated(
                    "ordered",
                    &format!(
                        "output #{position} is the result of value #{id}, after that of #{}",
                        self.last_out - 1
                    ),
                );
            }
            if let Some(w) = (self.last_out + 1..value).find(|&w| !self.skippable(w - 1)) {
                self.violated(
                    "ordered",
                    &format!(
                        "output #{position} is the result of value #{id}; expected that of #{}",
                        w - 1
                    ),
                );
            }
            self.last_out = value;
        }
        *Self::grow(&mut self.seen, id) = true;
    }

    /// Every value read with an id below `below` has its result on the
    /// output, or was skipped as poisoned.
    fn check_complete(&self, below: u64, end: &str) {
        let missing: Vec<u64> = (0..self.sourced.min(below))
            .filter(|&id| !self.seen.get(id as usize).copied().unwrap_or(false) && !self.skippable(id))
            .collect();
        if !missing.is_empty() {
            self.violated(
                "fault tolerant",
                &format!("the output ended ({end}) without the results of values {missing:?}"),
            );
        }
    }

    fn on_end(&mut self, end: OutputStep<u64>) {
        let wrong = |run: &Self, why: &str| -> ! {
            run.violated(
                "output terminated",
                &format!(
                    "the output answered {end:?}, {why} (input ended {:?})",
                    run.first_end
                ),
            )
        };
        match &end {
            OutputStep::Done => {
                if !matches!(self.first_end, Some(End::Done | End::Closed)) {
                    wrong(self, "but the input did not end with done or a close");
                }
                if !self.cut {
                    self.check_complete(u64::MAX, "done");
                }
            }
            OutputStep::InputError => {
                if self.first_end != Some(End::Error) {
                    wrong(self, "but the input did not end with an error first");
                }
                self.check_complete(u64::MAX, "the input's error");
            }
            OutputStep::InputPanicked => {
                if self.first_end != Some(End::Panicked) {
                    wrong(self, "but the input did not panic first");
                }
                self.check_complete(u64::MAX, "the input's panic");
            }
            OutputStep::Poisoned { id, .. } => {
                if self.max_retries.is_none() || self.s.skip {
                    wrong(self, "but no value can be poisoned with that policy");
                }
                if self.first_end.is_none() {
                    wrong(self, "but the input is still open");
                }
                if !self.is_culprit(*id) {
                    self.violated(
                        "blame",
                        &format!(
                            "the output names value #{id} as poisoned, but it is no culprit: {} failure(s), cap {:?}",
                            self.fails.get(*id as usize).copied().unwrap_or(0),
                            self.max_retries
                        ),
                    );
                }
                self.poison_ended = true;
                if self.s.ordered {
                    self.check_complete(*id, "the poisoned value's error");
                }
            }
            OutputStep::Closed { first, .. } => {
                if !self.cut {
                    wrong(self, "but the lender was not cut off");
                }
                if self.seen.get(*first as usize).copied().unwrap_or(false) {
                    wrong(self, "naming a value whose result was output");
                }
                if self.s.ordered {
                    self.check_complete(*first, "the cut-off error");
                }
            }
            _ => wrong(self, "an answer the target does not know"),
        }
    }

    /// After each action: the wake-ups, and the memory bound.
    fn after_step(&mut self) {
        let wake = self.core.take_wake();
        if wake.waiting {
            for sub in &mut self.subs {
                for ask in &mut sub.asks {
                    ask.1 = true;
                }
            }
        }
        if wake.output {
            if let Some(ask) = &mut self.output_ask {
                ask.1 = true;
            }
        }
        if let Some(bound) = self.read_ahead() {
            if !self.terminated && !self.poison_ended {
                let state = self.core.state();
                let held = state
                    .read
                    .saturating_sub(state.output)
                    .saturating_sub(state.skipped);
                if held > bound {
                    self.violated(
                        "memory bound",
                        &format!("the lender holds {held} values, more than its read-ahead bound of {bound}"),
                    );
                }
            }
        }
    }

    /// The end of the run: every sub-stream crashes, and a correct one
    /// finishes, woken only by the core.
    fn drain(&mut self) {
        self.trace
            .push("-- drain: the sub-streams crash, a correct one finishes".into());
        for i in 0..self.subs.len() {
            if self.subs[i].sink_open {
                self.crash(i);
            }
        }
        self.after_step();
        let c = self.join();
        let index = self.subs[c].source.ask();
        self.subs[c].asks.push((index, true));
        for _ in 0..DRAIN_STEPS {
            let progressed = self.drain_step(c);
            self.after_step();
            if progressed {
                continue;
            }
            let source_done = self.subs[c].told_done || self.subs[c].asks.is_empty();
            if self.output_ended && source_done {
                return;
            }
            // Nothing was woken: would anything progress if polled anyway?
            if !self.subs[c].asks.is_empty() {
                match self.core.sub_ask(self.subs[c].k) {
                    SubAsk::Wait => {}
                    ask => self.violated(
                        "wake-ups",
                        &format!("the correct sub-stream's ask was not woken, yet it answers {ask:?}"),
                    ),
                }
            }
            if !self.output_ended {
                match self.core.poll_output() {
                    OutputStep::Pending => {}
                    step => self.violated(
                        "wake-ups",
                        &format!("the output was not woken, yet it answers {step:?}"),
                    ),
                }
            }
            self.violated(
                "progress",
                &format!(
                    "nothing can happen, the output {}ended",
                    if self.output_ended { "" } else { "not " }
                ),
            );
        }
        self.violated(
            "progress",
            &format!("the run did not end within {DRAIN_STEPS} steps"),
        );
    }

    /// One step of the final run; whether anything happened.
    fn drain_step(&mut self, c: usize) -> bool {
        if let Some(&id) = self.subs[c].holds.first() {
            if !self.core.sink_must_stop(self.subs[c].k) {
                self.trace.push(format!("S{c} answers #{id}"));
                self.result(c, id);
                return true;
            }
            self.subs[c].holds.clear();
        }
        if self.answer_input() {
            self.trace.push("the input answered".into());
            return true;
        }
        let sub = &self.subs[c];
        if sub.asks.is_empty() && sub.source_open && !sub.told_done {
            // It asks again, unless it was told done.
            self.trace.push(format!("S{c} asks"));
            let index = self.subs[c].source.ask();
            self.subs[c].asks.push((index, true));
            return true;
        }
        if self.subs[c].asks.iter().any(|a| a.1) {
            self.trace.push(format!("S{c} polls its ask"));
            self.poll_asks(c);
            return true;
        }
        if !self.output_ended && self.output_ask.is_none_or(|(_, woken)| woken) {
            self.trace.push("the output is polled".into());
            self.poll_output(false);
            return true;
        }
        false
    }
}

/// The read-ahead bound of these settings.
fn read_ahead(s: Settings) -> Option<u64> {
    (s.read_ahead > 0).then(|| u64::from(s.read_ahead % 4 + 1))
}

/// The `which`-th id of a set, if any.
fn nth(ids: &BTreeSet<u64>, which: u8) -> Option<u64> {
    (!ids.is_empty()).then(|| *ids.iter().nth(usize::from(which) % ids.len()).expect("in range"))
}

/// The value whose result (by [`work`]) is `result`.
fn pando_checker_unwork(result: u64) -> Option<u64> {
    (result % 3 == 1 && result > 1).then_some(result / 3)
}
