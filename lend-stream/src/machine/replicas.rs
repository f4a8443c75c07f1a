//! Majority voting (seed 000, lines 1570-1580; BOINC's answer to wrong
//! results): with `k > 1` replicas, each value is lent to `k` different
//! sub-streams, and a result is accepted once `⌊k/2⌋+1` of their answers are
//! equal. Only these handlers run when `k > 1`; with `k = 1` none of this
//! code runs and the lender is the seeds' one, bit for bit.
//!
//! The rules:
//!
//! * A value is never lent to a sub-stream that holds it, has answered it,
//!   or was taken it back from without an answer (its late answer may still
//!   come); so with fewer eligible sub-streams than copies wanted, copies
//!   wait ([`LenderState::replicas_waiting`](crate::LenderState::replicas_waiting)),
//!   and while fewer than `k` sub-streams are open, no new value is read.
//! * A failure of a copy (rejected, reclaimed, its holder ended) is charged
//!   to the value as with one replica (blame rule and retry cap included),
//!   and one more copy is wanted.
//! * Once every copy is answered without a majority, the value is charged a
//!   failure of its own ("no majority"), and the copies still missing for a
//!   majority are lent to sub-streams that have not computed it, up to the
//!   retry cap (then it is poisoned as usual).
//! * At the majority, the answers that differ count as disagreements of
//!   their sub-streams, and the copies still out become late: their answers
//!   are dropped (not compared).
//!
//! ```
//! use pando_lend_stream::Lent;
//! use pando_lend_stream::machine::{Core, OutputStep, SubAsk};
//!
//! let mut core = Core::<u32, u32>::new(true);
//! core.set_replicas(3, |a, b| a == b);
//! let (a, b, c) = (core.lend_stream(), core.lend_stream(), core.lend_stream());
//! assert_eq!(core.sub_ask(a), SubAsk::ReadInput);
//! assert_eq!(core.on_input_value(a, 7), SubAsk::Lend(Lent::new(0, 7)));
//! assert_eq!(core.sub_ask(b), SubAsk::Lend(Lent::new(0, 7))); // a replica
//! assert_eq!(core.sub_ask(c), SubAsk::Lend(Lent::new(0, 7))); // another
//! core.on_sub_result(a, 0, 49).unwrap();
//! core.on_sub_result(b, 0, 50).unwrap(); // b lies
//! assert_eq!(core.poll_output(), OutputStep::Pending);
//! core.on_sub_result(c, 0, 49).unwrap(); // two out of three agree
//! assert_eq!(core.poll_output(), OutputStep::Value(49));
//! assert_eq!(core.state().disagreements, 1);
//! assert_eq!(core.disagreements(b), Some(1));
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Charge, Core, Slot, SubAsk, SubId, Unexpected};
use crate::Lent;

/// The replicas of one value: who holds a copy, and the answers so far.
#[derive(Debug)]
pub(crate) struct Votes<R> {
    /// The sub-streams holding a copy without an answer, in lending order.
    holders: Vec<SubId>,
    /// The answers, grouped by equality: a result and who answered it.
    groups: Vec<(R, Vec<SubId>)>,
    /// Copies still to lend.
    want: u32,
}

impl<R> Votes<R> {
    fn voted(&self, k: SubId) -> bool {
        self.groups.iter().any(|(_, voters)| voters.contains(&k))
    }

    fn largest(&self) -> usize {
        self.groups.iter().map(|(_, v)| v.len()).max().unwrap_or(0)
    }

    fn answers(&self) -> usize {
        self.groups.iter().map(|(_, v)| v.len()).sum()
    }
}

impl<T, R> Core<T, R> {
    /// Each value is to be computed by `k` different sub-streams, and a
    /// result is accepted once `⌊k/2⌋+1` answers are equal by `same` (for
    /// example `PartialEq::eq`: byte-equal results for the distributed map).
    /// `k = 1` is the default: one sub-stream per value, and none of the
    /// replica handlers run. See the [module](crate::machine::replicas) for the rules.
    ///
    /// # Panics
    ///
    /// If `k` is 0, or if a value was read already.
    ///
    /// ```
    /// use pando_lend_stream::machine::Core;
    /// let mut core = Core::<u8, u8>::new(true);
    /// core.set_replicas(3, |a, b| a == b);
    /// assert_eq!(core.state().replicas, 3);
    /// ```
    pub fn set_replicas(&mut self, k: u32, same: fn(&R, &R) -> bool) {
        assert!(k > 0, "a value needs at least one replica");
        assert_eq!(self.next_id(), 0, "replicas are set before any value is read");
        self.replicas = k;
        self.same = Some(same);
    }

    /// The answers of sub-stream `k` that lost a vote, while it is open.
    ///
    /// See the [module](crate::machine::replicas) for an example.
    pub fn disagreements(&self, k: SubId) -> Option<u64> {
        self.subs.get(&k).map(|s| s.disagreements)
    }

    /// Counts sub-stream `k`'s disagreements in `counter` too (for example
    /// a worker's statistics, which outlive the sub-stream).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use pando_lend_stream::machine::Core;
    /// let mut core = Core::<u8, u8>::new(true);
    /// let k = core.lend_stream();
    /// let counter = Arc::new(AtomicU64::new(0));
    /// core.count_disagreements(k, counter.clone());
    /// assert_eq!(counter.load(Ordering::Relaxed), 0);
    /// ```
    pub fn count_disagreements(&mut self, k: SubId, counter: Arc<AtomicU64>) {
        if let Some(sub) = self.subs.get_mut(&k) {
            sub.disagreement_counter = Some(counter);
        }
    }

    fn quorum(&self) -> usize {
        self.replicas as usize / 2 + 1
    }

    fn votes_mut(&mut self, id: u64) -> Option<&mut Votes<R>> {
        let index = id.checked_sub(self.base)? as usize;
        match self.slots.get_mut(index) {
            Some(Slot::Lent { votes: Some(v), .. }) => Some(v),
            _ => None,
        }
    }

    fn votes(&self, id: u64) -> Option<&Votes<R>> {
        let index = id.checked_sub(self.base)? as usize;
        match self.slots.get(index) {
            Some(Slot::Lent { votes: Some(v), .. }) => Some(v),
            _ => None,
        }
    }

    /// Whether sub-stream `k` may take a copy of value `id`.
    pub(super) fn eligible(&self, k: SubId, id: u64) -> bool {
        let Some(votes) = self.votes(id) else {
            return false;
        };
        !votes.holders.contains(&k)
            && !votes.voted(k)
            && !self.subs.get(&k).is_some_and(|s| s.recovered.contains(&id))
    }

    /// Values in the `Lent` state with at least one copy held.
    pub(super) fn replica_in_flight(&self) -> u64 {
        self.slots
            .iter()
            .filter(|s| matches!(s, Slot::Lent { votes: Some(v), .. } if !v.holders.is_empty()))
            .count() as u64
    }

    /// Copies wanted that no open sub-stream may take.
    pub(super) fn replicas_waiting(&self) -> u64 {
        let open: Vec<SubId> = self
            .subs
            .ids
            .iter()
            .zip(self.subs.values())
            .filter(|(_, s)| s.source_open)
            .map(|(&k, _)| k)
            .collect();
        self.failed
            .iter()
            .chain(self.solo.iter())
            .filter_map(|&id| self.votes(id).map(|v| (id, v.want)))
            .map(|(id, want)| {
                let takers = open.iter().filter(|&&k| self.eligible(k, id)).count() as u64;
                u64::from(want).saturating_sub(takers)
            })
            .sum()
    }

    fn open_sub_streams(&self) -> usize {
        self.subs.values().filter(|s| s.source_open).count()
    }

    fn disagreement(&mut self, k: SubId) {
        self.stats.disagreements += 1;
        if let Some(sub) = self.subs.get_mut(&k) {
            sub.disagreements += 1;
            if let Some(counter) = &sub.disagreement_counter {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Takes value `id` out of the queues of values waiting to be lent.
    fn unqueue(&mut self, id: u64) {
        if !self.failed.remove(&id) {
            self.unqueue_solo(id);
        }
    }

    /// Value `id` wants one more copy (or `more`): queued in the queue its
    /// mark selects.
    fn want_more(&mut self, id: u64, more: u32) {
        let solo = matches!(
            self.slots.get((id - self.base) as usize),
            Some(Slot::Lent { solo: true, .. })
        );
        let Some(votes) = self.votes_mut(id) else { return };
        votes.want += more;
        // A value marked solo since it was queued moves to the solo queue.
        self.failed.remove(&id);
        if solo {
            self.solo.insert(id);
        } else {
            self.failed.insert(id);
        }
        self.wake.waiting = true;
    }

    /// Charges a failure to value `id` (one of its copies failed, or its
    /// answers had no majority): one more copy is wanted, or the value is
    /// poisoned, and then the copies still out become late.
    fn replica_fail(&mut self, id: u64, charge: Charge, why: Option<Box<str>>, more: u32) {
        let holders = match self.votes(id) {
            Some(v) => v.holders.clone(),
            None => return,
        };
        if self.fail_value(id, charge, why) {
            self.want_more(id, more);
        } else if self.votes(id).is_none() {
            // Poisoned: nothing more is lent, late answers are dropped.
            self.unqueue(id);
            self.release(id, &holders);
        }
    }

    /// The copies of value `id` held by `holders` become late: their
    /// answers will be dropped, not held against their sub-streams.
    fn release(&mut self, id: u64, holders: &[SubId]) {
        for &h in holders {
            if let Some(sub) = self.subs.get_mut(&h) {
                sub.lent.retain(|&l| l != id);
                sub.recovered.insert(id);
                let left = sub.lent.len();
                self.left_holder(left);
            }
        }
    }

    /// Sub-stream `k`'s answer `result` for value `id`, which has no result yet.
    fn vote(&mut self, k: SubId, id: u64, result: R) {
        let quorum = self.quorum();
        let same = self.same.expect("replicas come with a comparison");
        let Some(votes) = self.votes_mut(id) else { return };
        votes.holders.retain(|&h| h != k);
        let group = match votes.groups.iter().position(|(r, _)| same(r, &result)) {
            Some(g) => {
                votes.groups[g].1.push(k);
                g
            }
            None => {
                votes.groups.push((result, vec![k]));
                votes.groups.len() - 1
            }
        };
        if votes.groups[group].1.len() >= quorum {
            return self.decide(id, group);
        }
        if votes.holders.is_empty() && votes.want == 0 {
            let (answers, largest) = (votes.answers(), votes.largest());
            let missing = (quorum - largest) as u32;
            let why = format!("no majority: {answers} answers, at most {largest} equal, {quorum} needed");
            self.replica_fail(id, Charge::Own, Some(why.into_boxed_str()), missing);
        }
    }

    /// Group `group` of value `id` has a majority: its result is accepted.
    fn decide(&mut self, id: u64, group: usize) {
        let index = (id - self.base) as usize;
        let Some(Slot::Lent { votes, .. }) = self.slots.get_mut(index) else {
            return;
        };
        let Some(mut votes) = votes.take() else { return };
        let (result, _) = votes.groups.swap_remove(group);
        for (_, voters) in std::mem::take(&mut votes.groups) {
            for v in voters {
                self.disagreement(v);
            }
        }
        self.unqueue(id);
        self.release(id, &votes.holders);
        self.accept(id, result);
    }

    #[cold]
    #[inline(never)]
    pub(super) fn replica_result(&mut self, k: SubId, id: u64, result: R) -> Result<(), Unexpected> {
        let Some(sub) = self.subs.get_mut(&k) else {
            return Err(Unexpected { sub: k, id });
        };
        if let Some(i) = sub.lent.iter().position(|&l| l == id) {
            sub.lent.remove(i);
            let left = sub.lent.len();
            self.vote(k, id, result);
            self.left_holder(left);
            return Ok(());
        }
        if !sub.recovered.remove(&id) {
            self.stats.unexpected += 1;
            return Err(Unexpected { sub: k, id });
        }
        // Late: a vote if the value has no result yet (it was taken back
        // from `k` before `k` answered, so `k` has not voted on it).
        if self.votes(id).is_some_and(|v| !v.voted(k)) {
            self.stats.late_accepted += 1;
            self.vote(k, id, result);
        } else {
            self.stats.late_dropped += 1;
        }
        Ok(())
    }

    /// A rejection (`reclaim: false`) or a reclaim of value `id` by `k`.
    #[cold]
    #[inline(never)]
    pub(super) fn replica_take_back(
        &mut self,
        k: SubId,
        id: u64,
        reason: String,
        reclaim: bool,
    ) -> Result<(), Unexpected> {
        match self.take_back(k, id) {
            Ok(left) => {
                if reclaim {
                    if let Some(sub) = self.subs.get_mut(&k) {
                        sub.recovered.insert(id);
                    }
                    self.stats.reclaimed += 1;
                } else {
                    self.stats.rejected += 1;
                }
                if let Some(votes) = self.votes_mut(id) {
                    votes.holders.retain(|&h| h != k);
                }
                self.replica_fail(id, Charge::Own, Some(reason.into_boxed_str()), 1);
                self.left_holder(left);
                Ok(())
            }
            Err(e) => {
                let known = match self.subs.get_mut(&k) {
                    Some(s) if reclaim => s.recovered.contains(&id),
                    Some(s) => s.recovered.remove(&id),
                    None => false,
                };
                if known {
                    Ok(())
                } else {
                    self.stats.unexpected += 1;
                    Err(e)
                }
            }
        }
    }

    /// RecoverFailedValues with replicas, for one copy `k` held: it is
    /// charged as with one replica, and the value wants one more copy.
    #[cold]
    #[inline(never)]
    pub(super) fn replica_recover(&mut self, k: SubId, id: u64, charge: Charge, reason: Option<Box<str>>) {
        if let Some(votes) = self.votes_mut(id) {
            votes.holders.retain(|&h| h != k);
        }
        self.replica_fail(id, charge, reason, 1);
    }
}

impl<T: Clone, R> Core<T, R> {
    /// Lends a copy of value `id` to `k`.
    fn lend_copy(&mut self, k: SubId, id: u64) -> Lent<T> {
        let index = (id - self.base) as usize;
        let Some(Slot::Lent {
            value,
            votes: Some(votes),
            failures,
            ..
        }) = self.slots.get_mut(index)
        else {
            unreachable!("only unanswered values are lent");
        };
        votes.holders.push(k);
        votes.want -= 1;
        let done = votes.want == 0;
        let relent = *failures > 0;
        let lent = Lent::new(id, value.clone());
        if done {
            self.unqueue(id);
        }
        if let Some(sub) = self.subs.get_mut(&k) {
            sub.lent.push_back(id);
        }
        self.stats.lent += 1;
        if relent {
            self.stats.relent += 1;
        }
        lent
    }

    /// The first value of `queue` (solo or not) that `k` may take.
    fn first_eligible(&self, k: SubId, solo: bool) -> Option<u64> {
        let queue = if solo { &self.solo } else { &self.failed };
        queue.iter().copied().find(|&id| self.eligible(k, id))
    }

    #[cold]
    #[inline(never)]
    pub(super) fn replica_ask(&mut self, k: SubId) -> SubAsk<T> {
        if self.solo_active > 0 {
            if self.solo_blocks(k) {
                return SubAsk::Wait;
            }
            if let Some(id) = self.first_eligible(k, true) {
                return SubAsk::Lend(self.lend_copy(k, id));
            }
        }
        if let Some(id) = self.first_eligible(k, false) {
            return SubAsk::Lend(self.lend_copy(k, id));
        }
        if self.input.is_some() {
            return if self.pending == 0 {
                SubAsk::Done
            } else {
                SubAsk::Wait
            };
        }
        if self.poisoned.is_some() {
            return SubAsk::Wait;
        }
        if self.open_sub_streams() < self.replicas as usize {
            // Too few sub-streams for a new value's replicas: wait for more
            // (`lend_stream` wakes this ask).
            return SubAsk::Wait;
        }
        if self.read_ahead.is_some_and(|bound| self.held() >= bound) {
            self.read_ahead_waiting = true;
            return SubAsk::Wait;
        }
        SubAsk::ReadInput
    }

    #[cold]
    #[inline(never)]
    pub(super) fn replica_input_value(&mut self, k: SubId, value: T) -> SubAsk<T> {
        let id = self.next_id();
        self.pending += 1;
        let blocked = self.cut || (self.solo_active > 0 && self.solo_blocks(k));
        self.slots.push_back(Slot::Lent {
            value,
            holder: None,
            failures: 0,
            solo: false,
            reason: None,
            votes: Some(Box::new(Votes {
                holders: Vec::with_capacity(self.replicas as usize),
                groups: Vec::new(),
                want: self.replicas,
            })),
        });
        self.failed.insert(id);
        self.wake.waiting = true;
        let open = self.subs.get(&k).is_some_and(|s| s.source_open);
        if open && !blocked {
            return SubAsk::Lend(self.lend_copy(k, id));
        }
        if self.source_alive(k) {
            SubAsk::Wait
        } else {
            SubAsk::Done
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{InputEnd, OutputStep};
    use super::*;
    use crate::PoisonPolicy;

    fn lent(ask: SubAsk<u32>) -> Lent<u32> {
        match ask {
            SubAsk::Lend(l) => l,
            other => panic!("expected a value, got {other:?}"),
        }
    }

    fn core(k: u32) -> Core<u32, u32> {
        let mut c = Core::new(true);
        c.set_replicas(k, |a, b| a == b);
        c
    }

    #[test]
    fn with_fewer_sub_streams_than_replicas_nothing_is_read() {
        let mut c = core(3);
        let (a, b) = (c.lend_stream(), c.lend_stream());
        assert_eq!(c.sub_ask(a), SubAsk::Wait);
        c.take_wake();
        let d = c.lend_stream();
        assert!(c.take_wake().waiting, "a new sub-stream wakes the waiting asks");
        assert_eq!(c.sub_ask(a), SubAsk::ReadInput);
        lent(c.on_input_value(a, 5));
        assert_eq!(c.sub_ask(a), SubAsk::ReadInput, "a holds #0: it reads #1");
        lent(c.on_input_value(a, 6));
        assert_eq!(c.state().replicas_waiting, 0, "b and d may take the copies");
        c.on_sub_sink_end(d);
        assert_eq!(c.sub_ask(a), SubAsk::Wait, "two sub-streams left: no new value");
        assert_eq!(c.state().replicas_waiting, 2, "one copy of #0 and one of #1 wait");
        assert_eq!(c.sub_ask(b), SubAsk::Lend(Lent::new(0, 5)));
        assert_eq!(c.sub_ask(b), SubAsk::Lend(Lent::new(1, 6)));
        assert_eq!(c.sub_ask(b), SubAsk::Wait, "b holds both: never twice");
    }

    #[test]
    fn a_lie_is_outvoted_and_counted() {
        let mut c = core(3);
        let subs = [c.lend_stream(), c.lend_stream(), c.lend_stream()];
        let counter = Arc::new(AtomicU64::new(0));
        c.count_disagreements(subs[1], counter.clone());
        lent(c.on_input_value(subs[0], 2));
        for &k in &subs[1..] {
            assert_eq!(c.sub_ask(k), SubAsk::Lend(Lent::new(0, 2)));
        }
        assert_eq!(c.state().in_flight, 1);
        c.on_sub_result(subs[1], 0, 666).unwrap();
        c.on_sub_result(subs[0], 0, 4).unwrap();
        assert_eq!(c.poll_output(), OutputStep::Pending);
        c.on_sub_result(subs[2], 0, 4).unwrap();
        assert_eq!(c.poll_output(), OutputStep::Value(4));
        assert_eq!(counter.load(Ordering::Relaxed), 1);
        assert_eq!(c.disagreements(subs[0]), Some(0));
        c.on_input_end(InputEnd::Done);
        assert_eq!(c.poll_output(), OutputStep::Done);
        assert_eq!(c.remembered(), 0);
    }

    #[test]
    fn the_copy_still_out_at_the_majority_is_late_and_dropped() {
        let mut c = core(3);
        let subs = [c.lend_stream(), c.lend_stream(), c.lend_stream()];
        lent(c.on_input_value(subs[0], 2));
        lent(c.sub_ask(subs[1]));
        lent(c.sub_ask(subs[2]));
        c.on_sub_result(subs[0], 0, 4).unwrap();
        c.on_sub_result(subs[1], 0, 4).unwrap();
        assert_eq!(c.poll_output(), OutputStep::Value(4));
        c.on_sub_result(subs[2], 0, 5).unwrap();
        assert_eq!(c.state().late_results_dropped, 1);
        assert_eq!(c.state().disagreements, 0, "a late answer is not compared");
        assert!(c.on_sub_result(subs[2], 0, 5).is_err(), "but only once");
    }

    #[test]
    fn no_majority_lends_to_a_sub_stream_that_has_not_computed_it() {
        let mut c = core(3);
        c.set_max_retries(Some((1, PoisonPolicy::Fail)));
        let subs = [c.lend_stream(), c.lend_stream(), c.lend_stream()];
        lent(c.on_input_value(subs[0], 2));
        lent(c.sub_ask(subs[1]));
        lent(c.sub_ask(subs[2]));
        for (i, &k) in subs.iter().enumerate() {
            c.on_sub_result(k, 0, 10 + i as u32).unwrap();
        }
        c.on_input_end(InputEnd::Done);
        for &k in &subs {
            assert_eq!(c.sub_ask(k), SubAsk::Wait, "all three computed it");
        }
        assert_eq!(c.state().replicas_waiting, 1);
        let d = c.lend_stream();
        assert_eq!(c.sub_ask(d), SubAsk::Lend(Lent::new(0, 2)));
        c.on_sub_result(d, 0, 11).unwrap();
        assert_eq!(c.poll_output(), OutputStep::Value(11), "two of four agree");
        assert_eq!(c.state().disagreements, 2);
    }

    #[test]
    fn no_majority_past_the_retry_cap_poisons() {
        let mut c = core(3);
        c.set_max_retries(Some((0, PoisonPolicy::Skip)));
        let subs = [c.lend_stream(), c.lend_stream(), c.lend_stream()];
        lent(c.on_input_value(subs[0], 2));
        lent(c.sub_ask(subs[1]));
        lent(c.sub_ask(subs[2]));
        for (i, &k) in subs.iter().enumerate() {
            c.on_sub_result(k, 0, 10 + i as u32).unwrap();
        }
        assert_eq!(c.state().skipped, 1);
        c.on_input_end(InputEnd::Done);
        assert_eq!(c.poll_output(), OutputStep::Done);
    }

    #[test]
    fn a_failed_copy_is_lent_to_another_sub_stream() {
        let mut c = core(2);
        let (a, b, d) = (c.lend_stream(), c.lend_stream(), c.lend_stream());
        lent(c.on_input_value(a, 2));
        lent(c.sub_ask(b));
        c.on_sub_reclaim(b, 0, "timed out".into()).unwrap();
        assert_eq!(c.sub_ask(b), SubAsk::ReadInput, "b may answer late: not #0 again");
        assert_eq!(c.sub_ask(d), SubAsk::Lend(Lent::new(0, 2)));
        c.on_sub_result(b, 0, 4).unwrap(); // late, and a vote
        c.on_sub_result(a, 0, 4).unwrap();
        assert_eq!(c.poll_output(), OutputStep::Value(4));
        assert_eq!(c.state().late_results_accepted, 1);
        c.on_sub_result(d, 0, 4).unwrap(); // late now
        assert_eq!(c.state().late_results_dropped, 1);
    }

    #[test]
    fn a_poisoned_value_releases_its_other_copies() {
        let mut c = core(3);
        c.set_max_retries(Some((0, PoisonPolicy::Skip)));
        let subs = [c.lend_stream(), c.lend_stream(), c.lend_stream()];
        lent(c.on_input_value(subs[0], 2));
        lent(c.sub_ask(subs[1]));
        c.on_sub_reject(subs[0], 0, "bad".into()).unwrap();
        assert_eq!(c.state().skipped, 1);
        assert_eq!(c.state().waiting_to_be_relent, 0);
        c.on_sub_result(subs[1], 0, 4).unwrap(); // late, dropped
        assert_eq!(c.state().late_results_dropped, 1);
        assert_eq!(c.state().in_flight, 0);
    }
}
