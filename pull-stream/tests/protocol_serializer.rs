//! The protocol checker on the Serializer: its input with a probe (one
//! request at a time), its concurrent-ask output with a monitor that allows
//! concurrent asks but checks that each is answered once, in request order.

mod common;

use std::fmt::Debug;
use std::future::Future;

use common::{silent, trace};
use futures::executor::block_on;
use pando_checker::{Checker, Monitor};
use pando_pull_stream::test_util::yielding;
use pando_pull_stream::{
    Answer, Serializer, Source, SourceExt, Termination, collect, count, from_try_stream, pull, serialize,
    take,
};

/// `serializer.ask()`, recorded on `output`: the request when the ask is made
/// (at once, not when the future is first polled), the answer when the
/// future resolves.
fn ask<'a, S>(
    output: &'a Monitor,
    serializer: &'a Serializer<S>,
) -> impl Future<Output = Answer<S::Item, S::Error>> + 'a
where
    S: Source,
    S::Item: Debug,
    S::Error: Debug + Clone,
{
    let (i, asking) = ask_unrecorded(output, serializer);
    async move {
        let answer = asking.await;
        output.answer(i, &answer);
        answer
    }
}

/// `serializer.ask()`, with only its request recorded on `output`: the
/// caller records the answer, with the returned index.
fn ask_unrecorded<'a, S>(
    output: &Monitor,
    serializer: &'a Serializer<S>,
) -> (u64, impl Future<Output = Answer<S::Item, S::Error>> + 'a)
where
    S: Source,
    S::Error: Clone,
{
    (output.ask(), serializer.ask())
}

/// `serializer.close(request)`, recorded on `output`.
async fn close<S>(
    output: &Monitor,
    serializer: &Serializer<S>,
    request: Termination<S::Error>,
) -> Result<(), S::Error>
where
    S: Source,
    S::Error: Debug,
{
    let j = match &request {
        Termination::Abort => output.abort(),
        Termination::Fail(e) => output.fail(e),
    };
    let end = serializer.close(request).await;
    output.terminated(j, &end);
    end
}

#[test]
fn concurrent_asks_are_answered_in_order_with_one_request_upstream() {
    let checker = Checker::panicking();
    let output = checker.monitor("Output").allow_concurrent_asks();
    let s = Serializer::new(pull!(count::<()>(2), checker.probe("Input")));
    let got = block_on(async { futures::join!(ask(&output, &s), ask(&output, &s), ask(&output, &s)) });
    assert_eq!(got, (Answer::Value(1), Answer::Value(2), Answer::Done));
    checker.assert_ok();
    assert_eq!(s.upstream_requests(), 3);
}

#[test]
fn concurrent_asks_with_a_slow_input_consumed_in_order() {
    // Five asks in flight at once, consumed in request order (as a
    // `FuturesOrdered` does). Any ask that is polled drives the input for the
    // asks before it, and the i-th ask gets the i-th answer of the input.
    use futures::StreamExt;
    use futures::stream::FuturesOrdered;

    let checker = Checker::panicking();
    let output = checker.monitor("Output").allow_concurrent_asks();
    let s = Serializer::new(pull!(count::<()>(3), yielding, checker.probe("Input")));
    let mut asks: FuturesOrdered<_> = (0..5)
        .map(|_| {
            let (i, asking) = ask_unrecorded(&output, &s);
            async move { (i, asking.await) }
        })
        .collect();
    let mut got = vec![];
    block_on(async {
        while let Some((i, answer)) = asks.next().await {
            output.answer(i, &answer);
            got.push(answer);
        }
    });
    assert_eq!(
        got,
        [
            Answer::Value(1),
            Answer::Value(2),
            Answer::Value(3),
            Answer::Done,
            Answer::Done
        ]
    );
    checker.assert_ok();
    // After `done`, the input is not asked again (invariant 1 on the input probe).
    assert_eq!(
        trace(&checker)
            .iter()
            .filter(|e| e.starts_with("Input:ask"))
            .count(),
        4
    );
}

#[test]
fn an_error_from_the_input_answers_every_pending_ask() {
    let checker = Checker::panicking();
    let output = checker.monitor("Output").allow_concurrent_asks();
    let input = from_try_stream(futures::stream::iter([Ok(1), Err("broken")]));
    let s = Serializer::new(pull!(input, checker.probe("Input")));
    let got = block_on(async { futures::join!(ask(&output, &s), ask(&output, &s), ask(&output, &s)) });
    assert_eq!(
        got,
        (Answer::Value(1), Answer::Error("broken"), Answer::Error("broken"))
    );
    checker.assert_ok();
}

#[test]
fn close_with_pending_asks_answers_them_and_aborts_the_input() {
    let checker = Checker::panicking();
    let output = checker.monitor("Output").allow_concurrent_asks();
    let s = Serializer::new(pull!(silent::<u8, ()>(), checker.probe("Input")));
    let got = block_on(async {
        futures::join!(
            ask(&output, &s),
            ask(&output, &s),
            close(&output, &s, Termination::Abort)
        )
    });
    assert_eq!(got, (Answer::Done, Answer::Done, Ok(())));
    checker.assert_ok();
    // The input's ask was in progress: abandoned by the abort (invariant 4's exception).
    assert_eq!(
        trace(&checker).iter().filter(|e| e.starts_with("Input:")).count(),
        3
    );
}

#[test]
fn close_with_a_fail_reaches_the_input() {
    let checker = Checker::panicking();
    let output = checker.monitor("Output").allow_concurrent_asks();
    let s = Serializer::new(pull!(count::<&str>(u64::MAX), checker.probe("Input")));
    block_on(async {
        assert_eq!(ask(&output, &s).await, Answer::Value(1));
        assert_eq!(
            close(&output, &s, Termination::Fail("shutdown")).await,
            Err("shutdown")
        );
    });
    checker.assert_ok();
    assert!(trace(&checker).contains(&r#"Input:fail⟨2, "shutdown"⟩"#.to_string()));
}

#[test]
fn a_cancelled_ask_loses_no_value_and_repeats_no_request() {
    let checker = Checker::panicking();
    let s = Serializer::new(pull!(count::<()>(2), yielding, checker.probe("Input")));
    let output = checker.monitor("Output").allow_concurrent_asks();
    {
        let mut cancelled = Box::pin(s.ask());
        assert!(cancelled.as_mut().poll(&mut common::noop_cx()).is_pending());
    } // dropped while the input's ask is in progress
    let got = block_on(async { futures::join!(ask(&output, &s), ask(&output, &s), ask(&output, &s)) });
    assert_eq!(got, (Answer::Value(1), Answer::Value(2), Answer::Done));
    checker.assert_ok();
}

#[test]
fn the_serializer_as_a_source_in_a_pipeline() {
    let checker = Checker::panicking();
    let got = block_on(pull!(
        count::<()>(5),
        checker.probe("Input"),
        serialize(),
        checker.probe("Output"),
        collect::<Vec<_>>()
    ));
    assert_eq!(got, Ok(vec![1, 2, 3, 4, 5]));
    checker.assert_ok();
}

#[test]
fn the_serializer_as_a_source_ended_early_by_take() {
    let checker = Checker::panicking();
    let got = block_on(pull!(
        count::<()>(u64::MAX),
        checker.probe("Input"),
        serialize(),
        checker.probe("Output"),
        take(2),
        collect::<Vec<_>>()
    ));
    assert_eq!(got, Ok(vec![1, 2]));
    checker.assert_ok();
    let t = trace(&checker);
    assert!(t.contains(&"Input:abort⟨3⟩".to_string()), "{t:?}");
}

#[test]
fn two_handles_as_sources_share_the_input() {
    let checker = Checker::panicking();
    let first = Serializer::new(pull!(count::<()>(3), checker.probe("Input")));
    let second = first.clone();
    let mut a = pull!(first, checker.probe("A"));
    let mut b = pull!(second, checker.probe("B"));
    block_on(async {
        assert_eq!(a.ask().await, Answer::Value(1));
        assert_eq!(b.ask().await, Answer::Value(2));
        assert_eq!(a.ask().await, Answer::Value(3));
        assert_eq!(b.ask().await, Answer::Done);
        assert_eq!(a.ask().await, Answer::Done); // answered without asking the input again
    });
    checker.assert_ok();
}

#[test]
fn a_handle_aborted_while_its_ask_is_pending() {
    let checker = Checker::panicking();
    let s = Serializer::new(pull!(silent::<u8, ()>(), checker.probe("Input")));
    let mut output = pull!(s, checker.probe("Output"));
    assert!(output.poll_ask_unpin(&mut common::noop_cx()).is_pending());
    assert_eq!(block_on(output.abort()), Ok(()));
    checker.assert_ok();
}

/// A source that answers its one ask when `ready` is set, waking only the
/// waker of the latest poll (the usual convention).
struct Gate {
    ready: std::sync::Arc<std::sync::atomic::AtomicBool>,
    waker: Option<std::task::Waker>,
}

impl Source for Gate {
    type Item = u8;
    type Error = ();
    fn poll_ask(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Answer<u8, ()>> {
        if self.ready.load(std::sync::atomic::Ordering::SeqCst) {
            return std::task::Poll::Ready(Answer::Value(7));
        }
        self.waker = Some(cx.waker().clone());
        std::task::Poll::Pending
    }
    fn terminate(self: std::pin::Pin<&mut Self>, _: Termination<()>) {}
    fn poll_terminated(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), ()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Regression (found by the interleaving checker through StreamLender,
/// seed 413 before the lender read its input one value at a time): ask `b`
/// drives the upstream, then ask `a` (earlier) polls it too, so the upstream
/// keeps `a`'s waker; `a` is cancelled. The upstream's answer then wakes a
/// task that is gone: `b` must be woken by the cancellation, or it waits
/// forever.
#[test]
fn cancelling_the_ask_whose_waker_the_upstream_holds_wakes_the_next_one() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    struct Flag(AtomicBool);
    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let ready = Arc::new(AtomicBool::new(false));
    let serializer = Serializer::new(Gate {
        ready: ready.clone(),
        waker: None,
    });
    let (flag_a, flag_b) = (
        Arc::new(Flag(AtomicBool::new(false))),
        Arc::new(Flag(AtomicBool::new(false))),
    );
    let (waker_a, waker_b) = (Waker::from(flag_a.clone()), Waker::from(flag_b.clone()));
    let mut a = Box::pin(serializer.ask());
    let mut b = Box::pin(serializer.ask());
    assert!(b.as_mut().poll(&mut Context::from_waker(&waker_b)).is_pending());
    assert!(a.as_mut().poll(&mut Context::from_waker(&waker_a)).is_pending());
    drop(a);
    ready.store(true, Ordering::SeqCst);
    assert!(
        flag_b.0.load(Ordering::SeqCst),
        "the remaining ask was not woken: it would wait forever"
    );
    assert_eq!(
        b.as_mut().poll(&mut Context::from_waker(&waker_b)),
        Poll::Ready(Answer::Value(7))
    );
}
