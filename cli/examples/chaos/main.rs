//! Chaos runs of `pando`: exactly once, in order, under faults.
//!
//! ```text
//! cargo run --release -p pando-cli --example chaos -- --runs R --seed S [--values N]
//! ```
//!
//! Each run maps N values (10^5 by default) with a `pando` master process
//! (`--local 0 --lines --skip-failed`, the input on its stdin) and 4 to 8
//! `pando work` processes, each connected through a TCP proxy of this
//! program, over WebSocket or plain TCP. Run `r` (from 0) uses the seed
//! `S + r`, which fixes its plan (see `plan.rs`): the number of workers,
//! the transport, the batch size, and the faults:
//!
//! * SIGKILL of a worker;
//! * SIGSTOP, then SIGCONT 0.5 to 5 s later (the master's heartbeat timeout
//!   is 2 s: a long stop is a hung worker, found by the heartbeat);
//! * a dropped connection (the proxy closes both ends);
//! * one or two workers that join late;
//! * one worker whose COMMAND is ten times slower than the others';
//! * one worker with `--timeout`, whose COMMAND hangs one to three times in
//!   the run.
//!
//! Faults fire at seeded points of the run's progress (counts of results).
//! A worker that exits before the master has every result is replaced at
//! once by a new process. The master's `--max-retries` is the number of
//! faults that can fail a value (kills, stops, cuts and hangs: each fails
//! it at most once) plus a margin of 2 for a worker starved of CPU, so
//! faults alone never poison a value, and one that ends poisoned (skipped,
//! `--skip-failed`) is a loss.
//!
//! COMMAND is this program, `chaos filter`: a line filter answering `x`
//! with `x²` after a sleep of `--work-us` microseconds (100 by default).
//! After each run the output must be the input mapped, in order, each
//! result exactly once. The last line is
//! `R runs, K faults injected, L lost, D duplicated, O out of order`, and the
//! exit status is non-zero if any of the last three is (or a run failed
//! otherwise: the master failed, a deadline passed, a line was no input's
//! result); a failed run prints the command that replays its seed.
//!
//! **The `pando` binary**: `--pando PATH`, or else the example builds it
//! with the cargo that built the example, into the same target directory
//! and profile (`target/release/pando` for `--release`), which is a no-op
//! when it is up to date: it never runs a stale `pando`.
//!
//! Every wait has a deadline (a run stalls after `--stall-secs` without a
//! result; a run ends after `--run-secs`) and says what it waited for.
//! Every process runs in a process group of its own, killed when the run
//! ends, on an error, on a panic, and on Ctrl-C.

mod check;
mod filter;
mod plan;
mod procs;
mod proxy;
mod run;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};

use crate::check::Tally;
use crate::filter::FilterArgs;
use crate::plan::Plan;
use crate::run::{Faults, Setup};

#[derive(Parser, Debug)]
#[command(
    name = "chaos",
    about = "Chaos runs of pando: each value's result exactly once, in order, under seeded faults."
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    sub: Option<Sub>,
    #[command(flatten)]
    args: ChaosArgs,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// The runs' COMMAND (a line filter).
    #[command(hide = true)]
    Filter(FilterArgs),
}

#[derive(Args, Debug)]
struct ChaosArgs {
    /// How many runs.
    #[arg(long, default_value_t = 10)]
    runs: u64,
    /// The first run's seed (default: from the clock; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Values per run.
    #[arg(long, default_value_t = 100_000)]
    values: usize,
    /// A normal worker's cost per value, in microseconds (the slow worker's is ten times that).
    #[arg(long, default_value_t = 100)]
    work_us: u64,
    /// The `pando` binary (default: built by cargo next to this example).
    #[arg(long, value_name = "PATH")]
    pando: Option<PathBuf>,
    /// Fail a run that waits this long for its next result.
    #[arg(long, default_value_t = 120)]
    stall_secs: u64,
    /// Fail a run that takes longer than this.
    #[arg(long, default_value_t = 900)]
    run_secs: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Sub::Filter(args)) = cli.sub {
        return match filter::run(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("chaos filter: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let args = cli.args;
    let me = match std::env::current_exe() {
        Ok(me) => me,
        Err(e) => {
            eprintln!("chaos: cannot find my own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let pando = match &args.pando {
        Some(p) => p.clone(),
        None => match build_pando(&me) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("chaos: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let setup = Setup {
        pando,
        me,
        work_us: args.work_us,
        stall: Duration::from_secs(args.stall_secs),
        run_timeout: Duration::from_secs(args.run_secs),
    };
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chaos: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "chaos: {} runs of {} values from seed {seed}, pando {}",
        args.runs,
        args.values,
        setup.pando.display()
    );
    runtime.block_on(runs(&setup, &args, seed))
}

/// Builds `pando` with the cargo, target directory and profile of this
/// example (`TARGET/PROFILE/examples/chaos`), and returns its path.
fn build_pando(me: &Path) -> Result<PathBuf, String> {
    let profile_dir = me
        .parent()
        .filter(|d| d.ends_with("examples"))
        .and_then(Path::parent)
        .ok_or_else(|| {
            format!(
                "{} is not in a cargo target directory: give --pando PATH",
                me.display()
            )
        })?;
    let target_dir = profile_dir.parent().ok_or_else(|| {
        format!(
            "{} has no target directory: give --pando PATH",
            profile_dir.display()
        )
    })?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(name) => name,
        None => {
            return Err(format!(
                "no profile in {}: give --pando PATH",
                profile_dir.display()
            ));
        }
    };
    let cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("cargo"));
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    eprintln!("chaos: building pando ({profile}) with {}", cargo.display());
    let status = std::process::Command::new(&cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "pando-cli",
            "--bin",
            "pando",
            "--profile",
            profile,
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir)
        .status()
        .map_err(|e| format!("cannot run {}: {e}; give --pando PATH", cargo.display()))?;
    if !status.success() {
        return Err(format!("building pando failed ({status}); give --pando PATH"));
    }
    let pando = profile_dir.join("pando");
    if !pando.is_file() {
        return Err(format!(
            "cargo built pando, but {} is not there; give --pando PATH",
            pando.display()
        ));
    }
    Ok(pando)
}

async fn runs(setup: &Setup, args: &ChaosArgs, first_seed: u64) -> ExitCode {
    let started = Instant::now();
    let mut total = Tally::default();
    let mut faults = Faults::default();
    let mut done = 0u64;
    let mut failed_seeds = Vec::new();
    for r in 0..args.runs {
        let seed = first_seed.wrapping_add(r);
        let plan = Plan::new(seed, args.values);
        println!("run {}/{} seed {seed}: {}", r + 1, args.runs, plan.describe());
        let outcome = tokio::select! {
            outcome = run::run(setup, &plan) => outcome,
            _ = tokio::signal::ctrl_c() => {
                // The run's future is dropped: its processes are killed.
                println!("interrupted during the run of seed {seed}");
                break;
            }
        };
        done += 1;
        let replay = format!(
            "replay: cargo run --release -p pando-cli --example chaos -- --runs 1 --seed {seed} --values {} --work-us {}",
            args.values, args.work_us
        );
        match outcome {
            Ok(report) => {
                total.add(report.tally);
                faults.add(report.faults);
                let t = report.tally;
                println!(
                    "  {} results in {:.1} s; faults: {}; the master dropped {} connections ({} by heartbeat); {} lost, {} duplicated, {} out of order, {} wrong",
                    report.results,
                    report.elapsed.as_secs_f64(),
                    report.faults,
                    report.drops.0,
                    report.drops.1,
                    t.lost,
                    t.duplicated,
                    t.out_of_order,
                    t.wrong
                );
                for note in &report.notes {
                    println!("  note: {note}");
                }
                if !report.passed() {
                    for p in &report.problems {
                        println!("  FAILED: {p}");
                    }
                    println!("  FAILED run, {replay}");
                    println!("  the master's last lines on stderr:");
                    for l in &report.master_stderr {
                        println!("    {l}");
                    }
                    failed_seeds.push(seed);
                }
            }
            Err(e) => {
                println!("  FAILED: {e}");
                println!("  FAILED run, {replay}");
                failed_seeds.push(seed);
            }
        }
    }
    println!(
        "chaos: seed {first_seed}, {:.1} s{}",
        started.elapsed().as_secs_f64(),
        if failed_seeds.is_empty() {
            String::new()
        } else {
            format!("; failed seeds: {failed_seeds:?}")
        }
    );
    println!(
        "{done} runs, {} faults injected, {} lost, {} duplicated, {} out of order",
        faults.total(),
        total.lost,
        total.duplicated,
        total.out_of_order
    );
    if total.lost + total.duplicated + total.out_of_order > 0 || !failed_seeds.is_empty() || done < args.runs
    {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
