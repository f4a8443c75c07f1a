//! Loom model of the lender's shared state (the lock in `lender.rs` and the
//! Serializer's lock in `pando-pull-stream`, both switched to loom's by
//! `--cfg loom`): sub-streams on loom threads, each driven by
//! `loom::future::block_on`, with small configurations. Loom explores the
//! interleavings of the threads at every lock; in each, the output must be
//! the input mapped, in order, exactly once.
//!
//! Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p pando-lend-stream --test loom --release
//! ```
#![cfg(loom)]

use loom::future::block_on;
use loom::thread;
use pando_lend_stream::{Lent, StreamLender};
use pando_pull_stream::{Answer, Connect, collect, map, pull, values};

type L = StreamLender<u64, u64, ()>;

/// A worker: squares-and-offsets every value it is lent, until `done`.
fn worker(lender: &L) -> thread::JoinHandle<()> {
    let sub = lender.lend_stream::<()>();
    thread::spawn(move || {
        let worked = block_on(pull!(
            sub.source,
            map(|l: Lent<u64>| l.map(|x| x * 10 + 1)),
            sub.sink
        ));
        assert_eq!(worked, Ok(()));
    })
}

#[test]
fn two_sub_streams_two_values() {
    loom::model(|| {
        let lender = L::new();
        let output = lender.clone().connect(values(vec![1u64, 2]));
        let workers = [worker(&lender), worker(&lender)];
        let out = block_on(collect::<Vec<u64>>().connect(output));
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(out, Ok(vec![11, 21]));
    });
}

#[test]
fn a_sub_stream_crashes_holding_a_value_and_another_takes_it() {
    loom::model(|| {
        let lender = L::new();
        let output = lender.clone().connect(values(vec![1u64, 2]));
        let crashing = lender.lend_stream::<()>();
        let crash = thread::spawn(move || {
            // Takes a value (or learns that there is none left), then drops
            // both halves without a result.
            let answer = block_on(crashing.source.ask());
            assert!(matches!(answer, Answer::Value(_) | Answer::Done));
            drop(crashing);
        });
        let good = worker(&lender);
        let out = block_on(collect::<Vec<u64>>().connect(output));
        crash.join().unwrap();
        good.join().unwrap();
        assert_eq!(out, Ok(vec![11, 21]));
    });
}

#[test]
fn three_sub_streams_three_values_unordered() {
    loom::model(|| {
        let lender = L::unordered();
        let output = lender.clone().connect(values(vec![1u64, 2, 3]));
        let workers = [worker(&lender), worker(&lender), worker(&lender)];
        let mut out = block_on(collect::<Vec<u64>>().connect(output)).unwrap();
        for w in workers {
            w.join().unwrap();
        }
        out.sort_unstable();
        assert_eq!(out, vec![11, 21, 31]);
    });
}
