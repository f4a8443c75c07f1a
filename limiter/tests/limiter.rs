//! The Limiter's properties, with the protocol checker on both sides of the
//! Limiter (`Input`, `Output`) and of the wrapped module (`NLInput`,
//! `NLOutput`), and an independent [`Meter`] that asserts, at every ask the
//! Limiter forwards upstream, that the number in process is within the limit.

mod support;

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

use futures::executor::block_on;
use pando_checker::Checker;
use pando_limiter::{Limit, LimitError, ManualClock, limit};
use pando_pull_stream::{
    Answer, SourceExt, async_map, collect, compose, count, duplex_pair, for_each, from_try_stream, map, pull,
    take,
};
use support::{
    BoxedSource, Error, Meter, SeedGuard, SlowConfirm, SplitMix64, boxed, eager, lookahead, position,
};

fn trace(checker: &Checker) -> Vec<String> {
    checker.trace().iter().map(ToString::to_string).collect()
}

/// Values `1..=n`, then `error` if any (else `done`).
fn upto(n: u64, error: Option<&str>) -> BoxedSource {
    let items = (1..=n).map(Ok).chain(error.map(|e| Err(e.to_string())));
    boxed(from_try_stream(futures::stream::iter(items)))
}

#[derive(Default)]
struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn bounded_eagerness_at_every_step_with_random_stalls() {
    for seed in 0..60 {
        let _guard = SeedGuard("bounded_eagerness_at_every_step_with_random_stalls", seed);
        let mut rng = SplitMix64::new(seed);
        let n = rng.range(0, 300);
        let max = rng.range(1, 12) as usize;
        let stall = rng.range(0, 60);

        let checker = Checker::panicking();
        let limited = limit(
            compose!(
                checker.probe("NLInput"),
                eager(stall, seed),
                checker.probe("NLOutput")
            ),
            max,
        )
        .unwrap();
        let handle = limited.handle();
        let meter = Meter::new(handle.clone());
        let got = block_on(pull!(
            boxed(count::<Error>(n)),
            meter.input(),
            checker.probe("Input"),
            limited,
            checker.probe("Output"),
            boxed,
            meter.output(),
            collect::<Vec<_>>(),
        ));
        assert_eq!(got, Ok((1..=n).collect::<Vec<_>>()));
        // The eager module fills up to the limit: the bound is the Limiter's.
        // (The ask answered `done` is in process until answered.)
        assert_eq!(meter.peak(), (n + 1).min(max as u64));
        assert_eq!(meter.in_process(), 0);
        assert_eq!(handle.in_process(), 0);
        assert_eq!(handle.results(), n);
        checker.assert_ok();
    }
}

#[test]
fn without_a_limiter_the_eager_module_is_unbounded() {
    // The instrumentation itself: with nothing to bound it, the eager module
    // takes every value before giving one back.
    let meter = Meter::unchecked();
    let got = block_on(pull!(
        boxed(count::<Error>(100)),
        meter.input(),
        eager(0, 0),
        boxed,
        meter.output(),
        collect::<Vec<_>>(),
    ));
    assert_eq!(got, Ok((1..=100).collect::<Vec<_>>()));
    // All 100 values, and the ask answered `done`.
    assert_eq!(meter.peak(), 101);
}

#[test]
fn once_the_limit_is_reached_asks_follow_outputs() {
    block_on(async {
        let checker = Checker::panicking();
        let limited = limit(eager(0, 0), 4).unwrap();
        let meter = Meter::new(limited.handle());
        let mut output = pull!(
            boxed(count::<Error>(u64::MAX)),
            meter.input(),
            checker.probe("Input"),
            limited,
            checker.probe("Output"),
            boxed,
            meter.output(),
        );
        for m in 1..=50u64 {
            assert_eq!(output.ask().await, Answer::Value(m));
            // Exactly one new value is asked for per result output.
            assert_eq!(meter.asked(), 4 + m - 1, "after {m} results");
        }
        assert_eq!(output.abort().await, Ok(()));
        checker.assert_ok();
    });
}

#[test]
fn the_limit_is_raised_and_lowered_mid_stream() {
    block_on(async {
        let checker = Checker::panicking();
        let limited = limit(
            compose!(checker.probe("NLInput"), eager(0, 0), checker.probe("NLOutput")),
            2,
        )
        .unwrap();
        let handle = limited.handle();
        let meter = Meter::new(handle.clone());
        let mut output = pull!(
            boxed(count::<Error>(u64::MAX)),
            meter.input(),
            checker.probe("Input"),
            limited,
            checker.probe("Output"),
            boxed,
            meter.output(),
        );
        let mut expected = 1..;
        for _ in 0..20 {
            assert_eq!(output.ask().await, Answer::Value(expected.next().unwrap()));
        }
        assert_eq!(meter.peak(), 2);

        handle.update_limit(6).unwrap();
        for _ in 0..20 {
            assert_eq!(output.ask().await, Answer::Value(expected.next().unwrap()));
        }
        assert_eq!(meter.peak(), 6);
        assert_eq!(meter.in_process(), 5);

        // Lower the limit below the number in process: no new ask until
        // the count has dropped under the new limit.
        handle.update_limit(1).unwrap();
        let asks_before = meter.asks().len();
        for _ in 0..20 {
            assert_eq!(output.ask().await, Answer::Value(expected.next().unwrap()));
        }
        let after = &meter.asks()[asks_before..];
        assert!(!after.is_empty());
        assert!(
            after
                .iter()
                .all(|&(in_process, limit)| in_process == 0 && limit == 1),
            "{after:?}"
        );
        // The five values in process came out before the first new ask.
        assert_eq!(meter.asked(), 40 + 5 + after.len() as u64);

        assert_eq!(output.abort().await, Ok(()));
        checker.assert_ok();
    });
}

#[test]
fn raising_the_limit_from_another_thread_releases_a_waiting_ask() {
    // The wrapped module needs 3 values in process to output one; with a
    // limit of 2 it waits until the limit is raised elsewhere.
    let checker = Checker::panicking();
    let limited = limit(
        compose!(checker.probe("NLInput"), lookahead(2), checker.probe("NLOutput")),
        2,
    )
    .unwrap();
    let handle = limited.handle();
    let pipeline = pull!(
        boxed(count::<Error>(10)),
        checker.probe("Input"),
        limited,
        checker.probe("Output"),
        collect::<Vec<_>>(),
    );
    let mut pipeline = pin!(pipeline);
    let flag = Arc::new(Flag::default());
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(pipeline.as_mut().poll(&mut cx).is_pending());
    assert_eq!(handle.in_process(), 2);
    assert!(!flag.0.load(Ordering::SeqCst));

    let remote = handle.clone();
    std::thread::spawn(move || remote.update_limit(3))
        .join()
        .unwrap()
        .unwrap();
    assert!(flag.0.load(Ordering::SeqCst), "the waiting ask was not woken");
    assert_eq!(block_on(pipeline), Ok((1..=10).collect::<Vec<_>>()));
    checker.assert_ok();
}

#[test]
fn a_limit_of_zero_is_rejected() {
    assert_eq!(limit(map(|x: u64| x), 0).err(), Some(LimitError::Zero));
    let limited = limit(map(|x: u64| x), 3).unwrap();
    let handle = limited.handle();
    let err = handle.update_limit(0).unwrap_err();
    assert_eq!(err, LimitError::Zero);
    assert!(err.to_string().contains("limit of 0"), "{err}");
    assert_eq!(handle.limit(), 3);
    assert_eq!(Limit::new(map(|x: u64| x)).handle().limit(), 1);
    assert_eq!(
        Limit::new(map(|x: u64| x)).flow_window(Duration::ZERO).err(),
        Some(LimitError::ZeroWindow)
    );
}

#[test]
fn the_consumer_ends_the_stream_early() {
    for seed in 0..30 {
        let _guard = SeedGuard("the_consumer_ends_the_stream_early", seed);
        let mut rng = SplitMix64::new(seed);
        let max = rng.range(1, 8) as usize;
        let wanted = rng.range(0, 40);
        let checker = Checker::panicking();
        let limited = limit(
            compose!(
                checker.probe("NLInput"),
                eager(rng.range(0, 50), seed),
                checker.probe("NLOutput")
            ),
            max,
        )
        .unwrap();
        let meter = Meter::new(limited.handle());
        let got = block_on(pull!(
            boxed(count::<Error>(u64::MAX)),
            meter.input(),
            checker.probe("Input"),
            limited,
            checker.probe("Output"),
            boxed,
            meter.output(),
            take(wanted),
            collect::<Vec<_>>(),
        ));
        assert_eq!(got, Ok((1..=wanted).collect::<Vec<_>>()));
        let trace = trace(&checker);
        let abort = trace
            .iter()
            .position(|e| e.starts_with("Input:abort"))
            .expect("aborted upstream");
        assert!(trace[abort + 1..].iter().any(|e| e.starts_with("Input:done")));
        checker.assert_ok();
    }
}

#[test]
fn the_consumer_fails_the_stream() {
    block_on(async {
        let checker = Checker::panicking();
        let limited = limit(
            compose!(checker.probe("NLInput"), eager(0, 0), checker.probe("NLOutput")),
            3,
        )
        .unwrap();
        let mut output = pull!(
            boxed(count::<Error>(u64::MAX)),
            checker.probe("Input"),
            limited,
            checker.probe("Output"),
        );
        for i in 1..=5 {
            assert_eq!(output.ask().await, Answer::Value(i));
        }
        assert_eq!(output.fail("stop".to_string()).await, Err("stop".to_string()));
        let trace = trace(&checker);
        assert!(
            trace
                .iter()
                .any(|e| e.starts_with("Input:fail") && e.contains("stop")),
            "{trace:#?}"
        );
        checker.assert_ok();
    });
}

#[test]
fn an_abort_abandons_an_ask_waiting_for_the_limit_and_waits_for_upstream() {
    // Algorithm 9's case: the wrapped module's ask waits for the limit, then
    // the stream is aborted: the abort goes upstream, and is answered only
    // once upstream confirms.
    block_on(async {
        let checker = Checker::panicking();
        let upstream = SlowConfirm::new(u64::MAX, 5);
        let confirmed = upstream.confirmed.clone();
        let limited = limit(
            compose!(checker.probe("NLInput"), lookahead(2), checker.probe("NLOutput")),
            2,
        )
        .unwrap();
        let handle = limited.handle();
        let mut output = pull!(
            boxed(upstream),
            checker.probe("Input"),
            limited,
            checker.probe("Output"),
        );
        assert!(futures::poll!(output.ask()).is_pending());
        assert_eq!(handle.in_process(), 2);
        assert_eq!(output.abort().await, Ok(()));
        assert!(*confirmed.lock().unwrap());
        let trace = trace(&checker);
        // The third ask waited and was never forwarded; the abort (request 4
        // of the wrapped module) is request 3 upstream.
        assert!(trace.contains(&"NLInput:ask⟨3⟩".to_string()), "{trace:#?}");
        assert!(!trace.contains(&"Input:ask⟨3⟩".to_string()), "{trace:#?}");
        let nl_abort = position(&trace, "NLInput:abort⟨4⟩");
        let abort = position(&trace, "Input:abort⟨3⟩");
        let done = position(&trace, "Input:done⟨3⟩");
        let nl_done = position(&trace, "NLInput:done⟨4⟩");
        assert!(nl_abort < abort && abort < done && done < nl_done, "{trace:#?}");
        checker.assert_ok();
    });
}

#[test]
fn the_wrapped_module_ends_early_and_the_limiter_waits_for_upstream() {
    // `take(3)` aborts its input; the original pull-limit answered that abort
    // at once, before upstream confirmed.
    let checker = Checker::panicking();
    let upstream = SlowConfirm::new(100, 5);
    let confirmed = upstream.confirmed.clone();
    let got = block_on(pull!(
        boxed(upstream),
        checker.probe("Input"),
        limit(
            compose!(checker.probe("NLInput"), take(3), checker.probe("NLOutput")),
            2
        )
        .unwrap(),
        checker.probe("Output"),
        collect::<Vec<_>>(),
    ));
    assert_eq!(got, Ok(vec![1, 2, 3]));
    assert!(*confirmed.lock().unwrap());
    let trace = trace(&checker);
    let nl_abort = position(&trace, "NLInput:abort⟨4⟩");
    let abort = position(&trace, "Input:abort⟨4⟩");
    let done = position(&trace, "Input:done⟨4⟩");
    let nl_done = position(&trace, "NLInput:done⟨4⟩");
    assert!(nl_abort < abort && abort < done && done < nl_done, "{trace:#?}");
    checker.assert_ok();
}

#[test]
fn the_producer_ends_normally_with_values_in_process() {
    let checker = Checker::panicking();
    let limited = limit(
        compose!(checker.probe("NLInput"), eager(20, 7), checker.probe("NLOutput")),
        5,
    )
    .unwrap();
    let handle = limited.handle();
    let got = block_on(pull!(
        upto(12, None),
        checker.probe("Input"),
        limited,
        checker.probe("Output"),
        collect::<Vec<_>>(),
    ));
    assert_eq!(got, Ok((1..=12).collect::<Vec<_>>()));
    assert_eq!(handle.in_process(), 0);
    checker.assert_ok();
}

#[test]
fn an_upstream_error_comes_out_after_the_values_in_process() {
    let checker = Checker::panicking();
    let mut seen = Vec::new();
    let end = block_on(pull!(
        upto(10, Some("boom")),
        checker.probe("Input"),
        limit(
            compose!(checker.probe("NLInput"), eager(30, 3), checker.probe("NLOutput")),
            4
        )
        .unwrap(),
        checker.probe("Output"),
        for_each(|x| seen.push(x)),
    ));
    assert_eq!(end, Err("boom".to_string()));
    assert_eq!(seen, (1..=10).collect::<Vec<_>>());
    checker.assert_ok();
}

#[test]
fn an_error_of_the_wrapped_module_terminates_upstream_first() {
    let checker = Checker::panicking();
    let failing = async_map(|x: u64| async move {
        if x == 3 {
            Err(format!("cannot process {x}"))
        } else {
            Ok(x * 10)
        }
    });
    let mut seen = Vec::new();
    let end = block_on(pull!(
        boxed(count::<Error>(u64::MAX)),
        checker.probe("Input"),
        limit(
            compose!(checker.probe("NLInput"), failing, checker.probe("NLOutput")),
            2
        )
        .unwrap(),
        checker.probe("Output"),
        for_each(|x| seen.push(x)),
    ));
    assert_eq!(end, Err("cannot process 3".to_string()));
    assert_eq!(seen, [10, 20]);
    let trace = trace(&checker);
    assert!(position(&trace, "Input:done⟨4⟩") < position(&trace, "Output:error⟨3, \"cannot process 3\"⟩"));
    checker.assert_ok();
}

#[tokio::test(flavor = "current_thread")]
async fn wrapping_a_duplex_loopback() {
    // The connection alone would hold up to 2 × 64 values in flight.
    for max in [1, 3, 10] {
        let checker = Checker::panicking();
        let (near, far) = duplex_pair::<u64, u64, Error>(64);
        let echo = tokio::spawn(pull!(far.source, checker.probe("Far"), far.sink));
        let limited = limit(near, max).unwrap();
        let handle = limited.handle();
        let meter = Meter::new(handle.clone());
        let got = pull!(
            boxed(count::<Error>(500)),
            meter.input(),
            checker.probe("Input"),
            limited,
            checker.probe("Output"),
            boxed,
            meter.output(),
            collect::<Vec<_>>(),
        )
        .await;
        assert_eq!(got, Ok((1..=500).collect::<Vec<_>>()));
        assert_eq!(echo.await.unwrap(), Ok(()));
        assert_eq!(meter.peak(), max as u64);
        assert_eq!(handle.results(), 500);
        checker.assert_ok();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_limited_duplex_with_its_halves_in_different_tasks() {
    let checker = Checker::panicking();
    let (near, far) = duplex_pair::<u64, u64, Error>(64);
    let echo = tokio::spawn(pull!(far.source, checker.probe("Far"), far.sink));
    let limited = limit(near, 2).unwrap().into_duplex();
    let handle = limited.source.handle();
    let meter = Meter::new(handle.clone());
    let sending = tokio::spawn(pull!(
        boxed(count::<Error>(u64::MAX)),
        meter.input(),
        checker.probe("Input"),
        limited.sink,
    ));
    let mut output = pull!(limited.source, checker.probe("Output"), boxed, meter.output());
    let mut expected = 1..;
    for _ in 0..30 {
        assert_eq!(output.ask().await, Answer::Value(expected.next().unwrap()));
    }
    assert_eq!(meter.peak(), 2);
    handle.update_limit(5).unwrap();
    for _ in 0..30 {
        assert_eq!(output.ask().await, Answer::Value(expected.next().unwrap()));
    }
    assert_eq!(meter.peak(), 5);
    handle.update_limit(1).unwrap();
    let asks_before = meter.asks().len();
    for _ in 0..30 {
        assert_eq!(output.ask().await, Answer::Value(expected.next().unwrap()));
    }
    let after = &meter.asks()[asks_before..];
    assert!(!after.is_empty());
    assert!(after.iter().all(|&(in_process, _)| in_process == 0), "{after:?}");
    // Closing the reading half closes the connection: the sending task
    // aborts its (infinite) upstream, the far end sees `done`.
    assert_eq!(output.abort().await, Ok(()));
    assert_eq!(sending.await.unwrap(), Ok(()));
    assert_eq!(echo.await.unwrap(), Ok(()));
    checker.assert_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_duplex_across_threads() {
    let checker = Checker::panicking();
    let (near, far) = duplex_pair::<u64, u64, Error>(16);
    let echo = tokio::spawn(pull!(far.source, map(|x: u64| x * 2), far.sink));
    let limited = limit(near, 4).unwrap().into_duplex();
    let handle = limited.source.handle();
    let sending = tokio::spawn(pull!(count::<Error>(2000), checker.probe("Input"), limited.sink));
    let mut output = pull!(limited.source, checker.probe("Output"));
    let mut expected = 1..;
    let mut changes = SplitMix64::new(42);
    loop {
        match output.ask().await {
            Answer::Value(v) => assert_eq!(v, 2 * expected.next().unwrap()),
            Answer::Done => break,
            Answer::Error(e) => panic!("{e}"),
        }
        if changes.percent(5) {
            handle.update_limit(changes.range(1, 8) as usize).unwrap();
        }
    }
    assert_eq!(expected.next(), Some(2001));
    assert_eq!(sending.await.unwrap(), Ok(()));
    assert_eq!(echo.await.unwrap(), Ok(()));
    assert_eq!(handle.results(), 2000);
    assert_eq!(handle.in_process(), 0);
    checker.assert_ok();
}

#[test]
fn the_flow_rate_is_measured_over_the_recent_window() {
    let clock = ManualClock::new();
    let limited = Limit::new(map({
        let clock = clock.clone();
        move |x: u64| {
            clock.advance(Duration::from_millis(10)); // each result takes 10 ms
            x
        }
    }))
    .clock(clock.clone());
    let handle = limited.handle();
    assert_eq!(handle.flow_rate(), 0.0);
    clock.advance(Duration::from_millis(5));
    // Results at 15 ms, 25 ms, …, 2995 ms.
    let got = block_on(pull!(count::<Error>(299), limited, collect::<Vec<_>>()));
    assert_eq!(got.map(|v| v.len()), Ok(299));
    // The window just before 3 s is [2 s, 3 s): 100 results.
    clock.advance(Duration::from_millis(5) - Duration::from_nanos(1));
    let rate = handle.flow_rate();
    assert!((rate - 100.0).abs() < 1e-6, "rate {rate}");
    assert_eq!(handle.results(), 299);
    // Nothing more comes out: the rate falls to zero, the total stays.
    clock.advance(Duration::from_secs(2));
    assert_eq!(handle.flow_rate(), 0.0);
    assert_eq!(handle.results(), 299);
}

#[test]
fn a_longer_window_averages_over_more_results() {
    let clock = ManualClock::new();
    let limited = Limit::new(map({
        let clock = clock.clone();
        move |x: u64| {
            // 1 result per 100 ms for the first 40, then 1 per 10 ms.
            clock.advance(Duration::from_millis(if x <= 40 { 100 } else { 10 }));
            x
        }
    }))
    .clock(clock.clone())
    .flow_window(Duration::from_secs(8))
    .unwrap();
    let handle = limited.handle();
    // Results at 0.1 s, …, 4.0 s, then 4.01 s, …, 7.99 s.
    block_on(pull!(count::<Error>(439), limited, collect::<Vec<_>>())).unwrap();
    clock.advance(Duration::from_millis(10) - Duration::from_nanos(1));
    // The window is [0 s, 8 s): every result, where a 1 s window would see 100/s.
    let rate = handle.flow_rate();
    assert!((rate - 439.0 / 8.0).abs() < 1e-6, "rate {rate}");
}

#[test]
fn random_terminations_and_errors_keep_the_protocol() {
    for seed in 0..300 {
        let _guard = SeedGuard("random_terminations_and_errors_keep_the_protocol", seed);
        let mut rng = SplitMix64::new(seed);
        let max = rng.range(1, 8) as usize;
        let n = rng.range(0, 60);
        let upstream_error = rng.percent(30).then_some("upstream failed");
        let hold = if rng.percent(30) {
            rng.range(0, max as u64 - 1) as usize
        } else {
            0
        };
        let inner = support::EagerModule {
            hold,
            stall: rng.range(0, 50),
            seed,
        };
        let consumer = rng.range(0, 2); // 0: read all, 1: abort, 2: fail
        let stop_after = rng.range(0, n + 1);

        let checker = Checker::panicking();
        let limited = limit(
            compose!(checker.probe("NLInput"), inner, checker.probe("NLOutput")),
            max,
        )
        .unwrap();
        let meter = Meter::new(limited.handle());
        let mut output = pull!(
            upto(n, upstream_error),
            meter.input(),
            checker.probe("Input"),
            limited,
            checker.probe("Output"),
            boxed,
            meter.output(),
        );
        block_on(async {
            let mut got = Vec::new();
            loop {
                if consumer > 0 && got.len() as u64 == stop_after {
                    let end = if consumer == 1 {
                        output.abort().await
                    } else {
                        output.fail("consumer failed".into()).await
                    };
                    match consumer {
                        1 => assert_eq!(end, Ok(())),
                        _ => assert_eq!(end, Err("consumer failed".into())),
                    }
                    break;
                }
                match output.ask().await {
                    Answer::Value(v) => got.push(v),
                    Answer::Done => {
                        assert_eq!(upstream_error, None);
                        break;
                    }
                    Answer::Error(e) => {
                        assert_eq!(Some(e.as_str()), upstream_error);
                        break;
                    }
                }
            }
            let expected: Vec<u64> = (1..=got.len() as u64).collect();
            assert_eq!(got, expected);
            assert!(got.len() as u64 <= n);
        });
        checker.assert_ok();
    }
}
