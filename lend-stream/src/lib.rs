//! # pando-lend-stream
//!
//! **StreamLender** (seed 000, §4.4, Abstraction 2): the heart of Pando. A
//! lender is a through that lends the values of its input to any number of
//! *sub-streams* and outputs their results in input order.
//!
//! ```text
//!   input ──▶ StreamLender ──▶ output (results, in input order)
//!                 │   ▲
//!   lend_stream() ┤   │  one sub-stream per worker:
//!                 ▼   │  source (lent values) ⇒ worker ⇒ sink (results)
//! ```
//!
//! Every value lent carries its id (its position in the input, [`Lent`]),
//! and every result must come back with the id of the value it answers.
//!
//! ## Properties (Abstraction 2)
//!
//! 1. **Unbounded**: any number of sub-streams.
//! 2. **Dynamic**: [`StreamLender::lend_stream`] can be called at any time.
//! 3. **Lazy**: the input is asked only for a sub-stream's ask.
//! 4. **Conservative**: a value is lent to at most one live sub-stream at a
//!    time; with [`StreamLender::with_replicas`]`(k)`, to at most `k` live
//!    sub-streams at a time, never twice to the same one.
//! 5. **Fault-tolerant**: the values a sub-stream holds when it ends, fails
//!    or is dropped are lent to the others.
//! 6. **Ordered**: results come out in input order ([`StreamLender::unordered`] opts out).
//! 7. **Adaptive**: sub-streams that ask faster get more values.
//!
//! ## Beyond the original `pull-lend-stream`
//!
//! * **Concurrent asks** on a sub-stream are allowed ([`SubSource::ask`]).
//! * **Results are matched to values by id.** A result for a value the
//!   sub-stream does not hold ends that sub-stream with
//!   [`SubStreamError::UnexpectedResult`]; its values are lent again.
//! * **Exactly once.** A late result for a value that was re-lent is
//!   accepted if the value still has no result, and dropped otherwise: the
//!   output never has a duplicate.
//! * **Closing.** [`StreamLender::close`] stops reading the input and lets
//!   the values already read finish; [`StreamLender::cut_off`] (or
//!   `close_within(deadline)` with the `tokio` feature) gives up on hung
//!   sub-streams.
//! * **Error order.** An input error is output after the results of every
//!   value read before it, as [`LendError::Input`].
//! * **Poison values.** [`StreamLender::with_max_retries`] caps the failures
//!   of each value, so a value that always fails never loops forever; a
//!   sub-stream reports a failed value without ending with [`Rejecter`]
//!   (`reject`: it answered "failed"; `reclaim`: taken back unanswered, a
//!   late result is still accepted once). Only a value's own failures poison
//!   it: a sub-stream that ends holding several values charges each, but a
//!   value at the cap is then lent alone, so the error names the culprit.
//!   [`LendError::Poisoned`] (with the last failure's reason) is the
//!   output's last answer: the lender aborts its input first, reads nothing
//!   more, and ends its sub-streams.
//! * **Majority voting.** [`StreamLender::with_replicas`] lends each value
//!   to `k` different sub-streams and accepts a result at `⌊k/2⌋+1` equal
//!   answers (the seeds' future work, and BOINC's answer to wrong results);
//!   see [`machine::replicas`] for the rules.
//! * **Monitoring.** [`StreamLender::state`] gives a [`LenderState`] snapshot.
//! * **Send.** Sub-streams can be driven by any task on any thread.
//!
//! The state machine is a deterministic, sans-IO core ([`machine::Core`]),
//! one method per `upon … trigger …` handler of Algorithms 10-12; the async
//! types only translate polls into its events. The input and the sub-streams'
//! modules are never polled while the lender's lock is held.
//!
//! ## Verification
//!
//! * **Random interleavings.** `pando-checker` drives this lender through
//!   seeded random interleavings of a test source, a test sink and test
//!   transformers in the sub-streams (seed 000, §4.6 and Appendix A, with
//!   concurrent asks, crashes and terminations from either side), checks the
//!   protocol on every interface and the properties above, and reports any
//!   failure with its seed and event trace:
//!   `cargo run --release -p pando-checker -- --runs 1000000`. The model
//!   also drives what was added on top of the seeds: read-ahead bounds,
//!   retry caps with both poison policies and the blame rule, rejections
//!   and reclaims, `close`, `cut_off`, a sub-stream that stops polling its
//!   ask, a panicking input, early ends of the output, `settled()`, and
//!   replicas with lying sub-streams (`--replicas K --faults lie`; the model
//!   counts the votes). A fixed block of 19 400 executions runs in `cargo test`.
//! * **Loom.** The locks behind the lender's shared state and its input
//!   switch to loom's under `cfg(loom)`; the model in
//!   `tests/loom.rs` runs sub-streams on loom threads:
//!   `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test -p pando-lend-stream --test loom --release`
//!   (use a separate `CARGO_TARGET_DIR` to keep the normal build's cache).
//! * **Properties.** `tests/properties.rs` (proptest): random crashes, joins
//!   and terminations give the input mapped, in order, exactly once.
//!
//! ## Example
//!
//! ```
//! use pando_lend_stream::{Lent, StreamLender};
//! use pando_pull_stream::{SourceExt, async_map, collect, count, pull, take};
//!
//! # futures::executor::block_on(async {
//! let lender = StreamLender::new();
//! let output = pull!(count::<()>(6), lender.clone(), collect::<Vec<_>>());
//!
//! // A worker that crashes after taking two values…
//! let mut crashing = lender.lend_stream::<()>();
//! let (a, b) = (crashing.source.ask().await, crashing.source.ask().await);
//! assert!(a.into_option().is_some() && b.into_option().is_some());
//! drop(crashing); // …its two values are lent again.
//!
//! // A worker that squares its values.
//! let sub = lender.lend_stream::<()>();
//! let worker = pull!(
//!     sub.source,
//!     async_map(|l: Lent<u64>| async move { Ok(l.map(|x| x * x)) }),
//!     sub.sink,
//! );
//! let (results, worked) = futures::join!(output, worker);
//! assert_eq!(results, Ok(vec![1, 4, 9, 16, 25, 36]));
//! assert_eq!(worked, Ok(()));
//! assert_eq!(lender.state().relent, 2);
//! # });
//! ```

#![forbid(unsafe_code)]

mod concurrent_ask;
mod error;
mod input;
mod lender;
mod lent;
pub mod machine;
mod rejecter;
mod shared;
mod state;
mod sub_sink;
mod sub_source;
mod sync;

pub use concurrent_ask::{ConcurrentAsk, OwnedConcurrentAsk};
pub use error::{LendError, SubStreamError};
pub use lender::{CloseFuture, LenderOutput, Settled, StreamLender, SubStream};
pub use lent::Lent;
pub use machine::PoisonPolicy;
pub use rejecter::Rejecter;
pub use state::LenderState;
pub use sub_sink::{SubSink, SubSinkFuture};
pub use sub_source::SubSource;
