//! Running COMMAND on values: once per value, or as a long-running line
//! filter (`--lines`).
//!
//! Each COMMAND runs in a process group of its own. The group is killed
//! (SIGKILL) whenever the run of a value ends: with a result, a failure, a
//! timeout, or because the value's future was dropped (the worker gave up
//! on it, or `pando work` is exiting). So nothing COMMAND started, such as a
//! `sleep` in the background, outlives its value. A line filter's group
//! lives as long as the filter, and is killed when it is restarted or
//! dropped.

use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Mutex;
use tokio_util::codec::{AnyDelimiterCodec, FramedRead};

use crate::lines;

/// Why a line filter may not answer: the end of every timeout or stall message in `--lines` mode.
pub(crate) const FILTER_ADVICE: &str = "a line filter must write its answer to each line without waiting for more input (mawk -W interactive, sed -u, python3 -u, stdbuf -oL)";

/// How long a line filter may stay silent, without `--timeout`, before the worker warns.
const FILTER_STALL_WARNING: Duration = Duration::from_secs(10);

/// Runs COMMAND on values. Cheap to clone; clones share a line filter.
#[derive(Clone, Debug)]
pub(crate) struct Runner {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// COMMAND's program, resolved on PATH.
    program: PathBuf,
    /// COMMAND as given (for messages) and its arguments.
    command: Vec<String>,
    /// The deadline of one value, if any.
    timeout: Option<Duration>,
    /// The largest result, in bytes.
    limit: usize,
    /// With `--lines`, the running filter (none before the first value and
    /// after a failure).
    filter: Option<Arc<Mutex<Option<Filter>>>>,
}

/// A child in a process group of its own, killed with its group when dropped.
#[derive(Debug)]
struct Group {
    child: Child,
    pgid: Option<Pid>,
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            // ESRCH (the group is already gone) is the usual, fine answer.
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// A long-running COMMAND used as a line filter.
#[derive(Debug)]
struct Filter {
    stdin: ChildStdin,
    stdout: FramedRead<ChildStdout, AnyDelimiterCodec>,
    // Last, so the pipes close before the group is killed.
    _group: Group,
}

impl Runner {
    /// A runner of `command` (its first word is looked up on PATH): with
    /// `lines`, as a line filter. `timeout` bounds each value; a result
    /// longer than `limit` bytes is a failure.
    pub(crate) fn new(
        command: Vec<String>,
        lines: bool,
        timeout: Option<Duration>,
        limit: usize,
    ) -> Result<Self, String> {
        let program = find_program(&command[0])?;
        Ok(Runner {
            inner: Arc::new(Inner {
                program,
                command,
                timeout,
                limit,
                filter: lines.then(Arc::default),
            }),
        })
    }

    /// Runs COMMAND on `line`: its result, or why it failed. Dropping the
    /// future kills what COMMAND started (and, with `--lines`, the filter,
    /// which the next call starts again).
    pub(crate) fn run(&self, line: Vec<u8>) -> impl Future<Output = Result<Vec<u8>, String>> + Send + use<> {
        let inner = self.inner.clone();
        async move {
            match &inner.filter {
                Some(slot) => inner.run_filter(slot.clone(), line).await,
                None => inner.run_once(line).await,
            }
        }
    }
}

/// `program`'s path: a path to an executable, or a name found on PATH.
pub(crate) fn find_program(program: &str) -> Result<PathBuf, String> {
    which::which(program).map_err(|_| format!("command not found: {program}"))
}

impl Inner {
    fn name(&self) -> &str {
        &self.command[0]
    }

    /// Starts COMMAND with piped stdin and stdout (stderr is ours) in a
    /// process group of its own.
    fn spawn(&self) -> Result<(Group, ChildStdin, ChildStdout), String> {
        let mut child = Command::new(&self.program)
            .args(&self.command[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
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

    /// Runs COMMAND with `line` and a `\n` on its stdin; its stdout
    /// (without a last `\n` or `\r\n`) is the result.
    async fn run_once(&self, mut line: Vec<u8>) -> Result<Vec<u8>, String> {
        let (mut group, mut stdin, stdout) = self.spawn()?;
        line.push(b'\n');
        let work = async {
            let writing = async move {
                // A command that does not read its input is not an error.
                let _ = stdin.write_all(&line).await;
            };
            let reading = self.read_limited(stdout);
            let ((), output) = tokio::join!(writing, reading);
            let mut output = output?;
            let status = group.child.wait().await.map_err(|e| e.to_string())?;
            if !status.success() {
                return Err(format!("{} exited with {status}", self.name()));
            }
            lines::strip_line_end(&mut output);
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

    fn too_long(&self) -> String {
        format!(
            "the result of {} exceeds the limit of {} bytes (the largest frame); it was stopped",
            self.name(),
            self.limit
        )
    }

    /// Writes `line` to the filter and reads one line back. The filter is
    /// taken out of its slot while it works, and put back only after a
    /// good answer: a failure, a timeout, or a dropped future (a cancelled
    /// call) drops it, which kills it, and the next call starts a new one.
    async fn run_filter(
        &self,
        slot: Arc<Mutex<Option<Filter>>>,
        mut line: Vec<u8>,
    ) -> Result<Vec<u8>, String> {
        let mut slot = slot.lock_owned().await;
        let mut filter = match slot.take() {
            Some(filter) => filter,
            None => {
                let (group, stdin, stdout) = self.spawn()?;
                let codec = lines::codec_with_max_length(self.limit);
                Filter {
                    stdin,
                    stdout: FramedRead::new(stdout, codec),
                    _group: group,
                }
            }
        };
        line.push(b'\n');
        let answer = async {
            filter
                .stdin
                .write_all(&line)
                .await
                .map_err(|e| format!("writing to {}: {e}", self.name()))?;
            filter.stdin.flush().await.map_err(|e| e.to_string())?;
            match filter.stdout.next().await {
                Some(Ok(result)) => {
                    let mut result: Vec<u8> = result.into();
                    lines::strip_line_end(&mut result);
                    Ok(result)
                }
                Some(Err(tokio_util::codec::AnyDelimiterCodecError::MaxChunkLengthExceeded)) => {
                    Err(self.too_long())
                }
                Some(Err(e)) => Err(format!(
                    "reading the output of {}: {}",
                    self.name(),
                    lines::io_error(e)
                )),
                None => Err(format!("{} ended without answering", self.name())),
            }
        };
        let answer = match self.timeout {
            Some(t) => tokio::time::timeout(t, answer).await.unwrap_or_else(|_| {
                Err(format!(
                    "{} did not answer within {} (--timeout) and was restarted: {FILTER_ADVICE}",
                    self.name(),
                    humantime::format_duration(t)
                ))
            }),
            None => {
                tokio::pin!(answer);
                match tokio::time::timeout(FILTER_STALL_WARNING, &mut answer).await {
                    Ok(answer) => answer,
                    Err(_) => {
                        tracing::warn!(
                            "{} has not answered a line for {}; {FILTER_ADVICE}; --timeout restarts a stuck filter",
                            self.name(),
                            humantime::format_duration(FILTER_STALL_WARNING)
                        );
                        answer.await
                    }
                }
            }
        };
        if answer.is_ok() {
            *slot = Some(filter);
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 1 << 20;

    fn sh(script: &str, lines: bool, timeout: Option<Duration>) -> Runner {
        let command = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
        Runner::new(command, lines, timeout, LIMIT).unwrap()
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
        let e = Runner::new(vec!["no-such-command-here".into()], false, None, LIMIT).unwrap_err();
        assert_eq!(e, "command not found: no-such-command-here");
    }

    #[tokio::test]
    async fn a_result_over_the_limit_fails_without_reading_it_all() {
        let r = Runner::new(vec!["sh".into(), "-c".into(), "yes".into()], false, None, 1000).unwrap();
        let e = r.run(b"x".to_vec()).await.unwrap_err();
        assert!(e.contains("exceeds the limit of 1000 bytes"), "{e}");
    }

    #[tokio::test]
    async fn a_timeout_kills_the_whole_process_group() {
        let dir = std::env::temp_dir().join(format!("pando-runner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("timeout.pid");
        let script = format!("sleep 1000 & echo $! > {}; wait", pidfile.display());
        let r = sh(&script, false, Some(Duration::from_millis(300)));
        let e = r.run(b"x".to_vec()).await.unwrap_err();
        assert!(e.contains("did not finish within 300ms (--timeout)"), "{e}");
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        wait_gone(pid).await;
    }

    #[tokio::test]
    async fn a_dropped_value_kills_the_whole_process_group() {
        let dir = std::env::temp_dir().join(format!("pando-runner-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pidfile = dir.join("dropped.pid");
        let _ = std::fs::remove_file(&pidfile);
        let script = format!(
            "sleep 1000 & echo $! > {}.tmp; mv {0}.tmp {0}; wait",
            pidfile.display()
        );
        let r = sh(&script, false, None);
        let mut run = Box::pin(r.run(b"x".to_vec()));
        // Poll the value until the background sleep exists, then drop it.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let pid = loop {
            tokio::select! {
                out = &mut run => panic!("finished: {out:?}"),
                _ = tokio::time::sleep(Duration::from_millis(10)) => {}
            }
            if let Ok(pid) = std::fs::read_to_string(&pidfile) {
                break pid.trim().parse::<i32>().unwrap();
            }
            assert!(tokio::time::Instant::now() < deadline, "no pid file");
        };
        assert!(!gone(pid));
        drop(run);
        wait_gone(pid).await;
    }

    #[tokio::test]
    async fn a_line_filter_answers_each_line_and_keeps_bytes() {
        let r = Runner::new(vec!["cat".into()], true, None, LIMIT).unwrap();
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
    async fn a_cancelled_line_filter_call_restarts_the_filter() {
        // Counts the lines it has seen: a restarted filter starts again at 1.
        let script = "n=0; while read x; do n=$((n+1)); [ \"$x\" = hang ] && sleep 1000; echo $n; done";
        let r = sh(script, true, None);
        assert_eq!(r.run(b"a".to_vec()).await, Ok(b"1".to_vec()));
        assert_eq!(r.run(b"b".to_vec()).await, Ok(b"2".to_vec()));
        let hung = Box::pin(r.run(b"hang".to_vec()));
        // Cancel it: the filter left its slot at the first poll, so it is dropped either way.
        assert!(
            tokio::time::timeout(Duration::from_millis(200), hung)
                .await
                .is_err()
        );
        assert_eq!(r.run(b"c".to_vec()).await, Ok(b"1".to_vec()));
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
