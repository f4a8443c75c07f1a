//! Local worker processes (`pando --local N`), supervised.
//!
//! Each local worker is a `pando work` child process. One that dies is
//! started again after a backoff (100 ms, doubling up to 5 s; back to
//! 100 ms once a run of it completed a value or lived 30 s). A worker that
//! dies 5 times in a row without taking a value is crash-looping at
//! start-up: the run stops with an error saying why (its exit status and
//! the last line it printed). A worker that exits successfully was told by
//! the master that the run is done, and is not started again.
//!
//! [`LocalWorkers::stop`] ends them: SIGTERM, then SIGKILL after a grace
//! period.

use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

/// What a worker has done so far, as the master counts it (summed over
/// every run of the worker).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Values lent to it.
    pub(crate) taken: u64,
    /// Values it completed.
    pub(crate) done: u64,
}

/// How local workers are restarted and stopped.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    /// The first backoff before a restart.
    pub(crate) first_backoff: Duration,
    /// The longest backoff.
    pub(crate) max_backoff: Duration,
    /// A run that lived this long resets the backoff.
    pub(crate) healthy_after: Duration,
    /// This many deaths in a row without taking a value stop the run.
    pub(crate) crash_loop: u32,
    /// How long a worker has to exit after SIGTERM before SIGKILL.
    pub(crate) grace: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            healthy_after: Duration::from_secs(30),
            crash_loop: 5,
            grace: Duration::from_secs(5),
        }
    }
}

/// Running local workers.
#[derive(Debug)]
pub(crate) struct LocalWorkers {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for LocalWorkers {
    /// Workers dropped without [`stop`](LocalWorkers::stop) are still
    /// stopped, by their supervising tasks.
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts `n` supervised workers: `command(i)` builds worker `i`'s command,
/// `name(i)` is its name and `progress(name)` what the master counted for it.
/// A crash loop is reported on `fatal`.
pub(crate) fn start<C, P>(
    n: usize,
    command: C,
    name: impl Fn(usize) -> String,
    progress: P,
    policy: Policy,
    fatal: mpsc::UnboundedSender<String>,
) -> LocalWorkers
where
    C: Fn(usize) -> Command + Send + Sync + 'static,
    P: Fn(&str) -> Progress + Send + Sync + 'static,
{
    let stop = CancellationToken::new();
    let command = Arc::new(command);
    let progress = Arc::new(progress);
    let tasks = (0..n)
        .map(|i| {
            let command = command.clone();
            let progress = progress.clone();
            let stop = stop.clone();
            let fatal = fatal.clone();
            let name = name(i);
            tokio::spawn(async move {
                if let Err(reason) = supervise(&name, || command(i), &*progress, policy, &stop).await {
                    let _ = fatal.send(reason);
                }
            })
        })
        .collect();
    LocalWorkers { stop, tasks }
}

impl LocalWorkers {
    /// No workers (for `--local 0`, or before `--start-idle` starts them).
    pub(crate) fn none() -> Self {
        LocalWorkers {
            stop: CancellationToken::new(),
            tasks: Vec::new(),
        }
    }

    /// Stops every worker still running (SIGTERM, then SIGKILL after the
    /// grace period) and waits for them.
    pub(crate) async fn stop(mut self) {
        self.stop.cancel();
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

/// Runs one worker until it exits successfully or `stop` is cancelled;
/// an error if it crash-loops.
async fn supervise(
    name: &str,
    command: impl Fn() -> Command,
    progress: &(dyn Fn(&str) -> Progress + Send + Sync),
    policy: Policy,
    stop: &CancellationToken,
) -> Result<(), String> {
    let mut backoff = policy.first_backoff;
    let mut streak = 0;
    loop {
        let before = progress(name);
        let started = Instant::now();
        let mut cmd = command();
        cmd.stdin(Stdio::null()).stderr(Stdio::piped()).kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start local worker {name}: {e}"))?;
        let last_line = Arc::new(Mutex::new(String::new()));
        let forwarding = forward_stderr(&mut child, last_line.clone());
        let status = tokio::select! {
            status = child.wait() => status,
            () = stop.cancelled() => {
                terminate(&mut child, policy.grace).await;
                return Ok(());
            }
        };
        // The last line it printed, once its stderr is closed (a grandchild
        // holding it open must not stop us: give up after a moment).
        let _ = tokio::time::timeout(Duration::from_secs(1), forwarding).await;
        let status = match status {
            Ok(status) if status.success() => return Ok(()),
            Ok(status) => describe(status),
            Err(e) => e.to_string(),
        };
        let last = last_line.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let why = if last.is_empty() {
            status
        } else {
            format!("{status}; its last words: {last}")
        };
        let after = progress(name);
        if after.taken > before.taken {
            streak = 0;
        } else {
            streak += 1;
        }
        if after.done > before.done || started.elapsed() >= policy.healthy_after {
            backoff = policy.first_backoff;
        }
        if streak >= policy.crash_loop {
            return Err(format!(
                "local worker {name} died {streak} times in a row before taking a value ({why}); stopping"
            ));
        }
        tracing::warn!(
            "local worker {name} died ({why}); restarting it in {}",
            humantime::format_duration(backoff)
        );
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stop.cancelled() => return Ok(()),
        }
        backoff = (backoff * 2).min(policy.max_backoff);
    }
}

/// How a worker ended, in words.
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(s) => format!("killed by {s}"),
            Err(_) => format!("killed by signal {signal}"),
        },
        _ => status.to_string(),
    }
}

/// Copies the child's stderr to ours, line by line, remembering the last
/// non-empty line; the task ends when the pipe closes.
fn forward_stderr(child: &mut Child, last: Arc<Mutex<String>>) -> JoinHandle<()> {
    let stderr = child.stderr.take().expect("piped");
    tokio::spawn(async move {
        let mut lines = FramedRead::new(stderr, crate::lines::codec());
        while let Some(Ok(line)) = lines.next().await {
            let mut line: Vec<u8> = line.into();
            line.push(b'\n');
            let _ = std::io::Write::write_all(&mut crate::log::Stderr, &line);
            let text = String::from_utf8_lossy(&line);
            let text = text.trim();
            if !text.is_empty() {
                *last.lock().unwrap_or_else(|p| p.into_inner()) = text.to_string();
            }
        }
    })
}

/// SIGTERM, then SIGKILL if `child` has not exited within `grace`.
async fn terminate(child: &mut Child, grace: Duration) {
    if let Some(pid) = child.id().and_then(|id| i32::try_from(id).ok()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        if tokio::time::timeout(grace, child.wait()).await.is_ok() {
            return;
        }
        tracing::warn!("a local worker did not stop within {grace:?} of SIGTERM; killing it");
    }
    let _ = child.kill().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn fast() -> Policy {
        Policy {
            first_backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(4),
            healthy_after: Duration::from_secs(3600),
            crash_loop: 5,
            grace: Duration::from_secs(5),
        }
    }

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.arg("-c").arg(script);
        c
    }

    #[tokio::test]
    async fn a_worker_that_never_takes_a_value_stops_the_run_saying_why() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let starts = Arc::new(AtomicU64::new(0));
        let counted = starts.clone();
        let workers = start(
            1,
            move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
                sh("echo 'pando: cannot join: refused' >&2; exit 3")
            },
            |i| format!("local-{i}"),
            |_| Progress::default(),
            fast(),
            tx,
        );
        let reason = rx.recv().await.unwrap();
        assert_eq!(
            reason,
            "local worker local-0 died 5 times in a row before taking a value \
             (exit code 3; its last words: pando: cannot join: refused); stopping"
        );
        assert_eq!(starts.load(Ordering::SeqCst), 5);
        workers.stop().await;
    }

    #[tokio::test]
    async fn a_worker_that_takes_values_is_restarted_until_it_succeeds() {
        // It dies on its first 7 runs, each after taking a value, then exits 0.
        let (tx, mut rx) = mpsc::unbounded_channel();
        let runs = Arc::new(AtomicU64::new(0));
        let counted = runs.clone();
        let seen = runs.clone();
        let mut workers = start(
            1,
            move |_| {
                let n = counted.fetch_add(1, Ordering::SeqCst);
                sh(if n < 7 { "kill -9 $$" } else { "exit 0" })
            },
            |i| format!("local-{i}"),
            move |_| Progress {
                taken: seen.load(Ordering::SeqCst),
                done: 0,
            },
            fast(),
            tx,
        );
        for task in std::mem::take(&mut workers.tasks) {
            task.await.unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 8);
        assert!(rx.try_recv().is_err(), "no crash loop reported");
    }

    #[tokio::test]
    async fn stop_terminates_a_running_worker_then_kills_one_that_ignores_sigterm() {
        let dir = std::env::temp_dir().join(format!("pando-supervise-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (tx, _rx) = mpsc::unbounded_channel();
        let policy = Policy {
            grace: Duration::from_millis(300),
            ..fast()
        };
        // Worker 0 ignores SIGTERM (it must be killed); worker 1 does not.
        // Each writes its pid once its trap is set.
        let files = [dir.join("0.pid"), dir.join("1.pid")];
        for f in &files {
            let _ = std::fs::remove_file(f);
        }
        let scripts = files.clone().map(|f| f.display().to_string());
        let workers = start(
            2,
            move |i| {
                let trap = if i == 0 { "trap '' TERM; " } else { "" };
                sh(&format!(
                    "{trap}echo $$ > {0}.tmp; mv {0}.tmp {0}; while :; do sleep 0.05; done",
                    scripts[i]
                ))
            },
            |i| format!("local-{i}"),
            |_| Progress::default(),
            policy,
            tx,
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut pids = Vec::new();
        for f in &files {
            let pid: i32 = loop {
                if let Ok(pid) = std::fs::read_to_string(f) {
                    break pid.trim().parse().unwrap();
                }
                assert!(Instant::now() < deadline, "worker did not start");
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            pids.push(pid);
        }
        let started = Instant::now();
        workers.stop().await;
        // Worker 0 outlived its SIGTERM by the grace period.
        assert!(started.elapsed() >= policy.grace);
        for pid in pids {
            assert!(
                kill(Pid::from_raw(pid), None).is_err() || zombie(pid),
                "worker {pid} still runs"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
    }

    #[test]
    fn deaths_are_described_in_words() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exit code 3");
        assert_eq!(describe(ExitStatus::from_raw(9)), "killed by SIGKILL");
    }
}
