//! The deterministic core of stubborn processing: the state shared by the
//! through's input ([`StubbornInput`](crate::StubbornInput)) and the output
//! ([`StubbornSource`](crate::StubbornSource)), and its transitions.
//!
//! Each transition is one `upon` handler of the feedback loop:
//!
//! ```text
//! upon Through:ask            → Feed: a resubmission first, else read upstream, else done / wait
//! upon Upstream:value(v)      → a new position, submitted as attempt 1
//! upon Upstream:done/error    → remember where (and how) upstream ended
//! upon Through:value(tag, r)  → the current submission of `tag.position`? test it : drop it (stale)
//! upon Tester:accept(p)       → p is resolved
//! upon Tester:resubmit(p, v)  → queue v as the next attempt, or fail if the cap is reached
//! ```
//!
//! The poll adapters run these under one lock and wake the returned waker
//! after releasing it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use crate::{StubbornError, StubbornHandle, Tag, Tagged};

enum SlotState<I> {
    /// Waiting in the resubmission queue.
    Queued(I),
    /// In the through; the input is kept for the tester.
    Submitted(I),
    /// A result of the current attempt is being tested.
    Testing,
    /// Accepted, or failed for good.
    Resolved,
}

struct Slot<I> {
    /// The attempt number of the current (or next, when queued) submission.
    attempt: u32,
    state: SlotState<I>,
}

/// What the through's input does with an ask.
pub(crate) enum Feed<I> {
    /// Answer with this (re)submission.
    Submit(Tagged<I>),
    /// Ask upstream (or continue the upstream ask in progress).
    Read,
    /// Nothing more will be submitted: end the through's input.
    End,
    /// Wait for a resubmission (the waker is registered).
    Wait,
}

pub(crate) struct Core<I, E> {
    /// The position of `slots[0]`; the positions before are resolved.
    base: u64,
    slots: VecDeque<Slot<I>>,
    /// Positions waiting for resubmission, lowest first.
    queue: BinaryHeap<Reverse<u64>>,
    /// Values read from upstream (the next position).
    read: u64,
    /// Whether upstream ended: with `done` (`Some(None)`) or an error.
    upstream_end: Option<Option<E>>,
    /// Positions read and not resolved.
    unresolved: u64,
    /// A value failed for good: read no more from upstream.
    stop_reading: bool,
    /// The output ended or was terminated.
    closed: bool,
    /// The waker of the through's ask waiting for a resubmission.
    feeder: Option<Waker>,
    stats: StubbornHandle,
}

impl<I: Clone, E> Core<I, E> {
    pub(crate) fn new(stats: StubbornHandle) -> Self {
        Core {
            base: 0,
            slots: VecDeque::new(),
            queue: BinaryHeap::new(),
            read: 0,
            upstream_end: None,
            unresolved: 0,
            stop_reading: false,
            closed: false,
            feeder: None,
            stats,
        }
    }

    fn slot(&mut self, position: u64) -> Option<&mut Slot<I>> {
        let offset = position.checked_sub(self.base)?;
        self.slots.get_mut(usize::try_from(offset).ok()?)
    }

    fn wake_feeder(&mut self) -> Option<Waker> {
        self.feeder.take()
    }

    /// `upon Through:ask`: resubmissions go first; then upstream is read
    /// (lazily: only for an ask); once upstream ended (or reading stopped)
    /// and every value is resolved, the through's input ends.
    pub(crate) fn feed(&mut self, reading: bool, waker: &Waker) -> Feed<I> {
        if let Some(Reverse(position)) = self.queue.pop() {
            let slot = self.slot(position).expect("queued positions have slots");
            let state = std::mem::replace(&mut slot.state, SlotState::Testing);
            let SlotState::Queued(value) = state else {
                unreachable!("queued positions are in state Queued")
            };
            slot.state = SlotState::Submitted(value.clone());
            let tag = Tag {
                position,
                attempt: slot.attempt,
            };
            let mut stats = self.stats.lock();
            stats.submissions += 1;
            return Feed::Submit(Tagged { tag, value });
        }
        if self.closed {
            return Feed::End;
        }
        if reading || (self.upstream_end.is_none() && !self.stop_reading) {
            return Feed::Read;
        }
        if self.unresolved == 0 {
            return Feed::End;
        }
        match &self.feeder {
            Some(w) if w.will_wake(waker) => {}
            _ => self.feeder = Some(waker.clone()),
        }
        Feed::Wait
    }

    /// `upon Upstream:value(v)`: a new position, submitted as attempt 1.
    pub(crate) fn read(&mut self, value: I) -> Tagged<I> {
        let tag = Tag {
            position: self.read,
            attempt: 1,
        };
        self.read += 1;
        self.unresolved += 1;
        self.slots.push_back(Slot {
            attempt: 1,
            state: SlotState::Submitted(value.clone()),
        });
        let mut stats = self.stats.lock();
        stats.read += 1;
        stats.submissions += 1;
        Tagged { tag, value }
    }

    /// `upon Upstream:done/error`.
    pub(crate) fn upstream_ended(&mut self, error: Option<E>) {
        self.upstream_end = Some(error);
    }

    /// The upstream's error, taken to be delivered.
    pub(crate) fn take_upstream_error(&mut self) -> Option<E> {
        self.upstream_end.as_mut().and_then(Option::take)
    }

    /// `upon Through:value(tag, r)`: the kept input if `tag` is the current
    /// submission of its position (which is then being tested), `None` for a
    /// stale or duplicate result (counted).
    pub(crate) fn result(&mut self, tag: Tag) -> Option<I> {
        if let Some(slot) = self.slot(tag.position) {
            if slot.attempt == tag.attempt && matches!(slot.state, SlotState::Submitted(_)) {
                let SlotState::Submitted(input) = std::mem::replace(&mut slot.state, SlotState::Testing)
                else {
                    unreachable!("checked above")
                };
                return Some(input);
            }
        }
        self.stats.lock().stale += 1;
        None
    }

    fn resolve(&mut self, position: u64) -> Option<Waker> {
        if let Some(slot) = self.slot(position) {
            slot.state = SlotState::Resolved;
        }
        self.unresolved -= 1;
        while matches!(
            self.slots.front(),
            Some(Slot {
                state: SlotState::Resolved,
                ..
            })
        ) {
            self.slots.pop_front();
            self.base += 1;
        }
        if self.unresolved == 0 {
            self.wake_feeder()
        } else {
            None
        }
    }

    /// `upon Tester:accept(p)`.
    pub(crate) fn accept(&mut self, position: u64) -> Option<Waker> {
        self.stats.lock().accepted += 1;
        self.resolve(position)
    }

    /// `upon Tester:resubmit(p, v)`: `v` is queued as the next attempt, or,
    /// if `p` already had `max_attempts` submissions, `p` fails for good and
    /// reading stops.
    pub(crate) fn resubmit(
        &mut self,
        position: u64,
        value: I,
        max_attempts: Option<u32>,
    ) -> (Result<(), StubbornError>, Option<Waker>) {
        let slot = self.slot(position).expect("a tested position has a slot");
        let attempts = slot.attempt;
        if max_attempts.is_some_and(|max| attempts >= max) {
            self.stop_reading = true;
            let waker = self.resolve(position);
            return (Err(StubbornError::RetriesExhausted { position, attempts }), waker);
        }
        slot.attempt += 1;
        slot.state = SlotState::Queued(value);
        self.queue.push(Reverse(position));
        self.stats.lock().resubmissions += 1;
        (Ok(()), self.wake_feeder())
    }

    /// The output ended or was terminated: nothing more will be submitted.
    pub(crate) fn close(&mut self) -> Option<Waker> {
        self.closed = true;
        self.queue.clear();
        self.wake_feeder()
    }

    /// Positions read and not resolved.
    pub(crate) fn unresolved(&self) -> u64 {
        self.unresolved
    }
}

/// The core, shared by the through's input and the output.
pub(crate) struct Shared<I, E> {
    core: Mutex<Core<I, E>>,
}

impl<I: Clone, E> Shared<I, E> {
    pub(crate) fn new(stats: StubbornHandle) -> Arc<Self> {
        Arc::new(Shared {
            core: Mutex::new(Core::new(stats)),
        })
    }

    /// Every transition completes before anything that can panic, so a
    /// poisoned lock still guards consistent state.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Core<I, E>> {
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Wakes `waker`, if any (after the lock was released).
pub(crate) fn wake(waker: Option<Waker>) {
    if let Some(w) = waker {
        w.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn core() -> Core<u64, ()> {
        Core::new(StubbornHandle::default())
    }

    fn submit(feed: Feed<u64>) -> Tagged<u64> {
        match feed {
            Feed::Submit(t) => t,
            _ => panic!("expected a submission"),
        }
    }

    #[test]
    fn resubmissions_go_before_new_values_lowest_position_first() {
        let w = Waker::noop().clone();
        let mut c = core();
        assert!(matches!(c.feed(false, &w), Feed::Read));
        let a = c.read(10);
        let b = c.read(20);
        assert_eq!((a.tag.position, b.tag.position), (0, 1));
        assert_eq!(c.result(b.tag), Some(20));
        assert_eq!(c.result(a.tag), Some(10));
        assert!(c.resubmit(1, 21, None).0.is_ok());
        assert!(c.resubmit(0, 11, None).0.is_ok());
        let first = submit(c.feed(false, &w));
        assert_eq!(
            (first.tag, first.value),
            (
                Tag {
                    position: 0,
                    attempt: 2
                },
                11
            )
        );
        let second = submit(c.feed(true, &w)); // even while reading upstream
        assert_eq!(
            (second.tag, second.value),
            (
                Tag {
                    position: 1,
                    attempt: 2
                },
                21
            )
        );
        assert!(matches!(c.feed(false, &w), Feed::Read));
        assert_eq!(c.stats.stats().resubmissions, 2);
        assert_eq!(c.stats.stats().submissions, 4);
    }

    #[test]
    fn stale_and_duplicate_results_are_dropped_and_counted() {
        let w = Waker::noop().clone();
        let mut c = core();
        let a = c.read(1);
        assert_eq!(c.result(a.tag), Some(1));
        assert_eq!(c.result(a.tag), None); // duplicate while testing
        assert!(c.resubmit(0, 1, None).0.is_ok());
        assert_eq!(c.result(a.tag), None); // stale: attempt 1 was superseded
        let again = submit(c.feed(false, &w));
        assert_eq!(c.result(again.tag), Some(1));
        assert!(c.accept(0).is_none());
        assert_eq!(c.result(again.tag), None); // already accepted
        assert_eq!(
            c.result(Tag {
                position: 9,
                attempt: 1
            }),
            None
        ); // never submitted
        assert_eq!(c.stats.stats().stale, 4);
        assert_eq!(c.stats.stats().accepted, 1);
    }

    #[test]
    fn the_retry_cap_fails_the_value_and_stops_reading() {
        let w = Waker::noop().clone();
        let mut c = core();
        let mut t = c.read(5);
        for attempt in 1..=3 {
            assert_eq!(t.tag.attempt, attempt);
            assert_eq!(c.result(t.tag), Some(5));
            let (verdict, _) = c.resubmit(0, 5, Some(3));
            if attempt < 3 {
                assert!(verdict.is_ok());
                t = submit(c.feed(false, &w));
            } else {
                assert_eq!(
                    verdict,
                    Err(StubbornError::RetriesExhausted {
                        position: 0,
                        attempts: 3
                    })
                );
            }
        }
        // Nothing is unresolved and reading stopped: the through's input ends.
        assert!(matches!(c.feed(false, &w), Feed::End));
    }

    #[test]
    fn after_upstream_ends_the_input_waits_for_resubmissions_then_ends() {
        let w = Waker::noop().clone();
        let mut c = core();
        let t = c.read(7);
        c.upstream_ended(Some(()));
        assert!(matches!(c.feed(false, &w), Feed::Wait));
        assert_eq!(c.result(t.tag), Some(7));
        assert!(c.resubmit(0, 7, None).1.is_some()); // wakes the waiting ask
        let again = submit(c.feed(false, &w));
        assert_eq!(c.result(again.tag), Some(7));
        assert!(matches!(c.feed(false, &w), Feed::Wait));
        assert!(c.accept(0).is_some()); // the last value resolved: wake to end
        assert!(matches!(c.feed(false, &w), Feed::End));
        assert_eq!(c.take_upstream_error(), Some(()));
        assert_eq!(c.unresolved(), 0);
    }
}
