//! 10^6 items through a StreamLender with K = 1, 2, 8 and 64 in-process
//! sub-streams doing trivial async work, side by side with
//! `futures::StreamExt::buffered(K)` doing the same work, in the same run.
//!
//! Run with `cargo bench -p pando-lend-stream --bench lender`. Besides
//! criterion's report, the benchmark prints a summary with ns/item and the
//! ratio lender / buffered for each K (the best of several full runs).

use std::hint::black_box;
use std::time::Duration;

#[path = "../../bench-support/ns_per_item.rs"]
mod bench_support;

use bench_support::ns_per_item;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use futures::StreamExt;
use futures::executor::block_on;
use pando_lend_stream::{Lent, StreamLender};
use pando_pull_stream::{async_map, count, drain, pull};

const N: u64 = 1_000_000;
const KS: [usize; 4] = [1, 2, 8, 64];

/// The trivial async work, the same for both.
async fn work(x: u64) -> u64 {
    black_box(x.wrapping_mul(3))
}

fn lender(k: usize) {
    let lender = StreamLender::<u64, u64, ()>::new();
    let output = pull!(count(N), lender.clone(), drain());
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

fn buffered(k: usize) {
    block_on(
        futures::stream::iter(1..N + 1)
            .map(work)
            .buffered(k)
            .for_each(|x| {
                black_box(x);
                futures::future::ready(())
            }),
    );
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("lend-1e6");
    group.throughput(Throughput::Elements(N));
    group.sample_size(10).measurement_time(Duration::from_secs(5));
    for k in KS {
        group.bench_with_input(BenchmarkId::new("StreamLender", k), &k, |b, &k| {
            b.iter(|| lender(k))
        });
        group.bench_with_input(BenchmarkId::new("buffered", k), &k, |b, &k| {
            b.iter(|| buffered(k))
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
        let l = ns_per_item(|| lender(k), N, 5);
        let b = ns_per_item(|| buffered(k), N, 5);
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
