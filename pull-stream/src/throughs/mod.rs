//! Standard throughs (the seeds' transformers): [`map`], [`async_map`],
//! [`filter`], [`take`] and [`map_err`].

mod async_map;
mod filter;
mod map;
mod map_err;
mod take;

pub use async_map::{AsyncMap, AsyncMapSource, async_map};
pub use filter::{Filter, FilterSource, filter};
pub use map::{Map, MapSource, map};
pub use map_err::{MapErr, MapErrSource, map_err};
pub use take::{Take, TakeSource, take};
