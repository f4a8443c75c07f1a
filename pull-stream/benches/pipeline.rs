//! count → map → drain over 10^6 items, side by side with the same pipeline
//! written with `futures::stream` and with a plain iterator loop.
//!
//! Run with `cargo bench -p pando-pull-stream`. Besides criterion's report,
//! the benchmark prints a summary with ns/item and the ratios, measured in the
//! same run (the best of several full runs of each pipeline).

use std::hint::black_box;
use std::time::Duration;

#[path = "../../bench-support/ns_per_item.rs"]
mod bench_support;

use bench_support::ns_per_item;
use criterion::{Criterion, Throughput, criterion_group};
use futures::StreamExt;
use futures::executor::block_on;
use pando_pull_stream::{count, drain, map, pull};

const N: u64 = 1_000_000;

/// The same per-item work in every pipeline; `black_box` keeps the compiler
/// from removing or vectorizing the loop differently in each.
#[inline(always)]
fn work(x: u64) -> u64 {
    black_box(black_box(x).wrapping_mul(3))
}

fn pull_stream() {
    let pipeline = pull!(count::<()>(N), map(work), drain());
    block_on(pipeline).unwrap();
}

fn futures_stream() {
    let pipeline = futures::stream::iter(1..N + 1)
        .map(work)
        .for_each(|_| futures::future::ready(()));
    block_on(pipeline);
}

fn iterator_loop() {
    for x in 1..N + 1 {
        work(x);
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("count-map-drain-1e6");
    group.throughput(Throughput::Elements(N));
    group.sample_size(20).measurement_time(Duration::from_secs(3));
    group.bench_function("pando-pull-stream", |b| b.iter(pull_stream));
    group.bench_function("futures::stream", |b| b.iter(futures_stream));
    group.bench_function("iterator loop", |b| b.iter(iterator_loop));
    group.finish();
}

fn summary() {
    let pull = ns_per_item(pull_stream, N, 15);
    let fut = ns_per_item(futures_stream, N, 15);
    let iter = ns_per_item(iterator_loop, N, 15);
    println!();
    println!("summary: count -> map -> drain, 10^6 items (best of 15 runs)");
    println!("  pando-pull-stream  {pull:6.2} ns/item");
    println!(
        "  futures::stream    {fut:6.2} ns/item   pull-stream / futures  = {:.2}x",
        pull / fut
    );
    println!(
        "  iterator loop      {iter:6.2} ns/item   pull-stream / iterator = {:.2}x",
        pull / iter
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
