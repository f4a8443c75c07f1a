//! # pando-limiter
//!
//! The **Limiter** of the Pando dissertation (seed 000, §4.3, Abstraction 1,
//! Algorithms 8-9): it wraps any through or duplex and returns a limited one
//! with the same interface, in which at most `n` values are *in process*:
//! requested by the wrapped module and not yet output by it.
//!
//! ## The abstraction
//!
//! ```text
//!            ┌──────────────────── Limit ────────────────────┐
//!  upstream ─┤ LimitedInput ──▶ wrapped module ──▶ Limited   ├─▶ downstream
//!            │  (k < limit?)      (through or       (k -= 1)  │
//!            │   k += 1            duplex)                   │
//!            └───────────────────────────────────────────────┘
//! ```
//!
//! [`limit(module, n)`](limit) hands the wrapped module a [`LimitedInput`]:
//! an ask is forwarded upstream only while `k < n`, and counted (`k += 1`).
//! The module's output is wrapped in [`Limited`], which lowers `k` for each
//! value output and wakes a waiting ask. Requests and answers otherwise pass
//! through unchanged. The input and the output may be polled from different
//! tasks (a duplex's sink half may be spawned): the count, the limit and the
//! flow measurement are shared behind one lock, which is all the per-item
//! cost (no allocation per item).
//!
//! ## Properties
//!
//! * **Bounded eagerness**: at most `n` values are in process.
//! * **Output-based flow control**: once the limit is reached, values are
//!   requested at the rate at which results come out.
//! * **Dynamic**: [`LimitHandle::update_limit`] changes the limit at any time,
//!   from any task, through a cloneable handle. Lowering it below the number
//!   in process holds new asks until the count drops under the new limit.
//!   A limit of 0 is rejected with [`LimitError::Zero`]; constructors take a
//!   `usize` and return a `Result` for the same reason ([`Limit::new`] uses
//!   the default limit, 1).
//! * **Termination (invariants 1, 2, 6)**: an abort or fail from the wrapped
//!   module is passed upstream, and answered only once upstream confirms (the
//!   original `pull-limit` answered at once). An ask waiting for the limit is
//!   abandoned by the termination, as in Algorithm 9; every request gets
//!   exactly one answer.
//! * **Flow rate**: [`LimitHandle::flow_rate`] gives the results per second
//!   over a recent window (1 s by default, [`Limit::flow_window`]), as the
//!   original's `flow-rate` event did, and [`LimitHandle::results`] the total.
//!   The clock is injectable ([`Limit::clock`], [`ManualClock`]) so that
//!   measurements can be tested deterministically.
//!
//! The wrapped module must follow the pull-stream protocol and output exactly
//! one result per value it receives (the abstraction's expectations).
//!
//! ## Example
//!
//! ```
//! use pando_limiter::limit;
//! use pando_pull_stream::{collect, count, duplex_pair, pull};
//!
//! # futures::executor::block_on(async {
//! // A connection to a "worker" that squares what it receives.
//! let (near, far) = duplex_pair::<u64, u64, ()>(64);
//! let worker = pull!(far.source, pando_pull_stream::map(|x: u64| x * x), far.sink);
//!
//! // At most 2 values in flight on the connection, whatever its buffers.
//! let limited = limit(near, 2)?;
//! let handle = limited.handle();
//! let results = pull!(count(10), limited, collect::<Vec<_>>());
//!
//! handle.update_limit(4)?; // at any time, from any task
//! let (worked, results) = futures::join!(worker, results);
//! assert_eq!(worked, Ok(()));
//! assert_eq!(results, Ok((1..=10u64).map(|x| x * x).collect()));
//! assert_eq!(handle.results(), 10);
//! # Ok::<(), pando_limiter::LimitError>(())
//! # }).unwrap();
//! ```
//!
//! ## Items
//!
//! | item | role |
//! |------|------|
//! | [`limit`], [`Limit`] | the module: wraps a through or a duplex |
//! | [`LimitedInput`] | the input handed to the wrapped module (`NLInput`) |
//! | [`Limited`] | the limited output (`Output`) |
//! | [`LimitedSink`], [`Limit::into_duplex`] | a limited duplex, as two halves |
//! | [`LimitHandle`] | `updateLimit`, in-process count, flow rate |
//! | [`Clock`], [`SystemClock`], [`ManualClock`] | the flow-rate clock |
//! | [`LimitError`] | rejected configurations |

#![forbid(unsafe_code)]

mod clock;
mod error;
mod flow;
mod handle;
mod input;
mod limit;
mod output;
mod sink;
mod state;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::LimitError;
pub use handle::LimitHandle;
pub use input::LimitedInput;
pub use limit::{Limit, limit};
pub use output::Limited;
pub use sink::LimitedSink;
