//! The Limiter's pass-through cost: count → limit(map, 8) → drain over 10^6
//! items, next to count → map → drain in the same run.
//!
//! Run with `cargo bench -p pando-limiter`. Besides criterion's report, the
//! benchmark prints a summary line with ns/item for both pipelines and their
//! ratio, measured with `Instant` over full runs (the best of several).
//! Reference: the original JavaScript `pull-limit` around a map, limit 8,
//! takes about 105 ns/item; the goal here is at most 100 ns/item.

use std::hint::black_box;
use std::time::Duration;

#[path = "../../bench-support/ns_per_item.rs"]
mod bench_support;

use bench_support::ns_per_item;
use criterion::{Criterion, Throughput, criterion_group};
use futures::executor::block_on;
use pando_limiter::limit;
use pando_pull_stream::{count, drain, map, pull};

const N: u64 = 1_000_000;
const LIMIT: usize = 8;

/// The same per-item work in both pipelines.
#[inline(always)]
fn work(x: u64) -> u64 {
    black_box(black_box(x).wrapping_mul(3))
}

fn limited() {
    let pipeline = pull!(count::<()>(N), limit(map(work), LIMIT).expect("8 > 0"), drain());
    block_on(pipeline).unwrap();
}

fn unlimited() {
    let pipeline = pull!(count::<()>(N), map(work), drain());
    block_on(pipeline).unwrap();
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("limiter-1e6");
    group.throughput(Throughput::Elements(N));
    group.sample_size(10).measurement_time(Duration::from_secs(3));
    group.bench_function("count-limit(map,8)-drain", |b| b.iter(limited));
    group.bench_function("count-map-drain", |b| b.iter(unlimited));
    group.finish();
}

fn summary() {
    let runs = 10;
    let lim = ns_per_item(limited, N, runs);
    let unl = ns_per_item(unlimited, N, runs);
    println!();
    println!("summary: 10^6 items, best of {runs} full runs");
    println!(
        "  count -> limit(map, 8) -> drain: {lim:.2} ns/item | count -> map -> drain: {unl:.2} ns/item | ratio {:.2}x | goal <= 100 ns/item (JS pull-limit ~105)",
        lim / unl
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
