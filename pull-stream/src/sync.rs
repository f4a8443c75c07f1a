//! The synchronization primitives of the [`Serializer`](crate::Serializer):
//! `std`'s, or loom's when built with `RUSTFLAGS="--cfg loom"` so that loom
//! models (see `pando-lend-stream`'s `tests/loom.rs`) explore their interleavings.

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};
