//! What a checker records and reports: [`Event`]s in the seeds' notation,
//! [`Invariant`]s, [`Violation`]s and the [`Report`].

use std::fmt;

/// The kind of a protocol event: one of the three requests or the three answers
/// of the pull-stream protocol (seed 000, Table 4.1).
///
/// ```
/// use pando_checker::EventKind;
///
/// assert!(EventKind::Abort.is_request());
/// assert!(EventKind::Done.is_answer());
/// assert_eq!(EventKind::Fail.name(), "fail");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum EventKind {
    /// A request for the next value.
    Ask,
    /// A request to terminate the stream normally.
    Abort,
    /// A request to terminate the stream with an error.
    Fail,
    /// An answer with a value.
    Value,
    /// An answer meaning that there are no more values.
    Done,
    /// An answer meaning that the stream ended with an error.
    Error,
}

impl EventKind {
    /// The name of the event in the seeds' notation.
    ///
    /// ```
    /// use pando_checker::EventKind;
    /// assert_eq!(EventKind::Value.name(), "value");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Ask => "ask",
            EventKind::Abort => "abort",
            EventKind::Fail => "fail",
            EventKind::Value => "value",
            EventKind::Done => "done",
            EventKind::Error => "error",
        }
    }

    /// Whether this is a request (`ask`, `abort` or `fail`).
    ///
    /// ```
    /// use pando_checker::EventKind;
    /// assert!(EventKind::Ask.is_request());
    /// assert!(!EventKind::Value.is_request());
    /// ```
    pub fn is_request(self) -> bool {
        matches!(self, EventKind::Ask | EventKind::Abort | EventKind::Fail)
    }

    /// Whether this is an answer (`value`, `done` or `error`).
    ///
    /// ```
    /// use pando_checker::EventKind;
    /// assert!(EventKind::Error.is_answer());
    /// assert!(!EventKind::Fail.is_answer());
    /// ```
    pub fn is_answer(self) -> bool {
        !self.is_request()
    }

    /// Whether this is a termination request (`abort` or `fail`).
    ///
    /// ```
    /// use pando_checker::EventKind;
    /// assert!(EventKind::Fail.is_termination());
    /// assert!(!EventKind::Ask.is_termination());
    /// ```
    pub fn is_termination(self) -> bool {
        matches!(self, EventKind::Abort | EventKind::Fail)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One event of a trace, in the seeds' notation `Origin:name⟨index, payload⟩`
/// (seed 000, §4.2.1): for example `Output:ask⟨3⟩` or `Input:value⟨2, 5⟩`.
///
/// The payload (a value or an error) is kept as its `Debug` formatting.
///
/// ```
/// use pando_checker::Checker;
/// use pando_pull_stream::{SourceExt, pull, values};
///
/// # futures::executor::block_on(async {
/// let checker = Checker::collecting();
/// let mut input = pull!(values::<_, &str>(["a"]), checker.probe("Input"));
/// input.ask().await;
/// input.fail("stop").await.unwrap_err();
/// let trace: Vec<String> = checker.trace().iter().map(ToString::to_string).collect();
/// assert_eq!(
///     trace,
///     [r#"Input:ask⟨1⟩"#, r#"Input:value⟨1, "a"⟩"#, r#"Input:fail⟨2, "stop"⟩"#, r#"Input:error⟨2, "stop"⟩"#]
/// );
/// let event = &checker.trace()[1];
/// assert_eq!((event.position, event.index, event.payload.as_deref()), (1, 1, Some("\"a\"")));
/// # });
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub struct Event {
    /// The position of the event in the trace of its checker, from 0.
    pub position: usize,
    /// The name of the probe or monitor on which it happened (the origin).
    pub interface: String,
    /// What happened.
    pub kind: EventKind,
    /// The index of the request, from 1; an answer has the index of its request.
    pub index: u64,
    /// The `Debug` formatting of the value of a `value`, or of the error of a
    /// `fail` or an `error`.
    pub payload: Option<String>,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}⟨{}", self.interface, self.kind, self.index)?;
        if let Some(payload) = &self.payload {
            write!(f, ", {payload}")?;
        }
        f.write_str("⟩")
    }
}

/// The properties a checker verifies: the six invariants of the pull-stream
/// protocol (seed 000, §4.1.2, lines 2383-2410) and two end-of-stream checks.
///
/// ```
/// use pando_checker::Invariant;
///
/// assert_eq!(Invariant::AnswersInOrder.number(), Some(5));
/// assert_eq!(Invariant::NoValueAfterTermination.number(), None);
/// assert_eq!(
///     Invariant::TerminationPropagated.to_string(),
///     "invariant 6 (termination is propagated)"
/// );
/// assert_eq!(Invariant::ALL.len(), 8);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum Invariant {
    /// 1. No request after receiving `done` or `error`, or after having made
    ///    an `abort` or `fail` request.
    NoRequestAfterTermination,
    /// 2. Every request is eventually answered (checked at the end of the test).
    EveryRequestAnswered,
    /// 3. Each request is answered only once.
    AnswerOnce,
    /// 4. No new `ask` before the answer to the previous request, except to
    ///    `abort` or `fail`.
    NoAskBeforeAnswer,
    /// 5. Answers come in the order of the requests.
    AnswersInOrder,
    /// 6. Termination is propagated: at the end of the test, if any interface
    ///    of the checker terminated, all of them did.
    TerminationPropagated,
    /// Extra: at the end of the test, every stream terminated (an answer
    /// `done` or `error`, or a request `abort` or `fail`).
    StreamTerminated,
    /// Extra: no `value` is answered after the stream terminated (after an
    /// answer `done` or `error`, or after a request `abort` or `fail`).
    NoValueAfterTermination,
}

impl Invariant {
    /// Every invariant, in order.
    ///
    /// ```
    /// use pando_checker::Invariant;
    /// assert_eq!(Invariant::ALL[0], Invariant::NoRequestAfterTermination);
    /// ```
    pub const ALL: [Invariant; 8] = [
        Invariant::NoRequestAfterTermination,
        Invariant::EveryRequestAnswered,
        Invariant::AnswerOnce,
        Invariant::NoAskBeforeAnswer,
        Invariant::AnswersInOrder,
        Invariant::TerminationPropagated,
        Invariant::StreamTerminated,
        Invariant::NoValueAfterTermination,
    ];

    /// The number of the invariant in the seeds (1 to 6), `None` for the two
    /// extra checks.
    ///
    /// ```
    /// use pando_checker::Invariant;
    /// assert_eq!(Invariant::NoRequestAfterTermination.number(), Some(1));
    /// assert_eq!(Invariant::StreamTerminated.number(), None);
    /// ```
    pub fn number(self) -> Option<u8> {
        match self {
            Invariant::NoRequestAfterTermination => Some(1),
            Invariant::EveryRequestAnswered => Some(2),
            Invariant::AnswerOnce => Some(3),
            Invariant::NoAskBeforeAnswer => Some(4),
            Invariant::AnswersInOrder => Some(5),
            Invariant::TerminationPropagated => Some(6),
            Invariant::StreamTerminated | Invariant::NoValueAfterTermination => None,
        }
    }

    /// A short statement of the invariant.
    ///
    /// ```
    /// use pando_checker::Invariant;
    /// assert_eq!(Invariant::AnswerOnce.description(), "each answer is given once");
    /// ```
    pub fn description(self) -> &'static str {
        match self {
            Invariant::NoRequestAfterTermination => "no request after done, error, abort or fail",
            Invariant::EveryRequestAnswered => "every request is eventually answered",
            Invariant::AnswerOnce => "each answer is given once",
            Invariant::NoAskBeforeAnswer => "no new ask before the previous answer, except to abort or fail",
            Invariant::AnswersInOrder => "answers come in request order",
            Invariant::TerminationPropagated => "termination is propagated",
            Invariant::StreamTerminated => "the stream terminated by the end of the test",
            Invariant::NoValueAfterTermination => "no value after termination",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.number() {
            Some(n) => write!(f, "invariant {n} ({})", self.description()),
            None => write!(f, "extra invariant ({})", self.description()),
        }
    }
}

/// A violation of an [`Invariant`], found by a probe or monitor, or by the
/// end-of-test checks of [`Checker::finish`](crate::Checker::finish).
///
/// ```
/// use pando_checker::{Checker, Invariant};
///
/// let checker = Checker::collecting();
/// let output = checker.monitor("Output");
/// let i = output.ask();
/// output.done(i);
/// output.done(i); // answered twice
/// let report = checker.finish();
/// let violation = &report.violations()[0];
/// assert_eq!(violation.invariant, Invariant::AnswerOnce);
/// assert_eq!(violation.interface, "Output");
/// assert_eq!(violation.position, Some(2));
/// assert!(violation.to_string().starts_with("invariant 3 (each answer is given once) violated on `Output` at event #2"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug, thiserror::Error)]
#[error("{invariant} violated on `{interface}` {}: {message}", at(.position))]
#[non_exhaustive]
pub struct Violation {
    /// The invariant that does not hold.
    pub invariant: Invariant,
    /// The name of the probe or monitor on which it was found.
    pub interface: String,
    /// What happened, with the events involved in the seeds' notation.
    pub message: String,
    /// The position in the trace of the event that broke the invariant, or
    /// `None` for a violation found by the end-of-test checks.
    pub position: Option<usize>,
}

fn at(position: &Option<usize>) -> String {
    match position {
        Some(p) => format!("at event #{p}"),
        None => "at the end of the test".to_string(),
    }
}

/// The result of a check: the violations found and the complete trace of
/// events, interleaved over every probe and monitor of the checker, in order.
///
/// Its `Display` lists the violations and then the trace, marking the events
/// at which violations were found.
///
/// ```
/// use pando_checker::{Checker, Invariant};
/// use pando_pull_stream::{count, drain, pull};
///
/// # futures::executor::block_on(async {
/// let checker = Checker::collecting();
/// pull!(count::<()>(2), checker.probe("Input"), drain()).await.unwrap();
/// let report = checker.finish();
/// assert!(report.is_ok());
/// assert_eq!(report.trace().len(), 6);
/// assert!(!report.violates(Invariant::EveryRequestAnswered));
/// assert!(report.to_string().contains("Input:done⟨3⟩"));
/// # });
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Report {
    violations: Vec<Violation>,
    trace: Vec<Event>,
}

impl Report {
    pub(crate) fn new(violations: Vec<Violation>, trace: Vec<Event>) -> Self {
        Report { violations, trace }
    }

    /// Whether no violation was found.
    ///
    /// ```
    /// use pando_checker::Checker;
    /// assert!(Checker::collecting().finish().is_ok());
    /// ```
    pub fn is_ok(&self) -> bool {
        self.violations.is_empty()
    }

    /// The violations, in the order in which they were found.
    ///
    /// ```
    /// use pando_checker::{Checker, Invariant};
    /// let checker = Checker::collecting();
    /// let input = checker.monitor("Input");
    /// input.ask(); // never answered
    /// let report = checker.finish();
    /// assert_eq!(report.violations()[0].invariant, Invariant::EveryRequestAnswered);
    /// ```
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// The trace: every event of every probe and monitor, in order.
    ///
    /// ```
    /// use pando_checker::Checker;
    /// let checker = Checker::collecting();
    /// let input = checker.monitor("Input");
    /// let i = input.ask();
    /// input.value(i, &7);
    /// assert_eq!(checker.finish().trace()[1].to_string(), "Input:value⟨1, 7⟩");
    /// ```
    pub fn trace(&self) -> &[Event] {
        &self.trace
    }

    /// Whether some violation is of `invariant`.
    ///
    /// ```
    /// use pando_checker::{Checker, Invariant};
    /// let checker = Checker::collecting();
    /// let input = checker.monitor("Input");
    /// let i = input.ask();
    /// input.done(i);
    /// input.ask(); // after done
    /// assert!(checker.finish().violates(Invariant::NoRequestAfterTermination));
    /// ```
    pub fn violates(&self, invariant: Invariant) -> bool {
        self.violations.iter().any(|v| v.invariant == invariant)
    }

    /// The invariants violated, sorted, without repetition.
    ///
    /// ```
    /// use pando_checker::{Checker, Invariant};
    /// let checker = Checker::collecting();
    /// let input = checker.monitor("Input");
    /// input.ask(); // never answered, and the stream never terminates
    /// assert_eq!(
    ///     checker.finish().invariants(),
    ///     [Invariant::EveryRequestAnswered, Invariant::StreamTerminated]
    /// );
    /// ```
    pub fn invariants(&self) -> Vec<Invariant> {
        let mut all: Vec<Invariant> = self.violations.iter().map(|v| v.invariant).collect();
        all.sort();
        all.dedup();
        all
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.violations.len() {
            0 => writeln!(f, "pull-stream protocol: no violation")?,
            1 => writeln!(f, "pull-stream protocol: 1 violation")?,
            n => writeln!(f, "pull-stream protocol: {n} violations")?,
        }
        for (k, v) in self.violations.iter().enumerate() {
            writeln!(f, "  {}. {v}", k + 1)?;
        }
        writeln!(f, "trace ({} events):", self.trace.len())?;
        let width = self.trace.len().saturating_sub(1).to_string().len();
        for event in &self.trace {
            write!(f, "  #{:<width$}  {event}", event.position)?;
            let broken: Vec<String> = self
                .violations
                .iter()
                .filter(|v| v.position == Some(event.position))
                .map(|v| match v.invariant.number() {
                    Some(n) => format!("invariant {n}"),
                    None => v.invariant.description().to_string(),
                })
                .collect();
            if !broken.is_empty() {
                write!(f, "   <- {}", broken.join(", "))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

impl std::error::Error for Report {}
