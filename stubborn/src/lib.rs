//! # pando-stubborn
//!
//! **Stubborn processing** (seed 000, §5.3): a feedback loop around a
//! through, for computations whose results may be unusable (a worker crashed
//! before its result could be downloaded, a result fails a check). Every
//! result is tested; a failed one sends its input through again.
//!
//! ## The abstraction
//!
//! ```text
//!                 ┌──────────────── stubborn(through, tester) ────────────────┐
//!                 │   resubmissions (first)                                   │
//!                 │        ┌──────────────────────────────────────┐          │
//!                 │        ▼                                      │ Resubmit │
//!  upstream ──────┼──▶ StubbornInput ──▶ through ──▶ tester(input, result)   │
//!   (read lazily) │   Tagged{position,     Tagged{tag,      │ Accept(out)   │
//!                 │          attempt}       result}         ▼               │
//!                 │                                   reorder by position ──┼──▶ output
//!                 └────────────────────────────────────────────────────────────┘
//! ```
//!
//! [`stubborn(through, tester)`](stubborn) gives `through` a
//! [`StubbornInput`]: resubmitted values first, then values read from
//! upstream, each [`Tagged`] with its position and attempt number. Each
//! result the through returns (with the same tag) goes to the async
//! `tester(input, result)`, whose [`Verdict`] either accepts it, with the
//! value to output, or resubmits a value (the same input or a new one).
//!
//! ## Properties
//!
//! The original `pull-stubborn` turned upstream errors into a normal end,
//! looped forever on a value that always fails, could not tell a stale
//! success from a real one, and rejected concurrent asks. Here:
//!
//! * **In order**: outputs come in input order by default;
//!   [`Stubborn::unordered`] outputs them as they are accepted.
//! * **Lazy, resubmissions first**: upstream is read only when the through
//!   asks and no resubmission is waiting.
//! * **Errors are propagated**: an upstream error comes out after the results
//!   of the values before it. Errors of the through come out at once.
//! * **Retry cap**: at most [`DEFAULT_MAX_ATTEMPTS`] submissions per value by
//!   default ([`Stubborn::max_attempts`]); beyond, the stream ends with
//!   [`StubbornError::RetriesExhausted`] `{ position, attempts }`. Unlimited
//!   retries are an explicit opt-in ([`Stubborn::unlimited_attempts`]).
//! * **Attempt ids**: a result whose [`Tag`] is not the value's current
//!   submission (stale, duplicate, or for a value already accepted) is
//!   dropped and counted ([`StubbornStats::stale`]), never output twice.
//! * **Concurrency**: the through's input may be asked from another task
//!   than the output (a duplex with a spawned sink half); the output can be
//!   shared by concurrent consumers through a
//!   [`Serializer`](pando_pull_stream::Serializer); up to
//!   [`Stubborn::tester_concurrency`] tests run at once.
//! * **Termination** (invariants 1, 2, 6): a termination from downstream
//!   drops pending tests and resubmissions and travels through the through to
//!   upstream; every request is answered once.
//!
//! ## Errors
//!
//! Errors travel both ways in a pipeline (a downstream `fail(e)` reaches
//! upstream unchanged), so stubborn processing keeps the stream's error type
//! `E` and requires `E: From<StubbornError>` for its own errors. An enum with
//! a `#[from] StubbornError` variant, or `Box<dyn Error + Send + Sync>`, fits.
//!
//! ## Example
//!
//! ```
//! use pando_pull_stream::{async_map, collect, pull, values};
//! use pando_stubborn::{StubbornError, Tagged, Verdict, stubborn};
//!
//! #[derive(Debug, PartialEq, thiserror::Error)]
//! enum JobError {
//!     #[error("input unavailable: {0}")]
//!     Input(String),
//!     #[error(transparent)]
//!     Stubborn(#[from] StubbornError),
//! }
//!
//! # futures::executor::block_on(async {
//! // "Workers" compute a result, but a result is only usable if its
//! // download succeeds; here the first download of every even value fails.
//! let compute = async_map(|t: Tagged<u64>| async move {
//!     let download_ok = t.value % 2 == 1 || t.tag.attempt > 1;
//!     Ok::<_, JobError>(t.map(|x| (x * 10, download_ok)))
//! });
//! let module = stubborn(compute, |input: u64, (result, ok): (u64, bool)| async move {
//!     if ok { Verdict::Accept(result) } else { Verdict::Resubmit(input) }
//! });
//! let stats = module.handle();
//!
//! let got = pull!(values([1u64, 2, 3, 4]), module, collect::<Vec<_>>()).await;
//! assert_eq!(got, Ok(vec![10, 20, 30, 40]));
//! assert_eq!(stats.stats().resubmissions, 2);
//! assert_eq!(stats.stats().submissions, 6);
//! # });
//! ```
//!
//! ## Items
//!
//! | item | role |
//! |------|------|
//! | [`stubborn`], [`Stubborn`] | the module and its configuration |
//! | [`StubbornInput`] | the input handed to the through |
//! | [`StubbornSource`] | the output |
//! | [`Tag`], [`Tagged`] | the identity of a submission |
//! | [`Verdict`] | the tester's decision |
//! | [`StubbornError`] | retries exhausted, through ended early |
//! | [`StubbornHandle`], [`StubbornStats`] | counters, incl. stale results |

#![forbid(unsafe_code)]

mod core;
mod error;
mod input;
mod output;
mod stats;
mod stubborn;
mod tag;
mod verdict;

pub use error::StubbornError;
pub use input::StubbornInput;
pub use output::StubbornSource;
pub use stats::{StubbornHandle, StubbornStats};
pub use stubborn::{DEFAULT_MAX_ATTEMPTS, Stubborn, stubborn};
pub use tag::{Tag, Tagged};
pub use verdict::Verdict;
