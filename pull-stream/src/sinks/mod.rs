//! Standard sinks: [`drain`], [`collect`] and [`for_each`]. A sink connected to
//! a source is a future that drives the whole pipeline.

mod collect;
mod drain;
mod for_each;

pub use collect::{Collect, CollectFuture, collect};
pub use drain::{Drain, DrainFuture, drain};
pub use for_each::{ForEach, ForEachFuture, for_each};
