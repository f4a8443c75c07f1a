//! The protocol checker on the output of every source: values, count,
//! infinite, empty, error. Normal end, early termination by the consumer
//! (take, abort, fail), errors, infinite sources.

mod common;

use common::trace;
use futures::executor::block_on;
use pando_checker::Checker;
use pando_pull_stream::test_util::yielding;
use pando_pull_stream::{
    Answer, SourceExt, collect, count, drain, empty, error, infinite, pull, take, values,
};

#[test]
fn values_ends_normally() {
    let checker = Checker::panicking();
    let got = block_on(pull!(
        values::<_, ()>([1, 2, 3]),
        checker.probe("Values"),
        collect::<Vec<_>>()
    ));
    assert_eq!(got, Ok(vec![1, 2, 3]));
    checker.assert_ok();
    assert_eq!(trace(&checker).last().unwrap(), "Values:done⟨4⟩");
}

#[test]
fn values_aborted_early_by_the_consumer() {
    let checker = Checker::panicking();
    let mut s = pull!(values::<_, ()>(0..10), checker.probe("Values"));
    block_on(async {
        assert_eq!(s.ask().await, Answer::Value(0));
        assert_eq!(s.abort().await, Ok(()));
    });
    checker.assert_ok();
    assert_eq!(trace(&checker)[2..], ["Values:abort⟨2⟩", "Values:done⟨2⟩"]);
}

#[test]
fn values_failed_by_the_consumer() {
    let checker = Checker::panicking();
    let mut s = pull!(values(0..10), checker.probe("Values"));
    block_on(async {
        s.ask().await;
        assert_eq!(s.fail("stop").await, Err("stop"));
    });
    checker.assert_ok();
    assert_eq!(
        trace(&checker)[2..],
        [r#"Values:fail⟨2, "stop"⟩"#, r#"Values:error⟨2, "stop"⟩"#]
    );
}

#[test]
fn values_terminated_before_any_ask() {
    let checker = Checker::panicking();
    let mut s = pull!(values::<_, ()>(0..10), checker.probe("Values"));
    assert_eq!(block_on(s.abort()), Ok(()));
    checker.assert_ok();
}

#[test]
fn count_ends_normally_through_pending_polls() {
    let checker = Checker::panicking();
    let got = block_on(pull!(
        count::<()>(4),
        checker.probe("Count"),
        yielding,
        checker.probe("Yielding"),
        drain()
    ));
    assert_eq!(got, Ok(()));
    checker.assert_ok();
}

#[test]
fn count_zero_is_done_at_once() {
    let checker = Checker::panicking();
    let got = block_on(pull!(count::<()>(0), checker.probe("Count"), collect::<Vec<_>>()));
    assert_eq!(got, Ok(vec![]));
    checker.assert_ok();
    assert_eq!(trace(&checker), ["Count:ask⟨1⟩", "Count:done⟨1⟩"]);
}

#[test]
fn count_is_almost_infinite_and_taken_early() {
    let checker = Checker::panicking();
    let got = block_on(pull!(
        count::<()>(u64::MAX),
        checker.probe("Count"),
        take(5),
        checker.probe("Take"),
        collect::<Vec<_>>()
    ));
    assert_eq!(got, Ok(vec![1, 2, 3, 4, 5]));
    checker.assert_ok();
    assert!(trace(&checker).contains(&"Count:abort⟨6⟩".to_string()));
}

#[test]
fn count_failed_by_the_consumer() {
    let checker = Checker::panicking();
    let mut s = pull!(count::<u8>(3), checker.probe("Count"));
    block_on(async {
        assert_eq!(s.ask().await, Answer::Value(1));
        assert_eq!(s.fail(9).await, Err(9));
    });
    checker.assert_ok();
}

#[test]
fn infinite_is_taken_early() {
    let checker = Checker::panicking();
    let mut n = 0;
    let got = block_on(pull!(
        infinite::<_, _, ()>(move || {
            n += 1;
            n
        }),
        checker.probe("Infinite"),
        take(1000),
        checker.probe("Take"),
        drain()
    ));
    assert_eq!(got, Ok(()));
    checker.assert_ok();
}

#[test]
fn infinite_aborted_and_failed_by_the_consumer() {
    for fail in [false, true] {
        let checker = Checker::panicking();
        let mut s = pull!(infinite(|| 'x'), checker.probe("Infinite"));
        block_on(async {
            assert_eq!(s.ask().await, Answer::Value('x'));
            assert_eq!(s.ask().await, Answer::Value('x'));
            if fail {
                assert_eq!(s.fail("enough").await, Err("enough"));
            } else {
                assert_eq!(s.abort().await, Ok(()));
            }
        });
        checker.assert_ok();
    }
}

#[test]
fn empty_is_done_at_once() {
    let checker = Checker::panicking();
    let got = block_on(pull!(
        empty::<u8, ()>(),
        checker.probe("Empty"),
        collect::<Vec<_>>()
    ));
    assert_eq!(got, Ok(vec![]));
    checker.assert_ok();
    assert_eq!(trace(&checker), ["Empty:ask⟨1⟩", "Empty:done⟨1⟩"]);
}

#[test]
fn empty_aborted_before_any_ask() {
    let checker = Checker::panicking();
    let mut s = pull!(empty::<u8, &str>(), checker.probe("Empty"));
    assert_eq!(block_on(s.fail("x")), Err("x"));
    checker.assert_ok();
}

#[test]
fn error_ends_with_its_error() {
    let checker = Checker::panicking();
    let got = block_on(pull!(
        error::<u8, _>("no disk"),
        checker.probe("Error"),
        collect::<Vec<_>>()
    ));
    assert_eq!(got, Err("no disk"));
    checker.assert_ok();
    assert_eq!(trace(&checker), ["Error:ask⟨1⟩", r#"Error:error⟨1, "no disk"⟩"#]);
}

#[test]
fn error_aborted_before_any_ask_confirms_normally() {
    let checker = Checker::panicking();
    let mut s = pull!(error::<u8, _>("no disk"), checker.probe("Error"));
    assert_eq!(block_on(s.abort()), Ok(()));
    checker.assert_ok();
}
