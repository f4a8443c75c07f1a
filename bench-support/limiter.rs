//! The Limiter's pass-through: count → limit(map, 8) → drain, and the same
//! pipeline without the limiter. Shared by `limiter/benches/limiter.rs` and
//! `pando-bench`, included with `#[path = "…/bench-support/limiter.rs"] mod limiter;`.

use std::hint::black_box;

use futures::executor::block_on;
use pando_limiter::limit;
use pando_pull_stream::{count, drain, map, pull};

/// The limit: at most this many items inside the limited map.
pub(crate) const LIMIT: usize = 8;

/// The same per-item work in both pipelines.
#[inline(always)]
fn work(x: u64) -> u64 {
    black_box(black_box(x).wrapping_mul(3))
}

/// `pull!(count(n), limit(map(work), LIMIT), drain())`.
pub(crate) fn limited(n: u64) {
    let pipeline = pull!(count::<()>(n), limit(map(work), LIMIT).expect("8 > 0"), drain());
    block_on(pipeline).unwrap();
}

/// `pull!(count(n), map(work), drain())`.
pub(crate) fn unlimited(n: u64) {
    let pipeline = pull!(count::<()>(n), map(work), drain());
    block_on(pipeline).unwrap();
}
