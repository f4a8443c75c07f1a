//! The `pando` command against GNU parallel, in its three modes: one process
//! per value, `--lines` (one filter per worker) and `--pipe` (one process per
//! block of lines). Every output is checked line by line against what the
//! job must print, so that a wrong answer is a failure, never a figure.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::Group;
use crate::measure::{Contender, Unit, round_robin};
use crate::report::Row;
use crate::tools::{Ctx, scratch_file, timed};

pub(crate) const GROUP: Group = Group {
    name: "cli",
    about: "the pando command against GNU parallel: one process per value, --lines, --pipe",
    run,
};

/// The line filter of the `--lines` rows: answers each line at once.
const FILTER: [&str; 4] = ["mawk", "-W", "interactive", "{print $1*2}"];
/// The same, as one shell command line for GNU parallel.
const FILTER_SH: &str = "mawk -W interactive '{print $1*2}'";
/// The command of the `--pipe` rows, run once per block.
const BLOCK_CMD: [&str; 2] = ["awk", "{print $1*2}"];
/// The same, as one shell command line for GNU parallel.
const BLOCK_CMD_SH: &str = "awk '{print $1*2}'";
/// The block size of both `--pipe` rows (GNU parallel's default).
const BLOCK: &str = "1M";
/// The batch size of `pando --lines`: lines in flight per filter.
const LINES_BATCH: &str = "64";

fn run(ctx: &Ctx) -> Vec<Row> {
    let limit = Duration::from_secs(if ctx.quick { 120 } else { 900 });
    let (per_value, lines, blocks) = if ctx.quick {
        (100u64, 10_000u64, 100_000u64)
    } else {
        (2_000, 200_000, 1_000_000)
    };
    let parallel = which::which("parallel").map_err(|_| "GNU parallel (parallel) not found".to_string());
    let mawk = which::which("mawk").map_err(|_| "mawk not found".to_string());
    let awk = which::which(BLOCK_CMD[0]).map_err(|_| format!("{} not found", BLOCK_CMD[0]));
    let pando = ctx.pando().map(Path::to_path_buf);
    let mut rows = Vec::new();

    // One process per value.
    let input = values_file(ctx, per_value);
    let mut c = [
        Contender::when("pando", all(&pando, &input, &Ok(())), |(pando, input, ())| {
            let args = ["--local", "2", "--bind", "127.0.0.1", "--"];
            let args = [&args[..], &["sh", "-c", "read x; echo $((x*x))"]].concat();
            let j = Job {
                name: "pando-per-value",
                program: pando,
                args: &args,
                env: &[],
            };
            job(ctx, j, input, per_value, square, limit)
        }),
        Contender::when(
            "GNU parallel -k -j2 (PARALLEL_SHELL=/bin/sh)",
            all(&parallel, &input, &Ok(())),
            |(parallel, input, ())| {
                let j = Job {
                    name: "parallel-per-value",
                    program: parallel,
                    args: &["-k", "-j2", "--will-cite", "echo $(( {} * {} ))"],
                    env: &[("PARALLEL_SHELL", "/bin/sh")],
                };
                job(ctx, j, input, per_value, square, limit)
            },
        ),
    ];
    round_robin(ctx.runs, &mut c);
    rows.push(Row::versus(
        format!("pando, one `sh` per value (`sh -c 'read x; echo $((x*x))'`), {per_value} values, --local 2"),
        Unit::Seconds,
        &c[0],
        &c[1],
    ));

    // --lines: one filter per worker.
    let input = values_file(ctx, lines);
    let mut c = [
        Contender::when(
            "pando --lines",
            all(&pando, &input, &mawk),
            |(pando, input, _)| {
                let args = ["--local", "2", "--bind", "127.0.0.1", "--lines", "--batch-size"];
                let args = [&args[..], &[LINES_BATCH, "--"], &FILTER[..]].concat();
                let j = Job {
                    name: "pando-lines",
                    program: pando,
                    args: &args,
                    env: &[],
                };
                job(ctx, j, input, lines, double, limit)
            },
        ),
        Contender::when(
            format!("the filter alone (`{FILTER_SH}`)"),
            all(&mawk, &input, &Ok(())),
            |(mawk, input, ())| {
                let j = Job {
                    name: "filter-alone",
                    program: mawk,
                    args: &FILTER[1..],
                    env: &[],
                };
                job(ctx, j, input, lines, double, limit)
            },
        ),
        Contender::when(
            "GNU parallel --pipe -k -j2 --block 1M, the same filter",
            all(&parallel, &input, &mawk),
            |(parallel, input, _)| {
                let j = Job {
                    name: "parallel-pipe-lines",
                    program: parallel,
                    args: &["--pipe", "-k", "-j2", "--will-cite", "--block", BLOCK, FILTER_SH],
                    env: &[],
                };
                job(ctx, j, input, lines, double, limit)
            },
        ),
    ];
    round_robin(ctx.runs, &mut c);
    let what = format!(
        "pando --lines, a filter that answers each line (`{FILTER_SH}`), {lines} lines, --local 2, --batch-size {LINES_BATCH}"
    );
    rows.push(Row::versus(&what, Unit::Seconds, &c[0], &c[1]));
    rows.push(Row::versus(&what, Unit::Seconds, &c[0], &c[2]));

    // --pipe: one process per block.
    let input = values_file(ctx, blocks);
    let pando_pipe = pando.clone().and_then(|p| {
        if supports_pipe(&p) {
            Ok(p)
        } else {
            Err("pando --pipe not supported by this build".to_string())
        }
    });
    let mut c = [
        Contender::when(
            "pando --pipe",
            all(&pando_pipe, &input, &awk),
            |(pando, input, _)| {
                let args = ["--local", "2", "--bind", "127.0.0.1", "--pipe", "--block", BLOCK];
                let args = [&args[..], &["--"], &BLOCK_CMD[..]].concat();
                let j = Job {
                    name: "pando-pipe",
                    program: pando,
                    args: &args,
                    env: &[],
                };
                job(ctx, j, input, blocks, double, limit)
            },
        ),
        Contender::when(
            "GNU parallel --pipe -k -j2 --block 1M",
            all(&parallel, &input, &awk),
            |(parallel, input, _)| {
                let j = Job {
                    name: "parallel-pipe",
                    program: parallel,
                    args: &[
                        "--pipe",
                        "-k",
                        "-j2",
                        "--will-cite",
                        "--block",
                        BLOCK,
                        BLOCK_CMD_SH,
                    ],
                    env: &[],
                };
                job(ctx, j, input, blocks, double, limit)
            },
        ),
    ];
    round_robin(ctx.runs, &mut c);
    rows.push(Row::versus(
        format!("pando --pipe --block {BLOCK}, `{BLOCK_CMD_SH}` once per block, {blocks} lines, --local 2"),
        Unit::Seconds,
        &c[0],
        &c[1],
    ));
    rows
}

/// All three available, or the first reason why not.
fn all<A: Clone, B: Clone, C: Clone>(
    a: &Result<A, String>,
    b: &Result<B, String>,
    c: &Result<C, String>,
) -> Result<(A, B, C), String> {
    Ok((a.clone()?, b.clone()?, c.clone()?))
}

/// The answer of the per-value rows to input `x`.
fn square(x: u64) -> u64 {
    x * x
}

/// The answer of the `--lines` and `--pipe` rows to input `x`.
fn double(x: u64) -> u64 {
    x * 2
}

/// Whether this `pando` has the block mode (`--pipe` with `--block`).
fn supports_pipe(pando: &Path) -> bool {
    Command::new(pando)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .map(|out| {
            let help = String::from_utf8_lossy(&out.stdout);
            help.contains("--pipe") && help.contains("--block")
        })
        .unwrap_or(false)
}

/// `1..=n`, one per line, in the scratch folder (written once).
fn values_file(ctx: &Ctx, n: u64) -> Result<PathBuf, String> {
    let path = ctx.scratch.join(format!("values-{n}.txt"));
    if path.is_file() {
        return Ok(path);
    }
    let (tmp, file) = scratch_file(ctx, &format!("values-{n}.txt.tmp"))?;
    let mut w = BufWriter::new(file);
    for x in 1..=n {
        writeln!(w, "{x}").map_err(|e| format!("{}: {e}", tmp.display()))?;
    }
    w.flush().map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// A command line of a row: the program, its arguments, its environment.
struct Job<'a> {
    name: &'a str,
    program: &'a Path,
    args: &'a [&'a str],
    env: &'a [(&'a str, &'a str)],
}

/// Runs `job` with `input` on stdin; checks that it printed `answer(x)` for
/// every x in 1..=n, in order; returns its wall time in seconds.
fn job(
    ctx: &Ctx,
    job: Job<'_>,
    input: &Path,
    n: u64,
    answer: fn(u64) -> u64,
    limit: Duration,
) -> Result<f64, String> {
    let stdin = File::open(input).map_err(|e| format!("{}: {e}", input.display()))?;
    let (out_path, out) = scratch_file(ctx, &format!("{}.out", job.name))?;
    let (err_path, err) = scratch_file(ctx, &format!("{}.err", job.name))?;
    let mut cmd = Command::new(job.program);
    cmd.args(job.args)
        .envs(job.env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdin(stdin)
        .stdout(out)
        .stderr(err);
    let elapsed = timed(&mut cmd, limit, Some(&err_path))?;
    check_output(&out_path, n, answer)?;
    Ok(elapsed.as_secs_f64())
}

/// Checks that the file at `path` holds `answer(x)` for x in 1..=n, one per
/// line, in order.
fn check_output(path: &Path, n: u64, answer: fn(u64) -> u64) -> Result<(), String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = BufReader::new(file).lines();
    for x in 1..=n {
        let expected = answer(x).to_string();
        match lines.next() {
            Some(Ok(line)) if line == expected => {}
            Some(Ok(line)) => {
                return Err(format!(
                    "wrong output: line {x} of {} is `{line}`, expected `{expected}`",
                    path.display()
                ));
            }
            Some(Err(e)) => return Err(format!("{}: {e}", path.display())),
            None => {
                return Err(format!(
                    "wrong output: {} has {} lines, expected {n}",
                    path.display(),
                    x - 1
                ));
            }
        }
    }
    match lines.next() {
        None => Ok(()),
        Some(_) => Err(format!(
            "wrong output: {} has more than {n} lines",
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_checked_line_by_line() {
        let dir = std::env::temp_dir().join(format!("pando-bench-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out");
        std::fs::write(&path, "2\n4\n6\n").unwrap();
        assert_eq!(check_output(&path, 3, double), Ok(()));
        assert!(
            check_output(&path, 2, double)
                .unwrap_err()
                .contains("more than 2")
        );
        assert!(
            check_output(&path, 4, double)
                .unwrap_err()
                .contains("has 3 lines")
        );
        assert!(check_output(&path, 3, square).unwrap_err().contains("line 1 "));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
