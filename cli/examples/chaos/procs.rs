//! Child processes in process groups of their own, killed (the whole
//! group) when their handle is dropped: at the end of a run, on an error,
//! or while a panic unwinds.

use std::collections::VecDeque;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio::sync::{Notify, mpsc};

/// How many lines of a child's stderr are kept for a report.
const TAIL: usize = 40;

/// The last lines a child wrote to stderr.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tail {
    lines: Arc<Mutex<VecDeque<String>>>,
    /// Notified at each line, and at the end.
    changed: Arc<Notify>,
    /// Lines seen with " dropped: " (the master dropped a worker), and of
    /// those, with "(heartbeat timeout)".
    drops: Arc<Mutex<(u64, u64)>>,
    /// Set when the child's stderr has ended.
    ended: Arc<AtomicBool>,
}

impl Tail {
    /// Keeps the last lines of `reader`, in a task.
    fn follow(reader: impl AsyncRead + Unpin + Send + 'static) -> Tail {
        let tail = Tail::default();
        let lines = tail.lines.clone();
        let changed = tail.changed.clone();
        let drops = tail.drops.clone();
        let ended = tail.ended.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(reader);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).await.is_ok_and(|n| n > 0) {
                let mut lines = lines.lock().unwrap_or_else(|p| p.into_inner());
                if lines.len() == TAIL {
                    lines.pop_front();
                }
                let text = String::from_utf8_lossy(&line).trim_end().to_string();
                if text.contains(" dropped: ") {
                    let mut drops = drops.lock().unwrap_or_else(|p| p.into_inner());
                    drops.0 += 1;
                    drops.1 += u64::from(text.contains("(heartbeat timeout)"));
                }
                lines.push_back(text);
                line.clear();
                changed.notify_one();
            }
            ended.store(true, Ordering::SeqCst);
            changed.notify_one();
        });
        tail
    }

    /// Resolves at the next line (or at once if one came since the last call).
    pub(crate) async fn changed(&self) {
        self.changed.notified().await;
    }

    /// Waits (at most `limit`) until the child's stderr has ended, so that
    /// its last line is kept; whether it did.
    pub(crate) async fn wait_end(&self, limit: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.ended.load(Ordering::SeqCst) {
            if tokio::time::timeout_at(deadline, self.changed()).await.is_err() {
                return false;
            }
        }
        true
    }

    /// How many workers the master said it dropped, and how many of them
    /// for their silence (the heartbeat timeout).
    pub(crate) fn drops(&self) -> (u64, u64) {
        *self.drops.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lines kept so far.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}

/// A child process, the leader of its own process group.
#[derive(Debug)]
pub(crate) struct Group {
    /// Its name in reports.
    pub(crate) name: String,
    pgid: Pid,
    /// Set once the child has been reaped (its group id may then be reused: never signal it again).
    exited: Arc<AtomicBool>,
    /// Its stderr's last lines.
    pub(crate) stderr: Tail,
}

/// A spawned child: its handle, and the pipes the caller asked for.
pub(crate) struct Spawned {
    pub(crate) group: Group,
    pub(crate) stdin: Option<ChildStdin>,
    pub(crate) stdout: Option<ChildStdout>,
}

impl Group {
    /// Spawns `cmd` in a process group of its own, with stderr kept in a
    /// [`Tail`]; its exit status is sent on `exits` with `tag`.
    pub(crate) fn spawn<T: Send + 'static>(
        name: String,
        mut cmd: Command,
        exits: mpsc::UnboundedSender<(T, ExitStatus)>,
        tag: T,
    ) -> std::io::Result<Spawned> {
        cmd.process_group(0).stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = cmd.spawn()?;
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw)
            .ok_or_else(|| std::io::Error::other(format!("{name} has no process id")))?;
        let stderr = Tail::follow(child.stderr.take().expect("piped"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let exited = Arc::new(AtomicBool::new(false));
        let reaped = exited.clone();
        tokio::spawn(async move {
            if let Ok(status) = child.wait().await {
                reaped.store(true, Ordering::SeqCst);
                let _ = exits.send((tag, status));
            }
        });
        Ok(Spawned {
            group: Group {
                name,
                pgid,
                exited,
                stderr,
            },
            stdin,
            stdout,
        })
    }

    /// Sends `signal` to the group; whether it was still there.
    pub(crate) fn signal(&self, signal: Signal) -> bool {
        !self.exited.load(Ordering::SeqCst) && killpg(self.pgid, signal).is_ok()
    }

    /// Whether the child has exited.
    pub(crate) fn exited(&self) -> bool {
        self.exited.load(Ordering::SeqCst)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // SIGKILL ends a stopped process too; the group's other members, if
        // any, with it.
        self.signal(Signal::SIGKILL);
    }
}

/// The filters of the run in `run_dir` that are still running (those whose
/// command line names `run_dir`: a process id may have been reused).
fn filters(run_dir: &Path) -> Vec<Pid> {
    let Ok(dir) = std::fs::read_dir(crate::filter::pid_dir(run_dir)) else {
        return Vec::new();
    };
    let marker = run_dir.to_string_lossy().into_owned();
    dir.filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        })
        .map(Pid::from_raw)
        .collect()
}

/// Kills the filters of the run in `run_dir` still running after `grace`
/// (a filter ends at the end of its input, once its worker is gone; under
/// load that may take a moment); how many it killed.
pub(crate) fn kill_filters(run_dir: &Path, grace: std::time::Duration) -> usize {
    let deadline = std::time::Instant::now() + grace;
    // Polled: a filter is not our child, so there is no exit to wait on.
    while !filters(run_dir).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    filters(run_dir)
        .into_iter()
        .filter(|&pid| nix::sys::signal::kill(pid, Signal::SIGKILL).is_ok())
        .count()
}
