//! n items through a StreamLender with k in-process sub-streams doing trivial
//! async work, and `futures::StreamExt::buffered(k)` doing the same work.
//! Shared by `lend-stream/benches/lender.rs` and `pando-bench`, included with
//! `#[path = "…/bench-support/lender.rs"] mod lender;`.

use std::hint::black_box;

use futures::StreamExt;
use futures::executor::block_on;
use pando_lend_stream::{Lent, StreamLender};
use pando_pull_stream::{async_map, count, drain, pull};

/// The trivial async work, the same for both.
async fn work(x: u64) -> u64 {
    black_box(x.wrapping_mul(3))
}

/// `pull!(count(n), lender, drain())` with `k` sub-streams, each
/// `pull!(sub.source, async_map(work), sub.sink)`, all in one task.
pub(crate) fn lender(k: usize, n: u64) {
    let lender = StreamLender::<u64, u64, ()>::new();
    let output = pull!(count(n), lender.clone(), drain());
    let workers = (0..k).map(|_| {
        let sub = lender.lend_stream::<()>();
        pull!(
            sub.source,
            async_map(|l: Lent<u64>| async move { Ok(Lent::new(l.id, work(l.value).await)) }),
            sub.sink
        )
    });
    let (out, done) = block_on(futures::future::join(output, futures::future::join_all(workers)));
    out.unwrap();
    assert!(done.iter().all(Result::is_ok));
}

/// `stream::iter(1..n + 1).map(work).buffered(k).for_each(ready)`.
pub(crate) fn buffered(k: usize, n: u64) {
    block_on(
        futures::stream::iter(1..n + 1)
            .map(work)
            .buffered(k)
            .for_each(|x| {
                black_box(x);
                futures::future::ready(())
            }),
    );
}
