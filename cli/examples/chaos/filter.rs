//! The COMMAND of the runs: `chaos filter`, a line filter (`pando --lines`)
//! that answers each number `x` with `x * x`, after a fixed cost per value.
//!
//! A filter given `--hangs H` stops answering after `--hang-after N`
//! answers, if fewer than H filters of the run have hung so far (each hang
//! claims a marker file in the run's directory): the worker's `--timeout`
//! kills it, and the next value starts a new filter. A hung filter still
//! reads its input, so that it ends with its worker however that ends.
//!
//! Each filter writes its process id into the run's directory, so that the
//! run can kill any filter left behind (each runs in a process group of its
//! own, started by `pando work`, which the run does not know).

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use crate::plan::mapped;

/// `chaos filter`'s options.
#[derive(Args, Debug, Clone)]
pub(crate) struct FilterArgs {
    /// The run's directory (process ids, hang markers).
    #[arg(long)]
    pub(crate) run_dir: PathBuf,
    /// The cost of each value, in microseconds (a sleep).
    #[arg(long, default_value_t = 0)]
    pub(crate) work_us: u64,
    /// Hang after this many answers…
    #[arg(long, default_value_t = 0)]
    pub(crate) hang_after: u64,
    /// …if fewer than this many filters of the run have hung.
    #[arg(long, default_value_t = 0)]
    pub(crate) hangs: usize,
}

/// The directory of the filters' process ids in `run_dir`.
pub(crate) fn pid_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("pids")
}

/// How many filters of the run in `run_dir` hung.
pub(crate) fn hung(run_dir: &Path) -> usize {
    std::fs::read_dir(run_dir).map_or(0, |dir| {
        dir.filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("hang-"))
            .count()
    })
}

/// Claims one of the run's `hangs` hang markers; whether one was free.
fn claim_hang(run_dir: &Path, hangs: usize) -> bool {
    (0..hangs).any(|k| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(run_dir.join(format!("hang-{k}")))
            .is_ok()
    })
}

/// Runs the filter on stdin and stdout until stdin ends.
pub(crate) fn run(args: &FilterArgs) -> std::io::Result<()> {
    let pids = pid_dir(&args.run_dir);
    std::fs::create_dir_all(&pids)?;
    std::fs::write(pids.join(std::process::id().to_string()), b"")?;
    let stdin = std::io::stdin();
    let mut stdin = stdin.lock();
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let mut answered = 0u64;
    let mut line = String::new();
    loop {
        line.clear();
        if stdin.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if args.hangs > 0 && answered == args.hang_after && claim_hang(&args.run_dir, args.hangs) {
            // Hang: answer nothing more, and end with the input.
            std::io::copy(&mut stdin, &mut std::io::sink())?;
            return Ok(());
        }
        let answer = match line.trim_end().parse::<u64>() {
            Ok(x) if x < 1 << 32 => mapped(x).to_string(),
            // Not an input of the run: an answer no input has, which the check counts.
            _ => format!("not a number: {line:?}"),
        };
        if args.work_us > 0 {
            std::thread::sleep(Duration::from_micros(args.work_us));
        }
        writeln!(stdout, "{answer}")?;
        stdout.flush()?;
        answered += 1;
    }
}
