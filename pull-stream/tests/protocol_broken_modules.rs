//! For each invariant, a deliberately broken variant of a pull-stream module,
//! and the checker catching it (the report names the invariant).
//!
//! Invariants 1, 2, 6 and the two extra checks: broken poll-level throughs
//! and sinks, observed by probes. Invariants 3, 4 and 5 cannot be broken by a
//! `&mut` consumer of a `Source`; they are broken by event-driven map cores
//! written like the seeds' algorithms (`upon Output:ask⟨i⟩ trigger
//! Input:ask⟨i⟩`, …), observed by monitors.

mod common;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use common::noop_cx;
use futures::executor::block_on;
use pando_checker::{Checker, Invariant, Monitor, Report};
use pando_pull_stream::{Answer, Source, SourceExt, Termination, collect, count, map, pull, take, values};

fn assert_names(report: &Report, invariant: Invariant, interface: &str) {
    assert!(
        report
            .violations()
            .iter()
            .any(|v| v.invariant == invariant && v.interface == interface),
        "expected {invariant} on `{interface}` in:\n{report}"
    );
    assert!(report.to_string().contains(&invariant.to_string()));
}

// ---------------------------------------------------------------------------
// Broken poll-level modules
// ---------------------------------------------------------------------------

/// A broken `drain`: after `done` it asks once more "to be sure" (invariant 1).
async fn drain_twice<S: Source + Unpin>(mut source: S) {
    while let Answer::Value(_) = source.ask().await {}
    let _ = source.ask().await;
}

/// A broken `take`: when it has its values it answers `done` but leaves its
/// upstream open (invariant 6).
struct TakeWithoutAbort<S> {
    upstream: S,
    left: u64,
}

impl<S: Source + Unpin> Source for TakeWithoutAbort<S> {
    type Item = S::Item;
    type Error = S::Error;
    fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>> {
        if self.left == 0 {
            return Poll::Ready(Answer::Done);
        }
        let answer = ready!(Pin::new(&mut self.upstream).poll_ask(cx));
        self.left -= 1;
        Poll::Ready(answer)
    }
    fn terminate(mut self: Pin<&mut Self>, request: Termination<S::Error>) {
        Pin::new(&mut self.upstream).terminate(request)
    }
    fn poll_terminated(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Pin::new(&mut self.upstream).poll_terminated(cx)
    }
}

/// A broken `map`: it confirms an abort at once and forgets to forward it
/// (invariant 6).
struct MapSwallowingAbort<S: Source> {
    upstream: S,
    termination: Option<Termination<S::Error>>,
}

impl<S: Source + Unpin> Source for MapSwallowingAbort<S> {
    type Item = S::Item;
    type Error = S::Error;
    fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>> {
        Pin::new(&mut self.upstream).poll_ask(cx)
    }
    fn terminate(mut self: Pin<&mut Self>, request: Termination<S::Error>) {
        self.termination = Some(request);
    }
    fn poll_terminated(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Poll::Ready(self.termination.take().map_or(Ok(()), Termination::confirm))
    }
}

impl<S: Source> Unpin for MapSwallowingAbort<S> {}

/// A broken through that loses a wake-up: after its first value it returns
/// `Pending` without arranging to be woken (invariant 2).
struct LosesWakeUp<S> {
    upstream: S,
    answered: bool,
}

impl<S: Source + Unpin> Source for LosesWakeUp<S> {
    type Item = S::Item;
    type Error = S::Error;
    fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>> {
        if self.answered {
            return Poll::Pending; // nobody will wake the consumer
        }
        self.answered = true;
        Pin::new(&mut self.upstream).poll_ask(cx)
    }
    fn terminate(mut self: Pin<&mut Self>, request: Termination<S::Error>) {
        Pin::new(&mut self.upstream).terminate(request)
    }
    fn poll_terminated(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Pin::new(&mut self.upstream).poll_terminated(cx)
    }
}

/// A broken `values`: terminating it does not stop it (no value after termination).
struct ValuesIgnoringTermination {
    next: u64,
}

impl Source for ValuesIgnoringTermination {
    type Item = u64;
    type Error = ();
    fn poll_ask(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Answer<u64, ()>> {
        self.next += 1;
        Poll::Ready(Answer::Value(self.next))
    }
    fn terminate(self: Pin<&mut Self>, _: Termination<()>) {}
    fn poll_terminated(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
        Poll::Ready(Ok(()))
    }
}

/// A consumer that aborts and then keeps reading (invariant 1 on its side).
async fn abort_then_ask<S: Source + Unpin>(mut source: S) -> Answer<S::Item, S::Error> {
    source.ask().await;
    let _ = source.abort().await;
    source.ask().await
}

// ---------------------------------------------------------------------------
// Event-driven map cores (sans-IO), correct and broken
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Debug)]
enum MapBug {
    None,
    /// Answers every output ask twice (invariant 3).
    AnswersTwice,
    /// Prefetches: asks its input again before the previous answer (invariant 4).
    Prefetches,
    /// Runs `f` concurrently and answers in completion order (invariant 5).
    CompletionOrder,
}

enum Effect {
    AskInput,
    Answer(u64, Answer<u64, ()>),
}

/// A concurrent asynchronous map, event-driven like the seeds' algorithms:
///
/// ```text
/// upon Output:ask⟨i⟩            trigger Input:ask⟨i⟩
/// upon Input:value⟨i, v⟩        start f(v); when it completes, trigger Output:value⟨i, f(v)⟩
/// upon Input:done⟨i⟩            trigger Output:done⟨i⟩
/// ```
///
/// Its output accepts concurrent asks and its input does too (like a
/// `Serializer`'s output); the correct core answers in request order, holding
/// results that complete early.
struct MapCore {
    bug: MapBug,
    /// Output asks, in order, each with its result once `f` completed.
    waiting: VecDeque<(u64, Option<Answer<u64, ()>>)>,
    /// The output ask each input ask serves, in order.
    serving: VecDeque<u64>,
}

impl MapCore {
    fn new(bug: MapBug) -> Self {
        MapCore {
            bug,
            waiting: VecDeque::new(),
            serving: VecDeque::new(),
        }
    }

    fn on_output_ask(&mut self, i: u64) -> Vec<Effect> {
        self.waiting.push_back((i, None));
        self.serving.push_back(i);
        let mut effects = vec![Effect::AskInput];
        if self.bug == MapBug::Prefetches {
            effects.push(Effect::AskInput);
        }
        effects
    }

    /// `f` completed (or the input ended) for the input ask that served output ask `i`.
    fn on_result(&mut self, i: u64, result: Answer<u64, ()>) -> Vec<Effect> {
        if self.bug == MapBug::CompletionOrder {
            self.waiting.retain(|(k, _)| *k != i);
            return vec![Effect::Answer(i, result)];
        }
        if let Some(slot) = self.waiting.iter_mut().find(|(k, _)| *k == i) {
            slot.1 = Some(result);
        }
        let mut effects = vec![];
        while let Some((k, Some(_))) = self.waiting.front() {
            let k = *k;
            let (_, result) = self.waiting.pop_front().expect("checked");
            let result = result.expect("checked");
            if self.bug == MapBug::AnswersTwice {
                effects.push(Effect::Answer(k, result));
            }
            effects.push(Effect::Answer(k, result));
        }
        effects
    }
}

/// Drives a map core: `asks` concurrent output asks; the input (which
/// accepts concurrent asks if `concurrent_input`, like a `Serializer`'s
/// output) answers `values` then `done`; `f(v)` takes `v` time units (a
/// virtual clock, so the run is deterministic). If the output did not end,
/// the consumer aborts it at the end, and the core aborts its input.
fn drive_map(checker: &Checker, bug: MapBug, asks: usize, values: &[u64], concurrent_input: bool) {
    let input: Monitor = checker.monitor("Input");
    let input = if concurrent_input {
        input.allow_concurrent_asks()
    } else {
        input
    };
    let output: Monitor = checker.monitor("Output").allow_concurrent_asks();
    let mut core = MapCore::new(bug);
    let mut input_asks = VecDeque::new();
    let answer = |effect: Effect| {
        if let Effect::Answer(i, a) = effect {
            output.answer(i, &a);
        }
    };
    for _ in 0..asks {
        let i = output.ask();
        for effect in core.on_output_ask(i) {
            match effect {
                Effect::AskInput => input_asks.push_back(input.ask()),
                other => answer(other),
            }
        }
    }
    // The input answers its asks in order, at times 0, 1, 2, …
    let mut upstream = values.iter().copied();
    let mut completions = vec![]; // (time, output ask, result)
    let mut serving = core.serving.clone();
    for (now, j) in input_asks.into_iter().enumerate() {
        let result = upstream.next().map_or(Answer::Done, Answer::Value);
        input.answer(j, &result);
        if let Some(i) = serving.pop_front() {
            let at = now as u64 + if let Answer::Value(v) = result { v } else { 0 };
            completions.push((at, i, result.map(|v| v * 10)));
        }
    }
    completions.sort_by_key(|(t, i, _)| (*t, *i));
    for (_, i, result) in completions {
        core.on_result(i, result).into_iter().for_each(answer);
    }
    if asks <= values.len() {
        let j = output.abort();
        let k = input.abort();
        input.done(k);
        output.done(j);
    }
}

// ---------------------------------------------------------------------------
// The tests: one (at least) per invariant
// ---------------------------------------------------------------------------

#[test]
fn invariant_1_drain_asking_after_done() {
    let checker = Checker::collecting();
    block_on(pull!(count::<()>(2), checker.probe("Input"), drain_twice));
    let report = checker.finish();
    assert_eq!(
        report.invariants(),
        [Invariant::NoRequestAfterTermination],
        "{report}"
    );
    assert_names(&report, Invariant::NoRequestAfterTermination, "Input");
}

#[test]
fn invariant_2_a_through_losing_a_wake_up() {
    let checker = Checker::collecting();
    let broken = |s| LosesWakeUp {
        upstream: s,
        answered: false,
    };
    let mut pipeline = Box::pin(pull!(
        count::<()>(5),
        checker.probe("Input"),
        broken,
        checker.probe("Output"),
        collect::<Vec<_>>()
    ));
    // A real executor would hang: poll by hand, as often as you like.
    for _ in 0..3 {
        assert!(pipeline.as_mut().poll(&mut noop_cx()).is_pending());
    }
    let report = checker.finish();
    assert_names(&report, Invariant::EveryRequestAnswered, "Output");
    assert_eq!(
        report.violations()[0].message,
        "Output:ask⟨2⟩ was never answered",
        "{report}"
    );
}

#[test]
fn invariant_3_a_map_core_answering_twice() {
    let checker = Checker::collecting();
    drive_map(&checker, MapBug::AnswersTwice, 3, &[1, 2], true);
    let report = checker.finish();
    assert_eq!(report.invariants(), [Invariant::AnswerOnce], "{report}");
    assert_names(&report, Invariant::AnswerOnce, "Output");
}

#[test]
fn invariant_4_a_prefetching_map_core() {
    let checker = Checker::collecting();
    // Its input does not accept concurrent asks (a plain source).
    drive_map(&checker, MapBug::Prefetches, 1, &[1], false);
    let report = checker.finish();
    assert_names(&report, Invariant::NoAskBeforeAnswer, "Input");
    assert_eq!(
        report.violations()[0].message,
        "request Input:ask⟨2⟩ before the answer to Input:ask⟨1⟩"
    );
}

#[test]
fn invariant_5_a_map_core_answering_in_completion_order() {
    let checker = Checker::collecting();
    // f(5) completes after f(1): the second ask is answered first.
    drive_map(&checker, MapBug::CompletionOrder, 2, &[5, 1], true);
    let report = checker.finish();
    assert_eq!(report.invariants(), [Invariant::AnswersInOrder], "{report}");
    assert_names(&report, Invariant::AnswersInOrder, "Output");
}

#[test]
fn the_correct_map_core_passes_the_same_runs() {
    for asks in 1..4 {
        for values in [&[5, 1][..], &[1, 5], &[3]] {
            let checker = Checker::collecting();
            drive_map(&checker, MapBug::None, asks, values, true);
            let report = checker.finish();
            assert!(report.is_ok(), "{report}");
        }
    }
}

#[test]
fn invariant_6_a_take_that_does_not_abort_its_upstream() {
    let checker = Checker::collecting();
    let broken = |s| TakeWithoutAbort { upstream: s, left: 2 };
    let got = block_on(pull!(
        count::<()>(u64::MAX),
        checker.probe("Input"),
        broken,
        checker.probe("Output"),
        collect::<Vec<_>>()
    ));
    assert_eq!(got, Ok(vec![1, 2]));
    let report = checker.finish();
    assert_eq!(
        report.invariants(),
        [Invariant::TerminationPropagated],
        "{report}"
    );
    assert_names(&report, Invariant::TerminationPropagated, "Input");
}

#[test]
fn invariant_6_a_map_that_swallows_an_abort() {
    let checker = Checker::collecting();
    let broken = |s| MapSwallowingAbort {
        upstream: s,
        termination: None,
    };
    let got = block_on(pull!(
        values::<_, ()>(0..100),
        checker.probe("Input"),
        broken,
        map(|x: u32| x + 1),
        checker.probe("Output"),
        take(3),
        collect::<Vec<_>>()
    ));
    assert_eq!(got, Ok(vec![1, 2, 3]));
    let report = checker.finish();
    assert_eq!(
        report.invariants(),
        [Invariant::TerminationPropagated],
        "{report}"
    );
    assert_names(&report, Invariant::TerminationPropagated, "Input");
}

#[test]
fn the_real_take_and_map_pass_the_same_pipelines() {
    let checker = Checker::panicking();
    let got = block_on(pull!(
        values::<_, ()>(0..100),
        checker.probe("Input"),
        map(|x: u32| x + 1),
        checker.probe("Output"),
        take(3),
        collect::<Vec<_>>()
    ));
    assert_eq!(got, Ok(vec![1, 2, 3]));
    checker.assert_ok();
}

#[test]
fn extra_a_consumer_that_stops_reading_without_aborting() {
    let checker = Checker::collecting();
    let mut source = pull!(count::<()>(10), checker.probe("Input"));
    block_on(source.ask());
    drop(source);
    let report = checker.finish();
    assert_eq!(report.invariants(), [Invariant::StreamTerminated], "{report}");
    assert_names(&report, Invariant::StreamTerminated, "Input");
}

#[test]
fn extra_a_source_answering_values_after_termination() {
    let checker = Checker::collecting();
    let last = block_on(pull!(
        ValuesIgnoringTermination { next: 0 },
        checker.probe("Input"),
        abort_then_ask
    ));
    assert_eq!(last, Answer::Value(2));
    let report = checker.finish();
    assert_names(&report, Invariant::NoValueAfterTermination, "Input");
    assert_names(&report, Invariant::NoRequestAfterTermination, "Input");
}

#[test]
#[should_panic(expected = "invariant 6 (termination is propagated) violated on `Input`")]
fn a_panicking_checker_names_the_invariant() {
    let checker = Checker::panicking();
    let broken = |s| TakeWithoutAbort { upstream: s, left: 1 };
    let _ = block_on(pull!(
        count::<()>(5),
        checker.probe("Input"),
        broken,
        checker.probe("Output"),
        collect::<Vec<_>>()
    ));
    checker.assert_ok();
}
