//! Property tests of majority voting on the lender's sans-IO core: random
//! sequences of asks, answers, reclaims, rejections, crashes and joins with
//! `k` replicas, where fewer than `⌊k/2⌋+1` sub-streams (ever) lie and all
//! liars agree on the same lie (the worst case). Whatever the sequence, once
//! enough honest sub-streams are there, the output is the input mapped, in
//! order, exactly once; no sub-stream is ever lent a value twice while it
//! holds it or may still answer it; and at most `k` hold a value at once.

use std::collections::{BTreeSet, VecDeque};

use pando_lend_stream::Lent;
use pando_lend_stream::machine::{Core, InputEnd, OutputStep, SubAsk, SubId};
use proptest::prelude::*;

fn f(v: u64) -> u64 {
    v * 10 + 3
}

struct Sub {
    id: SubId,
    liar: bool,
    /// Values it works on (lent, not answered), oldest first.
    held: VecDeque<Lent<u64>>,
    /// Values it answered.
    answered: BTreeSet<u64>,
    done: bool,
}

struct Run {
    core: Core<u64, u64>,
    k: u32,
    n: u64,
    read: u64,
    subs: Vec<Sub>,
    out: Vec<u64>,
    ended: bool,
}

impl Run {
    fn join(&mut self, liar: bool) {
        let id = self.core.lend_stream();
        self.subs.push(Sub {
            id,
            liar,
            held: VecDeque::new(),
            answered: BTreeSet::new(),
            done: false,
        });
    }

    fn ask(&mut self, i: usize) -> Result<bool, TestCaseError> {
        if self.subs[i].done {
            return Ok(false);
        }
        let id = self.subs[i].id;
        let mut answer = self.core.sub_ask(id);
        if answer == SubAsk::ReadInput {
            answer = if self.read < self.n {
                self.read += 1;
                self.core.on_input_value(id, self.read)
            } else {
                self.core.on_input_end(InputEnd::Done);
                self.core.sub_ask(id)
            };
        }
        match answer {
            SubAsk::Lend(lent) => {
                let sub = &self.subs[i];
                prop_assert!(
                    !sub.held.iter().any(|l| l.id == lent.id) && !sub.answered.contains(&lent.id),
                    "value #{} lent twice to sub-stream {}",
                    lent.id,
                    sub.id
                );
                let holders = self
                    .subs
                    .iter()
                    .filter(|s| s.held.iter().any(|l| l.id == lent.id))
                    .count();
                prop_assert!(
                    holders < self.k as usize,
                    "value #{} held by more than k",
                    lent.id
                );
                self.subs[i].held.push_back(lent);
                Ok(true)
            }
            SubAsk::Done => {
                self.subs[i].done = true;
                Ok(true)
            }
            SubAsk::Wait | SubAsk::ReadInput => Ok(false),
        }
    }

    fn answer(&mut self, i: usize) -> Result<bool, TestCaseError> {
        let sub = &mut self.subs[i];
        let Some(lent) = sub.held.pop_front() else {
            return Ok(false);
        };
        sub.answered.insert(lent.id);
        let result = f(lent.value) + u64::from(sub.liar);
        let ok = self.core.on_sub_result(sub.id, lent.id, result);
        prop_assert!(ok.is_ok(), "an answer for a value lent was refused: {ok:?}");
        Ok(true)
    }

    fn drain_output(&mut self) -> Result<(), TestCaseError> {
        loop {
            match self.core.poll_output() {
                OutputStep::Value(r) => self.out.push(r),
                OutputStep::Done => {
                    self.ended = true;
                    return Ok(());
                }
                OutputStep::Pending => return Ok(()),
                other => return Err(TestCaseError::fail(format!("unexpected output {other:?}"))),
            }
        }
    }
}

fn scenario(k: u32, liars: usize, n: u64, ordered: bool, actions: &[(u8, u8)]) -> Result<(), TestCaseError> {
    let mut core = Core::new(ordered);
    core.set_replicas(k, |a, b| a == b);
    let mut run = Run {
        core,
        k,
        n,
        read: 0,
        subs: Vec::new(),
        out: Vec::new(),
        ended: false,
    };
    for j in 0..k as usize {
        run.join(j < liars);
    }
    for &(action, who) in actions {
        if run.subs.is_empty() {
            run.join(false);
        }
        let i = who as usize % run.subs.len();
        match action % 10 {
            0..=3 => {
                run.ask(i)?;
            }
            4..=6 => {
                run.answer(i)?;
            }
            7 => {
                // Reclaimed (a timeout): it may still answer late.
                if let Some(lent) = run.subs[i].held.front().copied() {
                    let id = run.subs[i].id;
                    prop_assert!(run.core.on_sub_reclaim(id, lent.id, "timed out".into()).is_ok());
                }
            }
            8 => {
                // Rejected: it forgets the value.
                if let Some(lent) = run.subs[i].held.pop_front() {
                    let id = run.subs[i].id;
                    prop_assert!(run.core.on_sub_reject(id, lent.id, "failed".into()).is_ok());
                }
            }
            _ => {
                // A crash, and an honest sub-stream joins.
                let sub = run.subs.remove(i);
                run.core.on_sub_sink_end(sub.id);
                run.join(false);
            }
        }
        run.drain_output()?;
    }
    // Enough honest sub-streams: every value gets its majority.
    for _ in 0..k {
        run.join(false);
    }
    let mut idle_rounds = 0;
    for _ in 0..100_000 {
        if run.ended {
            break;
        }
        let mut progressed = false;
        for i in 0..run.subs.len() {
            progressed |= run.answer(i)?;
            progressed |= run.ask(i)?;
        }
        run.drain_output()?;
        if progressed {
            idle_rounds = 0;
        } else {
            idle_rounds += 1;
            prop_assert!(
                idle_rounds < 3,
                "no progress with enough honest sub-streams: {:?}",
                run.core.state()
            );
        }
    }
    prop_assert!(run.ended, "the output never ended: {:?}", run.core.state());
    let expected: Vec<u64> = (1..=n).map(f).collect();
    if ordered {
        prop_assert_eq!(&run.out, &expected);
    } else {
        let mut got = run.out.clone();
        got.sort_unstable();
        prop_assert_eq!(&got, &expected);
    }
    prop_assert_eq!(run.core.state().in_flight, 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_minority_of_colluding_liars_never_wins(
        k in prop_oneof![Just(2u32), Just(3), Just(4), Just(5)],
        liars in 0usize..3,
        n in 0u64..16,
        ordered in any::<bool>(),
        actions in prop::collection::vec((any::<u8>(), any::<u8>()), 0..300),
    ) {
        // Fewer liars than a majority, ever: crashed ones are replaced by honest ones.
        let liars = liars.min((k as usize / 2 + 1) - 1);
        scenario(k, liars, n, ordered, &actions)?;
    }
}
