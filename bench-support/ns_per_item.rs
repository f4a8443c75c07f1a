//! The summary timing shared by the workspace's benchmarks, included in each
//! with `#[path = "../../bench-support/ns_per_item.rs"] mod bench_support;`
//! (a file, not a crate, so that no benchmark gains a dependency).

use std::time::Instant;

/// The best of `runs` full runs of `f`, each processing `items` items, in
/// nanoseconds per item.
pub(crate) fn ns_per_item(mut f: impl FnMut(), items: u64, runs: usize) -> f64 {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_nanos() as f64 / items as f64
        })
        .fold(f64::INFINITY, f64::min)
}
