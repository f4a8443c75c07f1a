//! # pando-checker
//!
//! Run-time checking of the pull-stream protocol (seed 000, §4.1.2), and the
//! seeded interleaving harness for modules with sub-streams (§4.6). Probes
//! and monitors record the events at the interfaces between modules, check
//! them against the protocol's invariants, and report any violation with the
//! trace of events in the seeds' notation (`Output:ask⟨3⟩`,
//! `Input:value⟨2, v⟩`, …).
//!
//! ## The abstraction
//!
//! A [`Checker`] is a shared record of events. It hands out two kinds of
//! recorders, each observing one interface (one upstream/downstream
//! connection) under a name that becomes the origin of its events:
//!
//! * a [`Probe`], made by [`Checker::probe`], is a module to insert between
//!   two modules of a pipeline: `pull!(source, checker.probe("Input"),
//!   through, checker.probe("Output"), sink)`. It forwards everything and
//!   records the requests made by the downstream module (`ask`, `abort`,
//!   `fail`) and the answers given by the upstream one (`value`, `done`,
//!   `error`);
//! * a [`Monitor`], made by [`Checker::monitor`], is told the events
//!   explicitly, with their indices. It is for event-driven (sans-IO) module
//!   cores written like the seeds' algorithms, and for interfaces that accept
//!   concurrent asks, such as the output of a
//!   [`Serializer`](pando_pull_stream::Serializer)
//!   ([`Monitor::allow_concurrent_asks`]).
//!
//! All the recorders of a checker write to one trace, in the order in which
//! the events happen, so a report shows how the events on the different
//! interfaces interleave.
//!
//! ## The invariants
//!
//! A compliant module must (seed 000, lines 2383-2410; see [`Invariant`]):
//!
//! 1. make no request after receiving `done` or `error`, or after having made
//!    an `abort` or `fail` request;
//! 2. answer every request eventually;
//! 3. give each answer once;
//! 4. make no new ask before the previous answer, except to `abort` or `fail`
//!    (the ask in progress is then abandoned, and the answer to the
//!    termination answers it too);
//! 5. answer in request order;
//! 6. propagate termination;
//!
//! and, in addition, at the end of a test every stream has *terminated*, and
//! *no value* is answered after termination.
//!
//! Invariants 1, 3, 4, 5 and the absence of values after termination are
//! checked as the events happen. Invariant 2, termination, and invariant 6 are
//! checked at the end of the test, by [`Checker::finish`] (or
//! [`Checker::assert_ok`]): every request must have been answered, and every
//! interface must have terminated — if one interface of the checker
//! terminated and another did not, the termination was not propagated
//! (invariant 6), for example by a through that does not abort its upstream
//! or does not end its downstream.
//!
//! With the poll-based [`Source`](pando_pull_stream::Source) trait, a `&mut`
//! consumer cannot violate invariants 3, 4 and 5: it has one outstanding
//! request, answered once, in order. A second ask while the first is in
//! progress does not even compile:
//!
//! ```compile_fail,E0499
//! use pando_pull_stream::{SourceExt, count};
//!
//! # futures::executor::block_on(async {
//! let mut source = count::<()>(3);
//! let first = source.ask();
//! let second = source.ask(); // error[E0499]: `source` is already borrowed by `first`
//! let _ = futures::join!(first, second);
//! # });
//! ```
//!
//! Those three invariants matter for interfaces with several outstanding
//! requests, which [`Monitor`]s check.
//!
//! ## Two modes
//!
//! [`Checker::panicking`] panics at the first violation, with the violation
//! and the trace so far: the panic points at the faulty module. In
//! [`Checker::collecting`] mode, violations are recorded and
//! [`Checker::finish`] returns a [`Report`] with all of them.
//!
//! ## The interleaving harness
//!
//! [`run`] drives a module with sub-streams ([`SubStreamModule`], implemented
//! for [`StreamLender`](pando_lend_stream::StreamLender)) through one seeded
//! random interleaving, as in seed 000, §4.6 and Appendix A: a
//! [`TestSource`], a test sink, and a test transformer in each sub-stream
//! (Algorithms 22-29, Tables 4.3 and 4.4), with the 90% bias towards normal
//! actions, a parallelism and a maximum number of sub-streams, and the four
//! [`Scenario`]s. Beyond the original tester: sub-streams make concurrent
//! asks, end their input or their output first, crash (are dropped), and
//! return unexpected results; the harness is a deterministic executor that
//! polls a future only after its waker was called, so lost wake-ups are
//! caught; every [`Property`] is checked (protocol on every interface,
//! ordered, exactly once, fault tolerant, output terminated, lazy,
//! conservative), a step bound turns a hang into a "no progress" report,
//! and every failure ([`Execution`]) carries its seed, its replay command and
//! the event trace. Each execution also varies, from its seed, the lender's
//! read-ahead bound (often 1 to 3), its retry cap with either [`Poison`]
//! policy, and the [`Faults`]: rejections and reclaims by sub-streams,
//! `close` and `cut_off`, an ask that is never polled again, a panicking
//! input, an early end of the output and `settled()`, and majority voting
//! (`replicas`: the last `k` sub-streams are correct, the others may lie,
//! and the model counts the votes as the lender sees them, checking
//! [`Property::Majority`] and the replicas' conservative property); the blame rule
//! ([`Property::Blame`]), the memory bound and `settled()` are checked too.
//! With `default-features = false` (no `runner`, no `lender` feature) the
//! crate builds neither clap nor the lender. [`Campaign`] runs many, as the
//! runner does:
//!
//! ```text
//! cargo run --release -p pando-checker -- --runs N [--seed S] [--count C] [--parallelism P] [--max-sub-streams M]
//!     [--read-ahead N|none] [--max-retries N|none] [--poison fail|skip] [--replicas K]
//!     [--faults reject,reclaim,close,cut-off,stall,panic,early-end,settled,lie|none]
//! cargo run --release -p pando-checker -- --seed S --runs 1 --trace
//! ```
//!
//! ```
//! use pando_checker::{Config, Faults, Poison, TestError, run};
//! use pando_lend_stream::StreamLender;
//!
//! let config = Config::varied(42).faults(Faults::NONE).max_retries(None, Poison::Fail);
//! let execution = run::<StreamLender<u64, u64, TestError>>(&config);
//! assert!(execution.is_ok(), "{execution}");
//! ```
//!
//! ## Example
//!
//! A correct pipeline passes; a through that forgets to abort its upstream
//! when it ends the stream early is caught by invariant 6.
//!
//! ```
//! use core::pin::Pin;
//! use core::task::{Context, Poll};
//! use pando_checker::{Checker, Invariant};
//! use pando_pull_stream::{Answer, Source, Termination, collect, count, map, pull, take};
//!
//! # futures::executor::block_on(async {
//! // A correct pipeline: `take` aborts its (infinite) input after two values.
//! let checker = Checker::collecting();
//! let got = pull!(
//!     count::<()>(u64::MAX),
//!     checker.probe("Input"),
//!     map(|x: u64| x * 10),
//!     take(2),
//!     checker.probe("Output"),
//!     collect::<Vec<_>>(),
//! )
//! .await;
//! assert_eq!(got, Ok(vec![10, 20]));
//! let report = checker.finish();
//! assert!(report.is_ok(), "{report}");
//! let trace: Vec<String> = report.trace().iter().map(ToString::to_string).collect();
//! assert_eq!(
//!     trace,
//!     [
//!         "Output:ask⟨1⟩", "Input:ask⟨1⟩", "Input:value⟨1, 1⟩", "Output:value⟨1, 10⟩",
//!         "Output:ask⟨2⟩", "Input:ask⟨2⟩", "Input:value⟨2, 2⟩", "Output:value⟨2, 20⟩",
//!         "Output:ask⟨3⟩", "Input:abort⟨3⟩", "Input:done⟨3⟩", "Output:done⟨3⟩",
//!     ]
//! );
//!
//! // A broken `take(1)`: it answers `done` without aborting its input.
//! struct LeakyTakeOne<S> { upstream: S, taken: bool }
//! impl<S: Source + Unpin> Source for LeakyTakeOne<S> {
//!     type Item = S::Item;
//!     type Error = S::Error;
//!     fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>> {
//!         if self.taken { return Poll::Ready(Answer::Done) } // the input is left open
//!         self.taken = true;
//!         Pin::new(&mut self.upstream).poll_ask(cx)
//!     }
//!     fn terminate(mut self: Pin<&mut Self>, request: Termination<S::Error>) {
//!         Pin::new(&mut self.upstream).terminate(request)
//!     }
//!     fn poll_terminated(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
//!         Pin::new(&mut self.upstream).poll_terminated(cx)
//!     }
//! }
//!
//! let checker = Checker::collecting();
//! let input = pull!(count::<()>(u64::MAX), checker.probe("Input"));
//! let got = pull!(
//!     LeakyTakeOne { upstream: input, taken: false },
//!     checker.probe("Output"),
//!     collect::<Vec<_>>(),
//! )
//! .await;
//! assert_eq!(got, Ok(vec![1]));
//! let report = checker.finish();
//! assert_eq!(report.invariants(), [Invariant::TerminationPropagated]);
//! assert_eq!(report.violations()[0].interface, "Input");
//! // The report lists the violations, then the trace:
//! //   pull-stream protocol: 1 violation
//! //     1. invariant 6 (termination is propagated) violated on `Input` at the end of the test: …
//! //   trace (6 events):
//! //     #0  Output:ask⟨1⟩
//! //     …
//! println!("{report}");
//! # });
//! ```

#![forbid(unsafe_code)]

mod checker;
mod harness;
mod monitor;
mod probe;
mod report;
pub mod rng;

pub use checker::{Checker, Mode};
pub use harness::{
    Campaign, Config, Execution, Failure, Fault, Faults, HarnessInput, OutputError, Poison, Property,
    Scenario, Settings, SinkOutcome, SubStreamModule, Summary, TestError, TestResults, TestSource, run, work,
};
pub use monitor::Monitor;
pub use probe::{Probe, ProbeModule};
pub use report::{Event, EventKind, Invariant, Report, Violation};
