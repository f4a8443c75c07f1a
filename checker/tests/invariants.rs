//! For each invariant, a deliberately broken module, and the checker catching it.
//!
//! Invariants 1, 2, 6 and the two extra checks are broken by poll-level
//! modules observed by probes. Invariants 3, 4 and 5 cannot be broken by a
//! `&mut` consumer of a `Source` (the type system allows one outstanding
//! request, answered once, in order); they are broken by an event-driven
//! (sans-IO) module core, a serializer in the style of the seeds' Algorithm
//! 13, whose interfaces are observed by monitors.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::executor::block_on;
use pando_checker::{Checker, Invariant, Monitor, Report};
use pando_pull_stream::{Answer, Source, SourceExt, Termination, collect, count, pull, values};

// ---------------------------------------------------------------------------
// Broken poll-level modules
// ---------------------------------------------------------------------------

/// A sink that reads until `done`, then asks once more (invariant 1).
async fn asks_after_done<S: Source + Unpin>(mut source: S) -> Answer<S::Item, S::Error> {
    while let Answer::Value(_) = source.ask().await {}
    source.ask().await
}

/// A sink that reads one value, aborts, then asks again (invariant 1).
async fn asks_after_abort<S: Source + Unpin>(mut source: S) -> Answer<S::Item, S::Error> {
    source.ask().await;
    let _ = source.abort().await;
    source.ask().await
}

/// A source that never answers and never wakes its consumer (invariant 2).
struct NeverAnswers;

impl Source for NeverAnswers {
    type Item = u32;
    type Error = ();
    fn poll_ask(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Answer<u32, ()>> {
        Poll::Pending
    }
    fn terminate(self: Pin<&mut Self>, _: Termination<()>) {}
    fn poll_terminated(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Poll::Pending
    }
}

/// A through that confirms an abort at once without terminating its upstream
/// (invariant 6).
struct SwallowsAbort<S: Source> {
    upstream: S,
    termination: Option<Termination<S::Error>>,
}

impl<S: Source + Unpin> Source for SwallowsAbort<S> {
    type Item = S::Item;
    type Error = S::Error;
    fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>> {
        Pin::new(&mut self.upstream).poll_ask(cx)
    }
    fn terminate(mut self: Pin<&mut Self>, request: Termination<S::Error>) {
        self.termination = Some(request); // the upstream is left running
    }
    fn poll_terminated(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Poll::Ready(self.termination.take().map_or(Ok(()), Termination::confirm))
    }
}

impl<S: Source> Unpin for SwallowsAbort<S> {}

/// A through that passes its upstream's `error` on as `done`, and leaves
/// nothing wrong on the protocol level; used to show that a *correct*
/// termination is not flagged.
fn error_to_done<S: Source + Unpin>(upstream: S) -> impl Source<Item = S::Item, Error = S::Error> + Unpin {
    struct ErrorToDone<S>(S);
    impl<S: Source + Unpin> Source for ErrorToDone<S> {
        type Item = S::Item;
        type Error = S::Error;
        fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>> {
            Poll::Ready(match std::task::ready!(Pin::new(&mut self.0).poll_ask(cx)) {
                Answer::Error(_) => Answer::Done,
                other => other,
            })
        }
        fn terminate(mut self: Pin<&mut Self>, request: Termination<S::Error>) {
            Pin::new(&mut self.0).terminate(request)
        }
        fn poll_terminated(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
            Pin::new(&mut self.0).poll_terminated(cx)
        }
    }
    ErrorToDone(upstream)
}

/// A source that keeps answering values after it was terminated (extra check:
/// no value after termination).
struct ValuesAfterTermination {
    next: u32,
    terminated: bool,
}

impl Source for ValuesAfterTermination {
    type Item = u32;
    type Error = ();
    fn poll_ask(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Answer<u32, ()>> {
        self.next += 1;
        Poll::Ready(Answer::Value(self.next))
    }
    fn terminate(mut self: Pin<&mut Self>, _: Termination<()>) {
        self.terminated = true;
    }
    fn poll_terminated(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Poll::Ready(Ok(()))
    }
}

fn violation_on(report: &Report, invariant: Invariant) -> &pando_checker::Violation {
    report
        .violations()
        .iter()
        .find(|v| v.invariant == invariant)
        .unwrap_or_else(|| panic!("no violation of {invariant} in:\n{report}"))
}

// ---------------------------------------------------------------------------
// Invariant 1: no request after done/error or after abort/fail
// ---------------------------------------------------------------------------

#[test]
fn invariant_1_ask_after_done_is_caught() {
    let checker = Checker::collecting();
    let last = block_on(pull!(
        values::<_, ()>([1, 2]),
        checker.probe("Input"),
        asks_after_done
    ));
    assert_eq!(last, Answer::Done);
    let report = checker.finish();
    assert_eq!(
        report.invariants(),
        [Invariant::NoRequestAfterTermination],
        "{report}"
    );
    let v = violation_on(&report, Invariant::NoRequestAfterTermination);
    assert_eq!(v.interface, "Input");
    assert_eq!(v.position, Some(6));
    assert_eq!(v.message, "request Input:ask⟨4⟩ after the answer Input:done⟨3⟩");
    let shown = report.to_string();
    assert!(
        shown.contains("invariant 1 (no request after done, error, abort or fail)"),
        "{shown}"
    );
    assert!(shown.contains("#6  Input:ask⟨4⟩   <- invariant 1"), "{shown}");
}

#[test]
fn invariant_1_ask_after_abort_is_caught() {
    let checker = Checker::collecting();
    // `count` keeps counting when asked after an abort: the extra check fires too.
    block_on(pull!(count::<()>(5), checker.probe("Input"), asks_after_abort));
    let report = checker.finish();
    let v = violation_on(&report, Invariant::NoRequestAfterTermination);
    assert_eq!(v.message, "request Input:ask⟨3⟩ after the request Input:abort⟨2⟩");
}

#[test]
#[should_panic(expected = "invariant 1 (no request after done, error, abort or fail) violated on `Input`")]
fn invariant_1_panics_at_once_in_panicking_mode() {
    let checker = Checker::panicking();
    block_on(pull!(
        values::<_, ()>([1]),
        checker.probe("Input"),
        asks_after_done
    ));
}

// ---------------------------------------------------------------------------
// Invariant 2: every request is eventually answered
// ---------------------------------------------------------------------------

#[test]
fn invariant_2_a_source_that_never_answers_is_caught() {
    let checker = Checker::collecting();
    let mut pipeline = Box::pin(pull!(NeverAnswers, checker.probe("Input"), collect::<Vec<_>>()));
    let mut cx = Context::from_waker(std::task::Waker::noop());
    // Never woken: a real executor would hang here. Polled again, it still
    // continues the same request.
    assert!(pipeline.as_mut().poll(&mut cx).is_pending());
    assert!(pipeline.as_mut().poll(&mut cx).is_pending());
    let report = checker.finish();
    assert_eq!(
        report.invariants(),
        [Invariant::EveryRequestAnswered, Invariant::StreamTerminated],
        "{report}"
    );
    let v = violation_on(&report, Invariant::EveryRequestAnswered);
    assert_eq!(v.message, "Input:ask⟨1⟩ was never answered");
    assert_eq!(v.position, None);
    assert!(report.to_string().contains("at the end of the test"));
}

#[test]
fn invariant_2_a_termination_never_confirmed_is_caught() {
    let checker = Checker::collecting();
    let mut input = pull!(NeverAnswers, checker.probe("Input"));
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let mut abort = input.abort();
    assert!(Pin::new(&mut abort).poll(&mut cx).is_pending());
    let report = checker.finish();
    assert_eq!(report.invariants(), [Invariant::EveryRequestAnswered], "{report}");
    assert_eq!(
        report.violations()[0].message,
        "Input:abort⟨1⟩ was never answered"
    );
}

#[test]
#[should_panic(expected = "Input:ask⟨1⟩ was never answered")]
fn invariant_2_panics_at_finish_in_panicking_mode() {
    let checker = Checker::panicking();
    let mut input = pull!(NeverAnswers, checker.probe("Input"));
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(input.poll_ask_unpin(&mut cx).is_pending());
    checker.assert_ok();
}

// ---------------------------------------------------------------------------
// Invariants 3, 4, 5: an event-driven serializer core, correct and broken
// ---------------------------------------------------------------------------

/// How the serializer core behaves.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Flavor {
    /// Algorithm 13: one input ask at a time, answers in order, once.
    Correct,
    /// Answers every output ask twice (invariant 3).
    AnswersTwice,
    /// Forwards every output ask to the input at once (invariant 4).
    AsksBeforeAnswer,
    /// Answers the most recent output ask first (invariant 5).
    AnswersOutOfOrder,
    /// Answers asks abandoned by an abort with the next values (extra check).
    AnswersValuesAfterAbort,
}

/// What the core asks its driver to do.
#[derive(Debug)]
enum Effect {
    AskInput,
    AbortInput,
    Answer(u64, Answer<u32, String>),
    Terminated(u64),
}

/// A sans-IO serializer: concurrent asks on its output, one request at a time
/// on its input (seed 000, Algorithm 13).
struct SerializerCore {
    flavor: Flavor,
    waiting: VecDeque<u64>,
    asking: bool,
    ended: bool,
    aborting: Option<u64>,
}

impl SerializerCore {
    fn new(flavor: Flavor) -> Self {
        SerializerCore {
            flavor,
            waiting: VecDeque::new(),
            asking: false,
            ended: false,
            aborting: None,
        }
    }

    /// upon Output:ask⟨i⟩
    fn on_output_ask(&mut self, i: u64) -> Vec<Effect> {
        if self.ended {
            return vec![Effect::Answer(i, Answer::Done)];
        }
        self.waiting.push_back(i);
        if self.flavor == Flavor::AsksBeforeAnswer || !self.asking {
            self.asking = true;
            vec![Effect::AskInput]
        } else {
            vec![]
        }
    }

    /// upon Output:abort⟨i⟩
    fn on_output_abort(&mut self, i: u64) -> Vec<Effect> {
        self.aborting = Some(i);
        vec![Effect::AbortInput]
    }

    /// upon Input:done⟨j⟩ answering Input:abort⟨j⟩
    fn on_input_terminated(&mut self) -> Vec<Effect> {
        self.ended = true;
        let mut effects = vec![];
        if self.flavor == Flavor::AnswersValuesAfterAbort {
            for (k, i) in self.waiting.drain(..).enumerate() {
                effects.push(Effect::Answer(i, Answer::Value(100 + k as u32)));
            }
        }
        self.waiting.clear();
        effects.push(Effect::Terminated(self.aborting.take().expect("an abort")));
        effects
    }

    /// upon Input:value⟨j, v⟩, Input:done⟨j⟩ or Input:error⟨j, e⟩
    fn on_input_answer(&mut self, answer: Answer<u32, String>) -> Vec<Effect> {
        self.asking = false;
        let i = match self.flavor {
            Flavor::AnswersOutOfOrder => self.waiting.pop_back(),
            _ => self.waiting.pop_front(),
        }
        .expect("an output ask is waiting");
        let mut effects = vec![Effect::Answer(i, answer.clone())];
        if self.flavor == Flavor::AnswersTwice {
            effects.push(Effect::Answer(i, answer.clone()));
        }
        if answer.is_terminal() {
            self.ended = true;
            effects.extend(self.waiting.drain(..).map(|i| Effect::Answer(i, Answer::Done)));
        } else if !self.waiting.is_empty() && self.flavor != Flavor::AsksBeforeAnswer {
            self.asking = true;
            effects.push(Effect::AskInput);
        }
        effects
    }
}

/// Drives a core: `asks` concurrent asks on its output (then an abort if
/// `abort_after_asks`), its input answering `values` then `done`. Every event
/// is recorded on the monitors `Input` and `Output`.
fn drive(checker: &Checker, flavor: Flavor, asks: usize, values: &[u32], abort_after_asks: bool) {
    let input = checker.monitor("Input");
    let output = checker.monitor("Output").allow_concurrent_asks();
    let mut core = SerializerCore::new(flavor);
    let mut upstream = values.iter().copied();
    let mut input_asks: VecDeque<u64> = VecDeque::new();
    let mut input_abort = None;
    let mut effects: VecDeque<Effect> = VecDeque::new();

    let apply = |effects: &mut VecDeque<Effect>,
                 input_asks: &mut VecDeque<u64>,
                 input_abort: &mut Option<u64>,
                 input: &Monitor,
                 output: &Monitor| {
        while let Some(effect) = effects.pop_front() {
            match effect {
                Effect::AskInput => input_asks.push_back(input.ask()),
                Effect::AbortInput => *input_abort = Some(input.abort()),
                Effect::Answer(i, a) => output.answer(i, &a),
                Effect::Terminated(i) => output.done(i),
            }
        }
    };

    for _ in 0..asks {
        let i = output.ask();
        effects.extend(core.on_output_ask(i));
        apply(&mut effects, &mut input_asks, &mut input_abort, &input, &output);
    }
    if abort_after_asks {
        let i = output.abort();
        effects.extend(core.on_output_abort(i));
        apply(&mut effects, &mut input_asks, &mut input_abort, &input, &output);
        let j = input_abort.take().expect("the abort was forwarded");
        input.done(j);
        effects.extend(core.on_input_terminated());
        apply(&mut effects, &mut input_asks, &mut input_abort, &input, &output);
        return;
    }
    while let Some(j) = input_asks.pop_front() {
        let answer = upstream.next().map_or(Answer::Done, Answer::Value);
        input.answer(j, &answer);
        effects.extend(core.on_input_answer(answer));
        apply(&mut effects, &mut input_asks, &mut input_abort, &input, &output);
    }
}

#[test]
fn the_correct_serializer_core_passes() {
    let checker = Checker::panicking();
    drive(&checker, Flavor::Correct, 4, &[1, 2], false);
    checker.assert_ok();
    let trace: Vec<String> = checker.trace().iter().map(ToString::to_string).collect();
    assert_eq!(
        trace[..6],
        [
            "Output:ask⟨1⟩",
            "Input:ask⟨1⟩",
            "Output:ask⟨2⟩",
            "Output:ask⟨3⟩",
            "Output:ask⟨4⟩",
            "Input:value⟨1, 1⟩",
        ]
    );
}

#[test]
fn the_correct_serializer_core_passes_an_abort_with_pending_asks() {
    let checker = Checker::panicking();
    drive(&checker, Flavor::Correct, 3, &[1, 2], true);
    checker.assert_ok();
}

#[test]
fn invariant_3_an_answer_given_twice_is_caught() {
    let checker = Checker::collecting();
    drive(&checker, Flavor::AnswersTwice, 3, &[1, 2], false);
    let report = checker.finish();
    assert_eq!(report.invariants(), [Invariant::AnswerOnce], "{report}");
    let v = violation_on(&report, Invariant::AnswerOnce);
    assert_eq!(v.interface, "Output");
    assert_eq!(
        v.message,
        "answer Output:value⟨1, 1⟩ to a request already answered"
    );
}

#[test]
fn invariant_3_an_answer_to_a_request_never_made_is_caught() {
    let checker = Checker::collecting();
    let output = checker.monitor("Output");
    let i = output.ask();
    output.done(i + 1);
    output.done(i);
    let report = checker.finish();
    assert_eq!(report.invariants(), [Invariant::AnswerOnce], "{report}");
    assert_eq!(
        report.violations()[0].message,
        "answer Output:done⟨2⟩ to a request never made"
    );
}

#[test]
#[should_panic(expected = "invariant 3 (each answer is given once) violated on `Output`")]
fn invariant_3_panics_in_panicking_mode() {
    drive(&Checker::panicking(), Flavor::AnswersTwice, 2, &[1, 2], false);
}

#[test]
fn invariant_4_an_ask_before_the_previous_answer_is_caught() {
    let checker = Checker::collecting();
    drive(&checker, Flavor::AsksBeforeAnswer, 4, &[1, 2, 3], false);
    let report = checker.finish();
    assert_eq!(report.invariants(), [Invariant::NoAskBeforeAnswer], "{report}");
    let v = violation_on(&report, Invariant::NoAskBeforeAnswer);
    assert_eq!(v.interface, "Input");
    assert_eq!(
        v.message,
        "request Input:ask⟨2⟩ before the answer to Input:ask⟨1⟩"
    );
}

#[test]
fn invariant_4_allows_an_abort_while_an_ask_is_pending() {
    let checker = Checker::panicking();
    let input = checker.monitor("Input");
    let i = input.ask();
    let j = input.abort();
    assert_eq!((i, j), (1, 2));
    input.done(j); // answers the abandoned ask too
    checker.assert_ok();
}

#[test]
fn invariant_5_answers_out_of_order_are_caught() {
    let checker = Checker::collecting();
    drive(&checker, Flavor::AnswersOutOfOrder, 4, &[1, 2, 3], false);
    let report = checker.finish();
    assert_eq!(report.invariants(), [Invariant::AnswersInOrder], "{report}");
    let v = violation_on(&report, Invariant::AnswersInOrder);
    assert_eq!(v.interface, "Output");
    assert_eq!(
        v.message,
        "answer Output:value⟨4, 1⟩ before the answer to Output:ask⟨1⟩"
    );
}

// ---------------------------------------------------------------------------
// Invariant 6: termination is propagated
// ---------------------------------------------------------------------------

#[test]
fn invariant_6_a_through_that_swallows_an_abort_is_caught() {
    let checker = Checker::collecting();
    let input = pull!(count::<()>(u64::MAX), checker.probe("Input"));
    let mut output = pull!(
        SwallowsAbort {
            upstream: input,
            termination: None
        },
        checker.probe("Output")
    );
    block_on(async {
        assert_eq!(output.ask().await, Answer::Value(1));
        assert_eq!(output.abort().await, Ok(()));
    });
    let report = checker.finish();
    assert_eq!(
        report.invariants(),
        [Invariant::TerminationPropagated],
        "{report}"
    );
    let v = violation_on(&report, Invariant::TerminationPropagated);
    assert_eq!(v.interface, "Input");
    assert!(
        v.message.contains("although Output:abort⟨2⟩ terminated `Output`"),
        "{}",
        v.message
    );
}

#[test]
fn invariant_6_a_sink_that_stops_without_aborting_is_caught() {
    let checker = Checker::collecting();
    let input = pull!(values::<_, ()>([1, 2, 3]), checker.probe("Input"));
    // The through ends its own downstream but leaves its upstream open.
    let mut output = pull!(
        input,
        |s| LeakyTake { upstream: s, left: 1 },
        checker.probe("Output")
    );
    block_on(async {
        assert_eq!(output.ask().await, Answer::Value(1));
        assert_eq!(output.ask().await, Answer::Done);
    });
    let report = checker.finish();
    assert_eq!(
        report.invariants(),
        [Invariant::TerminationPropagated],
        "{report}"
    );
    assert_eq!(report.violations()[0].interface, "Input");
}

/// A broken `take`: it answers `done` without aborting its upstream.
struct LeakyTake<S> {
    upstream: S,
    left: u32,
}

impl<S: Source + Unpin> Source for LeakyTake<S> {
    type Item = S::Item;
    type Error = S::Error;
    fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>> {
        if self.left == 0 {
            return Poll::Ready(Answer::Done);
        }
        self.left -= 1;
        Pin::new(&mut self.upstream).poll_ask(cx)
    }
    fn terminate(mut self: Pin<&mut Self>, request: Termination<S::Error>) {
        Pin::new(&mut self.upstream).terminate(request)
    }
    fn poll_terminated(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Pin::new(&mut self.upstream).poll_terminated(cx)
    }
}

#[test]
#[should_panic(expected = "invariant 6 (termination is propagated) violated on `Input`")]
fn invariant_6_panics_at_finish_in_panicking_mode() {
    let checker = Checker::panicking();
    let input = pull!(count::<()>(u64::MAX), checker.probe("Input"));
    let mut output = pull!(
        SwallowsAbort {
            upstream: input,
            termination: None
        },
        checker.probe("Output")
    );
    block_on(output.abort()).unwrap();
    checker.assert_ok();
}

#[test]
fn a_through_that_turns_errors_into_done_still_propagates_termination() {
    // Not a protocol violation: both interfaces terminated (error upstream, done downstream).
    let checker = Checker::panicking();
    let got = block_on(pull!(
        pando_pull_stream::error::<u32, _>("broken"),
        checker.probe("Input"),
        error_to_done,
        checker.probe("Output"),
        collect::<Vec<_>>(),
    ));
    assert_eq!(got, Ok(vec![]));
    checker.assert_ok();
}

// ---------------------------------------------------------------------------
// Extra: the stream terminated by the end of the test
// ---------------------------------------------------------------------------

#[test]
fn extra_a_stream_left_open_is_caught() {
    let checker = Checker::collecting();
    let mut input = pull!(count::<()>(10), checker.probe("Input"));
    block_on(async {
        input.ask().await;
        input.ask().await;
    });
    drop(input); // dropped without an abort
    let report = checker.finish();
    assert_eq!(report.invariants(), [Invariant::StreamTerminated], "{report}");
    assert_eq!(
        report.violations()[0].message,
        "`Input` never terminated (no done, error, abort or fail) by the end of the test"
    );
}

#[test]
fn extra_an_unused_probe_is_caught() {
    let checker = Checker::collecting();
    let _never_connected = checker.probe("Spare");
    assert!(checker.finish().violates(Invariant::StreamTerminated));
}

// ---------------------------------------------------------------------------
// Extra: no value after termination
// ---------------------------------------------------------------------------

#[test]
fn extra_a_source_answering_a_value_after_termination_is_caught() {
    let checker = Checker::collecting();
    let source = ValuesAfterTermination {
        next: 0,
        terminated: false,
    };
    // The consumer breaks invariant 1 by asking after its abort; the source
    // breaks the extra check by answering it with a value instead of `done`.
    let last = block_on(pull!(source, checker.probe("Input"), asks_after_abort));
    assert_eq!(last, Answer::Value(2));
    let report = checker.finish();
    assert_eq!(
        report.invariants(),
        [
            Invariant::NoRequestAfterTermination,
            Invariant::NoValueAfterTermination
        ],
        "{report}"
    );
    let v = violation_on(&report, Invariant::NoValueAfterTermination);
    assert_eq!(
        v.message,
        "answer Input:value⟨3, 2⟩ after the request Input:abort⟨2⟩"
    );
}

#[test]
fn extra_a_core_answering_abandoned_asks_with_values_is_caught() {
    let checker = Checker::collecting();
    drive(&checker, Flavor::AnswersValuesAfterAbort, 2, &[1, 2], true);
    let report = checker.finish();
    assert_eq!(
        report.invariants(),
        [Invariant::NoValueAfterTermination],
        "{report}"
    );
    let v = violation_on(&report, Invariant::NoValueAfterTermination);
    assert_eq!(v.interface, "Output");
    assert_eq!(
        v.message,
        "answer Output:value⟨1, 100⟩ after the request Output:abort⟨3⟩"
    );
}

#[test]
fn extra_a_value_after_done_is_caught_on_a_concurrent_interface() {
    let checker = Checker::collecting();
    let output = checker.monitor("Output").allow_concurrent_asks();
    let (a, b) = (output.ask(), output.ask());
    output.done(a);
    output.value(b, &"late");
    let report = checker.finish();
    assert_eq!(
        report.invariants(),
        [Invariant::NoValueAfterTermination],
        "{report}"
    );
    assert_eq!(
        report.violations()[0].message,
        r#"answer Output:value⟨2, "late"⟩ after the answer Output:done⟨1⟩"#
    );
}

#[test]
#[should_panic(expected = "extra invariant (no value after termination) violated on `Output`")]
fn extra_no_value_after_termination_panics_in_panicking_mode() {
    drive(
        &Checker::panicking(),
        Flavor::AnswersValuesAfterAbort,
        1,
        &[1],
        true,
    );
}
