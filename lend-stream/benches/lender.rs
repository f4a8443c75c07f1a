//! 10^6 items through a StreamLender with K = 1, 2, 8 and 64 in-process
//! sub-streams doing trivial async work, side by side with
//! `futures::StreamExt::buffered(K)` doing the same work, in the same run.
//!
//! Run with `cargo bench -p pando-lend-stream --bench lender`. Besides
//! criterion's report, the benchmark prints a summary with ns/item for the
//! lender and `buffered(K)` and their ratio for each K: the median of
//! several full runs, the two alternating (so that a busy machine slows
//! both), with the spread (lowest-highest), in wall-clock time and in the
//! benchmark thread's on-CPU time (steadier on a shared machine).
//!
//! * `-- --summary-only`: the summary alone;
//! * `-- --runs N`: N runs of each for the summary (default 11);
//! * `-- --profile K`: the lender alone at K, 10 runs (`--profile-runs N`),
//!   for `perf record` or `valgrind --tool=callgrind`; `--profile-buffered K`:
//!   the same for `buffered(K)`.

use std::time::{Duration, Instant};

#[path = "../../bench-support/lender.rs"]
mod lender;

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

/// One full run of `f` over `N` items, in ns/item.
fn ns_per_item(f: impl FnOnce()) -> f64 {
    let start = Instant::now();
    f();
    start.elapsed().as_nanos() as f64 / N as f64
}

/// One full run of `f` over `N` items: wall-clock and on-CPU ns/item (the
/// CPU time of this thread, which runs the whole `block_on`: what other
/// processes on a shared machine take from it is not counted).
fn ns_per_item_and_cpu(f: impl FnOnce()) -> (f64, f64) {
    let cpu = || {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
        t.tv_sec as f64 * 1e9 + t.tv_nsec as f64
    };
    let cpu_start = cpu();
    let wall = ns_per_item(f);
    (wall, (cpu() - cpu_start) / N as f64)
}

/// The median, lowest and highest of `samples`.
fn spread(mut samples: Vec<f64>) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    let n = samples.len();
    let median = if n % 2 == 1 {
        samples[n / 2]
    } else {
        (samples[n / 2 - 1] + samples[n / 2]) / 2.0
    };
    (median, samples[0], samples[n - 1])
}

/// "median (lowest-highest)" of the samples, and the median.
fn show(samples: Vec<f64>, unit: &str) -> (String, f64) {
    let (m, lo, hi) = spread(samples);
    (format!("{m:.1}{unit} ({lo:.1}-{hi:.1})"), m)
}

fn summary(runs: usize) {
    println!();
    println!(
        "summary: 10^6 items, K in-process sub-streams doing trivial async work; \
         median of {runs} runs of each, alternating, with the spread (lowest-highest)"
    );
    println!(
        "  {:>3}  {:>5}  {:>26}  {:>26}  {:>24}",
        "K", "time", "StreamLender ns/item", "buffered(K) ns/item", "ratio (per-pair range)"
    );
    for k in KS {
        // One warm-up run of each, not counted.
        lender(k, N);
        buffered(k, N);
        let mut samples = [(); 6].map(|()| Vec::with_capacity(runs));
        for _ in 0..runs {
            let (lw, lc) = ns_per_item_and_cpu(|| lender(k, N));
            let (bw, bc) = ns_per_item_and_cpu(|| buffered(k, N));
            for (i, x) in [lw, bw, lw / bw, lc, bc, lc / bc].into_iter().enumerate() {
                samples[i].push(x);
            }
        }
        let [lw, bw, rw, lc, bc, rc] = samples;
        for (what, l, b, r) in [("wall", lw, bw, rw), ("cpu", lc, bc, rc)] {
            let ((l, lm), (b, bm), (_, lo, hi)) = (show(l, ""), show(b, ""), spread(r));
            println!(
                "  {k:>3}  {what:>5}  {l:>26}  {b:>26}  {:>24}",
                format!("{:.2}x ({lo:.2}-{hi:.2})", lm / bm),
            );
        }
    }
}

criterion_group!(benches, bench);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value_of = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .map(|i| args.get(i + 1).and_then(|v| v.parse::<usize>().ok()))
            .map(|v| v.unwrap_or_else(|| panic!("{flag} takes a number")))
    };
    if let Some(k) = value_of("--profile-buffered") {
        for _ in 0..value_of("--profile-runs").unwrap_or(10) {
            println!("buffered({k}): {:.1} ns/item", ns_per_item(|| buffered(k, N)));
        }
        return;
    }
    if let Some(k) = value_of("--profile") {
        for _ in 0..value_of("--profile-runs").unwrap_or(10) {
            // Wall-clock time only: valgrind cannot run rustix's clock (vDSO).
            println!("lender, K = {k}: {:.1} ns/item", ns_per_item(|| lender(k, N)));
        }
        return;
    }
    if !args.iter().any(|a| a == "--summary-only") {
        benches();
        Criterion::default().configure_from_args().final_summary();
    }
    summary(value_of("--runs").unwrap_or(11));
}
