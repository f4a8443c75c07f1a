//! The synchronization primitives behind the lender's shared state: `std`'s,
//! or loom's when built with `RUSTFLAGS="--cfg loom"`, so that the loom model
//! in `tests/loom.rs` explores every interleaving of the locks (see the crate
//! documentation for the command).

pub(crate) use std::sync::atomic::Ordering;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::AtomicBool;
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::AtomicBool;
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};
