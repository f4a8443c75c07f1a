//! The interleaving checker's runner: seeded random executions of a
//! StreamLender (seed 000, §4.6), each checked for the protocol on every
//! interface and the lender's properties.
//!
//! ```text
//! cargo run --release -p pando-checker -- --runs N [--seed S] [--count C] [--parallelism P] [--max-sub-streams M]
//!     [--read-ahead N|none] [--max-retries N|none] [--poison fail|skip] [--faults LIST|none] [--replicas K]
//! cargo run --release -p pando-checker -- --seed S --runs 1 --trace
//! ```
//!
//! It ends with the failures by property (with the first seed of each), the
//! first failing seeds, and one line, `N executions, F failures`; it exits
//! with status 1 if `F > 0`. Each failure prints its seed, parameters, the violated
//! property, the command that replays it, and (for the first ones) the
//! event trace.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use pando_checker::{Campaign, Fault, Faults, Poison, Scenario, TestError, run};
use pando_lend_stream::StreamLender;

type Lender = StreamLender<u64, u64, TestError>;

/// Seeded random interleavings of a StreamLender, checked.
#[derive(Parser, Debug)]
#[command(name = "pando-checker", version)]
struct Args {
    /// The number of executions.
    #[arg(long, default_value_t = 1000)]
    runs: u64,
    /// The seed of the first execution (execution i uses seed + i). By
    /// default, taken from the clock and printed.
    #[arg(long)]
    seed: Option<u64>,
    /// The number of values (default: 0 to 8, from each execution's seed).
    #[arg(long)]
    count: Option<u64>,
    /// The maximum number of active sub-streams (default: 1 to 4, from the seed).
    #[arg(long)]
    parallelism: Option<usize>,
    /// The maximum number of sub-streams created (default: from the seed).
    #[arg(long)]
    max_sub_streams: Option<usize>,
    /// Check an unordered lender (default: ordered three times in four).
    #[arg(long, conflicts_with = "ordered")]
    unordered: bool,
    /// Check an ordered lender only.
    #[arg(long)]
    ordered: bool,
    /// A fixed scenario (default: from the seed).
    #[arg(long, value_enum)]
    scenario: Option<Scenario>,
    /// A fixed read-ahead bound of the lender, or `none` (default: none, 1-3
    /// or 4-8, from the seed).
    #[arg(long, value_parser = parse_limit)]
    read_ahead: Option<Limit>,
    /// A fixed retry cap, or `none` (default: none or 0-2, from the seed).
    #[arg(long, value_parser = parse_limit)]
    max_retries: Option<Limit>,
    /// A fixed poison policy (default: from the seed).
    #[arg(long, value_enum)]
    poison: Option<Poison>,
    /// A fixed set of faults, comma-separated, or `none` (default: each in
    /// one execution out of two).
    #[arg(long, value_delimiter = ',', num_args = 1.., value_parser = parse_fault)]
    faults: Option<Vec<Option<Fault>>>,
    /// A fixed number of replicas (majority voting; default: 1 in half the
    /// executions, else 2 or 3, from the seed).
    #[arg(long)]
    replicas: Option<u32>,
    /// The step bound of each execution.
    #[arg(long)]
    step_bound: Option<u64>,
    /// Print the event trace of every execution.
    #[arg(long)]
    trace: bool,
    /// The number of worker threads (default: the available parallelism).
    #[arg(long)]
    jobs: Option<usize>,
    /// How many failures to print with their trace (the others get one line).
    #[arg(long, default_value_t = 3)]
    show: usize,
}

/// A limit on the command line: a number, or `none`.
#[derive(Clone, Copy, Debug)]
struct Limit(Option<u64>);

fn parse_limit(s: &str) -> Result<Limit, String> {
    if s == "none" {
        return Ok(Limit(None));
    }
    s.parse()
        .map(|n| Limit(Some(n)))
        .map_err(|e| format!("`{s}`: {e} (a number, or none)"))
}

fn parse_fault(s: &str) -> Result<Option<Fault>, String> {
    if s == "none" {
        return Ok(None);
    }
    <Fault as clap::ValueEnum>::from_str(s, false).map(Some)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let seed = args.seed.unwrap_or_else(|| {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        now.as_nanos() as u64
    });
    let mut campaign = Campaign::new(args.runs, seed);
    campaign.count = args.count;
    campaign.parallelism = args.parallelism;
    campaign.max_sub_streams = args.max_sub_streams;
    campaign.ordered = match (args.ordered, args.unordered) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    campaign.scenario = args.scenario;
    campaign.read_ahead = args.read_ahead.map(|l| l.0);
    campaign.max_retries = args
        .max_retries
        .map(|l| l.0.map(|n| n.min(u64::from(u32::MAX)) as u32));
    campaign.poison = args.poison;
    campaign.faults = args
        .faults
        .map(|list| Faults::of(&list.into_iter().flatten().collect::<Vec<_>>()));
    campaign.step_bound = args.step_bound;
    campaign.replicas = args.replicas;
    if let Some(jobs) = args.jobs {
        campaign.jobs = jobs;
    } else {
        campaign = campaign.on_every_core();
    }

    if args.trace {
        // One execution after the other, each printed with its trace.
        let mut failures = 0;
        for i in 0..args.runs {
            let mut config = campaign.config(i);
            config.trace = true;
            let execution = run::<Lender>(&config);
            failures += u64::from(!execution.is_ok());
            print!("{execution}");
        }
        println!("{} executions, {failures} failures", args.runs);
        return if failures == 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }

    println!(
        "pando-checker: {} executions from seed {seed} on {} thread(s)",
        args.runs, campaign.jobs
    );
    let shown = AtomicUsize::new(0);
    let summary = campaign.run::<Lender>(&|execution| {
        if shown.fetch_add(1, Ordering::Relaxed) < args.show {
            print!("{execution}");
        } else {
            let failure = execution
                .failure
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default();
            println!(
                "seed {}: {failure}\n  replay: {}",
                execution.config.seed,
                execution.config.replay_command()
            );
        }
    });
    eprintln!(
        "{:.1} s, {:.0} executions/s",
        summary.elapsed.as_secs_f64(),
        summary.executions as f64 / summary.elapsed.as_secs_f64().max(1e-9)
    );
    for (property, n, seed) in &summary.by_property {
        println!("  {property}: {n} failure(s), first seed {seed}");
    }
    if !summary.failed.is_empty() {
        let seeds: Vec<String> = summary.failed.iter().map(|e| e.config.seed.to_string()).collect();
        println!("  failing seeds (first {}): {}", seeds.len(), seeds.join(" "));
    }
    println!("{summary}");
    if summary.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
