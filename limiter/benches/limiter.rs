//! The Limiter's pass-through cost: count → limit(map, 8) → drain over 10^6
//! items, next to count → map → drain in the same run.
//!
//! Run with `cargo bench -p pando-limiter`. Besides criterion's report, the
//! benchmark prints a summary line with ns/item for both pipelines and their
//! ratio, measured with `Instant` over full runs (the best of several).
//! Reference: the original JavaScript `pull-limit` around a map, limit 8,
//! takes about 105 ns/item; the goal here is at most 100 ns/item.

use std::time::Duration;

#[path = "../../bench-support/ns_per_item.rs"]
mod bench_support;
#[path = "../../bench-support/limiter.rs"]
mod limiter;

use bench_support::ns_per_item;
use criterion::{Criterion, Throughput, criterion_group};
use limiter::{limited, unlimited};

const N: u64 = 1_000_000;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("limiter-1e6");
    group.throughput(Throughput::Elements(N));
    group.sample_size(10).measurement_time(Duration::from_secs(3));
    group.bench_function("count-limit(map,8)-drain", |b| b.iter(|| limited(N)));
    group.bench_function("count-map-drain", |b| b.iter(|| unlimited(N)));
    group.finish();
}

fn summary() {
    let runs = 10;
    let lim = ns_per_item(|| limited(N), N, runs);
    let unl = ns_per_item(|| unlimited(N), N, runs);
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
