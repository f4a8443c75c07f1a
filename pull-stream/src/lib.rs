//! # pando-pull-stream
//!
//! The pull-stream protocol of the Pando dissertation (seed 000, §4.1) as Rust
//! traits, with the standard modules to build pipelines from, and the
//! [`Serializer`] that StreamLender builds on.
//!
//! ## The abstraction
//!
//! A pipeline is a chain of modules: a *source*, any number of *throughs*
//! (the seeds' transformers) and a *sink*. The sink drives the pipeline by
//! making requests upstream; each module answers the requests it receives:
//!
//! | request | answer  |
//! |---------|---------|
//! | ask     | value   |
//! | abort   | done    |
//! | fail    | error   |
//!
//! Values are produced only when asked for, so sources can be infinite; any
//! module can end the stream early, normally (abort/done) or with an error
//! (fail/error), and the termination travels to both ends of the pipeline.
//!
//! In Rust the protocol is the poll-based [`Source`] trait: `ask` is
//! [`Source::poll_ask`], `abort` and `fail` are [`Source::terminate`], and the
//! answer to a termination is [`Source::poll_terminated`]. A through is a
//! [`Connect`] whose output is a source, a sink is a [`Connect`] whose output
//! is a future, and a [`Duplex`] is a source plus a sink (a connection).
//! [`SourceExt`] adds `ask().await`, `abort().await`, `fail(e).await` and
//! adapter methods.
//!
//! ## Properties
//!
//! * **The six invariants of §4.1.2.** One outstanding request per `&mut`
//!   consumer, answered once and in order, is enforced by the type system
//!   (invariants 3-5); the modules here make no request after termination,
//!   answer every request, and propagate termination both ways (1, 2 and 6).
//!   The `pando-checker` crate checks all six at run time.
//! * **Zero cost.** A `count → map → drain` pipeline allocates nothing per
//!   item and runs at the speed of the equivalent `futures::stream` pipeline
//!   (see `BENCHMARKS.md`).
//! * **Runtime-agnostic.** Nothing here spawns or sleeps; any executor drives
//!   a pipeline.
//! * **Interop.** Any `futures::Stream` is a source, any source is a
//!   `futures::Stream`, and any `futures::Sink` is a sink (feature
//!   `futures-interop`, on by default).
//!
//! ## Example
//!
//! ```
//! use pando_pull_stream::{async_map, collect, compose, count, filter, map, pull, take};
//!
//! # futures::executor::block_on(async {
//! // A through built by partial composition: through + through = through.
//! let odd_squares = compose!(filter(|x: &u64| x % 2 == 1), map(|x: u64| x * x));
//!
//! let got = pull!(
//!     count(u64::MAX),                                   // an (almost) infinite source
//!     odd_squares,
//!     async_map(|x: u64| async move { Ok::<_, String>(x + 1) }),
//!     take(4),                                           // ends the stream early
//!     collect::<Vec<_>>(),                               // the sink drives the pipeline
//! )
//! .await;
//! assert_eq!(got, Ok(vec![2, 10, 26, 50]));
//! # });
//! ```
//!
//! ## Modules
//!
//! | kind     | modules |
//! |----------|---------|
//! | sources  | [`values`], [`count`], [`infinite`], [`empty`], [`error()`](fn@error), [`from_stream`], [`from_try_stream`] |
//! | throughs | [`map`], [`async_map`], [`filter`], [`take`], [`map_err`], a [`Duplex`] |
//! | sinks    | [`drain`], [`collect`], [`for_each`], [`into_sink`] |
//! | sharing  | [`Serializer`] (concurrent asks, one upstream request at a time) |
//! | duplexes | [`Duplex`], [`duplex_pair`] (an in-memory connection), [`channel`] |

#![forbid(unsafe_code)]

mod channel;
pub mod closing;
mod connect;
mod duplex;
mod ext;
#[cfg(feature = "futures-interop")]
mod interop;
mod protocol;
mod serializer;
mod sinks;
mod source;
mod sources;
mod sync;
#[cfg(feature = "test-util")]
pub mod test_util;
mod throughs;

pub use channel::{ChannelSink, ChannelSource, DuplexEnd, SendFuture, channel, duplex_pair};
pub use connect::{Compose, Connect};
pub use duplex::{Duplex, DuplexSource};
pub use ext::{Ask, SourceExt, Terminate};
#[cfg(feature = "futures-interop")]
pub use interop::{
    FromStream, IntoSink, IntoSinkFuture, IntoStream, Items, TryItems, from_stream, from_try_stream,
    into_sink, into_stream,
};
pub use protocol::{Answer, Request, Termination};
pub use serializer::{AskNow, Close, OwnedAsk, SerialAsk, Serializer, SerializerModule, serialize};
pub use sinks::{
    Collect, CollectFuture, Drain, DrainFuture, ForEach, ForEachFuture, collect, drain, for_each,
};
pub use source::{BoxSource, Source};
pub use sources::{Count, Empty, Error, Infinite, Values, count, empty, error, infinite, values};
pub use throughs::{
    AsyncMap, AsyncMapSource, Filter, FilterSource, Map, MapErr, MapErrSource, MapSource, Take, TakeSource,
    async_map, filter, map, map_err, take,
};
