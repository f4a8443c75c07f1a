//! count → map → drain, the same pipeline three ways (pull-stream,
//! `futures::stream`, a plain loop), with the same per-item work. Shared by
//! `pull-stream/benches/pipeline.rs` and `pando-bench`, included with
//! `#[path = "…/bench-support/pipeline.rs"] mod pipeline;`.

use std::hint::black_box;

use futures::StreamExt;
use futures::executor::block_on;
use pando_pull_stream::{count, drain, map, pull};

/// The same per-item work in every pipeline; `black_box` keeps the compiler
/// from removing or vectorizing the loop differently in each.
#[inline(always)]
fn work(x: u64) -> u64 {
    black_box(black_box(x).wrapping_mul(3))
}

/// `pull!(count(n), map(work), drain())`.
pub(crate) fn pull_stream(n: u64) {
    let pipeline = pull!(count::<()>(n), map(work), drain());
    block_on(pipeline).unwrap();
}

/// `stream::iter(1..n + 1).map(work).for_each(ready)`.
pub(crate) fn futures_stream(n: u64) {
    let pipeline = futures::stream::iter(1..n + 1)
        .map(work)
        .for_each(|_| futures::future::ready(()));
    block_on(pipeline);
}

/// `for x in 1..n + 1 { work(x) }`.
pub(crate) fn iterator_loop(n: u64) {
    for x in 1..n + 1 {
        work(x);
    }
}
