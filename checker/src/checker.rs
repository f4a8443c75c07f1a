//! The [`Checker`]: the shared record of events and the invariant checks.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::report::{Event, EventKind, Invariant, Report, Violation};
use crate::{Monitor, ProbeModule};

/// What a [`Checker`] does when it finds a violation.
///
/// ```
/// use pando_checker::{Checker, Mode};
/// assert_eq!(Checker::new(Mode::Collect).mode(), Mode::Collect);
/// assert_eq!(Checker::panicking().mode(), Mode::Panic);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Mode {
    /// Panic at the first violation, with the violation and the trace so far.
    Panic,
    /// Record every violation; [`Checker::finish`] reports them.
    Collect,
}

/// A protocol checker: a shared record of the events seen by its probes and
/// monitors, checked against the invariants of the pull-stream protocol.
///
/// Create one per test, insert its [probes](Checker::probe) between the
/// modules of a pipeline (and [monitors](Checker::monitor) on event-driven
/// interfaces), run the pipeline, then call [`finish`](Checker::finish) or
/// [`assert_ok`](Checker::assert_ok) for the end-of-test checks. Every probe
/// and monitor of one checker writes to a single trace, so the trace shows how
/// the events on the interfaces interleave.
///
/// A checker is cheap to clone (clones share the record), `Send` and `Sync`,
/// so probes can live in different tasks or threads.
///
/// ```
/// use pando_checker::Checker;
/// use pando_pull_stream::{collect, count, pull, take};
///
/// # futures::executor::block_on(async {
/// let checker = Checker::panicking();
/// let got = pull!(
///     count::<()>(u64::MAX),
///     checker.probe("Input"),
///     take(2),
///     checker.probe("Output"),
///     collect::<Vec<_>>(),
/// )
/// .await;
/// assert_eq!(got, Ok(vec![1, 2]));
/// checker.assert_ok(); // take aborted its input: every interface terminated
/// # });
/// ```
#[derive(Clone)]
pub struct Checker {
    core: Arc<Mutex<Core>>,
}

impl Checker {
    /// A checker in the given mode.
    ///
    /// ```
    /// use pando_checker::{Checker, Mode};
    /// let checker = Checker::new(Mode::Collect);
    /// assert!(checker.finish().is_ok());
    /// ```
    pub fn new(mode: Mode) -> Self {
        Checker {
            core: Arc::new(Mutex::new(Core {
                mode,
                trace: Vec::new(),
                violations: Vec::new(),
                interfaces: Vec::new(),
            })),
        }
    }

    /// A checker that panics at the first violation.
    ///
    /// ```should_panic
    /// use pando_checker::Checker;
    /// let checker = Checker::panicking();
    /// let input = checker.monitor("Input");
    /// let i = input.ask();
    /// input.done(i);
    /// input.ask(); // panics: invariant 1, a request after done
    /// ```
    pub fn panicking() -> Self {
        Checker::new(Mode::Panic)
    }

    /// A checker that records every violation for [`finish`](Checker::finish)
    /// to report.
    ///
    /// ```
    /// use pando_checker::{Checker, Invariant};
    /// let checker = Checker::collecting();
    /// let input = checker.monitor("Input");
    /// let i = input.ask();
    /// input.done(i);
    /// input.ask(); // recorded, no panic
    /// assert!(checker.finish().violates(Invariant::NoRequestAfterTermination));
    /// ```
    pub fn collecting() -> Self {
        Checker::new(Mode::Collect)
    }

    /// The mode of this checker.
    ///
    /// ```
    /// use pando_checker::{Checker, Mode};
    /// assert_eq!(Checker::collecting().mode(), Mode::Collect);
    /// ```
    pub fn mode(&self) -> Mode {
        self.lock().mode
    }

    /// A probe module named `name`, to insert between two modules of a
    /// pipeline: `pull!(source, checker.probe("Input"), through, …)`.
    ///
    /// The probe forwards every request and answer unchanged and records them
    /// (see [`Probe`](crate::Probe)). Give each probe of a checker a distinct
    /// name: the name is the origin of its events in the trace.
    ///
    /// ```
    /// use pando_checker::Checker;
    /// use pando_pull_stream::{count, drain, pull};
    /// # futures::executor::block_on(async {
    /// let checker = Checker::collecting();
    /// pull!(count::<()>(1), checker.probe("Input"), drain()).await.unwrap();
    /// assert_eq!(checker.trace()[0].to_string(), "Input:ask⟨1⟩");
    /// # });
    /// ```
    pub fn probe(&self, name: &str) -> ProbeModule {
        ProbeModule::new(self.clone(), self.register(name))
    }

    /// A monitor named `name`, on which an event-driven module (or a test)
    /// records requests and answers with explicit indices. See [`Monitor`].
    ///
    /// ```
    /// use pando_checker::Checker;
    /// let checker = Checker::collecting();
    /// let output = checker.monitor("Output");
    /// let i = output.ask();
    /// output.done(i);
    /// checker.assert_ok();
    /// ```
    pub fn monitor(&self, name: &str) -> Monitor {
        Monitor::new(self.clone(), self.register(name), name)
    }

    /// The events recorded so far, in order.
    ///
    /// ```
    /// use pando_checker::Checker;
    /// let checker = Checker::collecting();
    /// checker.monitor("Input").abort();
    /// assert_eq!(checker.trace()[0].to_string(), "Input:abort⟨1⟩");
    /// ```
    pub fn trace(&self) -> Vec<Event> {
        self.lock().trace.clone()
    }

    /// The violations found so far, without the end-of-test checks.
    ///
    /// ```
    /// use pando_checker::Checker;
    /// let checker = Checker::collecting();
    /// checker.monitor("Input").ask(); // not answered yet: no violation so far
    /// assert!(checker.violations().is_empty());
    /// ```
    pub fn violations(&self) -> Vec<Violation> {
        self.lock().violations.clone()
    }

    /// Runs the end-of-test checks and reports every violation with the trace.
    ///
    /// The end-of-test checks are: every request was answered (invariant 2);
    /// every interface terminated, by an answer `done` or `error` or a request
    /// `abort` or `fail`; and, if some interface terminated, the others did
    /// too (invariant 6, termination propagated; otherwise the extra check
    /// *stream terminated* is reported). They can be run several times: each
    /// call reports the state at that time.
    ///
    /// In [`Mode::Panic`], a violation found by the end-of-test checks panics.
    ///
    /// ```
    /// use pando_checker::{Checker, Invariant};
    /// let checker = Checker::collecting();
    /// let input = checker.monitor("Input");
    /// let output = checker.monitor("Output");
    /// let i = output.ask();
    /// output.done(i); // the output ended, but the input was never terminated
    /// # let _ = input;
    /// let report = checker.finish();
    /// assert_eq!(report.invariants(), [Invariant::TerminationPropagated]);
    /// assert_eq!(report.violations()[0].interface, "Input");
    /// ```
    pub fn finish(&self) -> Report {
        let core = self.lock();
        let mut end = core.end_checks();
        if core.mode == Mode::Panic && !end.is_empty() {
            end.truncate(1);
            let report = Report::new(end, core.trace.clone());
            drop(core);
            panic!("{report}");
        }
        let mut violations = core.violations.clone();
        violations.append(&mut end);
        Report::new(violations, core.trace.clone())
    }

    /// Runs [`finish`](Checker::finish) and panics with the report if it found
    /// any violation.
    ///
    /// ```should_panic
    /// use pando_checker::Checker;
    /// let checker = Checker::collecting();
    /// checker.monitor("Input").ask(); // never answered
    /// checker.assert_ok(); // panics, listing the violations and the trace
    /// ```
    pub fn assert_ok(&self) {
        let report = self.finish();
        if !report.is_ok() {
            panic!("{report}");
        }
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic in panicking mode happens after the lock is released; any
        // other poisoning leaves a consistent record.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, name: &str) -> usize {
        let mut core = self.lock();
        core.interfaces.push(Interface::new(name));
        core.interfaces.len() - 1
    }

    pub(crate) fn set_concurrent(&self, id: usize, concurrent: bool) {
        self.lock().interfaces[id].concurrent = concurrent;
    }

    pub(crate) fn trace_len(&self) -> usize {
        self.lock().trace.len()
    }

    pub(crate) fn set_any_order(&self, id: usize) {
        let mut core = self.lock();
        core.interfaces[id].concurrent = true;
        core.interfaces[id].any_order = true;
    }

    pub(crate) fn set_dropped(&self, id: usize) {
        self.lock().interfaces[id].dropped = true;
    }

    /// Marks every interface named `name` as dropped (see [`Monitor::dropped`]).
    pub(crate) fn set_dropped_named(&self, name: &str) {
        for iface in self.lock().interfaces.iter_mut().filter(|i| i.name == name) {
            iface.dropped = true;
        }
    }

    /// Withdraws the outstanding request `index` of interface `id`: its
    /// future was dropped unanswered (a concurrent ask given up).
    pub(crate) fn withdraw(&self, id: usize, index: u64) {
        self.lock().interfaces[id]
            .outstanding
            .retain(|&(i, _)| i != index);
    }

    pub(crate) fn interface_name(&self, id: usize) -> String {
        self.lock().interfaces[id].name.clone()
    }

    /// Records a request on interface `id`; returns its index.
    pub(crate) fn request(&self, id: usize, kind: EventKind, payload: Option<String>) -> u64 {
        let mut core = self.lock();
        let before = core.violations.len();
        let index = core.request(id, kind, payload);
        Self::maybe_panic(core, before);
        index
    }

    /// Records the answer to request `index` on interface `id`.
    pub(crate) fn answer(&self, id: usize, index: u64, kind: EventKind, payload: Option<String>) {
        let mut core = self.lock();
        let before = core.violations.len();
        core.answer(id, index, kind, payload);
        Self::maybe_panic(core, before);
    }

    fn maybe_panic(core: MutexGuard<'_, Core>, before: usize) {
        if core.mode == Mode::Panic && core.violations.len() > before {
            let report = Report::new(core.violations[before..].to_vec(), core.trace.clone());
            drop(core);
            panic!("{report}");
        }
    }
}

impl fmt::Debug for Checker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = self.lock();
        f.debug_struct("Checker")
            .field("mode", &core.mode)
            .field(
                "interfaces",
                &core.interfaces.iter().map(|i| &i.name).collect::<Vec<_>>(),
            )
            .field("events", &core.trace.len())
            .field("violations", &core.violations.len())
            .finish()
    }
}

struct Core {
    mode: Mode,
    trace: Vec<Event>,
    violations: Vec<Violation>,
    interfaces: Vec<Interface>,
}

/// The protocol state of one interface (a probe or a monitor).
struct Interface {
    name: String,
    /// Whether concurrent asks are allowed (invariant 4 is not checked).
    concurrent: bool,
    /// Whether concurrent asks may be answered in any order (invariant 5
    /// is not checked).
    any_order: bool,
    /// Both ends were dropped: the end-of-test checks skip the interface.
    dropped: bool,
    /// The index of the next request.
    next_index: u64,
    /// The requests not answered yet, in request order.
    outstanding: VecDeque<(u64, EventKind)>,
    /// Asks abandoned by a termination and answered by its answer, which
    /// may still be answered once (`done` or `error`) by a monitored module.
    abandoned: BTreeSet<u64>,
    /// The answer `done`/`error` that ended the stream: (index, event).
    ended: Option<(u64, String)>,
    /// The `abort`/`fail` request that terminated the stream: (index, event).
    terminated: Option<(u64, String)>,
}

impl Interface {
    fn new(name: &str) -> Self {
        Interface {
            name: name.to_string(),
            concurrent: false,
            any_order: false,
            dropped: false,
            next_index: 1,
            outstanding: VecDeque::new(),
            abandoned: BTreeSet::new(),
            ended: None,
            terminated: None,
        }
    }

    fn is_terminated(&self) -> bool {
        self.ended.is_some() || self.terminated.is_some() || self.dropped
    }

    fn describe(&self, index: u64, kind: EventKind) -> String {
        format!("{}:{kind}⟨{index}⟩", self.name)
    }
}

impl Core {
    fn push(&mut self, id: usize, kind: EventKind, index: u64, payload: Option<String>) -> usize {
        let position = self.trace.len();
        self.trace.push(Event {
            position,
            interface: self.interfaces[id].name.clone(),
            kind,
            index,
            payload,
        });
        position
    }

    fn violate(&mut self, invariant: Invariant, id: usize, position: Option<usize>, message: String) {
        self.violations.push(Violation {
            invariant,
            interface: self.interfaces[id].name.clone(),
            message,
            position,
        });
    }

    fn request(&mut self, id: usize, kind: EventKind, payload: Option<String>) -> u64 {
        let index = self.interfaces[id].next_index;
        self.interfaces[id].next_index += 1;
        let position = self.push(id, kind, index, payload);
        let event = self.trace[position].to_string();
        let iface = &self.interfaces[id];

        // Invariant 1: no request after done/error, or after abort/fail.
        let after = iface
            .terminated
            .as_ref()
            .map(|(_, e)| format!("after the request {e}"))
            .or_else(|| iface.ended.as_ref().map(|(_, e)| format!("after the answer {e}")));
        if let Some(after) = after {
            self.violate(
                Invariant::NoRequestAfterTermination,
                id,
                Some(position),
                format!("request {event} {after}"),
            );
        }

        // Invariant 4: no new ask before the previous answer, except abort/fail.
        let iface = &self.interfaces[id];
        if kind == EventKind::Ask && !iface.concurrent {
            if let Some(&(j, k)) = iface.outstanding.back() {
                let previous = iface.describe(j, k);
                self.violate(
                    Invariant::NoAskBeforeAnswer,
                    id,
                    Some(position),
                    format!("request {event} before the answer to {previous}"),
                );
            }
        }

        let iface = &mut self.interfaces[id];
        iface.outstanding.push_back((index, kind));
        if kind.is_termination() && iface.terminated.is_none() {
            iface.terminated = Some((index, event));
        }
        index
    }

    fn answer(&mut self, id: usize, index: u64, kind: EventKind, payload: Option<String>) {
        let position = self.push(id, kind, index, payload);
        let event = self.trace[position].to_string();
        let iface = &self.interfaces[id];

        let late = iface.abandoned.contains(&index);
        let found = iface.outstanding.iter().position(|&(i, _)| i == index);
        if found.is_none() && late {
            // A late answer to an ask abandoned by a termination: tolerated
            // once, and never with a value.
            self.interfaces[id].abandoned.remove(&index);
            if kind == EventKind::Value {
                self.value_after_termination(id, position, &event);
            }
            return;
        }
        let Some(p) = found else {
            // Invariant 3: each answer once (and only to a request made).
            let message = if index < iface.next_index && index > 0 {
                format!("answer {event} to a request already answered")
            } else {
                format!("answer {event} to a request never made")
            };
            self.violate(Invariant::AnswerOnce, id, Some(position), message);
            return;
        };
        let request_kind = iface.outstanding[p].1;

        // Extra: no value after termination.
        if kind == EventKind::Value {
            self.value_after_termination(id, position, &event);
        }

        let iface = &mut self.interfaces[id];
        if request_kind.is_termination() {
            // The answer to abort/fail also answers the asks it abandoned.
            while let Some(&(i, k)) = iface.outstanding.front() {
                if i > index {
                    break;
                }
                iface.outstanding.pop_front();
                if i < index && k == EventKind::Ask {
                    iface.abandoned.insert(i);
                }
            }
        } else {
            // Invariant 5: answers in request order.
            let iface = &self.interfaces[id];
            if p > 0 && !iface.any_order {
                let (j, k) = iface.outstanding[0];
                let earlier = iface.describe(j, k);
                self.violate(
                    Invariant::AnswersInOrder,
                    id,
                    Some(position),
                    format!("answer {event} before the answer to {earlier}"),
                );
            }
            self.interfaces[id].outstanding.remove(p);
        }
        let iface = &mut self.interfaces[id];
        if matches!(kind, EventKind::Done | EventKind::Error) && iface.ended.is_none() {
            iface.ended = Some((index, event));
        }
    }

    fn value_after_termination(&mut self, id: usize, position: usize, event: &str) {
        let iface = &self.interfaces[id];
        let after = iface
            .terminated
            .as_ref()
            .map(|(_, e)| format!("after the request {e}"))
            .or_else(|| iface.ended.as_ref().map(|(_, e)| format!("after the answer {e}")));
        if let Some(after) = after {
            self.violate(
                Invariant::NoValueAfterTermination,
                id,
                Some(position),
                format!("answer {event} {after}"),
            );
        }
    }

    fn end_checks(&self) -> Vec<Violation> {
        let mut found = Vec::new();
        let mut violate = |invariant, iface: &Interface, message: String| {
            found.push(Violation {
                invariant,
                interface: iface.name.clone(),
                message,
                position: None,
            })
        };
        for iface in self.interfaces.iter().filter(|i| !i.dropped) {
            for &(i, k) in &iface.outstanding {
                violate(
                    Invariant::EveryRequestAnswered,
                    iface,
                    format!("{} was never answered", iface.describe(i, k)),
                );
            }
        }
        let first_terminated = self.interfaces.iter().find(|i| i.is_terminated());
        for iface in self.interfaces.iter().filter(|i| !i.is_terminated()) {
            match first_terminated {
                Some(other) => {
                    let how = other
                        .terminated
                        .as_ref()
                        .or(other.ended.as_ref())
                        .map(|(_, e)| e.clone())
                        .unwrap_or_default();
                    violate(
                        Invariant::TerminationPropagated,
                        iface,
                        format!(
                            "`{}` never terminated (no done, error, abort or fail), although {how} terminated `{}`",
                            iface.name, other.name
                        ),
                    )
                }
                None => violate(
                    Invariant::StreamTerminated,
                    iface,
                    format!(
                        "`{}` never terminated (no done, error, abort or fail) by the end of the test",
                        iface.name
                    ),
                ),
            }
        }
        found
    }
}
