//! The seeds' depth experiment (seed 000, lines 6380-6430; Figures 7.5 and
//! 7.6): build trees of N nodes with random identifiers, R times, and count
//! the nodes deeper than a perfectly balanced tree would put them.
//!
//! ```text
//! cargo run --release -p pando-genet --example depth -- --nodes 100000 --reps 100 [--failures 0.25] [--children-limit 10] [--seed 1]
//! ```
//!
//! Depth and N as the seeds define them: the root is at depth 0 and is not
//! counted in N (see `pando_genet::scenario`). Trees are built by the fast
//! path (`pando_genet::fast::FastTree`), which the tests check against the
//! full protocol simulation node for node.

use std::time::Instant;

use clap::Parser;
use pando_genet::fast::FastTree;
use pando_genet::scenario::{DepthStats, Scenario};

/// Depth of Genet trees built with random identifiers.
#[derive(Debug, Parser)]
struct Args {
    /// N: the nodes that join (the root is not counted).
    #[arg(long)]
    nodes: usize,
    /// R: the repetitions.
    #[arg(long)]
    reps: usize,
    /// F: the share of nodes disconnected after the tree is built; every
    /// node so disconnected (with its subtree) re-joins at the root.
    #[arg(long, default_value_t = 0.0)]
    failures: f64,
    /// L: the most children per node.
    #[arg(long, default_value_t = 10)]
    children_limit: usize,
    /// The seed of the first repetition (printed, to replay a run).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

fn main() {
    let args = Args::parse();
    if args.children_limit == 0 || args.nodes == 0 || args.reps == 0 {
        eprintln!("--nodes, --reps and --children-limit must be at least 1");
        std::process::exit(2);
    }
    if !(0.0..=1.0).contains(&args.failures) {
        eprintln!("--failures must be between 0 and 1, got {}", args.failures);
        std::process::exit(2);
    }
    let started = Instant::now();
    let mut scenario = Scenario::new(args.seed, args.nodes, args.children_limit, args.failures);
    let mut tree = FastTree::default();
    let mut runs: Vec<DepthStats> = Vec::with_capacity(args.reps);
    for rep in 0..args.reps {
        if rep > 0 {
            scenario.next_repetition();
        }
        runs.push(tree.play(&mut scenario));
    }
    let elapsed = started.elapsed();

    let d = runs[0].balanced_depth;
    println!(
        "N = {}, L = {}, F = {}, R = {}, seed = {}: ⌈log_L N⌉ = {d} (root at depth 0, not counted in N)",
        args.nodes, args.children_limit, args.failures, args.reps, args.seed
    );
    let mut shares: Vec<f64> = runs.iter().map(DepthStats::share_plus_one).collect();
    shares.sort_by(f64::total_cmp);
    let q = |p: f64| shares[((p * (shares.len() - 1) as f64).round() as usize).min(shares.len() - 1)];
    let mean = shares.iter().sum::<f64>() / shares.len() as f64;
    println!(
        "share of nodes at depth {} (+1), over {} repetitions:",
        d + 1,
        args.reps
    );
    println!(
        "  min {:.2}%  p10 {:.2}%  p25 {:.2}%  median {:.2}%  mean {:.2}%  p75 {:.2}%  p90 {:.2}%  max {:.2}%",
        q(0.0),
        q(0.1),
        q(0.25),
        q(0.5),
        mean,
        q(0.75),
        q(0.9),
        q(1.0)
    );
    // The seeds' figures are CDFs: experiments with X% or less at +1.
    println!("  repetitions with at most X% at +1 (the seeds' Figures 7.5/7.6):");
    let top = q(1.0).ceil().max(1.0) as u32;
    let step = if top > 20 { top.div_ceil(20) } else { 1 };
    let mut x = 0;
    while x <= top {
        let k = shares.iter().filter(|&&s| s <= f64::from(x)).count();
        println!("    ≤ {x:>3}%: {k}");
        x += step;
    }
    let max_depth = runs.iter().map(|r| r.max_depth).max().unwrap_or(0);
    let deeper: usize = runs.iter().map(|r| r.deeper).sum();
    println!(
        "largest depth seen: {max_depth} (⌈log_L N⌉ + {})",
        max_depth.saturating_sub(d)
    );
    println!("time: {:.2} s", elapsed.as_secs_f64());
    println!("max share at +1: {:.2}%, nodes at +2 or deeper: {deeper}", q(1.0));
}
