//! The protocol checker on both interfaces of every through: map, async_map,
//! filter, take, map_err.
//!
//! Every through runs the same scenarios (normal end, `Pending` polls, early
//! termination by `take`, by an abort, by a fail, an abort while an ask is
//! pending, an error from the producer, an infinite source), then the
//! behaviours specific to each.

mod common;

use common::{noop_cx, silent, trace};
use futures::executor::block_on;
use pando_checker::Checker;
use pando_pull_stream::test_util::yielding;
use pando_pull_stream::{
    Answer, SourceExt, async_map, collect, count, filter, from_try_stream, infinite, map, map_err, pull, take,
};

macro_rules! through_scenarios {
    ($name:ident, $through:expr) => {
        mod $name {
            use super::*;

            #[test]
            fn normal_end() {
                let checker = Checker::panicking();
                let got = block_on(pull!(
                    count::<String>(6),
                    checker.probe("Input"),
                    $through,
                    checker.probe("Output"),
                    collect::<Vec<_>>()
                ));
                assert!(got.is_ok());
                checker.assert_ok();
            }

            #[test]
            fn normal_end_with_pending_polls() {
                let checker = Checker::panicking();
                let got = block_on(pull!(
                    count::<String>(6),
                    yielding,
                    checker.probe("Input"),
                    $through,
                    checker.probe("Output"),
                    yielding,
                    collect::<Vec<_>>()
                ));
                assert!(got.is_ok());
                checker.assert_ok();
            }

            #[test]
            fn early_termination_by_take() {
                let checker = Checker::panicking();
                let got = block_on(pull!(
                    count::<String>(u64::MAX),
                    checker.probe("Input"),
                    $through,
                    checker.probe("Output"),
                    take(2),
                    checker.probe("Take"),
                    collect::<Vec<_>>()
                ));
                assert_eq!(got.map(|v| v.len()), Ok(2));
                checker.assert_ok();
                assert!(trace(&checker).iter().any(|e| e.starts_with("Input:abort")));
            }

            #[test]
            fn abort_by_the_consumer() {
                let checker = Checker::panicking();
                let mut output = Box::pin(pull!(
                    count::<String>(100),
                    checker.probe("Input"),
                    $through,
                    checker.probe("Output")
                ));
                block_on(async {
                    assert!(matches!(output.ask().await, Answer::Value(_)));
                    assert_eq!(output.abort().await, Ok(()));
                });
                checker.assert_ok();
            }

            #[test]
            fn fail_by_the_consumer_reaches_the_producer() {
                let checker = Checker::panicking();
                let mut output = Box::pin(pull!(
                    count::<String>(100),
                    checker.probe("Input"),
                    $through,
                    checker.probe("Output")
                ));
                block_on(async {
                    assert!(matches!(output.ask().await, Answer::Value(_)));
                    assert_eq!(output.fail("stop".into()).await, Err("stop".to_string()));
                });
                checker.assert_ok();
                assert!(
                    trace(&checker).contains(&r#"Input:fail⟨2, "stop"⟩"#.to_string()),
                    "{:?}",
                    trace(&checker)
                );
            }

            #[test]
            fn abort_while_an_ask_is_pending() {
                let checker = Checker::panicking();
                let mut output = Box::pin(pull!(
                    silent::<u64, String>(),
                    checker.probe("Input"),
                    $through,
                    checker.probe("Output")
                ));
                assert!(output.poll_ask_unpin(&mut noop_cx()).is_pending());
                assert_eq!(block_on(output.abort()), Ok(()));
                checker.assert_ok();
                let t = trace(&checker);
                assert_eq!(t[0], "Output:ask⟨1⟩");
                assert!(t.contains(&"Input:abort⟨2⟩".to_string()), "{t:?}");
            }

            #[test]
            fn error_from_the_producer_reaches_the_consumer() {
                let checker = Checker::panicking();
                let upstream = from_try_stream(futures::stream::iter(vec![
                    Ok(1u64),
                    Ok(3),
                    Err("boom".to_string()),
                ]));
                let got = block_on(pull!(
                    upstream,
                    checker.probe("Input"),
                    $through,
                    checker.probe("Output"),
                    collect::<Vec<_>>()
                ));
                assert_eq!(got, Err("boom".to_string()));
                checker.assert_ok();
                assert!(trace(&checker).last().unwrap().starts_with("Output:error"));
            }

            #[test]
            fn infinite_source() {
                let checker = Checker::panicking();
                let mut n = 0u64;
                let got = block_on(pull!(
                    infinite(move || {
                        n += 1;
                        n
                    }),
                    checker.probe("Input"),
                    $through,
                    checker.probe("Output"),
                    take(50),
                    collect::<Vec<_>>()
                ));
                assert_eq!(got.map(|v: Vec<_>| v.len()), Ok::<_, String>(50));
                checker.assert_ok();
            }
        }
    };
}

through_scenarios!(map_scenarios, map(|x: u64| x * 2));
through_scenarios!(
    async_map_scenarios,
    async_map(|x: u64| async move { Ok::<_, String>(x * 2) })
);
through_scenarios!(filter_scenarios, filter(|x: &u64| x % 2 == 1));
through_scenarios!(take_scenarios, take(1000));
through_scenarios!(map_err_scenarios, map_err(|e: String| e, |e: String| e));

// ---------------------------------------------------------------------------
// async_map
// ---------------------------------------------------------------------------

#[test]
fn async_map_failure_aborts_the_input_and_errors_the_output() {
    let checker = Checker::panicking();
    let got = block_on(pull!(
        count(10),
        checker.probe("Input"),
        async_map(|x: u64| async move { if x < 3 { Ok(x) } else { Err(format!("{x} failed")) } }),
        checker.probe("Output"),
        collect::<Vec<_>>()
    ));
    assert_eq!(got, Err("3 failed".to_string()));
    checker.assert_ok();
    assert_eq!(
        trace(&checker)[8..],
        [
            "Output:ask⟨3⟩",
            "Input:ask⟨3⟩",
            "Input:value⟨3, 3⟩",
            "Input:abort⟨4⟩",
            "Input:done⟨4⟩",
            r#"Output:error⟨3, "3 failed"⟩"#
        ]
    );
}

#[test]
fn async_map_abort_while_the_function_runs() {
    let checker = Checker::panicking();
    let mut output = Box::pin(pull!(
        count::<()>(10),
        checker.probe("Input"),
        async_map(|_: u64| futures::future::pending::<Result<u64, ()>>()),
        checker.probe("Output")
    ));
    assert!(output.poll_ask_unpin(&mut noop_cx()).is_pending());
    assert_eq!(block_on(output.abort()), Ok(()));
    checker.assert_ok();
    assert_eq!(
        trace(&checker),
        [
            "Output:ask⟨1⟩",
            "Input:ask⟨1⟩",
            "Input:value⟨1, 1⟩",
            "Output:abort⟨2⟩",
            "Input:abort⟨2⟩",
            "Input:done⟨2⟩",
            "Output:done⟨2⟩"
        ]
    );
}

#[test]
fn async_map_with_pending_futures() {
    let checker = Checker::panicking();
    let got = block_on(pull!(
        count::<()>(5),
        checker.probe("Input"),
        async_map(|x: u64| async move {
            common::yield_once().await;
            Ok(x + 1)
        }),
        checker.probe("Output"),
        collect::<Vec<_>>()
    ));
    assert_eq!(got, Ok(vec![2, 3, 4, 5, 6]));
    checker.assert_ok();
}

// ---------------------------------------------------------------------------
// filter
// ---------------------------------------------------------------------------

#[test]
fn filter_asks_upstream_several_times_per_ask() {
    let checker = Checker::panicking();
    let got = block_on(pull!(
        count::<()>(6),
        checker.probe("Input"),
        filter(|x: &u64| x % 3 == 0),
        checker.probe("Output"),
        collect::<Vec<_>>()
    ));
    assert_eq!(got, Ok(vec![3, 6]));
    checker.assert_ok();
    let t = trace(&checker);
    assert_eq!(t.iter().filter(|e| e.starts_with("Input:ask")).count(), 7);
    assert_eq!(t.iter().filter(|e| e.starts_with("Output:ask")).count(), 3);
}

// ---------------------------------------------------------------------------
// take
// ---------------------------------------------------------------------------

#[test]
fn take_zero_aborts_at_the_first_ask() {
    let checker = Checker::panicking();
    let got = block_on(pull!(
        count::<()>(5),
        checker.probe("Input"),
        take(0),
        checker.probe("Output"),
        collect::<Vec<_>>()
    ));
    assert_eq!(got, Ok(vec![]));
    checker.assert_ok();
    assert_eq!(
        trace(&checker),
        [
            "Output:ask⟨1⟩",
            "Input:abort⟨1⟩",
            "Input:done⟨1⟩",
            "Output:done⟨1⟩"
        ]
    );
}

#[test]
fn take_more_than_the_upstream_has() {
    let checker = Checker::panicking();
    let got = block_on(pull!(
        count::<()>(2),
        checker.probe("Input"),
        take(5),
        checker.probe("Output"),
        collect::<Vec<_>>()
    ));
    assert_eq!(got, Ok(vec![1, 2]));
    checker.assert_ok();
    assert!(!trace(&checker).iter().any(|e| e.contains("abort")));
}

#[test]
fn take_confirms_the_upstream_abort_with_pending_polls() {
    let checker = Checker::panicking();
    let got = block_on(pull!(
        count::<()>(u64::MAX),
        yielding,
        checker.probe("Input"),
        take(2),
        checker.probe("Output"),
        collect::<Vec<_>>()
    ));
    assert_eq!(got, Ok(vec![1, 2]));
    checker.assert_ok();
}

#[test]
fn take_then_a_termination_by_the_consumer_while_take_closes() {
    // `take` has started aborting its input for its third ask; the consumer
    // abandons that ask and aborts too (the input is aborted only once).
    let checker = Checker::panicking();
    let input = pull!(count::<()>(u64::MAX), checker.probe("Input"), yielding);
    let mut output = pull!(input, take(2), checker.probe("Output"));
    block_on(async {
        output.ask().await;
        output.ask().await;
    });
    // The third ask: `take` aborts its input; the confirmation is pending.
    assert!(output.poll_ask_unpin(&mut noop_cx()).is_pending());
    assert_eq!(block_on(output.fail(())), Err(()));
    checker.assert_ok();
    let t = trace(&checker);
    assert_eq!(
        t.iter().filter(|e| e.starts_with("Input:abort")).count(),
        1,
        "{t:?}"
    );
}

// ---------------------------------------------------------------------------
// map_err
// ---------------------------------------------------------------------------

#[test]
fn map_err_maps_errors_both_ways() {
    let checker = Checker::panicking();
    let mut output = pull!(
        count::<u16>(10),
        checker.probe("Input"),
        map_err(|code: u16| format!("HTTP {code}"), |_: String| 500u16),
        checker.probe("Output")
    );
    block_on(async {
        output.ask().await;
        assert_eq!(
            output.fail("client gone".into()).await,
            Err("HTTP 500".to_string())
        );
    });
    checker.assert_ok();
    assert_eq!(
        trace(&checker)[4..],
        [
            r#"Output:fail⟨2, "client gone"⟩"#,
            "Input:fail⟨2, 500⟩",
            "Input:error⟨2, 500⟩",
            r#"Output:error⟨2, "HTTP 500"⟩"#
        ]
    );
}

#[test]
fn map_err_maps_the_producers_error() {
    let checker = Checker::panicking();
    let got = block_on(pull!(
        pando_pull_stream::error::<u8, u16>(404),
        checker.probe("Input"),
        map_err(|code: u16| format!("HTTP {code}"), |_: String| 500u16),
        checker.probe("Output"),
        collect::<Vec<_>>()
    ));
    assert_eq!(got, Err("HTTP 404".to_string()));
    checker.assert_ok();
}
