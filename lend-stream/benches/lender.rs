//! 10^6 items through a StreamLender with K = 1, 2, 8 and 64 in-process
//! sub-streams doing trivial async work, side by side with
//! `futures::StreamExt::buffered(K)` doing the same work, in the same run.
//!
//! Run with `cargo bench -p pando-lend-stream --bench lender`. Besides
//! criterion's report, the benchmark prints a summary with ns/item and the
//! ratio lender / buffered for each K (the best of several full runs).

use std::time::Duration;

#[path = "../../bench-support/ns_per_item.rs"]
mod bench_support;
#[path = "../../bench-support/lender.rs"]
mod lender;

use bench_support::ns_per_item;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use lender::{buffered, lender};

const N: u64 = 1_000_000;
const KS: [usize; 4] = [1, 2, 8, 64];

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("lend-1e6");
    group.throughput(Throughput::Elements(N));
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    for k in KS {
        group.bench_with_input(BenchmarkId::new("StreamLender", k), &k, |b, &k| {
            b.iter(|| lender(k, N))
        });
        group.bench_with_input(BenchmarkId::new("buffered", k), &k, |b, &k| {
            b.iter(|| buffered(k, N))
        });
    }
    group.finish();
}

fn summary() {
    println!();
    println!("summary: 10^6 items, K in-process sub-streams doing trivial async work (best of 5 runs)");
    println!(
        "  {:>3}  {:>16}  {:>16}  {:>8}",
        "K", "StreamLender", "buffered(K)", "ratio"
    );
    for k in KS {
        let l = ns_per_item(|| lender(k, N), N, 5);
        let b = ns_per_item(|| buffered(k, N), N, 5);
        println!("  {k:>3}  {l:>10.1} ns/item  {b:>10.1} ns/item  {:>7.2}x", l / b);
    }
}

criterion_group!(benches, bench);

fn main() {
    if !std::env::args().any(|a| a == "--summary-only") {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    summary();
}
