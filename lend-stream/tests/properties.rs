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

/// The hardened lender (issue 8): a read-ahead bound, a retry cap with
/// either poison policy, *culprit* values that every worker rejects,
/// reclaims (timeouts), asks that are polled once and then never again,
/// crashes, `close` and `cut_off`.
mod hardened {
    use super::*;
    use pando_lend_stream::{LendError, PoisonPolicy, Rejecter};
    use std::collections::{BTreeMap, BTreeSet};
    use std::num::NonZeroU64;

    /// Culprits: every worker rejects them.
    fn culprit(v: u64) -> bool {
        v % 5 == 0
    }

    struct W {
        inner: Worker,
        rejecter: Rejecter<u64, u64, ()>,
        /// Asks polled once and never again (not dropped).
        stalled: Vec<OwnedConcurrentAsk<u64, u64, (), ()>>,
    }

    struct H {
        lender: L,
        output: LenderOutput<u64, u64, ()>,
        out: Vec<u64>,
        end: Option<Result<(), LendError<()>>>,
        workers: Vec<W>,
        /// Failures charged to each value (by id), as the model sees them.
        own: BTreeMap<u64, u32>,
        closed: bool,
        cut: bool,
        /// The retry cap.
        max: u32,
    }

    #[derive(Clone, Copy, Debug)]
    enum HOp {
        Join,
        Ask(usize),
        Answer(usize),
        Reclaim(usize),
        Stall(usize),
        Crash(usize),
        Close,
        CutOff,
    }

    fn hop() -> impl Strategy<Value = HOp> {
        prop_oneof![
            2 => Just(HOp::Join),
            6 => (0..8usize).prop_map(HOp::Ask),
            5 => (0..8usize).prop_map(HOp::Answer),
            1 => (0..8usize).prop_map(HOp::Reclaim),
            1 => (0..8usize).prop_map(HOp::Stall),
            1 => (0..8usize).prop_map(HOp::Crash),
            1 => prop_oneof![3 => Just(None), 1 => Just(Some(HOp::Close)), 1 => Just(Some(HOp::CutOff))]
                .prop_map(|o| o.unwrap_or(HOp::Join)),
        ]
    }

    impl H {
        fn new(
            input: Vec<u64>,
            ordered: bool,
            read_ahead: Option<u64>,
            cap: Option<(u32, PoisonPolicy)>,
        ) -> Self {
            let mut lender = if ordered { L::new() } else { L::unordered() };
            if let Some(b) = read_ahead {
                lender = lender.with_read_ahead(NonZeroU64::new(b).unwrap());
            }
            if let Some((max, policy)) = cap {
                lender = lender.with_max_retries(max, policy);
            }
            let output = lender.clone().connect(values(input));
            H {
                lender,
                output,
                out: Vec::new(),
                end: None,
                workers: Vec::new(),
                own: BTreeMap::new(),
                closed: false,
                cut: false,
                max: cap.map_or(u32::MAX, |c| c.0),
            }
        }

        fn settle(&mut self) {
            let mut cx = Context::from_waker(Waker::noop());
            loop {
                let mut progress = false;
                for w in &mut self.workers {
                    let w = &mut w.inner;
                    let mut i = 0;
                    while i < w.asks.len() {
                        match Pin::new(&mut w.asks[i]).poll(&mut cx) {
                            Poll::Pending => i += 1,
                            Poll::Ready(answer) => {
                                drop(w.asks.remove(i));
                                progress = true;
                                if let Answer::Value(l) = answer {
                                    w.held.push_back(l);
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
                if self.end.is_none() {
                    match Pin::new(&mut self.output).poll_ask(&mut cx) {
                        Poll::Ready(Answer::Value(r)) => {
                            self.out.push(r);
                            progress = true;
                        }
                        Poll::Ready(Answer::Done) => self.end = Some(Ok(())),
                        Poll::Ready(Answer::Error(e)) => self.end = Some(Err(e)),
                        Poll::Pending => {}
                    }
                }
                if !progress {
                    return;
                }
            }
        }

        fn worker(&mut self, k: usize) -> Option<&mut W> {
            let n = self.workers.len();
            (n > 0).then(|| &mut self.workers[k % n])
        }

        /// A failure of the value's own.
        fn charge(&mut self, id: u64) {
            *self.own.entry(id).or_default() += 1;
        }

        /// A shared failure: never over the cap.
        fn charge_shared(&mut self, id: u64) {
            let f = self.own.entry(id).or_default();
            if *f < self.max {
                *f += 1;
            }
        }

        /// The worker answers its oldest value: a result, or a rejection for a culprit.
        fn answer(&mut self, k: usize) {
            let Some(w) = self.worker(k) else { return };
            let Some(l) = w.inner.held.pop_front() else { return };
            if culprit(l.value) {
                // false: the value was taken back meanwhile (the sink ended).
                let _ = w.rejecter.reject(l.id, "culprit");
                self.charge(l.id);
            } else {
                w.inner.queue.lock().unwrap().results.push_back(l.map(f));
            }
        }

        fn apply(&mut self, op: HOp) {
            match op {
                HOp::Join => {
                    let inner = Worker::join(&self.lender);
                    let rejecter = inner.source.as_ref().unwrap().rejecter();
                    self.workers.push(W {
                        inner,
                        rejecter,
                        stalled: Vec::new(),
                    });
                }
                HOp::Ask(k) => {
                    if let Some(w) = self.worker(k) {
                        w.inner.ask();
                    }
                }
                HOp::Answer(k) => self.answer(k),
                HOp::Reclaim(k) => {
                    if let Some(w) = self.worker(k) {
                        if let Some(l) = w.inner.held.pop_front() {
                            if w.rejecter.reclaim(l.id, "timed out") {
                                self.charge(l.id);
                            }
                        }
                    }
                }
                HOp::Stall(k) => {
                    if let Some(w) = self.worker(k) {
                        if let Some(ask) = w.inner.asks.pop() {
                            w.stalled.push(ask);
                        }
                    }
                }
                HOp::Crash(k) => {
                    if !self.workers.is_empty() {
                        let n = self.workers.len();
                        let w = self.workers.remove(k % n);
                        let ids: Vec<u64> = w.inner.held.iter().map(|l| l.id).collect();
                        if ids.len() == 1 {
                            self.charge(ids[0]);
                        } else {
                            for id in ids {
                                self.charge_shared(id);
                            }
                        }
                    }
                }
                HOp::Close => {
                    self.closed = true;
                    let close = self.lender.close();
                    let mut cx = Context::from_waker(Waker::noop());
                    assert!(Pin::new(&mut Box::pin(close)).poll(&mut cx).is_ready());
                }
                HOp::CutOff => {
                    self.cut = true;
                    self.lender.cut_off();
                }
            }
            self.settle();
        }

        /// A correct worker (that rejects culprits) joins and works until the output ends.
        fn finish(&mut self) {
            // The remaining workers crash (their stalled asks with them).
            while !self.workers.is_empty() {
                self.apply(HOp::Crash(0));
            }
            let inner = Worker::join(&self.lender);
            let rejecter = inner.source.as_ref().unwrap().rejecter();
            self.workers.push(W {
                inner,
                rejecter,
                stalled: Vec::new(),
            });
            let me = 0;
            self.settle();
            for _ in 0..10_000 {
                if self.end.is_some() {
                    return;
                }
                if self.workers[me].inner.asks.is_empty() {
                    self.workers[me].inner.ask();
                }
                while !self.workers[me].inner.held.is_empty() {
                    self.answer(me);
                }
                self.settle();
            }
            panic!("no progress: the output never ended, {} results", self.out.len());
        }
    }

    fn cap() -> impl Strategy<Value = Option<(u32, PoisonPolicy)>> {
        prop_oneof![
            1 => Just(None),
            3 => (0..3u32, prop_oneof![Just(PoisonPolicy::Fail), Just(PoisonPolicy::Skip)]).prop_map(Some),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn exactly_once_in_order_minus_the_culprits(
            n in 0..16u64,
            ordered in any::<bool>(),
            read_ahead in prop_oneof![Just(None), (1..5u64).prop_map(Some)],
            cap in cap(),
            ops in prop::collection::vec(hop(), 0..80),
        ) {
            // Without a cap, culprits would be retried forever: none then.
            let has_culprits = cap.is_some();
            let input = (1..=n).filter(|&v| has_culprits || !culprit(v)).collect::<Vec<_>>();
            let mut h = H::new(input.clone(), ordered, read_ahead, cap);
            h.settle();
            for op in ops {
                h.apply(op);
            }
            h.finish();
            let max = cap.map_or(u32::MAX, |c| c.0);
            // Values that may legitimately be dropped: culprits, and values
            // whose failures went over the cap (through reclaims, or crashes
            // of a worker holding only them).
            let droppable = |id: u64, v: u64| culprit(v) || h.own.get(&id).is_some_and(|&f| f > max);
            let expected_all: Vec<(u64, u64)> = input.iter().enumerate().map(|(i, &v)| (i as u64, v)).collect();
            let read = h.lender.state().read;
            let mut out = h.out.clone();
            let mut expected: Vec<u64> = Vec::new();
            match &h.end {
                Some(Err(LendError::Poisoned { id, .. })) => {
                    let v = input[*id as usize];
                    prop_assert!(droppable(*id, v), "an innocent value #{} ({}) was poisoned", id, v);
                }
                Some(Err(LendError::Closed { .. })) => prop_assert!(h.cut),
                Some(Ok(())) => {}
                other => prop_assert!(false, "unexpected end {:?}", other),
            }
            // Every output value is a mapped input value read, at most once; every
            // value missing is droppable, or after a poison / close / cut.
            let ended_early = h.closed || h.cut || matches!(h.end, Some(Err(_)));
            let skip = matches!(cap, Some((_, PoisonPolicy::Skip)));
            for &(id, v) in expected_all.iter().take(read as usize) {
                if skip && culprit(v) {
                    continue;
                }
                expected.push(f(v));
                let _ = id;
            }
            if !ordered {
                out.sort_unstable();
                expected.sort_unstable();
            }
            let got: BTreeSet<u64> = out.iter().copied().collect();
            prop_assert_eq!(got.len(), out.len(), "a duplicate result");
            if !ended_early && !skip {
                prop_assert_eq!(&out, &expected);
            } else {
                // Missing values are droppable ones, or come after the end.
                for &(id, v) in expected_all.iter().take(read as usize) {
                    if !got.contains(&f(v)) && !ended_early {
                        prop_assert!(droppable(id, v), "value #{} ({}) is missing", id, v);
                    }
                }
                for r in &out {
                    prop_assert!(expected.contains(r) || !skip, "result {} not expected", r);
                }
                if ordered {
                    let mut sorted = out.clone();
                    sorted.sort_unstable();
                    prop_assert_eq!(&sorted, &out, "out of order");
                }
            }
        }
    }
}
