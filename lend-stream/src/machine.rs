//! The deterministic, sans-IO core of the StreamLender: one method per
//! `upon … trigger …` handler of seed 000, Algorithms 10-12, and nothing
//! else: no locks, no wakers, no futures. The async adapters translate polls
//! into these events and the returned outcomes into answers and wakes.
//!
//! A whole run, driven by hand:
//!
//! ```
//! use pando_lend_stream::Lent;
//! use pando_lend_stream::machine::{Core, InputEnd, OutputStep, SubAsk};
//!
//! let mut core = Core::<&str, usize>::new(true);
//! let worker = core.lend_stream();
//! assert_eq!(core.sub_ask(worker), SubAsk::ReadInput); // ask the input…
//! assert_eq!(core.on_input_value(worker, "ab"), SubAsk::Lend(Lent::new(0, "ab"))); // …and lend its value
//! core.on_sub_result(worker, 0, 2).unwrap();
//! core.on_input_end(InputEnd::Done);
//! assert_eq!(core.poll_output(), OutputStep::Value(2));
//! assert_eq!(core.poll_output(), OutputStep::Done);
//! ```

use std::collections::{BTreeSet, VecDeque};

use crate::{LenderState, Lent};

pub mod replicas;

use replicas::Votes;

/// A sub-stream's number.
///
/// ```
/// use pando_lend_stream::machine::{Core, SubId};
/// let mut core = Core::<u8, u8>::new(true);
/// let first: SubId = core.lend_stream();
/// assert_eq!(first, 0);
/// ```
pub type SubId = u64;

/// The reason of a failure charged because the value's holder ended without
/// saying why (see [`Core::set_end_reason`]).
pub const HOLDER_ENDED: &str = "the sub-stream holding it ended";

/// What a value's slot holds, from the moment it is read until it is output.
#[derive(Debug)]
enum Slot<T, R> {
    /// Waiting for a result: lent to `holder`, or waiting to be re-lent
    /// (`None`).
    Lent {
        value: T,
        holder: Option<SubId>,
        /// Every failure charged to the value (own and shared), capped at
        /// the retry cap for shared ones.
        failures: u32,
        /// The value is lent only to a sub-stream that holds nothing else,
        /// and that sub-stream gets nothing else until it is answered.
        solo: bool,
        /// The reason of the last failure (`None`: [`HOLDER_ENDED`], or no failure yet).
        reason: Option<Box<str>>,
        /// With replicas (k > 1): the copies lent and the answers so far
        /// (`holder` is then unused); `None` with one replica.
        votes: Option<Box<Votes<R>>>,
    },
    /// Failed more than the retry cap allows, with the `Fail` policy (ordered mode).
    Poisoned { failures: u32, reason: Option<Box<str>> },
    /// Failed more than the retry cap allows, with the `Skip` policy (ordered
    /// mode); popped as soon as it reaches the front.
    Skipped,
    /// The result, waiting for its turn on the output (ordered mode).
    Ready(R),
    /// Already output or dropped (unordered mode); popped as soon as it reaches the front.
    Output,
}

/// What happens to a value that failed more than `max_retries` times.
///
/// ```
/// use pando_lend_stream::PoisonPolicy;
/// assert_eq!(PoisonPolicy::default(), PoisonPolicy::Fail);
/// ```
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
///
/// ```
/// use pando_lend_stream::machine::{Core, InputEnd, OutputStep};
/// let mut core = Core::<u8, u8>::new(true);
/// core.on_input_end(InputEnd::Panicked);
/// assert_eq!(core.poll_output(), OutputStep::InputPanicked);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputEnd {
    /// The input answered `done`.
    Done,
    /// The input answered `error`.
    Error,
    /// The input panicked while it was polled (the adapter caught the panic).
    Panicked,
    /// The lender closed its input (a graceful close, or the output was terminated).
    Closed,
}

/// Whose failure a value's failure is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Charge {
    /// The value's own: a reject or a reclaim of its id, or its holder ended
    /// while holding only it.
    Own,
    /// Its holder ended while holding other values too.
    Shared,
}

#[derive(Debug, Default)]
struct Sub {
    /// The ids lent to this sub-stream and not answered, in lending order
    /// (results usually come back in that order: removal is from the front).
    lent: VecDeque<u64>,
    /// Ids taken back from this sub-stream without an answer (it ended a
    /// side, or they were reclaimed) and not answered yet: a result for one
    /// of them is late, not a contract violation.
    recovered: BTreeSet<u64>,
    /// Why this sub-stream ended, for the values it held.
    end_reason: Option<Box<str>>,
    source_open: bool,
    sink_open: bool,
    /// With replicas: its answers that lost a vote.
    disagreements: u64,
    /// Where to count them too (the caller's per-worker statistics).
    disagreement_counter: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

/// The live sub-streams, by id: ids in increasing order (a new sub-stream
/// has the largest), so a look-up is a binary search of a small, contiguous
/// array of ids — several per value, cheaper than a `BTreeMap`'s. Memory is
/// bounded by the sub-streams alive at once.
#[derive(Debug, Default)]
struct Subs {
    ids: Vec<SubId>,
    subs: Vec<Sub>,
}

impl Subs {
    #[inline]
    fn index(&self, k: SubId) -> Option<usize> {
        // The most recent sub-stream first: with one, no search at all.
        match self.ids.last() {
            Some(&last) if last == k => Some(self.ids.len() - 1),
            _ => self.ids.binary_search(&k).ok(),
        }
    }

    #[inline]
    fn get(&self, k: &SubId) -> Option<&Sub> {
        self.index(*k).map(|i| &self.subs[i])
    }

    #[inline]
    fn get_mut(&mut self, k: &SubId) -> Option<&mut Sub> {
        self.index(*k).map(|i| &mut self.subs[i])
    }

    /// Adds sub-stream `k`, newer than every other.
    fn insert(&mut self, k: SubId, sub: Sub) {
        debug_assert!(self.ids.last().is_none_or(|&last| last < k));
        self.ids.push(k);
        self.subs.push(sub);
    }

    fn remove(&mut self, k: &SubId) {
        if let Some(i) = self.index(*k) {
            self.ids.remove(i);
            self.subs.remove(i);
        }
    }

    fn values(&self) -> impl Iterator<Item = &Sub> {
        self.subs.iter()
    }

    fn values_mut(&mut self) -> impl Iterator<Item = &mut Sub> {
        self.subs.iter_mut()
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

/// The answer to a sub-stream's ask (`Sk O:ask⟨m⟩`).
///
/// ```
/// use pando_lend_stream::machine::{Core, SubAsk};
/// let mut core = Core::<u8, u8>::new(true);
/// let k = core.lend_stream();
/// assert_eq!(core.sub_ask(k), SubAsk::ReadInput);
/// ```
#[derive(Debug, PartialEq, Eq)]
pub enum SubAsk<T> {
    /// `Sk O:value⟨m, v⟩`: a value lent to the sub-stream.
    Lend(Lent<T>),
    /// `Sk O:done⟨m⟩`: nothing more will be lent to this sub-stream.
    Done,
    /// Wait: the input ended but other sub-streams still hold values
    /// (WaitOnOthers), the read-ahead bound is reached, or a *solo* value
    /// (see [`Core::set_max_retries`]) keeps this sub-stream from taking more.
    Wait,
    /// Ask the input for a new value (`Input:ask⟨j⟩`), then call
    /// [`Core::on_input_value`] or [`Core::on_input_end`].
    ReadInput,
}

/// The next answer on the lender's output.
///
/// ```
/// use pando_lend_stream::machine::{Core, OutputStep};
/// let mut core = Core::<u8, u8>::new(true);
/// assert_eq!(core.poll_output(), OutputStep::Pending);
/// ```
#[derive(Debug, PartialEq, Eq)]
pub enum OutputStep<R> {
    /// `Output:value⟨i, r⟩`.
    Value(R),
    /// `Output:done⟨i⟩`.
    Done,
    /// `Output:error⟨i, err⟩` with the input's error.
    InputError,
    /// The input panicked (the adapter has the panic's message).
    InputPanicked,
    /// A value failed more than the retry cap allows (policy `Fail`). This
    /// error is the output's last answer: the lender has ended, as
    /// [`Core::terminate_output`] ends it (sub-streams get `done`, their
    /// sinks stop, the values still held are dropped), and later polls
    /// answer the same error. It comes once the input has ended: see
    /// [`OutputStep::AbortInput`].
    Poisoned {
        /// The value's id.
        id: u64,
        /// How many times it failed.
        failures: u32,
        /// The reason of its last failure.
        reason: String,
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
    /// A value is poisoned (policy `Fail`) while the input is still open:
    /// the output's next answer is its error, which ends the lender, so the
    /// input must be aborted first (the core has recorded it as closed: no
    /// more values are read, and the values read are still processed). Abort
    /// the input, and poll again once it has confirmed: the answer is then
    /// [`OutputStep::Poisoned`] (or results before it, unordered).
    AbortInput,
}

/// A result (or rejection) that breaks the one-result-per-value contract.
///
/// ```
/// use pando_lend_stream::machine::{Core, Unexpected};
/// let mut core = Core::<u8, u8>::new(true);
/// let k = core.lend_stream();
/// assert_eq!(core.on_sub_result(k, 3, 0), Err(Unexpected { sub: k, id: 3 }));
/// ```
#[derive(Debug, PartialEq, Eq)]
pub struct Unexpected {
    /// The sub-stream.
    pub sub: SubId,
    /// The id of the result.
    pub id: u64,
}

/// Which waiting parties a change may concern.
///
/// ```
/// use pando_lend_stream::machine::{Core, InputEnd};
/// let mut core = Core::<u8, u8>::new(true);
/// core.on_input_end(InputEnd::Done);
/// let wake = core.take_wake();
/// assert!(wake.output && wake.waiting && !wake.sinks);
/// ```
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
///
/// Memory is bounded by the values in flight: the slots of values read and
/// not yet output (or skipped), the results waiting on the output, and per
/// sub-stream the ids it holds or was taken back without an answer; never
/// by the number of values or failures.
///
/// ```
/// use pando_lend_stream::machine::{Core, SubAsk};
/// let mut core = Core::<u32, u32>::new(false); // unordered
/// let k = core.lend_stream();
/// assert_eq!(core.sub_ask(k), SubAsk::ReadInput);
/// assert_eq!(core.state().sub_streams_open, 1);
/// ```
#[derive(Debug)]
pub struct Core<T, R> {
    ordered: bool,
    /// The id of `slots[0]`; `base + slots.len()` is the next id to read.
    base: u64,
    slots: VecDeque<Slot<T, R>>,
    /// Ids waiting to be re-lent, oldest first (not solo).
    failed: BTreeSet<u64>,
    /// Solo ids waiting to be lent, oldest first.
    solo: BTreeSet<u64>,
    /// Number of slots in the `Lent` state with the solo mark.
    solo_active: u64,
    /// Number of slots in the `Lent` state.
    pending: u64,
    input: Option<InputEnd>,
    /// The output was terminated by its consumer.
    terminated: bool,
    /// The lender cut its sub-streams off.
    cut: bool,
    /// The retry cap and what to do beyond it; `None`: retry forever.
    retries: Option<(u32, PoisonPolicy)>,
    /// The first poisoned value, policy `Fail` (unordered mode reports it
    /// at once). Once there is one, the output is bound to end with an
    /// error: no more values are read.
    poisoned: Option<(u64, u32, Option<Box<str>>)>,
    /// The output answered a poisoned value's error, which ended the
    /// lender: later polls answer it again.
    ended_poisoned: Option<(u64, u32, Box<str>)>,
    /// Results in arrival order, unordered mode.
    arrived: VecDeque<R>,
    subs: Subs,
    next_sub: SubId,
    wake: Wake,
    stats: Stats,
    /// At most this many values held in memory (slots and, unordered,
    /// results waiting on the output): backpressure from the output to the
    /// input; `None`: no bound, as in the seeds.
    read_ahead: Option<u64>,
    /// A sub-stream ask is waiting because of the read-ahead bound: the next
    /// time room is made, the waiting asks are woken (and only then).
    read_ahead_waiting: bool,
    /// Each value is computed by this many different sub-streams (1: the
    /// seeds' lender, and none of the replica code runs).
    replicas: u32,
    /// How two results are compared for a vote (with replicas).
    same: Option<fn(&R, &R) -> bool>,
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
    reclaimed: u64,
    skipped: u64,
    first_skipped: Option<u64>,
    disagreements: u64,
}

impl<T, R> Core<T, R> {
    /// A lender core; `ordered` selects the output order.
    ///
    /// ```
    /// use pando_lend_stream::machine::Core;
    /// let core = Core::<u8, u8>::new(true);
    /// assert_eq!(core.state().read, 0);
    /// ```
    pub fn new(ordered: bool) -> Self {
        Core {
            ordered,
            base: 0,
            slots: VecDeque::new(),
            failed: BTreeSet::new(),
            solo: BTreeSet::new(),
            solo_active: 0,
            pending: 0,
            input: None,
            terminated: false,
            cut: false,
            retries: None,
            poisoned: None,
            ended_poisoned: None,
            arrived: VecDeque::new(),
            subs: Subs::default(),
            next_sub: 0,
            wake: Wake::default(),
            stats: Stats::default(),
            read_ahead: None,
            read_ahead_waiting: false,
            replicas: 1,
            same: None,
        }
    }

    /// Bounds the number of values held in memory (read and not yet output
    /// or skipped; in unordered mode, also the results waiting on the
    /// output): beyond it, sub-streams wait for room before new values are
    /// read (values to re-lend are still lent). `None` removes the bound.
    ///
    /// # Panics
    ///
    /// If `bound` is `Some(0)`: no value could ever be read.
    ///
    /// ```
    /// use pando_lend_stream::machine::{Core, SubAsk};
    /// let mut core = Core::<u8, u8>::new(true);
    /// core.set_read_ahead(Some(1));
    /// let k = core.lend_stream();
    /// core.on_input_value(k, 7);
    /// assert_eq!(core.sub_ask(k), SubAsk::Wait);
    /// ```
    pub fn set_read_ahead(&mut self, bound: Option<u64>) {
        assert_ne!(bound, Some(0), "a read-ahead bound of 0 would never read a value");
        self.read_ahead = bound;
        self.wake.waiting = true;
    }

    /// Caps the failures of each value: a value is *poisoned* when its
    /// failures exceed `max_retries` through a failure of its own (a
    /// rejection or a reclaim of its id, or its holder ending while it held
    /// only that value), and then handled by `policy` instead of being lent
    /// again, so a value that always fails never loops forever. A holder
    /// that ends holding several values charges each of them a failure, but
    /// such a shared failure never takes a value over the cap: at the cap,
    /// the value becomes *solo*, lent only to a sub-stream that holds
    /// nothing else, so that the blame falls on the real culprit. `None`
    /// retries forever.
    ///
    /// ```
    /// use pando_lend_stream::PoisonPolicy;
    /// use pando_lend_stream::machine::{Core, OutputStep, SubAsk};
    /// let mut core = Core::<u8, u8>::new(true);
    /// core.set_max_retries(Some((0, PoisonPolicy::Fail)));
    /// let k = core.lend_stream();
    /// core.on_input_value(k, 7);
    /// core.on_sub_reject(k, 0, "division by zero".into()).unwrap();
    /// // The error ends the output: the input is closed (and aborted) first.
    /// assert_eq!(core.poll_output(), OutputStep::AbortInput);
    /// assert_eq!(
    ///     core.poll_output(),
    ///     OutputStep::Poisoned { id: 0, failures: 1, reason: "division by zero".into() }
    /// );
    /// ```
    pub fn set_max_retries(&mut self, retries: Option<(u32, PoisonPolicy)>) {
        self.retries = retries;
    }

    /// Values held in memory, as the read-ahead bound counts them.
    fn held(&self) -> u64 {
        (self.slots.len() + self.arrived.len()) as u64
    }

    /// The parties to wake after the events handled since the last call.
    ///
    /// ```
    /// use pando_lend_stream::machine::{Core, Wake};
    /// let mut core = Core::<u8, u8>::new(true);
    /// assert_eq!(core.take_wake(), Wake::default());
    /// ```
    pub fn take_wake(&mut self) -> Wake {
        std::mem::take(&mut self.wake)
    }

    /// `StreamLender:lendStream⟨⟩`: a new sub-stream.
    ///
    /// ```
    /// use pando_lend_stream::machine::Core;
    /// let mut core = Core::<u8, u8>::new(true);
    /// assert_eq!((core.lend_stream(), core.lend_stream()), (0, 1));
    /// ```
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
        if self.replicas > 1 {
            // Replicas may be waiting for one more sub-stream.
            self.wake.waiting = true;
        }
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
    ///
    /// ```
    /// use pando_lend_stream::machine::Core;
    /// let mut core = Core::<u8, u8>::new(true);
    /// let k = core.lend_stream();
    /// assert!(!core.sink_must_stop(k));
    /// core.cut_off();
    /// assert!(core.sink_must_stop(k));
    /// ```
    pub fn sink_must_stop(&self, k: SubId) -> bool {
        self.terminated || self.cut || !self.subs.get(&k).is_some_and(|s| s.sink_open)
    }

    /// Whether the input may still be read.
    ///
    /// ```
    /// use pando_lend_stream::machine::{Core, InputEnd};
    /// let mut core = Core::<u8, u8>::new(true);
    /// assert!(core.input_open());
    /// core.on_input_end(InputEnd::Closed);
    /// assert!(!core.input_open());
    /// ```
    pub fn input_open(&self) -> bool {
        self.input.is_none() && !self.terminated
    }

    /// `upon Input:done⟨j⟩ or Input:error⟨j, err⟩`, the input panicking, or
    /// the lender closing its input. Only the first end counts.
    ///
    /// ```
    /// use pando_lend_stream::machine::{Core, InputEnd, OutputStep};
    /// let mut core = Core::<u8, u8>::new(true);
    /// core.on_input_end(InputEnd::Error);
    /// core.on_input_end(InputEnd::Done); // ignored
    /// assert_eq!(core.poll_output(), OutputStep::InputError);
    /// ```
    pub fn on_input_end(&mut self, end: InputEnd) {
        if self.input.is_none() {
            self.input = Some(end);
            self.wake.output = true;
            self.wake.waiting = true;
        }
    }

    /// Room was made under the read-ahead bound: wake the asks it held back.
    fn made_room(&mut self) {
        self.wake.waiting |= std::mem::take(&mut self.read_ahead_waiting);
    }

    /// Whether `slot`, at the front, holds nothing any more: a skipped value
    /// (ordered) or an output one (unordered).
    #[inline(always)]
    fn spent(&self, slot: &Slot<T, R>) -> bool {
        if self.ordered {
            matches!(slot, Slot::Skipped)
        } else {
            matches!(slot, Slot::Output)
        }
    }

    /// Pops the slots that hold nothing any more from the front: skipped
    /// values (ordered) and output ones (unordered).
    #[inline(always)]
    fn advance(&mut self) {
        // The usual case, inlined: the front slot is still in use.
        if self.slots.front().is_some_and(|front| self.spent(front)) {
            self.pop_spent();
        }
    }

    fn pop_spent(&mut self) {
        while self.slots.front().is_some_and(|front| self.spent(front)) {
            self.slots.pop_front();
            self.base += 1;
        }
        self.made_room();
    }

    /// An id left sub-stream `k`'s hands, which now holds `left` values:
    /// with solo values about, a sub-stream that holds nothing may take one
    /// (and the asks a solo value held back may go on).
    fn left_holder(&mut self, left: usize) {
        if self.solo_active > 0 && left == 0 {
            self.wake.waiting = true;
        }
    }

    /// A solo value was answered or poisoned: its holder's asks (which it
    /// held back) may go on, and with no solo value left, so may the asks of
    /// every sub-stream holding values. (The last solo value's holder used
    /// to stay asleep: checker seeds 1132 and 20245955.)
    fn solo_resolved(&mut self) {
        self.solo_active -= 1;
        self.wake.waiting = true;
    }

    /// Takes solo value `id` out of the queue of solo values; once the queue
    /// is empty, the sub-streams holding values (which a waiting solo value
    /// held back) may take more.
    fn unqueue_solo(&mut self, id: u64) -> bool {
        let removed = self.solo.remove(&id);
        if removed && self.solo.is_empty() {
            self.wake.waiting = true;
        }
        removed
    }

    fn accept(&mut self, id: u64, result: R) {
        let index = (id - self.base) as usize;
        if self.solo_active > 0 {
            if let Slot::Lent { solo: true, .. } = self.slots[index] {
                self.solo_resolved();
            }
        }
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
            self.advance();
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
    /// value taken back from it without an answer (it had ended a side, or
    /// the value was reclaimed) is *late*: accepted if the value is still
    /// waiting for a result (whoever answers first wins, and the copy lent
    /// elsewhere becomes late in turn), dropped otherwise. Any other result
    /// breaks the contract (the caller ends the sub-stream), and so does a
    /// result for a value the sub-stream rejected.
    ///
    /// ```
    /// use pando_lend_stream::machine::{Core, OutputStep};
    /// let mut core = Core::<u8, u8>::new(true);
    /// let k = core.lend_stream();
    /// core.on_input_value(k, 3);
    /// core.on_sub_result(k, 0, 9).unwrap();
    /// assert_eq!(core.poll_output(), OutputStep::Value(9));
    /// assert!(core.on_sub_result(k, 0, 9).is_err()); // a second result
    /// ```
    pub fn on_sub_result(&mut self, k: SubId, id: u64, result: R) -> Result<(), Unexpected> {
        if self.dropped_at_termination(k, id) {
            return Ok(());
        }
        if self.replicas > 1 {
            return self.replica_result(k, id, result);
        }
        let Some(sub) = self.subs.get_mut(&k) else {
            return Err(Unexpected { sub: k, id });
        };
        // Results usually come back in lending order: the front, first.
        let held = if sub.lent.front() == Some(&id) {
            sub.lent.pop_front().is_some()
        } else {
            match sub.lent.iter().position(|&l| l == id) {
                Some(i) => sub.lent.remove(i).is_some(),
                None => false,
            }
        };
        if held {
            let left = sub.lent.len();
            self.accept(id, result);
            self.left_holder(left);
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
                        if !self.failed.remove(&id) {
                            self.unqueue_solo(id);
                        }
                    }
                    Some(other) => {
                        if let Some(other) = self.subs.get_mut(&other) {
                            other.lent.retain(|&l| l != id);
                            other.recovered.insert(id);
                            let left = other.lent.len();
                            self.left_holder(left);
                        }
                    }
                }
                self.stats.late_accepted += 1;
                self.accept(id, result);
            }
        }
        Ok(())
    }

    /// Puts value `id` back to be lent again, in the queue its mark selects.
    fn requeue(&mut self, id: u64) {
        let solo = matches!(
            self.slots.get((id - self.base) as usize),
            Some(Slot::Lent { solo: true, .. })
        );
        if solo {
            self.solo.insert(id);
        } else {
            self.failed.insert(id);
        }
        self.wake.waiting = true;
    }

    /// RecoverFailedValues (Algorithm 12): the values `k` holds go back to be
    /// lent again, each charged a failure (its own if it was the only one).
    fn recover(&mut self, k: SubId) {
        let Some(sub) = self.subs.get_mut(&k) else { return };
        let lent = std::mem::take(&mut sub.lent);
        if lent.is_empty() {
            return;
        }
        sub.recovered.extend(lent.iter().copied());
        let charge = if lent.len() == 1 {
            Charge::Own
        } else {
            Charge::Shared
        };
        let reason = sub.end_reason.clone();
        for id in lent {
            if self.replicas > 1 {
                self.replica_recover(k, id, charge, reason.clone());
            } else if self.fail_value(id, charge, reason.clone()) {
                self.requeue(id);
            }
        }
        self.left_holder(0);
    }

    /// Charges a failure to value `id` (it no longer has a holder). Returns
    /// whether it is to be lent again; a value over the retry cap through a
    /// failure of its own is poisoned instead.
    fn fail_value(&mut self, id: u64, charge: Charge, why: Option<Box<str>>) -> bool {
        let index = (id - self.base) as usize;
        let Some(Slot::Lent {
            holder,
            failures,
            solo,
            reason,
            ..
        }) = self.slots.get_mut(index)
        else {
            return false;
        };
        *holder = None;
        *reason = why;
        if self.terminated || self.cut {
            *failures = failures.saturating_add(1);
            return false;
        }
        let Some((max, policy)) = self.retries else {
            *failures = failures.saturating_add(1);
            return true;
        };
        if charge == Charge::Shared && *failures >= max {
            // A shared failure never poisons: the value is lent alone from now on.
            if !*solo {
                *solo = true;
                self.solo_active += 1;
            }
            return true;
        }
        *failures = failures.saturating_add(1);
        if *failures <= max {
            return true;
        }
        let failures = *failures;
        let reason = reason.take();
        if *solo {
            self.solo_resolved();
        }
        if policy == PoisonPolicy::Fail {
            self.poisoned
                .get_or_insert_with(|| (id, failures, reason.clone()));
        }
        self.slots[index] = match (policy, self.ordered) {
            (PoisonPolicy::Fail, true) => Slot::Poisoned { failures, reason },
            (PoisonPolicy::Fail, false) => Slot::Output,
            (PoisonPolicy::Skip, true) => Slot::Skipped,
            (PoisonPolicy::Skip, false) => Slot::Output,
        };
        if policy == PoisonPolicy::Skip {
            self.stats.skipped += 1;
            self.stats.first_skipped.get_or_insert(id);
        }
        self.advance();
        self.pending -= 1;
        self.wake.output = true;
        if self.pending == 0 {
            self.wake.waiting = true;
        }
        false
    }

    /// Whether an answer of sub-stream `k` about value `id` comes after the
    /// output ended (aborted, failed or poisoned) dropped every value read:
    /// the sub-stream may have held `id` then, so the answer is dropped
    /// (counted in `late_results_dropped`), not blamed on it. Ids never read are
    /// still unexpected.
    fn dropped_at_termination(&mut self, k: SubId, id: u64) -> bool {
        let dropped = self.terminated && id < self.base && self.subs.get(&k).is_some();
        if dropped {
            self.stats.late_dropped += 1;
        }
        dropped
    }

    /// Takes value `id` out of sub-stream `k`'s hands, if it holds it;
    /// returns how many values it still holds.
    fn take_back(&mut self, k: SubId, id: u64) -> Result<usize, Unexpected> {
        let Some(sub) = self.subs.get_mut(&k) else {
            return Err(Unexpected { sub: k, id });
        };
        match sub.lent.iter().position(|&l| l == id) {
            Some(0) => {
                sub.lent.pop_front();
                Ok(sub.lent.len())
            }
            Some(i) => {
                sub.lent.remove(i);
                Ok(sub.lent.len())
            }
            None => Err(Unexpected { sub: k, id }),
        }
    }

    /// A sub-stream *answers* that processing value `id` failed (for example
    /// the worker's function returned an error), with the reason: the value
    /// is taken back, charged a failure of its own, and lent again (or
    /// poisoned). The sub-stream goes on, and a later result from it for
    /// this value breaks the contract. A rejection of a value taken back
    /// from it without an answer (reclaimed, or it had ended a side) is
    /// late: it is accepted, changes nothing, and a later result for the
    /// value is then unexpected. Any other rejection breaks the contract.
    ///
    /// ```
    /// use pando_lend_stream::Lent;
    /// use pando_lend_stream::machine::{Core, SubAsk};
    /// let mut core = Core::<u8, u8>::new(true);
    /// let k = core.lend_stream();
    /// core.on_input_value(k, 3);
    /// core.on_sub_reject(k, 0, "bad input".into()).unwrap();
    /// assert!(core.on_sub_result(k, 0, 9).is_err()); // it answered already
    /// assert_eq!(core.sub_ask(k), SubAsk::Lend(Lent::new(0, 3))); // lent again
    /// ```
    pub fn on_sub_reject(&mut self, k: SubId, id: u64, reason: String) -> Result<(), Unexpected> {
        if self.dropped_at_termination(k, id) {
            return Ok(());
        }
        if self.replicas > 1 {
            return self.replica_take_back(k, id, reason, false);
        }
        match self.take_back(k, id) {
            Ok(left) => {
                self.stats.rejected += 1;
                if self.fail_value(id, Charge::Own, Some(reason.into_boxed_str())) {
                    self.requeue(id);
                }
                self.left_holder(left);
                Ok(())
            }
            Err(e) => {
                if self.subs.get_mut(&k).is_some_and(|s| s.recovered.remove(&id)) {
                    if self.failed.contains(&id) || self.solo.contains(&id) {
                        // `k` may take it again: its asks decide again.
                        self.wake.waiting = true;
                    }
                    Ok(())
                } else {
                    self.stats.unexpected += 1;
                    Err(e)
                }
            }
        }
    }

    /// Sub-stream `k` is taken value `id` back *without an answer* (for
    /// example it timed out), with the reason: a failure of the value's own,
    /// and the value is lent again (or poisoned). A late result from `k` is
    /// still accepted once if the value has no result yet, and dropped
    /// otherwise (never unexpected); a late rejection from `k` just forgets
    /// it. Reclaiming a value already taken back changes nothing; reclaiming
    /// a value `k` never held breaks the contract.
    ///
    /// ```
    /// use pando_lend_stream::Lent;
    /// use pando_lend_stream::machine::{Core, OutputStep, SubAsk};
    /// let mut core = Core::<u8, u8>::new(true);
    /// let (slow, other) = (core.lend_stream(), core.lend_stream());
    /// core.on_input_value(slow, 3);
    /// core.on_sub_reclaim(slow, 0, "timed out after 30s".into()).unwrap();
    /// assert_eq!(core.sub_ask(other), SubAsk::Lend(Lent::new(0, 3)));
    /// core.on_sub_result(slow, 0, 9).unwrap(); // late, but first: accepted
    /// core.on_sub_result(other, 0, 9).unwrap(); // its twin is dropped
    /// assert_eq!(core.poll_output(), OutputStep::Value(9));
    /// ```
    pub fn on_sub_reclaim(&mut self, k: SubId, id: u64, reason: String) -> Result<(), Unexpected> {
        if self.dropped_at_termination(k, id) {
            return Ok(());
        }
        if self.replicas > 1 {
            return self.replica_take_back(k, id, reason, true);
        }
        match self.take_back(k, id) {
            Ok(left) => {
                if let Some(sub) = self.subs.get_mut(&k) {
                    sub.recovered.insert(id);
                }
                self.stats.reclaimed += 1;
                if self.fail_value(id, Charge::Own, Some(reason.into_boxed_str())) {
                    self.requeue(id);
                }
                self.left_holder(left);
                Ok(())
            }
            Err(e) => {
                if self.subs.get(&k).is_some_and(|s| s.recovered.contains(&id)) {
                    Ok(())
                } else {
                    self.stats.unexpected += 1;
                    Err(e)
                }
            }
        }
    }

    /// The reason charged to the values sub-stream `k` holds when it ends
    /// (for example "worker laptop (10.0.0.2:5000) disconnected"); without
    /// one, [`HOLDER_ENDED`].
    ///
    /// ```
    /// use pando_lend_stream::PoisonPolicy;
    /// use pando_lend_stream::machine::{Core, OutputStep};
    /// let mut core = Core::<u8, u8>::new(true);
    /// core.set_max_retries(Some((0, PoisonPolicy::Fail)));
    /// let k = core.lend_stream();
    /// core.on_input_value(k, 3);
    /// core.set_end_reason(k, "worker laptop disconnected".into());
    /// core.on_sub_sink_end(k);
    /// assert_eq!(core.poll_output(), OutputStep::AbortInput);
    /// assert_eq!(
    ///     core.poll_output(),
    ///     OutputStep::Poisoned { id: 0, failures: 1, reason: "worker laptop disconnected".into() }
    /// );
    /// ```
    pub fn set_end_reason(&mut self, k: SubId, reason: String) {
        if let Some(sub) = self.subs.get_mut(&k) {
            sub.end_reason = Some(reason.into_boxed_str());
        }
    }

    fn forget_if_closed(&mut self, k: SubId) {
        if self.subs.get(&k).is_some_and(|s| !s.source_open && !s.sink_open) {
            self.subs.remove(&k);
        }
    }

    /// `upon Sk O:abort⟨m⟩ or Sk O:fail⟨m, err⟩`, or the sub-stream's source
    /// dropped: it takes no more values, and those it holds are lent again
    /// (their results are still accepted while they have none).
    ///
    /// ```
    /// use pando_lend_stream::machine::{Core, SubAsk};
    /// let mut core = Core::<u8, u8>::new(true);
    /// let k = core.lend_stream();
    /// core.on_sub_source_end(k);
    /// assert_eq!(core.sub_ask(k), SubAsk::Done);
    /// ```
    pub fn on_sub_source_end(&mut self, k: SubId) {
        self.recover(k);
        if let Some(sub) = self.subs.get_mut(&k) {
            if std::mem::take(&mut sub.source_open) {
                // Its other asks, if waiting, now answer `done` (checker seed 21270).
                self.wake.waiting = true;
            }
        }
        self.forget_if_closed(k);
    }

    /// `upon Sk I:done⟨n⟩ or Sk I:error⟨n, err⟩`, a contract violation, or the
    /// sub-stream's sink dropped: no more results come from it.
    ///
    /// ```
    /// use pando_lend_stream::Lent;
    /// use pando_lend_stream::machine::{Core, SubAsk};
    /// let mut core = Core::<u8, u8>::new(true);
    /// let (a, b) = (core.lend_stream(), core.lend_stream());
    /// core.on_input_value(a, 3);
    /// core.on_sub_sink_end(a);
    /// assert_eq!(core.sub_ask(b), SubAsk::Lend(Lent::new(0, 3)));
    /// ```
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
    /// The input's end (done, error or panic) comes after the results of
    /// every value read before it.
    ///
    /// ```
    /// use pando_lend_stream::machine::{Core, InputEnd, OutputStep};
    /// let mut core = Core::<u8, u8>::new(true);
    /// let k = core.lend_stream();
    /// core.on_input_value(k, 1);
    /// core.on_input_end(InputEnd::Done);
    /// assert_eq!(core.poll_output(), OutputStep::Pending); // value #0 first
    /// core.on_sub_result(k, 0, 2).unwrap();
    /// assert_eq!(core.poll_output(), OutputStep::Value(2));
    /// assert_eq!(core.poll_output(), OutputStep::Done);
    /// ```
    pub fn poll_output(&mut self) -> OutputStep<R> {
        if self.terminated {
            return match &self.ended_poisoned {
                Some((id, failures, reason)) => OutputStep::Poisoned {
                    id: *id,
                    failures: *failures,
                    reason: reason.to_string(),
                },
                None => OutputStep::Done,
            };
        }
        if self.ordered {
            self.advance();
            if let Some(Slot::Poisoned { failures, reason }) = self.slots.front() {
                let (id, failures) = (self.base, *failures);
                let reason = reason.as_deref().unwrap_or(HOLDER_ENDED).into();
                return self.end_poisoned(id, failures, reason);
            }
            if matches!(self.slots.front(), Some(Slot::Ready(_))) {
                let Some(Slot::Ready(r)) = self.slots.pop_front() else {
                    unreachable!()
                };
                self.base += 1;
                self.stats.output += 1;
                self.made_room();
                self.advance();
                if matches!(self.slots.front(), Some(Slot::Ready(_) | Slot::Poisoned { .. })) {
                    self.wake.output = true;
                }
                return OutputStep::Value(r);
            }
        } else if let Some(r) = self.arrived.pop_front() {
            self.stats.output += 1;
            self.made_room();
            return OutputStep::Value(r);
        } else if let Some((id, failures, reason)) = &self.poisoned {
            let (id, failures) = (*id, *failures);
            let reason = reason.as_deref().unwrap_or(HOLDER_ENDED).into();
            return self.end_poisoned(id, failures, reason);
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
            Some(InputEnd::Panicked) => OutputStep::InputPanicked,
        }
    }

    /// The output is to answer value `id`'s poisoning: first the input is
    /// closed (and the caller aborts it), then the answer ends the lender.
    fn end_poisoned(&mut self, id: u64, failures: u32, reason: Box<str>) -> OutputStep<R> {
        if self.input.is_none() {
            self.on_input_end(InputEnd::Closed);
            return OutputStep::AbortInput;
        }
        self.terminate_output();
        self.ended_poisoned = Some((id, failures, reason.clone()));
        OutputStep::Poisoned {
            id,
            failures,
            reason: reason.into_string(),
        }
    }

    /// `upon Output:abort⟨i⟩ or Output:fail⟨i, err⟩` (Algorithm 10, lines 20-27):
    /// the lender stops; sub-streams get `done` and their sinks stop. The
    /// input counts as ended (closed), so the lender is settled.
    ///
    /// ```
    /// use pando_lend_stream::machine::{Core, OutputStep, SubAsk};
    /// let mut core = Core::<u8, u8>::new(true);
    /// let k = core.lend_stream();
    /// core.on_input_value(k, 1);
    /// core.terminate_output();
    /// assert_eq!(core.sub_ask(k), SubAsk::Done);
    /// assert!(core.state().input_ended);
    /// assert_eq!(core.poll_output(), OutputStep::Done);
    /// ```
    pub fn terminate_output(&mut self) {
        self.terminated = true;
        self.input.get_or_insert(InputEnd::Closed);
        self.failed.clear();
        self.solo.clear();
        self.solo_active = 0;
        // The values dropped keep their ids: `state().read` does not go back.
        self.base += self.slots.len() as u64;
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
    ///
    /// ```
    /// use pando_lend_stream::machine::{Core, OutputStep};
    /// let mut core = Core::<u8, u8>::new(true);
    /// let k = core.lend_stream();
    /// core.on_input_value(k, 1);
    /// core.cut_off();
    /// assert_eq!(core.poll_output(), OutputStep::Closed { unfinished: 1, first: 0 });
    /// ```
    pub fn cut_off(&mut self) {
        self.cut = true;
        self.failed.clear();
        self.solo.clear();
        self.on_input_end(InputEnd::Closed);
        self.wake = Wake {
            output: true,
            waiting: true,
            sinks: true,
        };
    }

    /// A snapshot for monitoring.
    ///
    /// ```
    /// use pando_lend_stream::machine::Core;
    /// let mut core = Core::<u8, u8>::new(true);
    /// let k = core.lend_stream();
    /// core.on_input_value(k, 1);
    /// assert_eq!((core.state().read, core.state().in_flight), (1, 1));
    /// ```
    pub fn state(&self) -> LenderState {
        LenderState {
            read: self.next_id(),
            lent: self.stats.lent,
            in_flight: if self.replicas > 1 {
                self.replica_in_flight()
            } else {
                self.slots
                    .iter()
                    .filter(|s| matches!(s, Slot::Lent { holder: Some(_), .. }))
                    .count() as u64
            },
            waiting_to_be_relent: (self.failed.len() + self.solo.len()) as u64,
            relent: self.stats.relent,
            output: self.stats.output,
            late_results_accepted: self.stats.late_accepted,
            late_results_dropped: self.stats.late_dropped,
            unexpected_results: self.stats.unexpected,
            sub_streams_open: self.subs.len() as u64,
            sub_streams_created: self.stats.sub_streams,
            rejected: self.stats.rejected,
            reclaimed: self.stats.reclaimed,
            skipped: self.stats.skipped,
            first_skipped: self.stats.first_skipped,
            input_ended: self.input.is_some(),
            replicas: self.replicas,
            replicas_waiting: if self.replicas > 1 {
                self.replicas_waiting()
            } else {
                0
            },
            disagreements: self.stats.disagreements,
        }
    }

    /// The number of ids the core remembers for sub-streams and queues (the
    /// ids they hold, the ids taken back from them, the ids waiting to be
    /// lent again) plus the slots and waiting results: what memory is
    /// bounded by. For tests of that bound.
    #[doc(hidden)]
    pub fn remembered(&self) -> usize {
        self.subs
            .values()
            .map(|s| s.lent.len() + s.recovered.len())
            .sum::<usize>()
            + self.failed.len()
            + self.solo.len()
            + self.slots.len()
            + self.arrived.len()
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
        if !sub.recovered.is_empty() {
            sub.recovered.remove(&id);
        }
        self.stats.lent += 1;
        if relent {
            self.stats.relent += 1;
        }
        lent
    }

    /// Whether sub-stream `k` may take a value now: not while it holds a
    /// solo value, nor while a solo value waits and it holds anything.
    fn solo_blocks(&self, k: SubId) -> bool {
        let Some(sub) = self.subs.get(&k) else {
            return false;
        };
        match sub.lent.len() {
            0 => false,
            1 => {
                !self.solo.is_empty()
                    || matches!(
                        self.slots.get((sub.lent[0] - self.base) as usize),
                        Some(Slot::Lent { solo: true, .. })
                    )
            }
            _ => !self.solo.is_empty(),
        }
    }

    /// The oldest value waiting to be re-lent (solo or not) that sub-stream
    /// `k` may take: not one taken back from `k` without an answer, which
    /// `k` may still answer (a value reclaimed after a timeout is never lent
    /// back to the worker that still holds it: its session would see the
    /// same value twice).
    fn first_not_owed(&self, k: SubId, solo: bool) -> Option<u64> {
        let queue = if solo { &self.solo } else { &self.failed };
        match self.subs.get(&k) {
            Some(sub) if !sub.recovered.is_empty() => {
                queue.iter().copied().find(|id| !sub.recovered.contains(id))
            }
            _ => queue.first().copied(),
        }
    }

    /// `upon Sk O:ask⟨m⟩` (Algorithm 11, lines 34-50).
    ///
    /// ```
    /// use pando_lend_stream::Lent;
    /// use pando_lend_stream::machine::{Core, InputEnd, SubAsk};
    /// let mut core = Core::<u8, u8>::new(true);
    /// let (a, b) = (core.lend_stream(), core.lend_stream());
    /// assert_eq!(core.sub_ask(a), SubAsk::ReadInput);
    /// assert_eq!(core.on_input_value(a, 5), SubAsk::Lend(Lent::new(0, 5)));
    /// core.on_input_end(InputEnd::Done);
    /// assert_eq!(core.sub_ask(b), SubAsk::Wait); // a may still fail
    /// core.on_sub_result(a, 0, 6).unwrap();
    /// assert_eq!(core.sub_ask(b), SubAsk::Done);
    /// ```
    pub fn sub_ask(&mut self, k: SubId) -> SubAsk<T> {
        if !self.source_alive(k) {
            return SubAsk::Done;
        }
        if self.replicas > 1 {
            return self.replica_ask(k);
        }
        if self.solo_active > 0 {
            if self.solo_blocks(k) {
                return SubAsk::Wait;
            }
            if let Some(id) = self.first_not_owed(k, true) {
                self.unqueue_solo(id);
                return SubAsk::Lend(self.lend(k, id, true));
            }
        }
        if !self.failed.is_empty() {
            if let Some(id) = self.first_not_owed(k, false) {
                self.failed.remove(&id);
                return SubAsk::Lend(self.lend(k, id, true));
            }
        }
        if self.input.is_some() {
            // WaitOnOthers (Algorithm 12): done once every result is in.
            return if self.pending == 0 {
                SubAsk::Done
            } else {
                SubAsk::Wait
            };
        }
        if self.poisoned.is_some() {
            // The output is bound to end with the poisoned value's error:
            // reading on would be waste (and, unordered, would overrun the
            // read-ahead bound, the poisoned value having left its slot).
            // The output's next poll closes the input, which wakes this ask.
            return SubAsk::Wait;
        }
        if self.read_ahead.is_some_and(|bound| self.held() >= bound) {
            self.read_ahead_waiting = true;
            return SubAsk::Wait;
        }
        SubAsk::ReadInput
    }

    /// `upon Input:value⟨j, v⟩` for an ask of sub-stream `k`: the value gets
    /// the next id and is lent to `k`; if `k` ended meanwhile (`Done`), or
    /// may not take a value now (`Wait`: it holds a solo value), the value
    /// waits for the next ask instead (nothing is lost). After the output
    /// was terminated, the value is dropped (`Done`).
    ///
    /// ```
    /// use pando_lend_stream::Lent;
    /// use pando_lend_stream::machine::{Core, SubAsk};
    /// let mut core = Core::<u8, u8>::new(true);
    /// let (a, b) = (core.lend_stream(), core.lend_stream());
    /// core.on_sub_source_end(a);
    /// assert_eq!(core.on_input_value(a, 5), SubAsk::Done); // a ended while it was read
    /// assert_eq!(core.sub_ask(b), SubAsk::Lend(Lent::new(0, 5)));
    /// ```
    pub fn on_input_value(&mut self, k: SubId, value: T) -> SubAsk<T> {
        if self.terminated {
            return SubAsk::Done;
        }
        if self.replicas > 1 {
            return self.replica_input_value(k, value);
        }
        let id = self.next_id();
        self.pending += 1;
        let blocked = self.cut || (self.solo_active > 0 && self.solo_blocks(k));
        // The usual case, with one look-up of the sub-stream: `lend`, for a
        // value that has just got its slot.
        if let Some(sub) = self.subs.get_mut(&k).filter(|s| s.source_open && !blocked) {
            sub.lent.push_back(id);
            if !sub.recovered.is_empty() {
                sub.recovered.remove(&id);
            }
            self.stats.lent += 1;
            let lent = Lent::new(id, value.clone());
            self.slots.push_back(Slot::Lent {
                value,
                holder: Some(k),
                failures: 0,
                solo: false,
                reason: None,
                votes: None,
            });
            return SubAsk::Lend(lent);
        }
        self.slots.push_back(Slot::Lent {
            value,
            holder: None,
            failures: 0,
            solo: false,
            reason: None,
            votes: None,
        });
        let alive = self.source_alive(k);
        self.failed.insert(id);
        self.wake.waiting = true;
        if alive { SubAsk::Wait } else { SubAsk::Done }
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
        c.on_sub_reject(a, 1, "boom".into()).unwrap(); // failure 1
        assert_eq!(c.sub_ask(a), SubAsk::Lend(Lent::new(1, 2)));
        c.on_sub_reject(a, 1, "boom".into()).unwrap(); // failure 2
        assert_eq!(c.sub_ask(a), SubAsk::Lend(Lent::new(1, 2)));
        c.on_sub_reject(a, 1, "boom".into()).unwrap(); // failure 3: over the cap of 2 retries
        assert_eq!(
            c.sub_ask(a),
            SubAsk::Wait,
            "a poisoned value is not lent again (nor is anything read: the output will end)"
        );
        assert_eq!(c.poll_output(), OutputStep::Value(10));
        assert_eq!(c.poll_output(), OutputStep::AbortInput);
        assert_eq!(
            c.poll_output(),
            OutputStep::Poisoned {
                id: 1,
                failures: 3,
                reason: "boom".into()
            }
        );
    }

    #[test]
    fn skip_policy_drops_the_poisoned_value_from_the_output() {
        let mut c = Core::<u32, u32>::new(true);
        c.set_max_retries(Some((0, PoisonPolicy::Skip)));
        let a = c.lend_stream();
        lent(c.on_input_value(a, 1));
        lent(c.on_input_value(a, 2));
        c.on_sub_reject(a, 0, "boom".into()).unwrap();
        c.on_sub_result(a, 1, 20).unwrap();
        c.on_input_end(InputEnd::Done);
        assert_eq!(c.poll_output(), OutputStep::Value(20));
        assert_eq!(c.poll_output(), OutputStep::Done);
        assert_eq!(c.state().skipped, 1);
    }

    #[test]
    fn answers_after_the_output_ended_are_dropped_not_blamed() {
        let mut c = Core::<u32, u32>::new(true);
        let (a, b) = (c.lend_stream(), c.lend_stream());
        c.on_input_value(a, 10);
        c.on_input_value(b, 20);
        c.on_input_value(a, 30);
        c.terminate_output();
        // Each held a value when the output ended: their answers are late, not wrong.
        assert_eq!(c.on_sub_result(a, 0, 11), Ok(()));
        assert_eq!(c.on_sub_reject(b, 1, "boom".into()), Ok(()));
        assert_eq!(c.on_sub_reclaim(a, 2, "timed out".into()), Ok(()));
        assert_eq!(c.state().late_results_dropped, 3);
        // A value never read is still a broken contract.
        assert_eq!(c.on_sub_result(a, 3, 0), Err(Unexpected { sub: a, id: 3 }));
        assert_eq!(c.poll_output(), OutputStep::Done);
    }

    #[test]
    fn a_rejection_for_a_value_not_held_is_unexpected() {
        let mut c = Core::<u32, u32>::new(true);
        let a = c.lend_stream();
        assert_eq!(
            c.on_sub_reject(a, 0, "boom".into()),
            Err(Unexpected { sub: a, id: 0 })
        );
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

    /// Drives `c` until the output has nothing more: the values output, and
    /// the final step (the input, when to be aborted, confirms at once).
    fn drain(c: &mut Core<u32, u32>) -> (Vec<u32>, OutputStep<u32>) {
        let mut out = Vec::new();
        loop {
            match c.poll_output() {
                OutputStep::Value(v) => out.push(v),
                OutputStep::AbortInput => {}
                step => return (out, step),
            }
        }
    }

    /// Issue 8, row 2: skipped values count as consumed, so the lender reads
    /// on after `bound` skips (it never read again before).
    #[test]
    fn skipped_values_make_room_under_the_read_ahead_bound() {
        for ordered in [true, false] {
            let mut c = Core::<u32, u32>::new(ordered);
            c.set_read_ahead(Some(2));
            c.set_max_retries(Some((0, PoisonPolicy::Skip)));
            let a = c.lend_stream();
            for i in 0..10 {
                assert_eq!(c.sub_ask(a), SubAsk::ReadInput, "value {i}, ordered: {ordered}");
                let l = lent(c.on_input_value(a, i));
                c.on_sub_reject(a, l.id, "bad".into()).unwrap();
            }
            assert_eq!(c.state().skipped, 10);
            assert_eq!(c.remembered(), 0);
        }
    }

    /// Room made by a skip wakes the asks the bound held back (and only those).
    #[test]
    fn a_skip_at_the_front_wakes_the_asks_held_back_by_the_bound() {
        let mut c = Core::<u32, u32>::new(true);
        c.set_read_ahead(Some(1));
        c.set_max_retries(Some((0, PoisonPolicy::Skip)));
        let a = c.lend_stream();
        lent(c.on_input_value(a, 1));
        assert_eq!(c.sub_ask(a), SubAsk::Wait);
        c.take_wake();
        c.on_sub_reject(a, 0, "bad".into()).unwrap();
        assert!(c.take_wake().waiting);
        assert_eq!(c.sub_ask(a), SubAsk::ReadInput);
    }

    /// In unordered mode the bound counts the results waiting on the output too.
    #[test]
    fn unordered_read_ahead_counts_the_results_waiting_on_the_output() {
        let mut c = Core::<u32, u32>::new(false);
        c.set_read_ahead(Some(2));
        let a = c.lend_stream();
        lent(c.on_input_value(a, 1));
        c.on_sub_result(a, 0, 10).unwrap();
        lent(c.on_input_value(a, 2));
        c.on_sub_result(a, 1, 20).unwrap();
        assert_eq!(c.sub_ask(a), SubAsk::Wait, "two results wait on the output");
        c.take_wake();
        assert_eq!(c.poll_output(), OutputStep::Value(10));
        assert!(c.take_wake().waiting);
        assert_eq!(c.sub_ask(a), SubAsk::ReadInput);
    }

    /// Issue 8, row 5: a terminated output records the input's end.
    #[test]
    fn terminating_the_output_ends_the_input() {
        let mut c = Core::<u32, u32>::new(true);
        let a = c.lend_stream();
        lent(c.on_input_value(a, 1));
        c.terminate_output();
        let s = c.state();
        assert!(s.input_ended && s.in_flight == 0 && s.waiting_to_be_relent == 0);
        // A read that was in progress is dropped, not queued.
        assert_eq!(c.on_input_value(a, 2), SubAsk::Done);
        assert_eq!(c.state().waiting_to_be_relent, 0);
    }

    /// Issue 8, row 8: rejected ids are not remembered, however many there are.
    #[test]
    fn rejecting_100_000_values_on_a_live_sub_stream_keeps_memory_small() {
        let mut c = Core::<u32, u32>::new(true);
        c.set_max_retries(Some((0, PoisonPolicy::Skip)));
        let a = c.lend_stream();
        for i in 0..100_000 {
            assert_eq!(c.sub_ask(a), SubAsk::ReadInput);
            let l = lent(c.on_input_value(a, i));
            c.on_sub_reject(a, l.id, "bad".into()).unwrap();
            assert!(c.remembered() <= 1, "after {i} rejections: {}", c.remembered());
        }
        assert_eq!(c.state().skipped, 100_000);
        assert_eq!(c.state().sub_streams_open, 1);
    }

    #[test]
    fn a_result_after_a_rejection_is_unexpected() {
        let mut c = Core::<u32, u32>::new(true);
        let a = c.lend_stream();
        let b = c.lend_stream();
        lent(c.on_input_value(a, 1));
        c.on_sub_reject(a, 0, "bad".into()).unwrap();
        assert_eq!(c.on_sub_result(a, 0, 10), Err(Unexpected { sub: a, id: 0 }));
        assert_eq!(
            c.on_sub_reject(a, 0, "bad".into()),
            Err(Unexpected { sub: a, id: 0 })
        );
        assert_eq!(c.sub_ask(b), SubAsk::Lend(Lent::new(0, 1)));
    }

    #[test]
    fn a_late_result_for_a_reclaimed_value_is_accepted_once() {
        let mut c = Core::<u32, u32>::new(true);
        let a = c.lend_stream();
        let b = c.lend_stream();
        lent(c.on_input_value(a, 1));
        c.on_sub_reclaim(a, 0, "timed out".into()).unwrap();
        c.on_sub_reclaim(a, 0, "timed out".into()).unwrap(); // already taken back: no change
        assert_eq!(c.state().reclaimed, 1);
        assert_eq!(c.sub_ask(b), SubAsk::Lend(Lent::new(0, 1)));
        c.on_sub_result(b, 0, 10).unwrap();
        // Late, and the value has its result: dropped, not unexpected.
        c.on_sub_result(a, 0, 11).unwrap();
        assert_eq!(c.state().late_results_dropped, 1);
        // Only once.
        assert_eq!(c.on_sub_result(a, 0, 11), Err(Unexpected { sub: a, id: 0 }));
        assert_eq!(c.poll_output(), OutputStep::Value(10));
        assert_eq!(c.remembered(), 0);
    }

    /// Hostile review: a value reclaimed by the map's backstop and lent back
    /// to the worker that still held it made that worker's session see the
    /// same value twice (`DuplicateValue`), and the worker was dropped. A
    /// reclaimed value now goes to another sub-stream; its holder gets it
    /// again only once it answered it (or rejected it).
    #[test]
    fn a_reclaimed_value_is_never_lent_back_to_the_sub_stream_that_may_still_answer_it() {
        let mut c = Core::<u32, u32>::new(true);
        let a = c.lend_stream();
        lent(c.on_input_value(a, 1));
        c.on_sub_reclaim(a, 0, "timed out".into()).unwrap();
        assert_eq!(
            c.sub_ask(a),
            SubAsk::ReadInput,
            "not value #0 again: a may still answer it"
        );
        lent(c.on_input_value(a, 2));
        c.on_input_end(InputEnd::Done);
        assert_eq!(c.sub_ask(a), SubAsk::Wait);
        c.take_wake();
        // a rejects it late: it holds it no more, and may take it again.
        c.on_sub_reject(a, 0, "failed late".into()).unwrap();
        assert!(c.take_wake().waiting, "a's waiting ask decides again");
        assert_eq!(c.sub_ask(a), SubAsk::Lend(Lent::new(0, 1)));
        c.on_sub_result(a, 0, 10).unwrap();
        c.on_sub_result(a, 1, 20).unwrap();
        assert_eq!(drain(&mut c).0, vec![10, 20]);
        // Another sub-stream takes it at once; a's late answer still counts.
        let mut c = Core::<u32, u32>::new(true);
        let (a, b) = (c.lend_stream(), c.lend_stream());
        lent(c.on_input_value(a, 1));
        c.on_sub_reclaim(a, 0, "timed out".into()).unwrap();
        assert_eq!(c.sub_ask(b), SubAsk::Lend(Lent::new(0, 1)));
        c.on_sub_result(a, 0, 10).unwrap();
        assert_eq!(c.poll_output(), OutputStep::Value(10));
    }

    #[test]
    fn a_late_rejection_of_a_reclaimed_value_forgets_it() {
        let mut c = Core::<u32, u32>::new(true);
        let a = c.lend_stream();
        lent(c.on_input_value(a, 1));
        c.on_sub_reclaim(a, 0, "timed out".into()).unwrap();
        assert_eq!(
            c.remembered(),
            3,
            "the slot, its place in the queue, the id taken back from a"
        );
        c.on_sub_reject(a, 0, "failed late".into()).unwrap();
        assert_eq!(c.remembered(), 2, "a forgot it");
        assert_eq!(c.on_sub_result(a, 0, 11), Err(Unexpected { sub: a, id: 0 }));
        assert_eq!(
            c.on_sub_reclaim(a, 5, "timed out".into()),
            Err(Unexpected { sub: a, id: 5 })
        );
    }

    #[test]
    fn a_reclaim_is_a_failure_of_the_value_with_its_reason() {
        let mut c = Core::<u32, u32>::new(true);
        c.set_max_retries(Some((1, PoisonPolicy::Fail)));
        let (a, b) = (c.lend_stream(), c.lend_stream());
        lent(c.on_input_value(a, 1));
        c.on_sub_reclaim(a, 0, "timed out after 1s".into()).unwrap();
        assert_eq!(c.sub_ask(b), SubAsk::Lend(Lent::new(0, 1)));
        c.on_sub_reclaim(b, 0, "timed out after 2s".into()).unwrap();
        assert_eq!(c.poll_output(), OutputStep::AbortInput);
        assert_eq!(
            c.poll_output(),
            OutputStep::Poisoned {
                id: 0,
                failures: 2,
                reason: "timed out after 2s".into()
            }
        );
    }

    /// Issue 8, "Blame": a sub-stream that dies holding a batch of two values
    /// (the culprit and an innocent neighbour) charges both, but only the
    /// culprit is poisoned, once it was lent alone.
    #[test]
    fn a_holder_dying_with_a_batch_blames_only_the_culprit() {
        for max in [0, 1, 3] {
            let mut c = Core::<u32, u32>::new(true);
            c.set_max_retries(Some((max, PoisonPolicy::Fail)));
            let culprit = 1;
            let mut deaths = 0;
            let mut out = Vec::new();
            let step = loop {
                let k = c.lend_stream();
                let mut held = Vec::new();
                for _ in 0..2 {
                    match c.sub_ask(k) {
                        SubAsk::ReadInput => held.push(lent(c.on_input_value(k, held.len() as u32 + 100))),
                        SubAsk::Lend(l) => held.push(l),
                        SubAsk::Wait | SubAsk::Done => {}
                    }
                }
                assert!(!held.is_empty());
                if held.iter().any(|l| l.id == culprit) {
                    deaths += 1;
                    c.set_end_reason(k, format!("worker {k} crashed"));
                    c.on_sub_sink_end(k);
                } else {
                    for l in held {
                        c.on_sub_result(k, l.id, l.value + 1).unwrap();
                    }
                    c.on_sub_sink_end(k);
                }
                let (values, step) = drain(&mut c);
                out.extend(values);
                if step != OutputStep::Pending {
                    break step;
                }
                assert!(deaths < 20, "the culprit is never poisoned");
            };
            assert_eq!(out, vec![101], "the innocent neighbour got its result");
            assert_eq!(
                step,
                OutputStep::Poisoned {
                    id: culprit,
                    failures: max + 1,
                    reason: format!("worker {} crashed", c.state().sub_streams_created - 1),
                },
                "max_retries {max}"
            );
        }
    }

    #[test]
    fn a_solo_value_is_lent_only_to_a_sub_stream_holding_nothing() {
        let mut c = Core::<u32, u32>::new(true);
        c.set_max_retries(Some((0, PoisonPolicy::Fail)));
        let a = c.lend_stream();
        lent(c.on_input_value(a, 1));
        lent(c.on_input_value(a, 2));
        c.on_sub_sink_end(a); // a shared failure at the cap: both become solo
        assert_eq!(c.state().waiting_to_be_relent, 2);
        let b = c.lend_stream();
        let d = c.lend_stream();
        lent(c.on_input_value(b, 3)); // b holds value #2
        assert_eq!(
            c.sub_ask(b),
            SubAsk::Wait,
            "b holds a value: the solo values wait for others"
        );
        assert_eq!(c.sub_ask(d), SubAsk::Lend(Lent::new(0, 1)));
        assert_eq!(c.sub_ask(d), SubAsk::Wait, "d holds a solo value: nothing else");
        c.take_wake();
        c.on_sub_result(b, 2, 30).unwrap();
        assert!(
            c.take_wake().waiting,
            "b holds nothing now: its asks decide again"
        );
        assert_eq!(c.sub_ask(b), SubAsk::Lend(Lent::new(1, 2)));
        c.on_sub_result(d, 0, 10).unwrap();
        assert!(c.take_wake().waiting, "d's solo value is answered");
        c.on_sub_result(b, 1, 20).unwrap();
        assert_eq!(c.sub_ask(d), SubAsk::ReadInput);
        assert_eq!(drain(&mut c).0, vec![10, 20, 30]);
    }

    /// Checker seed 1132: the last solo value is answered while its holder's
    /// next ask waits (held back by that solo value); the ask must be woken,
    /// since it can now take the value waiting to be re-lent.
    #[test]
    fn answering_the_last_solo_value_wakes_its_holders_waiting_ask() {
        let mut c = Core::<u32, u32>::new(true);
        c.set_max_retries(Some((1, PoisonPolicy::Fail)));
        let a = c.lend_stream();
        lent(c.on_input_value(a, 1));
        c.on_sub_reject(a, 0, "bad".into()).unwrap(); // value #0 at the cap
        assert_eq!(c.sub_ask(a), SubAsk::Lend(Lent::new(0, 1)));
        lent(c.on_input_value(a, 2));
        c.on_sub_sink_end(a); // shared: #0 becomes solo, #1 is charged once
        let b = c.lend_stream();
        assert_eq!(
            c.sub_ask(b),
            SubAsk::Lend(Lent::new(0, 1)),
            "the solo value first"
        );
        assert_eq!(c.sub_ask(b), SubAsk::Wait, "b holds a solo value: nothing else");
        c.take_wake();
        c.on_sub_result(b, 0, 10).unwrap();
        assert!(c.take_wake().waiting, "b's waiting ask may take value #1 now");
        assert_eq!(c.sub_ask(b), SubAsk::Lend(Lent::new(1, 2)));
        // The same when the last solo value is poisoned rather than answered.
        let mut c = Core::<u32, u32>::new(true);
        c.set_max_retries(Some((0, PoisonPolicy::Skip)));
        let a = c.lend_stream();
        lent(c.on_input_value(a, 1));
        lent(c.on_input_value(a, 2));
        c.on_sub_sink_end(a); // both solo
        let (b, d) = (c.lend_stream(), c.lend_stream());
        assert_eq!(c.sub_ask(b), SubAsk::Lend(Lent::new(0, 1)));
        assert_eq!(c.sub_ask(d), SubAsk::Lend(Lent::new(1, 2)));
        assert_eq!(c.sub_ask(b), SubAsk::Wait);
        c.take_wake();
        c.on_sub_reject(b, 0, "bad".into()).unwrap(); // poisoned: skipped
        c.on_sub_result(d, 1, 20).unwrap();
        assert!(c.take_wake().waiting);
        assert_eq!(c.sub_ask(b), SubAsk::ReadInput);
    }

    /// A sub-stream holding a value waits while a solo value waits to be
    /// lent; once another sub-stream takes that solo value, its ask may go on
    /// and must be woken.
    #[test]
    fn lending_the_last_waiting_solo_value_wakes_the_asks_it_held_back() {
        let mut c = Core::<u32, u32>::new(true);
        c.set_max_retries(Some((0, PoisonPolicy::Fail)));
        let a = c.lend_stream();
        lent(c.on_input_value(a, 1));
        lent(c.on_input_value(a, 2));
        c.on_sub_sink_end(a); // both solo, waiting
        let (b, d) = (c.lend_stream(), c.lend_stream());
        assert_eq!(c.sub_ask(b), SubAsk::Lend(Lent::new(0, 1)));
        lent(c.on_input_value(d, 3)); // d holds value #2
        assert_eq!(c.sub_ask(d), SubAsk::Wait, "solo value #1 waits: d holds a value");
        c.take_wake();
        c.on_sub_result(b, 0, 10).unwrap();
        c.take_wake();
        let e = c.lend_stream();
        assert_eq!(c.sub_ask(e), SubAsk::Lend(Lent::new(1, 2)));
        assert!(c.take_wake().waiting, "no solo value waits any more: d may go on");
        assert_eq!(c.sub_ask(d), SubAsk::ReadInput);
    }

    /// Checker seeds 20240666, 138 and 88: after a poisoned value (policy
    /// `Fail`) the lender read on, lent on, and never ended its sub-streams.
    /// Now it reads no more, closes its input before the error, and the
    /// error ends it as a termination of the output would.
    #[test]
    fn a_poisoned_value_closes_the_input_and_its_error_ends_the_lender() {
        for ordered in [true, false] {
            let mut c = Core::<u32, u32>::new(ordered);
            c.set_read_ahead(Some(2));
            c.set_max_retries(Some((0, PoisonPolicy::Fail)));
            let (a, b) = (c.lend_stream(), c.lend_stream());
            lent(c.on_input_value(a, 1));
            lent(c.on_input_value(b, 2)); // b holds value #1
            c.on_sub_reject(a, 0, "bad".into()).unwrap(); // #0 is poisoned
            assert_eq!(
                c.sub_ask(a),
                SubAsk::Wait,
                "the output is bound to end: no more reads (ordered: {ordered})"
            );
            c.take_wake();
            assert_eq!(c.poll_output(), OutputStep::AbortInput, "ordered: {ordered}");
            assert!(c.state().input_ended && !c.input_open());
            assert!(c.take_wake().waiting, "the asks decide again");
            let poisoned = OutputStep::Poisoned {
                id: 0,
                failures: 1,
                reason: "bad".into(),
            };
            assert_eq!(c.poll_output(), poisoned);
            let wake = c.take_wake();
            assert!(wake.waiting && wake.sinks);
            assert_eq!(c.sub_ask(b), SubAsk::Done, "b's value is dropped");
            assert!(c.sink_must_stop(b));
            assert_eq!(c.remembered(), 0);
            assert_eq!(c.state().in_flight, 0);
            assert_eq!(c.poll_output(), poisoned, "the last answer, again");
        }
    }

    /// An input that ended before the poisoned value's error is not closed again.
    #[test]
    fn a_poisoned_value_after_the_input_ended_ends_the_lender_at_once() {
        let mut c = Core::<u32, u32>::new(true);
        c.set_max_retries(Some((0, PoisonPolicy::Fail)));
        let a = c.lend_stream();
        lent(c.on_input_value(a, 1));
        c.on_input_end(InputEnd::Done);
        c.on_sub_reject(a, 0, "bad".into()).unwrap();
        assert!(matches!(c.poll_output(), OutputStep::Poisoned { id: 0, .. }));
        assert_eq!(c.sub_ask(a), SubAsk::Done);
    }

    /// Checker seed 21270: a sub-stream with two concurrent asks waiting on
    /// others ends its source; the other ask answers `done` and must be woken.
    #[test]
    fn a_sub_stream_ending_its_source_wakes_its_waiting_asks() {
        let mut c = Core::<u32, u32>::new(true);
        let (a, b) = (c.lend_stream(), c.lend_stream());
        lent(c.on_input_value(a, 1));
        c.on_input_end(InputEnd::Closed);
        assert_eq!(c.sub_ask(b), SubAsk::Wait, "a may still fail");
        c.take_wake();
        c.on_sub_source_end(b);
        assert!(c.take_wake().waiting);
        assert_eq!(c.sub_ask(b), SubAsk::Done);
    }

    #[test]
    fn the_reason_of_a_holder_that_ended_defaults_to_a_plain_one() {
        let mut c = Core::<u32, u32>::new(false);
        c.set_max_retries(Some((0, PoisonPolicy::Fail)));
        let a = c.lend_stream();
        lent(c.on_input_value(a, 1));
        c.on_sub_source_end(a);
        assert_eq!(c.poll_output(), OutputStep::AbortInput);
        assert_eq!(
            c.poll_output(),
            OutputStep::Poisoned {
                id: 0,
                failures: 1,
                reason: HOLDER_ENDED.into()
            }
        );
    }
}
