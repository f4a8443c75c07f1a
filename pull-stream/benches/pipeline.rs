//! count → map → drain over 10^6 items, side by side with the same pipeline
//! written with `futures::stream` and with a plain iterator loop.
//!
//! Run with `cargo bench -p pando-pull-stream`. Besides criterion's report,
//! the benchmark prints a summary with ns/item and the ratios, measured in the
//! same run (the best of several full runs of each pipeline).

use std::time::Duration;

#[path = "../../bench-support/ns_per_item.rs"]
mod bench_support;
#[path = "../../bench-support/pipeline.rs"]
mod pipeline;

use bench_support::ns_per_item;
use criterion::{Criterion, Throughput, criterion_group};
use pipeline::{futures_stream, iterator_loop, pull_stream};

const N: u64 = 1_000_000;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("count-map-drain-1e6");
    group.throughput(Throughput::Elements(N));
    group.sample_size(20).measurement_time(Duration::from_secs(3));
    group.bench_function("pando-pull-stream", |b| b.iter(|| pull_stream(N)));
    group.bench_function("futures::stream", |b| b.iter(|| futures_stream(N)));
    group.bench_function("iterator loop", |b| b.iter(|| iterator_loop(N)));
    group.finish();
}

fn summary() {
    let pull = ns_per_item(|| pull_stream(N), N, 15);
    let fut = ns_per_item(|| futures_stream(N), N, 15);
    let iter = ns_per_item(|| iterator_loop(N), N, 15);
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
