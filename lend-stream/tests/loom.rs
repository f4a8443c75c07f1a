//! Loom model of the lender's shared state (the lock in `shared.rs` and the
//! input's lock in `input.rs`, both switched to loom's by `--cfg loom`): sub-streams on loom threads, each driven by
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

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use loom::future::block_on;
use loom::sync::{Arc, Mutex};
use loom::thread;
use pando_lend_stream::{Lent, StreamLender};
use pando_pull_stream::{Answer, Connect, Source, Termination, collect, map, pull, values};

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

/// An input that answers `Pending` until a loom thread opens it (and wakes
/// the waker it was last polled with), then gives `1..=end`.
struct Gate {
    open: Arc<Mutex<(bool, Option<Waker>)>>,
    next: u64,
    end: u64,
}

impl Source for Gate {
    type Item = u64;
    type Error = ();
    fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<u64, ()>> {
        {
            let mut open = self.open.lock().unwrap();
            if !open.0 {
                open.1 = Some(cx.waker().clone());
                return Poll::Pending;
            }
        }
        if self.next > self.end {
            return Poll::Ready(Answer::Done);
        }
        self.next += 1;
        Poll::Ready(Answer::Value(self.next - 1))
    }
    fn terminate(self: Pin<&mut Self>, _: Termination<()>) {}
    fn poll_terminated(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Poll::Ready(Ok(()))
    }
}

/// The shared read (issue 8, row 3): a sub-stream polls one ask once while
/// the input is not ready and then stops polling it, without dropping it;
/// the input opens on another thread; the other sub-stream must still get
/// every value (the read is the lender's, and the input's wake reaches every
/// waiting ask through the fan-out waker).
#[test]
fn an_ask_that_stops_being_polled_does_not_stall_the_shared_read() {
    loom::model(|| {
        let open = Arc::new(Mutex::new((false, None::<Waker>)));
        let lender = L::new();
        let output = lender.clone().connect(Gate {
            open: open.clone(),
            next: 1,
            end: 2,
        });
        let stuck = lender.lend_stream::<()>();
        let stuck = thread::spawn(move || {
            let mut ask = stuck.source.ask_owned();
            match Pin::new(&mut ask).poll(&mut Context::from_waker(Waker::noop())) {
                // It got a value after all: it crashes, and the value is lent again.
                Poll::Ready(_) => None,
                // It never polls its ask again, but keeps it (and itself).
                Poll::Pending => Some((stuck, ask)),
            }
        });
        let opener = thread::spawn(move || {
            let waker = {
                let mut open = open.lock().unwrap();
                open.0 = true;
                open.1.take()
            };
            if let Some(w) = waker {
                w.wake();
            }
        });
        let good = worker(&lender);
        let out = block_on(collect::<Vec<u64>>().connect(output));
        let kept = stuck.join().unwrap();
        opener.join().unwrap();
        good.join().unwrap();
        drop(kept);
        assert_eq!(out, Ok(vec![11, 21]));
    });
}
