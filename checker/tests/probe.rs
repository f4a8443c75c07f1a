//! How probes record the poll-based protocol, and that correct pipelines pass.

use std::task::{Context, Waker};

use futures::executor::block_on;
use pando_checker::{Checker, EventKind, Invariant, Mode};
use pando_pull_stream::test_util::yielding;
use pando_pull_stream::{
    Answer, Connect, SourceExt, channel, collect, count, from_stream, map, pull, take, values,
};

fn trace(checker: &Checker) -> Vec<String> {
    checker.trace().iter().map(ToString::to_string).collect()
}

#[test]
fn polls_that_return_pending_continue_the_same_request() {
    let checker = Checker::panicking();
    let source = yielding(values::<_, ()>([7]));
    let got = block_on(pull!(source, checker.probe("Input"), collect::<Vec<_>>()));
    assert_eq!(got, Ok(vec![7]));
    checker.assert_ok();
    assert_eq!(
        trace(&checker),
        [
            "Input:ask⟨1⟩",
            "Input:value⟨1, 7⟩",
            "Input:ask⟨2⟩",
            "Input:done⟨2⟩"
        ]
    );
}

#[test]
fn an_abort_while_an_ask_is_pending_is_allowed() {
    let checker = Checker::panicking();
    let mut input = pull!(
        from_stream::<_, ()>(futures::stream::pending::<u8>()),
        checker.probe("Input")
    );
    let mut cx = Context::from_waker(Waker::noop());
    assert!(input.poll_ask_unpin(&mut cx).is_pending());
    assert_eq!(block_on(input.abort()), Ok(()));
    checker.assert_ok();
    assert_eq!(
        trace(&checker),
        ["Input:ask⟨1⟩", "Input:abort⟨2⟩", "Input:done⟨2⟩"]
    );
}

#[test]
fn a_fail_and_its_error_are_recorded_with_the_error() {
    let checker = Checker::panicking();
    let mut output = pull!(
        count::<String>(5),
        checker.probe("Input"),
        map(|x: u64| x + 1),
        checker.probe("Output")
    );
    block_on(async {
        assert_eq!(output.ask().await, Answer::Value(2));
        assert_eq!(
            output.fail("cancelled".into()).await,
            Err("cancelled".to_string())
        );
    });
    checker.assert_ok();
    assert_eq!(
        trace(&checker),
        [
            "Output:ask⟨1⟩",
            "Input:ask⟨1⟩",
            "Input:value⟨1, 1⟩",
            "Output:value⟨1, 2⟩",
            r#"Output:fail⟨2, "cancelled"⟩"#,
            r#"Input:fail⟨2, "cancelled"⟩"#,
            r#"Input:error⟨2, "cancelled"⟩"#,
            r#"Output:error⟨2, "cancelled"⟩"#,
        ]
    );
}

#[test]
fn a_termination_before_any_ask_is_allowed() {
    let checker = Checker::panicking();
    let mut input = pull!(count::<()>(5), checker.probe("Input"));
    assert_eq!(block_on(input.abort()), Ok(()));
    checker.assert_ok();
}

#[test]
fn events_carry_their_kind_index_and_payload() {
    let checker = Checker::collecting();
    block_on(pull!(
        values::<_, ()>(["x"]),
        checker.probe("Input"),
        collect::<Vec<_>>()
    ))
    .unwrap();
    let events = checker.trace();
    assert_eq!(events.len(), 4);
    assert_eq!(
        events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [EventKind::Ask, EventKind::Value, EventKind::Ask, EventKind::Done]
    );
    assert_eq!(events.iter().map(|e| e.index).collect::<Vec<_>>(), [1, 1, 2, 2]);
    assert_eq!(events[1].payload.as_deref(), Some("\"x\""));
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(k, e)| e.position == k && e.interface == "Input")
    );
}

#[test]
fn a_long_pipeline_interleaves_its_interfaces_in_one_trace() {
    let checker = Checker::collecting();
    let got = block_on(pull!(
        count::<()>(u64::MAX),
        checker.probe("A"),
        map(|x: u64| x * 2),
        checker.probe("B"),
        take(1),
        checker.probe("C"),
        collect::<Vec<_>>(),
    ));
    assert_eq!(got, Ok(vec![2]));
    let report = checker.finish();
    assert!(report.is_ok(), "{report}");
    assert_eq!(
        trace(&checker),
        [
            "C:ask⟨1⟩",
            "B:ask⟨1⟩",
            "A:ask⟨1⟩",
            "A:value⟨1, 1⟩",
            "B:value⟨1, 2⟩",
            "C:value⟨1, 2⟩",
            "C:ask⟨2⟩",
            "B:abort⟨2⟩",
            "A:abort⟨2⟩",
            "A:done⟨2⟩",
            "B:done⟨2⟩",
            "C:done⟨2⟩",
        ]
    );
}

#[test]
fn the_report_lists_violations_then_the_marked_trace() {
    let checker = Checker::collecting();
    let input = checker.monitor("Input");
    let i = input.ask();
    input.done(i);
    input.ask();
    let report = checker.finish();
    assert_eq!(
        report.to_string(),
        "pull-stream protocol: 2 violations\n  \
         1. invariant 1 (no request after done, error, abort or fail) violated on `Input` at event #2: \
         request Input:ask⟨2⟩ after the answer Input:done⟨1⟩\n  \
         2. invariant 2 (every request is eventually answered) violated on `Input` at the end of the test: \
         Input:ask⟨2⟩ was never answered\n\
         trace (3 events):\n  \
         #0  Input:ask⟨1⟩\n  \
         #1  Input:done⟨1⟩\n  \
         #2  Input:ask⟨2⟩   <- invariant 1\n"
    );
    assert_eq!(
        report.invariants(),
        [
            Invariant::NoRequestAfterTermination,
            Invariant::EveryRequestAnswered
        ]
    );
    // The report is an error, e.g. for `?` in tests returning `Result`.
    let as_error: Box<dyn std::error::Error> = Box::new(report);
    assert!(
        as_error
            .to_string()
            .starts_with("pull-stream protocol: 2 violations")
    );
}

#[test]
fn finish_can_be_called_again_and_reports_the_current_state() {
    let checker = Checker::collecting();
    let input = checker.monitor("Input");
    let i = input.ask();
    assert!(checker.finish().violates(Invariant::EveryRequestAnswered));
    input.done(i);
    assert!(checker.finish().is_ok());
    assert!(checker.violations().is_empty());
}

#[test]
fn checkers_are_send_sync_and_clone() {
    fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
    assert_send_sync::<Checker>();
    assert_send_sync::<pando_checker::Monitor>();
    assert_eq!(Checker::new(Mode::Panic).clone().mode(), Mode::Panic);
}

#[test]
fn probes_in_different_threads_share_one_trace() {
    let checker = Checker::panicking();
    let (tx, rx) = channel::<u64, ()>(2);
    let writer = {
        let checker = checker.clone();
        std::thread::spawn(move || block_on(tx.connect(pull!(count(20), checker.probe("Written")))))
    };
    let got = block_on(pull!(rx, checker.probe("Read"), collect::<Vec<_>>()));
    assert_eq!(writer.join().unwrap(), Ok(()));
    assert_eq!(got, Ok((1..=20).collect()));
    checker.assert_ok();
    assert_eq!(checker.trace().len(), 2 * (2 * 21));
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn probes_in_different_tokio_tasks_with_delayed_answers() {
    use std::time::Duration;
    let checker = Checker::panicking();
    let (tx, rx) = channel::<u64, ()>(1);
    // A source whose answers are delayed (paused time: deterministic, instantaneous).
    let slow = futures::stream::unfold(0u64, |n| async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        (n < 5).then_some((n + 1, n + 1))
    });
    let writing = tokio::spawn(tx.connect(pull!(from_stream(slow), checker.probe("Written"))));
    let reading = tokio::spawn(pull!(
        rx,
        checker.probe("Read"),
        take(3),
        checker.probe("Taken"),
        collect::<Vec<_>>()
    ));
    assert_eq!(reading.await.unwrap(), Ok(vec![1, 2, 3]));
    assert_eq!(writing.await.unwrap(), Ok(()));
    checker.assert_ok();
}
