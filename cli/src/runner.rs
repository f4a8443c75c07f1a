//! Running COMMAND on values: once per value, once per block of lines
//! (`--pipe`), or as long-running line filters (`--lines`, see [`crate::filter`]).
//!
//! Each COMMAND runs in a process group of its own. The group is killed
//! (SIGKILL) whenever the run of a value ends: with a result, a failure, a
//! timeout, or because the value's future was dropped (the worker gave up
//! on it, or `pando work` is exiting). So nothing COMMAND started, such as a
//! `sleep` in the background, outlives its value. A line filter's group
//! lives as long as the filter, and is killed when it dies, times out, or
//! the runner is dropped.

use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::filter::Filters;
use crate::lines;

/// Why a line filter may not answer: the end of every timeout or stall message in `--lines` mode.
pub(crate) const FILTER_ADVICE: &str = "a line filter must write its answer to each line without waiting for more input (mawk -W interactive, sed -u, python3 -u, stdbuf -oL)";

/// How COMMAND is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Once per value: the value and a newline on its stdin; its stdout,
    /// without its last line end, is the result.
    PerValue,
    /// As line filters (`--lines`): one answer line per input line.
    Lines,
    /// Once per block of lines (`--pipe`): the block, as it is, on its
    /// stdin; its whole stdout, as it is, is the result.
    Pipe,
}

impl Mode {
    /// How the mode runs COMMAND, in words.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Mode::PerValue => "once per value",
            Mode::Lines => "as a line filter (--lines)",
            Mode::Pipe => "once per block of lines (--pipe)",
        }
    }
}

/// Runs COMMAND on values. Cheap to clone; clones share the line filters.
#[derive(Clone, Debug)]
pub(crate) struct Runner {
    spec: Arc<Spec>,
    mode: Mode,
    /// With `--lines`, the filters.
    filters: Option<Arc<Filters>>,
}

/// What to run, and its limits.
#[derive(Debug)]
pub(crate) struct Spec {
    /// COMMAND's program, resolved on PATH.
    program: PathBuf,
    /// COMMAND as given (for messages) and its arguments.
    command: Vec<String>,
    /// The deadline of one value (with `--lines`: of one line, from when
    /// it is given to a filter), if any.
    pub(crate) timeout: Option<Duration>,
    /// The largest result, in bytes.
    pub(crate) limit: usize,
}

/// A child in a process group of its own, killed with its group when dropped.
#[derive(Debug)]
pub(crate) struct Group {
    child: Child,
    pgid: Option<Pid>,
}

impl Drop for Group {
    fn drop(&mut self) {
        kill_group(self.pgid);
    }
}

/// Kills process group `pgid` (SIGKILL), if any.
fn kill_group(pgid: Option<Pid>) {
    if let Some(pgid) = pgid {
        // ESRCH (the group is already gone) is the usual, fine answer.
        let _ = killpg(pgid, Signal::SIGKILL);
    }
}

impl Runner {
    /// A runner of `command` (its first word is looked up on PATH) in
    /// `mode`; with [`Mode::Lines`], `jobs` filters. `timeout` bounds each
    /// value; a result longer than `limit` bytes is a failure.
    pub(crate) fn new(
        command: Vec<String>,
        mode: Mode,
        jobs: usize,
        timeout: Option<Duration>,
        limit: usize,
    ) -> Result<Self, String> {
        let spec = Arc::new(Spec::new(command, timeout, limit)?);
        let filters = (mode == Mode::Lines).then(|| Arc::new(Filters::new(spec.clone(), jobs)));
        Ok(Runner { spec, mode, filters })
    }

    /// Runs COMMAND on `value`: its result, or why it failed. Dropping the
    /// future kills what COMMAND started (with `--lines`, the answer to
    /// the line is dropped when it comes).
    pub(crate) fn run(&self, value: Vec<u8>) -> impl Future<Output = Result<Vec<u8>, String>> + Send + use<> {
        let spec = self.spec.clone();
        let mode = self.mode;
        let filters = self.filters.clone();
        async move {
            match (mode, filters) {
                (Mode::Lines, Some(filters)) => filters.run(value).await,
                (Mode::Pipe, _) => spec.run_once(value, false).await,
                _ => spec.run_once(value, true).await,
            }
        }
    }
}

/// `program`'s path: a path to an executable, or a name found on PATH.
pub(crate) fn find_program(program: &str) -> Result<PathBuf, String> {
    which::which(program).map_err(|_| format!("command not found: {program}"))
}

impl Spec {
    /// `command` (its first word looked up on PATH), with its limits.
    pub(crate) fn new(command: Vec<String>, timeout: Option<Duration>, limit: usize) -> Result<Self, String> {
        let program = find_program(&command[0])?;
        Ok(Spec {
            program,
            command,
            timeout,
            limit,
        })
    }

    /// COMMAND's name, for messages.
    pub(crate) fn name(&self) -> &str {
        &self.command[0]
    }

    /// Starts COMMAND with piped stdin and stdout (stderr is ours) in a
    /// process group of its own.
    pub(crate) fn spawn(&self) -> Result<(Group, ChildStdin, ChildStdout), String> {
        let mut child = Command::new(&self.program)
            .args(&self.command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // The join token is the worker's, not COMMAND's.
            .env_remove(crate::TOKEN_VARIABLE)
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.name()))?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw);
        Ok((Group { child, pgid }, stdin, stdout))
    }

    /// Runs COMMAND with `input` on its stdin and its stdout as the result.
    /// With `line`, a `\n` is added to the input and the result loses its
    /// last `\n` or `\r\n`; without (a block), both are kept as they are.
    async fn run_once(&self, mut input: Vec<u8>, line: bool) -> Result<Vec<u8>, String> {
        let (mut group, mut stdin, stdout) = self.spawn()?;
        if line {
            input.push(b'\n');
        }
        let work = async {
            let writing = async move {
                // A command that does not read its input is not an error.
                let _ = stdin.write_all(&input).await;
            };
            let reading = self.read_limited(stdout);
            let ((), output) = tokio::join!(writing, reading);
            let mut output = output?;
            let status = group.child.wait().await.map_err(|e| e.to_string())?;
            if !status.success() {
                return Err(format!("{} exited with {status}", self.name()));
            }
            if line {
                lines::strip_line_end(&mut output);
            }
            Ok(output)
        };
        match self.timeout {
            Some(t) => tokio::time::timeout(t, work).await.unwrap_or_else(|_| {
                Err(format!(
                    "{} did not finish within {} (--timeout); it was killed",
                    self.name(),
                    humantime::format_duration(t)
                ))
            }),
            None => work.await,
        }
        // `group` is dropped here: whatever COMMAND left behind is killed.
    }

    /// All of `stdout`, or an error once it passes the limit.
    async fn read_limited(&self, stdout: ChildStdout) -> Result<Vec<u8>, String> {
        let mut output = Vec::new();
        stdout
            .take(self.limit as u64 + 1)
            .read_to_end(&mut output)
            .await
            .map_err(|e| format!("reading the output of {}: {e}", self.name()))?;
        if output.len() > self.limit {
            return Err(self.too_long());
        }
        Ok(output)
    }

    /// The failure of a result over the limit.
    pub(crate) fn too_long(&self) -> String {
        format!(
            "the result of {} exceeds the limit of {} bytes (the largest frame); it was stopped",
            self.name(),
            self.limit
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, BufReader};

    const LIMIT: usize = 1 << 20;

    fn sh(script: &str, lines: bool, timeout: Option<Duration>) -> Runner {
        let command = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
        let mode = if lines { Mode::Lines } else { Mode::PerValue };
        Runner::new(command, mode, 1, timeout, LIMIT).unwrap()
    }

    /// Whether process `pid` is gone (or a zombie).
    fn gone(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            Ok(stat) => stat
                .rsplit(')')
                .next()
                .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        }
    }

    fn mkfifo(path: &std::path::Path) {
        let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
        assert!(status.success(), "mkfifo {}: {status}", path.display());
    }

    /// Waits (with a deadline) until `pid` is gone.
    async fn wait_gone(pid: i32) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while !gone(pid) {
            assert!(tokio::time::Instant::now() < deadline, "process {pid} still runs");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn per_value_output_without_its_last_line_end() {
        let r = sh("read x; printf '%s!\\r\\n' \"$x\"", false, None);
        assert_eq!(r.run(b"a\xff".to_vec()).await, Ok(b"a\xff!".to_vec()));
    }

    #[tokio::test]
    async fn a_non_zero_exit_is_a_failure_naming_the_command() {
        let r = sh("exit 3", false, None);
        let e = r.run(b"x".to_vec()).await.unwrap_err();
        assert!(e.starts_with("sh exited with exit status: 3"), "{e}");
    }

    #[test]
    fn an_unknown_command_is_reported() {
        let e = Runner::new(
            vec!["no-such-command-here".into()],
            Mode::PerValue,
            1,
            None,
            LIMIT,
        )
        .unwrap_err();
        assert_eq!(e, "command not found: no-such-command-here");
    }

    #[tokio::test]
    async fn a_result_over_the_limit_fails_without_reading_it_all() {
        let r = Runner::new(
            vec!["sh".into(), "-c".into(), "yes".into()],
            Mode::PerValue,
            1,
            None,
            1000,
        )
        .unwrap();
        let e = r.run(b"x".to_vec()).await.unwrap_err();
        assert!(e.contains("exceeds the limit of 1000 bytes"), "{e}");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("timeout.pid");
        let script = format!("sleep 1000 & echo $! > {}; wait", pidfile.display());
        let r = sh(&script, false, Some(Duration::from_millis(300)));
        let e = r.run(b"x".to_vec()).await.unwrap_err();
        assert!(e.contains("did not finish within 300ms (--timeout)"), "{e}");
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        wait_gone(pid).await;
    }

    #[tokio::test]
    async fn a_dropped_value_kills_the_whole_process_group() {
        // The background sleep's pid comes on a FIFO (read-write: opening
        // it never blocks, and it never reads as an end).
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("dropped.pid");
        mkfifo(&fifo);
        let mut pids = BufReader::new(
            tokio::net::unix::pipe::OpenOptions::new()
                .read_write(true)
                .open_receiver(&fifo)
                .unwrap(),
        );
        let script = format!("sleep 1000 & echo $! > {}; wait", fifo.display());
        let r = sh(&script, false, None);
        let mut run = Box::pin(r.run(b"x".to_vec()));
        // Run the value until the background sleep exists, then drop it.
        let mut pid = String::new();
        tokio::time::timeout(Duration::from_secs(20), async {
            tokio::select! {
                out = &mut run => panic!("finished: {out:?}"),
                read = pids.read_line(&mut pid) => read.unwrap(),
            }
        })
        .await
        .expect("no pid within 20s");
        let pid: i32 = pid.trim().parse().unwrap();
        assert!(!gone(pid));
        drop(run);
        wait_gone(pid).await;
    }

    #[tokio::test]
    async fn a_line_filter_answers_each_line_and_keeps_bytes() {
        let r = Runner::new(vec!["cat".into()], Mode::Lines, 1, None, LIMIT).unwrap();
        assert_eq!(r.run(b"a\xff".to_vec()).await, Ok(b"a\xff".to_vec()));
        assert_eq!(r.run(b"b\r".to_vec()).await, Ok(b"b".to_vec()));
    }

    #[tokio::test]
    async fn a_line_filter_that_waits_for_more_input_times_out_with_advice_and_restarts() {
        // Answers only every second line: the first line of each filter times out.
        let script = "while read a; read b; do echo \"$a$b\"; done";
        let r = sh(script, true, Some(Duration::from_millis(300)));
        let e = r.run(b"1".to_vec()).await.unwrap_err();
        assert!(
            e.contains("did not answer within 300ms (--timeout) and was restarted"),
            "{e}"
        );
        assert!(e.ends_with(FILTER_ADVICE), "{e}");
        // A fresh filter: the stale "1" is gone with the old one.
        let e = r.run(b"2".to_vec()).await.unwrap_err();
        assert!(e.contains("did not answer"), "{e}");
    }

    #[tokio::test]
    async fn a_cancelled_line_filter_call_drops_its_answer_and_the_filter_goes_on() {
        // Holds the line "wait" until it reads a line from a FIFO; counts
        // the lines it has seen.
        let dir = tempfile::tempdir().unwrap();
        let go = dir.path().join("go");
        mkfifo(&go);
        // Read-write: opening it never blocks, and the line written stays
        // in the FIFO until the filter reads it.
        let mut go_on = tokio::net::unix::pipe::OpenOptions::new()
            .read_write(true)
            .open_sender(&go)
            .unwrap();
        let script = format!(
            "n=0; while read x; do n=$((n+1)); if [ \"$x\" = wait ]; then read g < {}; fi; echo \"$x$n\"; done",
            go.display()
        );
        let r = sh(&script, true, None);
        assert_eq!(r.run(b"a".to_vec()).await, Ok(b"a1".to_vec()));
        // Given to the filter at its first poll, then cancelled.
        let mut waiting = Box::pin(r.run(b"wait".to_vec()));
        assert!(futures::FutureExt::now_or_never(&mut waiting).is_none());
        drop(waiting);
        go_on.write_all(b"go\n").await.unwrap();
        // The same filter (it counts on), and "c" gets its own answer.
        assert_eq!(r.run(b"c".to_vec()).await, Ok(b"c3".to_vec()));
    }

    #[tokio::test]
    async fn a_line_filter_that_dies_is_restarted_for_the_next_value() {
        let script = "while read x; do [ \"$x\" = die ] && exit 1; echo \"<$x>\"; done";
        let r = sh(script, true, None);
        assert_eq!(r.run(b"a".to_vec()).await, Ok(b"<a>".to_vec()));
        let e = r.run(b"die".to_vec()).await.unwrap_err();
        assert_eq!(e, "sh ended without answering");
        assert_eq!(r.run(b"b".to_vec()).await, Ok(b"<b>".to_vec()));
    }
}
