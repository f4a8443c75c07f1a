//! The deterministic, sans-IO core of the StreamLender: one method per
//! `upon … trigger …` handler of seed 000, Algorithms 10-12, and nothing
//! else: no locks, no wakers, no futures. The async adapters translate polls
//! into these events and the returned outcomes into answers and wakes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::{LenderState, Lent};

/// A sub-stream's number.
pub type SubId = u64;

/// What a value's slot holds, from the moment it is read until it is output.
#[derive(Debug)]
enum Slot<T, R> {
    /// Waiting for a result: lent to `holder`, or waiting to be re-lent
    /// (`None`); `failures` counts the sub-streams that failed with it.
    Lent {
        value: T,
        holder: Option<SubId>,
        failures: u32,
    },
    /// Failed more than the retry cap allows, with the `Fail` policy.
    Poisoned { failures: u32 },
    /// Failed more than the retry cap allows, with the `Skip` policy (ordered mode).
    Skipped,
    /// The result, waiting for its turn on the output (ordered mode).
    Ready(R),
    /// Already output (unordered mode); freed when it reaches the front.
    Output,
}

/// What happens to a value that failed more than `max_retries` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PoisonPolicy {
    /// The output ends with an error naming the value, after the results
    /// before it (the default).
    #[default]
    Fail,
    /// The value is dropped from the output and counted (opt-in).
    Skip,
}

/// How the input ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputEnd {
    /// The input answered `done`.
    Done,
    /// The input answered `error`.
    Error,
    /// The lender closed its input (a graceful close, or the output was terminated).
    Closed,
}

#[derive(Debug, Default)]
struct Sub {
    /// The ids lent to this sub-stream and not answered, in lending order
    /// (results usually come back in that order: removal is from the front).
    lent: VecDeque<u64>,
    /// Ids taken back from this sub-stream (it ended a side) and not answered
    /// yet: a result for one of them is late, not a contract violation.
    recovered: BTreeSet<u64>,
    source_open: bool,
    sink_open: bool,
}

/// The answer to a sub-stream's ask (`Sk O:ask⟨m⟩`).
#[derive(Debug, PartialEq, Eq)]
pub enum SubAsk<T> {
    /// `Sk O:value⟨m, v⟩`: a value lent to the sub-stream.
    Lend(Lent<T>),
    /// `Sk O:done⟨m⟩`: nothing more will be lent to this sub-stream.
    Done,
    /// Input ended but other sub-streams still hold values; wait (WaitOnOthers).
    Wait,
    /// Ask the input for a new value (`Input:ask⟨j⟩`), then call
    /// [`Core::on_input_value`] or [`Core::on_input_end`].
    ReadInput,
}

/// The next answer on the lender's output.
#[derive(Debug, PartialEq, Eq)]
pub enum OutputStep<R> {
    /// `Output:value⟨i, r⟩`.
    Value(R),
    /// `Output:done⟨i⟩`.
    Done,
    /// `Output:error⟨i, err⟩` with the input's error.
    InputError,
    /// A value failed more than the retry cap allows (policy `Fail`).
    Poisoned {
        /// The value's id.
        id: u64,
        /// How many times it failed.
        failures: u32,
    },
    /// The lender was cut off with values unfinished.
    Closed {
        /// How many values have no result.
        unfinished: u64,
        /// The first of them.
        first: u64,
    },
    /// Nothing to answer yet.
    Pending,
}

/// A result that breaks the one-result-per-value contract.
#[derive(Debug, PartialEq, Eq)]
pub struct Unexpected {
    /// The sub-stream.
    pub sub: SubId,
    /// The id of the result.
    pub id: u64,
}

/// Which waiting parties a change may concern.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Wake {
    /// The output may have an answer.
    pub output: bool,
    /// Sub-stream asks waiting on others may have an answer.
    pub waiting: bool,
    /// Sub-stream sinks may have to stop (cut off or terminated lender).
    pub sinks: bool,
}

/// The StreamLender's state machine.
#[derive(Debug)]
pub struct Core<T, R> {
    ordered: bool,
    /// The id of `slots[0]`; `base + slots.len()` is the next id to read.
    base: u64,
    slots: VecDeque<Slot<T, R>>,
    /// Ids waiting to be re-lent, oldest first.
    failed: BTreeSet<u64>,
    /// Number of slots in the `Lent` state.
    pending: u64,
    input: Option<InputEnd>,
    /// The output was terminated by its consumer.
    terminated: bool,
    /// The lender cut its sub-streams off.
    cut: bool,
    /// The retry cap and what to do beyond it; `None`: retry forever.
    retries: Option<(u32, PoisonPolicy)>,
    /// The first poisoned value (unordered mode reports it at once).
    poisoned: Option<(u64, u32)>,
    /// Results in arrival order, unordered mode.
    arrived: VecDeque<R>,
    subs: BTreeMap<SubId, Sub>,
    next_sub: SubId,
    wake: Wake,
    stats: Stats,
    /// At most this many values read and not yet output (backpressure from
    /// the output to the input); `None`: no bound, as in the seeds.
    read_ahead: Option<u64>,
    /// A sub-stream ask is waiting because of the read-ahead bound: the next
    /// output must wake the waiting asks (and only then).
    read_ahead_waiting: bool,
}

#[derive(Debug, Default, Clone, Copy)]
struct Stats {
    lent: u64,
    relent: u64,
    output: u64,
    late_accepted: u64,
    late_dropped: u64,
    unexpected: u64,
    sub_streams: u64,
    rejected: u64,
    skipped: u64,
}

impl<T, R> Core<T, R> {
    /// A lender core; `ordered` selects the output order.
    pub fn new(ordered: bool) -> Self {
        Core {
            ordered,
            base: 0,
            slots: VecDeque::new(),
            failed: BTreeSet::new(),
            pending: 0,
            input: None,
            terminated: false,
            cut: false,
            retries: None,
            poisoned: None,
            arrived: VecDeque::new(),
            subs: BTreeMap::new(),
            next_sub: 0,
            wake: Wake::default(),
            stats: Stats::default(),
            read_ahead: None,
            read_ahead_waiting: false,
        }
    }

    /// Bounds the number of values read and not yet output: beyond it,
    /// sub-streams wait for the output to be consumed before new values are
    /// read (values to re-lend are still lent). `None` removes the bound.
    ///
    /// # Panics
    ///
    /// If `bound` is `Some(0)`: no value could ever be read.
    pub fn set_read_ahead(&mut self, bound: Option<u64>) {
        assert_ne!(bound, Some(0), "a read-ahead bound of 0 would never read a value");
        self.read_ahead = bound;
        self.wake.waiting = true;
    }

    /// Caps the failures of each value: a value whose sub-stream failed
    /// (ended, was dropped, or rejected it) more than `max_retries` times is
    /// *poisoned*, and handled by `policy` instead of being lent again, so a
    /// value that always fails never loops forever. `None` retries forever.
    pub fn set_max_retries(&mut self, retries: Option<(u32, PoisonPolicy)>) {
        self.retries = retries;
    }

    /// Values read and not yet output.
    fn unconsumed(&self) -> u64 {
        self.next_id() - self.stats.output
    }

    /// The parties to wake after the events handled since the last call.
    pub fn take_wake(&mut self) -> Wake {
        std::mem::take(&mut self.wake)
    }

    /// `StreamLender:lendStream⟨⟩`: a new sub-stream.
    pub fn lend_stream(&mut self) -> SubId {
        let k = self.next_sub;
        self.next_sub += 1;
        self.stats.sub_streams += 1;
        let open = !self.terminated && !self.cut;
        self.subs.insert(
            k,
            Sub {
                source_open: open,
                sink_open: open,
                ..Sub::default()
            },
        );
        k
    }

    fn next_id(&self) -> u64 {
        self.base + self.slots.len() as u64
    }

    fn source_alive(&self, k: SubId) -> bool {
        !self.terminated && !self.cut && self.subs.get(&k).is_some_and(|s| s.source_open)
    }

    /// Whether the sub-stream's sink must stop: the lender was terminated or
    /// cut its sub-streams off.
    pub fn sink_must_stop(&self, k: SubId) -> bool {
        self.terminated || self.cut || !self.subs.get(&k).is_some_and(|s| s.sink_open)
    }

    /// Whether the input may still be read.
    pub fn input_open(&self) -> bool {
        self.input.is_none() && !self.terminated
    }

    /// `upon Input:done⟨j⟩ or Input:error⟨j, err⟩`, or the lender closing its input.
    pub fn on_input_end(&mut self, end: InputEnd) {
        if self.input.is_none() {
            self.input = Some(end);
            self.wake.output = true;
            self.wake.waiting = true;
        }
    }

    fn accept(&mut self, id: u64, result: R) {
        let index = (id - self.base) as usize;
        self.slots[index] = if self.ordered {
            if index == 0 {
                self.wake.output = true;
            }
            Slot::Ready(result)
        } else {
            self.arrived.push_back(result);
            self.wake.output = true;
            Slot::Output
        };
        if !self.ordered {
            while matches!(self.slots.front(), Some(Slot::Output)) {
                self.slots.pop_front();
                self.base += 1;
            }
        }
        self.pending -= 1;
        if self.pending == 0 {
            self.wake.waiting = true;
            self.wake.output = true;
        }
    }

    /// `upon Sk I:value⟨n, r⟩` (Algorithm 11, lines 57-61), with ids.
    ///
    /// A result for a value the sub-stream holds is accepted. A result for a
    /// value taken back from it (it had ended a side) is *late*: accepted if
    /// the value is still waiting for a result (whoever answers first wins,
    /// and the copy lent elsewhere becomes late in turn), dropped otherwise.
    /// Any other result breaks the contract: the caller ends the sub-stream.
    pub fn on_sub_result(&mut self, k: SubId, id: u64, result: R) -> Result<(), Unexpected> {
        let Some(sub) = self.subs.get_mut(&k) else {
            return Err(Unexpected { sub: k, id });
        };
        if let Some(i) = sub.lent.iter().position(|&l| l == id) {
            sub.lent.remove(i);
            self.accept(id, result);
            return Ok(());
        }
        if !sub.recovered.remove(&id) {
            self.stats.unexpected += 1;
            return Err(Unexpected { sub: k, id });
        }
        let pending_holder = match id.checked_sub(self.base).and_then(|i| self.slots.get(i as usize)) {
            Some(Slot::Lent { holder, .. }) => Some(*holder),
            _ => None,
        };
        match pending_holder {
            None => self.stats.late_dropped += 1,
            Some(holder) => {
                match holder {
                    None => {
                        self.failed.remove(&id);
                    }
                    Some(other) => {
                        if let Some(other) = self.subs.get_mut(&other) {
                            other.lent.retain(|&l| l != id);
                            other.recovered.insert(id);
                        }
                    }
                }
                self.stats.late_accepted += 1;
                self.accept(id, result);
            }
        }
        Ok(())
    }

    /// RecoverFailedValues (Algorithm 12): the values `k` holds go back to be lent again.
    fn recover(&mut self, k: SubId) {
        let Some(sub) = self.subs.get_mut(&k) else { return };
        let lent = std::mem::take(&mut sub.lent);
        if lent.is_empty() {
            return;
        }
        sub.recovered.extend(lent.iter().copied());
        for id in lent {
            if self.fail_value(id) {
                self.failed.insert(id);
                self.wake.waiting = true;
            }
        }
    }

    /// Counts a failure of value `id` (it no longer has a holder). Returns
    /// whether it is to be lent again; a value over the retry cap is
    /// poisoned instead.
    fn fail_value(&mut self, id: u64) -> bool {
        let index = (id - self.base) as usize;
        let Some(Slot::Lent { holder, failures, .. }) = self.slots.get_mut(index) else {
            return false;
        };
        *holder = None;
        *failures += 1;
        let failures = *failures;
        if self.terminated || self.cut {
            return false;
        }
        match self.retries {
            Some((max, policy)) if failures > max => {
                self.slots[index] = match (policy, self.ordered) {
                    (PoisonPolicy::Fail, _) => {
                        self.poisoned.get_or_insert((id, failures));
                        Slot::Poisoned { failures }
                    }
                    (PoisonPolicy::Skip, true) => Slot::Skipped,
                    (PoisonPolicy::Skip, false) => Slot::Output,
                };
                if policy == PoisonPolicy::Skip {
                    self.stats.skipped += 1;
                }
                if !self.ordered {
                    while matches!(self.slots.front(), Some(Slot::Output)) {
                        self.slots.pop_front();
                        self.base += 1;
                    }
                }
                self.pending -= 1;
                self.wake.output = true;
                if self.pending == 0 {
                    self.wake.waiting = true;
                }
                false
            }
            _ => true,
        }
    }

    /// A sub-stream reports that processing value `id` failed (for example
    /// the worker's function returned an error): the value is taken back
    /// from it, counted as a failure, and lent again (or poisoned). The
    /// sub-stream goes on. A rejection of a value it does not hold is a
    /// contract violation; a late one (for a value taken back already) is ignored.
    pub fn on_sub_reject(&mut self, k: SubId, id: u64) -> Result<(), Unexpected> {
        let Some(sub) = self.subs.get_mut(&k) else {
            return Err(Unexpected { sub: k, id });
        };
        if let Some(i) = sub.lent.iter().position(|&l| l == id) {
            sub.lent.remove(i);
            sub.recovered.insert(id);
            self.stats.rejected += 1;
            if self.fail_value(id) {
                self.failed.insert(id);
                self.wake.waiting = true;
            }
            Ok(())
        } else if sub.recovered.contains(&id) {
            Ok(())
        } else {
            self.stats.unexpected += 1;
            Err(Unexpected { sub: k, id })
        }
    }

    fn forget_if_closed(&mut self, k: SubId) {
        if self.subs.get(&k).is_some_and(|s| !s.source_open && !s.sink_open) {
            self.subs.remove(&k);
        }
    }

    /// `upon Sk O:abort⟨m⟩ or Sk O:fail⟨m, err⟩`, or the sub-stream's source
    /// dropped: it takes no more values, and those it holds are lent again.
    pub fn on_sub_source_end(&mut self, k: SubId) {
        self.recover(k);
        if let Some(sub) = self.subs.get_mut(&k) {
            sub.source_open = false;
        }
        self.forget_if_closed(k);
    }

    /// `upon Sk I:done⟨n⟩ or Sk I:error⟨n, err⟩`, a contract violation, or the
    /// sub-stream's sink dropped: no more results come from it.
    pub fn on_sub_sink_end(&mut self, k: SubId) {
        self.recover(k);
        if let Some(sub) = self.subs.get_mut(&k) {
            sub.sink_open = false;
            sub.recovered.clear();
            // A sub-stream whose results ended takes no more values either.
            sub.source_open = false;
        }
        self.wake.waiting = true;
        self.forget_if_closed(k);
    }

    /// `upon Output:ask⟨i⟩` (Algorithm 10, lines 7-18).
    ///
    /// The input's error comes after the results of every value read before
    /// it; so does `done`.
    pub fn poll_output(&mut self) -> OutputStep<R> {
        if self.terminated {
            return OutputStep::Done;
        }
        if self.ordered {
            while matches!(self.slots.front(), Some(Slot::Skipped)) {
                self.slots.pop_front();
                self.base += 1;
            }
            if let Some(Slot::Poisoned { failures }) = self.slots.front() {
                return OutputStep::Poisoned {
                    id: self.base,
                    failures: *failures,
                };
            }
            if matches!(self.slots.front(), Some(Slot::Ready(_))) {
                let Some(Slot::Ready(r)) = self.slots.pop_front() else {
                    unreachable!()
                };
                self.base += 1;
                self.stats.output += 1;
                if matches!(self.slots.front(), Some(Slot::Ready(_))) {
                    self.wake.output = true;
                }
                self.wake.waiting |= std::mem::take(&mut self.read_ahead_waiting);
                return OutputStep::Value(r);
            }
        } else if let Some(r) = self.arrived.pop_front() {
            self.stats.output += 1;
            self.wake.waiting |= std::mem::take(&mut self.read_ahead_waiting);
            return OutputStep::Value(r);
        } else if let Some((id, failures)) = self.poisoned {
            return OutputStep::Poisoned { id, failures };
        }
        if self.pending > 0 {
            if self.cut {
                let first = self
                    .slots
                    .iter()
                    .position(|s| matches!(s, Slot::Lent { .. }))
                    .map_or(self.base, |i| self.base + i as u64);
                return OutputStep::Closed {
                    unfinished: self.pending,
                    first,
                };
            }
            return OutputStep::Pending;
        }
        match self.input {
            None => OutputStep::Pending,
            Some(InputEnd::Done | InputEnd::Closed) => OutputStep::Done,
            Some(InputEnd::Error) => OutputStep::InputError,
        }
    }

    /// `upon Output:abort⟨i⟩ or Output:fail⟨i, err⟩` (Algorithm 10, lines 20-27):
    /// the lender stops; sub-streams get `done` and their sinks stop.
    pub fn terminate_output(&mut self) {
        self.terminated = true;
        self.failed.clear();
        self.slots.clear();
        self.arrived.clear();
        self.pending = 0;
        for sub in self.subs.values_mut() {
            sub.lent.clear();
            sub.recovered.clear();
        }
        self.wake = Wake {
            output: true,
            waiting: true,
            sinks: true,
        };
    }

    /// Cuts every sub-stream off (a close deadline passed): their sources
    /// answer `done`, their sinks stop, and values without a result end the
    /// output with [`OutputStep::Closed`] after the results before them.
    pub fn cut_off(&mut self) {
        self.cut = true;
        self.failed.clear();
        self.on_input_end(InputEnd::Closed);
        self.wake = Wake {
            output: true,
            waiting: true,
            sinks: true,
        };
    }

    /// A snapshot for monitoring.
    pub fn state(&self) -> LenderState {
        LenderState {
            read: self.next_id(),
            lent: self.stats.lent,
            in_flight: self
                .slots
                .iter()
                .filter(|s| matches!(s, Slot::Lent { holder: Some(_), .. }))
                .count() as u64,
            waiting_to_be_relent: self.failed.len() as u64,
            relent: self.stats.relent,
            output: self.stats.output,
            late_results_accepted: self.stats.late_accepted,
            late_results_dropped: self.stats.late_dropped,
            unexpected_results: self.stats.unexpected,
            sub_streams_open: self.subs.len() as u64,
            sub_streams_created: self.stats.sub_streams,
            rejected: self.stats.rejected,
            skipped: self.stats.skipped,
            input_ended: self.input.is_some(),
        }
    }
}

impl<T: Clone, R> Core<T, R> {
    fn lend(&mut self, k: SubId, id: u64, relent: bool) -> Lent<T> {
        let Some(Slot::Lent { value, holder, .. }) = self.slots.get_mut((id - self.base) as usize) else {
            unreachable!("only unanswered values are lent");
        };
        *holder = Some(k);
        let lent = Lent::new(id, value.clone());
        let sub = self.subs.get_mut(&k).expect("a live sub-stream");
        sub.lent.push_back(id);
        sub.recovered.remove(&id);
        self.stats.lent += 1;
        if relent {
            self.stats.relent += 1;
        }
        lent
    }

    /// `upon Sk O:ask⟨m⟩` (Algorithm 11, lines 34-50).
    pub fn sub_ask(&mut self, k: SubId) -> SubAsk<T> {
        if !self.source_alive(k) {
            return SubAsk::Done;
        }
        if let Some(id) = self.failed.pop_first() {
            return SubAsk::Lend(self.lend(k, id, true));
        }
        if self.input.is_some() {
            // WaitOnOthers (Algorithm 12): done once every result is in.
            return if self.pending == 0 {
                SubAsk::Done
            } else {
                SubAsk::Wait
            };
        }
        if self.read_ahead.is_some_and(|bound| self.unconsumed() >= bound) {
            self.read_ahead_waiting = true;
            return SubAsk::Wait;
        }
        SubAsk::ReadInput
    }

    /// `upon Input:value⟨j, v⟩` for an ask of sub-stream `k`: the value gets
    /// the next id and is lent to `k`, or queued for re-lending if `k` ended
    /// meanwhile (nothing is lost).
    pub fn on_input_value(&mut self, k: SubId, value: T) -> SubAsk<T> {
        let id = self.next_id();
        self.slots.push_back(Slot::Lent {
            value,
            holder: None,
            failures: 0,
        });
        self.pending += 1;
        if self.source_alive(k) {
            SubAsk::Lend(self.lend(k, id, false))
        } else {
            self.failed.insert(id);
            self.wake.waiting = true;
            SubAsk::Done
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lent(ask: SubAsk<u32>) -> Lent<u32> {
        match ask {
            SubAsk::Lend(l) => l,
            other => panic!("expected a value, got {other:?}"),
        }
    }

    #[test]
    fn lends_in_order_and_outputs_in_order() {
        let mut c = Core::<u32, u32>::new(true);
        let a = c.lend_stream();
        let b = c.lend_stream();
        assert_eq!(c.sub_ask(a), SubAsk::ReadInput);
        let va = lent(c.on_input_value(a, 10));
        assert_eq!(c.sub_ask(b), SubAsk::ReadInput);
        let vb = lent(c.on_input_value(b, 20));
        assert_eq!((va.id, vb.id), (0, 1));
        c.on_sub_result(b, 1, 21).unwrap();
        assert_eq!(c.poll_output(), OutputStep::Pending);
        c.on_sub_result(a, 0, 11).unwrap();
        assert_eq!(c.poll_output(), OutputStep::Value(11));
        assert_eq!(c.poll_output(), OutputStep::Value(21));
        c.on_input_end(InputEnd::Done);
        assert_eq!(c.poll_output(), OutputStep::Done);
    }

    #[test]
    fn values_of_a_failed_sub_stream_are_lent_again_oldest_first() {
        let mut c = Core::<u32, u32>::new(true);
        let a = c.lend_stream();
        let b = c.lend_stream();
        for v in [1, 2] {
            assert_eq!(c.sub_ask(a), SubAsk::ReadInput);
            lent(c.on_input_value(a, v));
        }
        c.on_sub_sink_end(a);
        assert_eq!(c.sub_ask(b), SubAsk::Lend(Lent::new(0, 1)));
        assert_eq!(c.sub_ask(b), SubAsk::Lend(Lent::new(1, 2)));
        assert_eq!(c.state().relent, 2);
    }

    #[test]
    fn a_result_for_a_value_not_held_is_unexpected() {
        let mut c = Core::<u32, u32>::new(true);
        let a = c.lend_stream();
        assert_eq!(c.on_sub_result(a, 5, 0), Err(Unexpected { sub: a, id: 5 }));
        lent(c.on_input_value(a, 1));
        c.on_sub_result(a, 0, 1).unwrap();
        // A second result for the same value.
        assert_eq!(c.on_sub_result(a, 0, 1), Err(Unexpected { sub: a, id: 0 }));
    }

    #[test]
    fn a_late_result_is_accepted_once_and_its_twin_dropped() {
        let mut c = Core::<u32, u32>::new(true);
        let a = c.lend_stream();
        let b = c.lend_stream();
        lent(c.on_input_value(a, 1));
        c.on_sub_source_end(a); // a stops taking values; its value is re-lent to b
        assert_eq!(c.sub_ask(b), SubAsk::Lend(Lent::new(0, 1)));
        c.on_sub_result(a, 0, 100).unwrap(); // late, but first: accepted
        c.on_sub_result(b, 0, 200).unwrap(); // late twin: dropped
        assert_eq!(c.poll_output(), OutputStep::Value(100));
        let s = c.state();
        assert_eq!((s.late_results_accepted, s.late_results_dropped), (1, 1));
    }

    #[test]
    fn input_error_comes_after_the_results_before_it() {
        let mut c = Core::<u32, u32>::new(true);
        let a = c.lend_stream();
        lent(c.on_input_value(a, 1));
        c.on_input_end(InputEnd::Error);
        assert_eq!(c.poll_output(), OutputStep::Pending);
        assert_eq!(c.sub_ask(a), SubAsk::Wait);
        c.on_sub_result(a, 0, 2).unwrap();
        assert_eq!(c.poll_output(), OutputStep::Value(2));
        assert_eq!(c.poll_output(), OutputStep::InputError);
        assert_eq!(c.sub_ask(a), SubAsk::Done);
    }

    #[test]
    fn unordered_outputs_in_arrival_order() {
        let mut c = Core::<u32, u32>::new(false);
        let a = c.lend_stream();
        lent(c.on_input_value(a, 1));
        lent(c.on_input_value(a, 2));
        c.on_sub_result(a, 1, 20).unwrap();
        assert_eq!(c.poll_output(), OutputStep::Value(20));
        c.on_sub_result(a, 0, 10).unwrap();
        assert_eq!(c.poll_output(), OutputStep::Value(10));
        c.on_input_end(InputEnd::Done);
        assert_eq!(c.poll_output(), OutputStep::Done);
    }

    #[test]
    fn read_ahead_bounds_the_values_read_and_not_output() {
        let mut c = Core::<u32, u32>::new(true);
        c.set_read_ahead(Some(2));
        let a = c.lend_stream();
        lent(c.on_input_value(a, 1));
        lent(c.on_input_value(a, 2));
        assert_eq!(c.sub_ask(a), SubAsk::Wait);
        c.on_sub_result(a, 0, 10).unwrap();
        assert_eq!(
            c.sub_ask(a),
            SubAsk::Wait,
            "a result is not enough: it must be output"
        );
        assert_eq!(c.poll_output(), OutputStep::Value(10));
        assert!(c.take_wake().waiting);
        assert_eq!(c.sub_ask(a), SubAsk::ReadInput);
    }

    #[test]
    fn a_value_failing_more_than_the_cap_is_poisoned_after_the_results_before_it() {
        let mut c = Core::<u32, u32>::new(true);
        c.set_max_retries(Some((2, PoisonPolicy::Fail)));
        let a = c.lend_stream();
        lent(c.on_input_value(a, 1));
        lent(c.on_input_value(a, 2));
        c.on_sub_result(a, 0, 10).unwrap();
        c.on_sub_reject(a, 1).unwrap(); // failure 1
        assert_eq!(c.sub_ask(a), SubAsk::Lend(Lent::new(1, 2)));
        c.on_sub_reject(a, 1).unwrap(); // failure 2
        assert_eq!(c.sub_ask(a), SubAsk::Lend(Lent::new(1, 2)));
        c.on_sub_reject(a, 1).unwrap(); // failure 3: over the cap of 2 retries
        assert_eq!(
            c.sub_ask(a),
            SubAsk::ReadInput,
            "a poisoned value is not lent again"
        );
        assert_eq!(c.poll_output(), OutputStep::Value(10));
        assert_eq!(c.poll_output(), OutputStep::Poisoned { id: 1, failures: 3 });
    }

    #[test]
    fn skip_policy_drops_the_poisoned_value_from_the_output() {
        let mut c = Core::<u32, u32>::new(true);
        c.set_max_retries(Some((0, PoisonPolicy::Skip)));
        let a = c.lend_stream();
        lent(c.on_input_value(a, 1));
        lent(c.on_input_value(a, 2));
        c.on_sub_reject(a, 0).unwrap();
        c.on_sub_result(a, 1, 20).unwrap();
        c.on_input_end(InputEnd::Done);
        assert_eq!(c.poll_output(), OutputStep::Value(20));
        assert_eq!(c.poll_output(), OutputStep::Done);
        assert_eq!(c.state().skipped, 1);
    }

    #[test]
    fn a_rejection_for_a_value_not_held_is_unexpected() {
        let mut c = Core::<u32, u32>::new(true);
        let a = c.lend_stream();
        assert_eq!(c.on_sub_reject(a, 0), Err(Unexpected { sub: a, id: 0 }));
    }

    #[test]
    fn cut_off_reports_the_unfinished_values() {
        let mut c = Core::<u32, u32>::new(true);
        let a = c.lend_stream();
        lent(c.on_input_value(a, 1));
        lent(c.on_input_value(a, 2));
        c.on_sub_result(a, 0, 10).unwrap();
        c.cut_off();
        assert_eq!(c.poll_output(), OutputStep::Value(10));
        assert_eq!(
            c.poll_output(),
            OutputStep::Closed {
                unfinished: 1,
                first: 1
            }
        );
    }
}
