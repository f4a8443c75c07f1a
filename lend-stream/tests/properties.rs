//! Property tests of the StreamLender: random scenarios of sub-stream
//! crashes (dropped mid-value), joins at random times, and terminations
//! from a sub-stream's input side (abort, with late results still allowed)
//! or output side (its results end first), run by a deterministic scheduler
//! of our own. Whatever the scenario, once a correct sub-stream joins, the
//! output is the input mapped, in order (or, unordered, the same multiset),
//! exactly once. And the adaptive property: a sub-stream that asks twice as
//! often gets about twice as many values.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use pando_lend_stream::{LenderOutput, Lent, OwnedConcurrentAsk, StreamLender, SubSinkFuture, SubSource};
use pando_pull_stream::{Answer, Connect, Source, Termination, values};
use proptest::prelude::*;

type L = StreamLender<u64, u64, ()>;

/// The work of every sub-stream.
fn f(v: u64) -> u64 {
    v * 10 + 3
}

/// What a worker's results source has to give.
#[derive(Default)]
struct Queue {
    results: VecDeque<Lent<u64>>,
    done: bool,
}

/// A sub-stream's results, fed by its worker.
struct Results(Arc<Mutex<Queue>>);

impl Source for Results {
    type Item = Lent<u64>;
    type Error = ();
    fn poll_ask(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Answer<Lent<u64>, ()>> {
        let mut q = self.0.lock().unwrap();
        match q.results.pop_front() {
            Some(r) => Poll::Ready(Answer::Value(r)),
            None if q.done => Poll::Ready(Answer::Done),
            None => Poll::Pending,
        }
    }
    fn terminate(self: Pin<&mut Self>, _: Termination<()>) {}
    fn poll_terminated(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Poll::Ready(Ok(()))
    }
}

/// A worker's sink future.
type Sink = SubSinkFuture<Results, u64, u64, ()>;

struct Worker {
    source: Option<SubSource<u64, u64, (), ()>>,
    asks: Vec<OwnedConcurrentAsk<u64, u64, (), ()>>,
    held: VecDeque<Lent<u64>>,
    queue: Arc<Mutex<Queue>>,
    sink: Option<Pin<Box<Sink>>>,
    got: u64,
}

impl Worker {
    fn join(lender: &L) -> Self {
        let sub = lender.lend_stream::<()>();
        let queue = Arc::new(Mutex::new(Queue::default()));
        Worker {
            source: Some(sub.source),
            asks: Vec::new(),
            held: VecDeque::new(),
            sink: Some(Box::pin(sub.sink.connect(Results(queue.clone())))),
            queue,
            got: 0,
        }
    }

    fn ask(&mut self) {
        if let Some(source) = &self.source {
            self.asks.push(source.ask_owned());
        }
    }

    /// Returns the result of its oldest value.
    fn answer(&mut self) {
        if let Some(l) = self.held.pop_front() {
            self.queue.lock().unwrap().results.push_back(l.map(f));
        }
    }
}

/// The deterministic scheduler: the lender's output and every worker,
/// polled until nothing changes.
struct World {
    lender: L,
    output: LenderOutput<u64, u64, ()>,
    out: Vec<u64>,
    ended: bool,
    workers: Vec<Worker>,
}

impl World {
    fn new(n: u64, ordered: bool) -> Self {
        let lender = if ordered { L::new() } else { L::unordered() };
        let output = lender.clone().connect(values((1..=n).collect::<Vec<_>>()));
        World {
            lender,
            output,
            out: Vec::new(),
            ended: false,
            workers: Vec::new(),
        }
    }

    fn settle(&mut self) {
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            let mut progress = false;
            for w in &mut self.workers {
                let mut i = 0;
                while i < w.asks.len() {
                    match Pin::new(&mut w.asks[i]).poll(&mut cx) {
                        Poll::Pending => i += 1,
                        Poll::Ready(answer) => {
                            drop(w.asks.remove(i));
                            progress = true;
                            if let Answer::Value(l) = answer {
                                w.held.push_back(l);
                                w.got += 1;
                            }
                        }
                    }
                }
                if let Some(sink) = &mut w.sink {
                    if sink.as_mut().poll(&mut cx).is_ready() {
                        w.sink = None;
                        progress = true;
                    }
                }
            }
            if !self.ended {
                match Pin::new(&mut self.output).poll_ask(&mut cx) {
                    Poll::Ready(Answer::Value(r)) => {
                        self.out.push(r);
                        progress = true;
                    }
                    Poll::Ready(Answer::Done) => self.ended = true,
                    Poll::Ready(Answer::Error(e)) => panic!("the output failed: {e:?}"),
                    Poll::Pending => {}
                }
            }
            if !progress {
                return;
            }
        }
    }

    fn worker(&mut self, k: usize) -> Option<&mut Worker> {
        let n = self.workers.len();
        (n > 0).then(|| &mut self.workers[k % n])
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Join => {
                let w = Worker::join(&self.lender);
                self.workers.push(w);
            }
            Op::Ask(k) => {
                if let Some(w) = self.worker(k) {
                    w.ask();
                }
            }
            Op::Answer(k) => {
                if let Some(w) = self.worker(k) {
                    w.answer();
                }
            }
            Op::Crash(k) => {
                if !self.workers.is_empty() {
                    let n = self.workers.len();
                    drop(self.workers.remove(k % n));
                }
            }
            Op::AbortInput(k) => {
                if let Some(w) = self.worker(k) {
                    if let Some(mut source) = w.source.take() {
                        // The values it holds are lent again; it may still
                        // answer them (late results).
                        Pin::new(&mut source).terminate(Termination::Abort);
                        let mut cx = Context::from_waker(Waker::noop());
                        assert_eq!(
                            Pin::new(&mut source).poll_terminated(&mut cx),
                            Poll::Ready(Ok(()))
                        );
                    }
                }
            }
            Op::EndOutput(k) => {
                if let Some(w) = self.worker(k) {
                    w.queue.lock().unwrap().done = true;
                }
            }
        }
        self.settle();
    }

    /// The remaining workers stop (crash), and a correct one joins and
    /// works until the output ends.
    fn finish(&mut self) {
        self.workers.clear();
        self.workers.push(Worker::join(&self.lender));
        self.settle();
        for _ in 0..10_000 {
            if self.ended {
                return;
            }
            let w = &mut self.workers[0];
            if w.asks.is_empty() {
                w.ask();
            }
            while !w.held.is_empty() {
                w.answer();
            }
            self.settle();
        }
        panic!("no progress: the output never ended, {} results", self.out.len());
    }
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Join,
    Ask(usize),
    Answer(usize),
    Crash(usize),
    AbortInput(usize),
    EndOutput(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Join),
        6 => (0..8usize).prop_map(Op::Ask),
        5 => (0..8usize).prop_map(Op::Answer),
        1 => (0..8usize).prop_map(Op::Crash),
        1 => (0..8usize).prop_map(Op::AbortInput),
        1 => (0..8usize).prop_map(Op::EndOutput),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ordered_output_is_the_input_mapped_in_order_exactly_once(
        n in 0..16u64,
        ops in prop::collection::vec(op(), 0..80),
    ) {
        let mut world = World::new(n, true);
        world.settle();
        for op in ops {
            world.apply(op);
        }
        world.finish();
        prop_assert_eq!(&world.out, &(1..=n).map(f).collect::<Vec<_>>());
    }

    #[test]
    fn unordered_output_is_the_input_mapped_exactly_once(
        n in 0..16u64,
        ops in prop::collection::vec(op(), 0..80),
    ) {
        let mut world = World::new(n, false);
        world.settle();
        for op in ops {
            world.apply(op);
        }
        world.finish();
        let mut out = world.out.clone();
        out.sort_unstable();
        prop_assert_eq!(out, (1..=n).map(f).collect::<Vec<_>>());
    }
}

/// Adaptive (Abstraction 2, property 7): with the same processing, a
/// sub-stream that asks twice as often gets about twice as many values.
#[test]
fn a_sub_stream_that_asks_twice_as_often_gets_about_twice_as_many_values() {
    let mut world = World::new(3_000, true);
    world.apply(Op::Join);
    world.apply(Op::Join);
    for _ in 0..600 {
        for (k, asks) in [(0, 2), (1, 1)] {
            for _ in 0..asks {
                world.workers[k].ask();
            }
            world.settle();
            while !world.workers[k].held.is_empty() {
                world.workers[k].answer();
            }
            world.settle();
        }
    }
    let (fast, slow) = (world.workers[0].got, world.workers[1].got);
    assert_eq!(fast + slow, 1_800);
    let ratio = fast as f64 / slow as f64;
    assert!(
        (1.8..=2.2).contains(&ratio),
        "fast {fast}, slow {slow}: ratio {ratio:.2}"
    );
    // And the results so far are in order.
    assert_eq!(world.out, (1..=1_800).map(f).collect::<Vec<_>>());
}
