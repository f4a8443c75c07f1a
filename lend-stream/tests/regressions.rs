//! Regression tests of the lender's async adapters for the rows of issue 8
//! (hardening): each failed before its fix.

use std::future::Future;
use std::num::NonZeroU64;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use pando_lend_stream::{LendError, Lent, PoisonPolicy, StreamLender};
use pando_pull_stream::{
    Answer, Connect, Source, SourceExt, Termination, collect, count, map, pull, take, values,
};

type L = StreamLender<u64, u64, ()>;

/// Polls `f` once with a no-op waker.
fn poll_once<F: Future>(f: F) -> Poll<F::Output> {
    pin!(f).poll(&mut Context::from_waker(Waker::noop()))
}

/// Issue 8, row 5: once the output's consumer stopped early (`take(3)`),
/// `settled()` returns (it never did: the input's end was not recorded).
#[test]
fn settled_returns_once_the_consumer_stopped_early() {
    futures::executor::block_on(async {
        // An endless input, read at most 4 values ahead of the output.
        let lender = L::new().with_read_ahead(NonZeroU64::new(4).unwrap());
        let output = pull!(count(u64::MAX), lender.clone(), take(3), collect::<Vec<_>>());
        let sub = lender.lend_stream::<()>();
        let worker = pull!(sub.source, map(|l: Lent<u64>| l.map(|x| x * 2)), sub.sink);
        let (results, worked) = futures::join!(output, worker);
        assert_eq!(results, Ok(vec![2, 4, 6]));
        assert_eq!(worked, Ok(()));
        assert_eq!(poll_once(lender.settled()), Poll::Ready(()));
    });
}

/// An input that answers `Pending` until `ready` is set (waking the task
/// that polled it last), then counts from 1.
struct Gate {
    ready: Arc<AtomicBool>,
    waker: Arc<Mutex<Option<Waker>>>,
    next: u64,
    end: u64,
}

impl Source for Gate {
    type Item = u64;
    type Error = ();
    fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<u64, ()>> {
        if !self.ready.load(Ordering::SeqCst) {
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            return Poll::Pending;
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

/// A waker that counts its wakes.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Issue 8, row 3 (lender side): sub-stream A starts an ask while the input
/// is not ready, polls it once and never again (without dropping it).
/// Sub-stream B must still be woken when the input becomes ready, and get
/// its values (it waited forever: only A's task was woken by the input, and
/// only A's ask could poll the read).
#[test]
fn a_sub_stream_that_stops_polling_its_ask_does_not_stall_the_others() {
    let ready = Arc::new(AtomicBool::new(false));
    let gate_waker = Arc::new(Mutex::new(None));
    let lender = L::new();
    let mut output = lender.clone().connect(Gate {
        ready: ready.clone(),
        waker: gate_waker.clone(),
        next: 1,
        end: 3,
    });
    let a = lender.lend_stream::<()>();
    let b = lender.lend_stream::<()>();
    let mut stuck = a.source.ask_owned();
    assert!(poll_once(&mut stuck).is_pending());
    let b_woken = Arc::new(Count::default());
    let b_waker = Waker::from(b_woken.clone());
    let mut b_cx = Context::from_waker(&b_waker);
    let mut b_ask = b.source.ask_owned();
    assert!(Pin::new(&mut b_ask).poll(&mut b_cx).is_pending());
    // The input becomes ready and wakes whoever it was polled with.
    ready.store(true, Ordering::SeqCst);
    gate_waker
        .lock()
        .unwrap()
        .take()
        .expect("the input was polled")
        .wake();
    assert!(b_woken.0.load(Ordering::SeqCst) > 0, "B's ask was not woken");
    let Poll::Ready(Answer::Value(first)) = Pin::new(&mut b_ask).poll(&mut b_cx) else {
        panic!("B's ask got no value")
    };
    assert_eq!(first, Lent::new(0, 1));
    // B goes on alone: it gets every other value…
    let mut held = vec![first];
    for id in 1..3 {
        let Poll::Ready(Answer::Value(l)) = Pin::new(&mut b.source.ask_owned()).poll(&mut b_cx) else {
            panic!("B got no value #{id}")
        };
        assert_eq!(l.id, id);
        held.push(l);
    }
    // …answers them, and the output ends.
    let results = values(held.into_iter().map(|l| l.map(|x| x * 10)).collect::<Vec<_>>());
    assert_eq!(poll_once(pull!(results, b.sink)), Poll::Ready(Ok(())));
    // (B's sink ended with its results: B's next ask is `done`, and the
    // input's end is read by whoever asks next: here, A's stuck ask's twin.)
    assert_eq!(poll_once(a.source.ask_owned()), Poll::Ready(Answer::Done));
    let mut out = Vec::new();
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        match Pin::new(&mut output).poll_ask(&mut cx) {
            Poll::Ready(Answer::Value(r)) => out.push(r),
            Poll::Ready(Answer::Done) => break,
            other => panic!("the output did not end: {other:?}"),
        }
    }
    assert_eq!(out, [10, 20, 30]);
    drop(stuck);
}

/// An input that panics when asked for its `at`-th value (from 0).
struct Panicking {
    next: u64,
    at: u64,
    owned: bool,
}

impl Source for Panicking {
    type Item = u64;
    type Error = ();
    fn poll_ask(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Answer<u64, ()>> {
        if self.next == self.at {
            if self.owned {
                panic!("{}", format!("bad line {}", self.at));
            }
            panic!("bad line");
        }
        self.next += 1;
        Poll::Ready(Answer::Value(self.next))
    }
    fn terminate(self: Pin<&mut Self>, _: Termination<()>) {}
    fn poll_terminated(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Poll::Ready(Ok(()))
    }
}

/// Issue 8, row 9: a panic in the input (polled by one sub-stream's ask)
/// ends the output with [`LendError::InputPanicked`] after the results of
/// the values read before it, and the other sub-streams end instead of
/// waiting forever; the panic does not reach the sub-stream's task.
#[test]
fn a_panicking_input_ends_the_output_with_an_error_after_the_values_before_it() {
    for owned in [false, true] {
        futures::executor::block_on(async {
            let lender = L::new();
            let output = pull!(
                Panicking {
                    next: 0,
                    at: 3,
                    owned
                },
                lender.clone(),
                collect::<Vec<_>>()
            );
            let workers = (0..3).map(|_| {
                let sub = lender.lend_stream::<()>();
                pull!(sub.source, map(|l: Lent<u64>| l.map(|x| x * 10)), sub.sink)
            });
            let (out, worked) = futures::join!(output, futures::future::join_all(workers));
            let message = if owned { "bad line 3" } else { "bad line" }.to_owned();
            assert_eq!(out, Err(LendError::InputPanicked { message }));
            assert!(worked.iter().all(Result::is_ok), "{worked:?}");
            assert_eq!(
                lender.state().output,
                3,
                "the values read before the panic were output"
            );
        });
    }
}

/// An endless input (1, 2, 3, …) that records its termination and confirms
/// it only once `confirm` is set.
struct Endless {
    next: u64,
    aborted: Arc<AtomicBool>,
    confirm: Arc<AtomicBool>,
}

impl Source for Endless {
    type Item = u64;
    type Error = ();
    fn poll_ask(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Answer<u64, ()>> {
        assert!(!self.aborted.load(Ordering::SeqCst), "asked after its abort");
        self.next += 1;
        Poll::Ready(Answer::Value(self.next))
    }
    fn terminate(self: Pin<&mut Self>, request: Termination<()>) {
        assert_eq!(request, Termination::Abort);
        self.aborted.store(true, Ordering::SeqCst);
    }
    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        if self.confirm.load(Ordering::SeqCst) {
            Poll::Ready(Ok(()))
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// Checker seeds 20240666, 138 and 88: after answering `Poisoned` (policy
/// `Fail`), the lender kept reading its (endless) input, lending its values,
/// and never ended its sub-streams. Now the error is the output's last
/// answer: the lender aborts its input, answers once the input has
/// confirmed, and its sub-streams end (the values they hold are dropped).
#[test]
fn a_poisoned_value_aborts_the_input_and_ends_the_sub_streams() {
    futures::executor::block_on(async {
        let (aborted, confirm) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let lender = L::new().with_max_retries(0, PoisonPolicy::Fail);
        let input = Endless {
            next: 0,
            aborted: aborted.clone(),
            confirm: confirm.clone(),
        };
        let mut output = pull!(input, lender.clone());
        let bad = lender.lend_stream::<()>();
        let good = lender.lend_stream::<()>();
        let Answer::Value(first) = bad.source.ask().await else {
            panic!("a value")
        };
        let Answer::Value(second) = good.source.ask().await else {
            panic!("a value")
        };
        assert_eq!((first.id, second.id), (0, 1));
        assert!(bad.source.rejecter().reject(0, "bad"));
        {
            let mut ask = output.ask();
            assert!(
                poll_once(&mut ask).is_pending(),
                "the error waits for the input to confirm its abort"
            );
            assert!(aborted.load(Ordering::SeqCst), "the lender aborted its input");
            confirm.store(true, Ordering::SeqCst);
            assert_eq!(
                ask.await,
                Answer::Error(LendError::Poisoned {
                    id: 0,
                    failures: 1,
                    reason: "bad".into()
                })
            );
        }
        assert_eq!(good.source.ask().await, Answer::Done, "nothing more is lent");
        // The lender stops the sub-stream's sink: its result is not taken.
        let worked = pull!(values([second.map(|x| x * 2)]), good.sink).await;
        assert_eq!(worked, Ok(()));
        let s = lender.state();
        assert!(s.input_ended && s.in_flight == 0, "{s:?}");
        assert_eq!(s.read, 2, "nothing was read after the poisoning");
        assert_eq!(poll_once(lender.settled()), Poll::Ready(()));
    });
}
