//! The event-level [`Monitor`], for event-driven modules and multi-ask interfaces.

use std::fmt;

use pando_pull_stream::{Answer, Request};

use crate::Checker;
use crate::report::EventKind;

/// An event-level probe: the module under test (or the test itself) records
/// each request and each answer on an interface, with explicit indices.
///
/// This is for interfaces that the poll-based [`Probe`](crate::Probe) cannot
/// wrap: the cores of event-driven (sans-IO) modules, which trigger and
/// receive events such as `Input:ask⟨i⟩` and `Input:value⟨i, v⟩` like the
/// seeds' algorithms, and interfaces that accept several asks at once, like
/// the output of a [`Serializer`](pando_pull_stream::Serializer).
///
/// A request returns its index (1, 2, …); the answer names the index it
/// answers. A monitor checks invariants 1, 3, 4 and 5 and *no value after
/// termination* as the events arrive, and invariants 2 and 6 and *stream
/// terminated* when the checker [finishes](Checker::finish).
///
/// As with the poll-based protocol, the answer to an `abort` or `fail` also
/// answers the asks still pending when it was requested (they are
/// *abandoned*). A module may still answer an abandoned ask once, with
/// `done` or `error` (before or after the termination's answer, as the
/// [`Serializer`](pando_pull_stream::Serializer) does), but never with a value.
///
/// Clones record on the same interface.
///
/// ```
/// use pando_checker::{Checker, Invariant};
///
/// let checker = Checker::collecting();
/// let input = checker.monitor("Input");
/// // A broken module: it asks again before its first ask was answered.
/// let first = input.ask();
/// let second = input.ask();
/// input.value(first, &1);
/// input.done(second);
/// let report = checker.finish();
/// assert_eq!(report.invariants(), [Invariant::NoAskBeforeAnswer]);
/// assert!(report.violations()[0].message.contains("Input:ask⟨2⟩ before the answer to Input:ask⟨1⟩"));
/// ```
#[derive(Clone)]
pub struct Monitor {
    checker: Checker,
    id: usize,
    name: String,
}

impl Monitor {
    pub(crate) fn new(checker: Checker, id: usize, name: &str) -> Self {
        Monitor {
            checker,
            id,
            name: name.to_string(),
        }
    }

    /// Allows concurrent asks on this interface (invariant 4 is then not
    /// checked), for interfaces that legitimately accept them, like the
    /// output of a [`Serializer`](pando_pull_stream::Serializer). Answers must
    /// still come once each and in request order.
    ///
    /// ```
    /// use pando_checker::Checker;
    ///
    /// let checker = Checker::panicking();
    /// let output = checker.monitor("Output").allow_concurrent_asks();
    /// let (a, b, c) = (output.ask(), output.ask(), output.ask());
    /// output.value(a, &'x');
    /// output.done(b);
    /// output.done(c);
    /// checker.assert_ok();
    /// ```
    pub fn allow_concurrent_asks(self) -> Self {
        self.checker.set_concurrent(self.id, true);
        self
    }

    /// Allows concurrent asks on this interface, answered in any order
    /// (invariants 4 and 5 are then not checked): for interfaces whose asks
    /// are independent requests, such as the concurrent asks of a
    /// StreamLender's sub-stream, each answered as soon as a value is
    /// available for it. Each answer must still come once.
    ///
    /// ```
    /// use pando_checker::Checker;
    ///
    /// let checker = Checker::panicking();
    /// let source = checker.monitor("S1:Source").allow_answers_in_any_order();
    /// let (a, b) = (source.ask(), source.ask());
    /// source.value(b, &"first available");
    /// source.done(a);
    /// checker.assert_ok();
    /// ```
    pub fn allow_answers_in_any_order(self) -> Self {
        self.checker.set_any_order(self.id);
        self
    }

    /// Records that both ends of the interface were dropped (a crash): its
    /// outstanding requests are forgiven, and the end-of-test checks count
    /// it as terminated. Dropping is how a module is released without
    /// confirmation; events recorded after it are still checked.
    ///
    /// ```
    /// use pando_checker::Checker;
    ///
    /// let checker = Checker::panicking();
    /// let results = checker.monitor("S1:Results");
    /// results.ask(); // never answered: the sub-stream crashed
    /// results.dropped();
    /// checker.assert_ok();
    /// ```
    pub fn dropped(&self) {
        self.checker.set_dropped(self.id);
    }

    /// Withdraws the outstanding request `index`: a concurrent ask whose
    /// future was dropped before its answer.
    pub(crate) fn withdraw(&self, index: u64) {
        self.checker.withdraw(self.id, index);
    }

    /// The name of the interface: the origin of its events in the trace.
    ///
    /// ```
    /// use pando_checker::Checker;
    /// assert_eq!(Checker::collecting().monitor("Input").name(), "Input");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Records a request; returns its index.
    ///
    /// ```
    /// use pando_checker::Checker;
    /// use pando_pull_stream::{Request, Termination};
    ///
    /// let checker = Checker::collecting();
    /// let input = checker.monitor("Input");
    /// assert_eq!(input.request(&Request::<&str>::Ask), 1);
    /// assert_eq!(input.request(&Termination::Fail("bad").into()), 2);
    /// assert_eq!(checker.trace()[1].to_string(), r#"Input:fail⟨2, "bad"⟩"#);
    /// ```
    pub fn request<E: fmt::Debug>(&self, request: &Request<E>) -> u64 {
        match request {
            Request::Ask => self.ask(),
            Request::Abort => self.abort(),
            Request::Fail(e) => self.fail(e),
        }
    }

    /// Records an `ask`; returns its index.
    ///
    /// ```
    /// use pando_checker::Checker;
    /// let checker = Checker::collecting();
    /// let input = checker.monitor("Input");
    /// assert_eq!(input.ask(), 1);
    /// ```
    pub fn ask(&self) -> u64 {
        self.checker.request(self.id, EventKind::Ask, None)
    }

    /// Records an `abort`; returns its index.
    ///
    /// ```
    /// use pando_checker::Checker;
    /// let checker = Checker::collecting();
    /// let input = checker.monitor("Input");
    /// let i = input.abort();
    /// input.done(i);
    /// checker.assert_ok();
    /// ```
    pub fn abort(&self) -> u64 {
        self.checker.request(self.id, EventKind::Abort, None)
    }

    /// Records a `fail` with `error`; returns its index.
    ///
    /// ```
    /// use pando_checker::Checker;
    /// let checker = Checker::collecting();
    /// let input = checker.monitor("Input");
    /// let i = input.fail(&"timeout");
    /// input.error(i, &"timeout");
    /// assert_eq!(checker.trace()[0].to_string(), r#"Input:fail⟨1, "timeout"⟩"#);
    /// ```
    pub fn fail<E: fmt::Debug>(&self, error: &E) -> u64 {
        self.checker
            .request(self.id, EventKind::Fail, Some(format!("{error:?}")))
    }

    /// Records `answer` to request `index`.
    ///
    /// ```
    /// use pando_checker::Checker;
    /// use pando_pull_stream::Answer;
    ///
    /// let checker = Checker::collecting();
    /// let input = checker.monitor("Input");
    /// let i = input.ask();
    /// input.answer(i, &Answer::<u8, ()>::Value(3));
    /// let j = input.ask();
    /// input.answer(j, &Answer::<u8, ()>::Done);
    /// checker.assert_ok();
    /// ```
    pub fn answer<T: fmt::Debug, E: fmt::Debug>(&self, index: u64, answer: &Answer<T, E>) {
        match answer {
            Answer::Value(v) => self.value(index, v),
            Answer::Done => self.done(index),
            Answer::Error(e) => self.error(index, e),
        }
    }

    /// Records the answer `value` to request `index`.
    ///
    /// ```
    /// use pando_checker::Checker;
    /// let checker = Checker::collecting();
    /// let input = checker.monitor("Input");
    /// let i = input.ask();
    /// input.value(i, &"v");
    /// assert_eq!(checker.trace()[1].to_string(), r#"Input:value⟨1, "v"⟩"#);
    /// ```
    pub fn value<T: fmt::Debug>(&self, index: u64, value: &T) {
        self.checker
            .answer(self.id, index, EventKind::Value, Some(format!("{value:?}")))
    }

    /// Records the answer `done` to request `index`.
    ///
    /// ```
    /// use pando_checker::Checker;
    /// let checker = Checker::collecting();
    /// let input = checker.monitor("Input");
    /// let i = input.ask();
    /// input.done(i);
    /// checker.assert_ok();
    /// ```
    pub fn done(&self, index: u64) {
        self.checker.answer(self.id, index, EventKind::Done, None)
    }

    /// Records the answer `error` to request `index`.
    ///
    /// ```
    /// use pando_checker::Checker;
    /// let checker = Checker::collecting();
    /// let input = checker.monitor("Input");
    /// let i = input.ask();
    /// input.error(i, &"disk full");
    /// assert_eq!(checker.trace()[1].to_string(), r#"Input:error⟨1, "disk full"⟩"#);
    /// checker.assert_ok();
    /// ```
    pub fn error<E: fmt::Debug>(&self, index: u64, error: &E) {
        self.checker
            .answer(self.id, index, EventKind::Error, Some(format!("{error:?}")))
    }

    /// Records the answer to a termination request, in the form of
    /// [`Source::poll_terminated`](pando_pull_stream::Source::poll_terminated):
    /// `Ok(())` is `done`, `Err(e)` is `error`.
    ///
    /// ```
    /// use pando_checker::Checker;
    /// let checker = Checker::collecting();
    /// let input = checker.monitor("Input");
    /// let i = input.abort();
    /// input.terminated(i, &Ok::<(), String>(()));
    /// checker.assert_ok();
    /// ```
    pub fn terminated<E: fmt::Debug>(&self, index: u64, result: &Result<(), E>) {
        match result {
            Ok(()) => self.done(index),
            Err(e) => self.error(index, e),
        }
    }
}

impl fmt::Debug for Monitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Monitor")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
