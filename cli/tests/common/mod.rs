//! What the end-to-end tests of `pando` share: spawning a master and its
//! workers, reading their lines, waiting with deadlines. Each test binary
//! uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStderr, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

pub(crate) const PANDO: &str = env!("CARGO_BIN_EXE_pando");

/// The deadline of each wait, unless a test says otherwise.
pub(crate) const DEADLINE: Duration = Duration::from_secs(120);

/// `1\n4\n9\n…` up to `n²`.
pub(crate) fn squares(n: u64) -> String {
    (1..=n).map(|x| format!("{}\n", x * x)).collect()
}

/// `1\n2\n3\n…` up to `n`.
pub(crate) fn seq(n: u64) -> String {
    (1..=n).map(|x| format!("{x}\n")).collect()
}

/// The lines of `reader`, sent by a thread as they come, until it ends.
pub(crate) fn lines(reader: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next line from `rx` within `within`, panicking with `what` otherwise.
pub(crate) fn next_line(rx: &mpsc::Receiver<String>, within: Duration, what: &str) -> String {
    rx.recv_timeout(within)
        .unwrap_or_else(|e| panic!("waiting for {what}: {e}"))
}

/// The next line from `rx` for which `pred` holds, each within `within`.
pub(crate) fn next_matching(
    rx: &mpsc::Receiver<String>,
    within: Duration,
    what: &str,
    pred: &dyn Fn(&str) -> bool,
) -> String {
    loop {
        let line = next_line(rx, within, what);
        if pred(&line) {
            return line;
        }
    }
}

/// `n` lines from `rx`, each within [`DEADLINE`].
pub(crate) fn collect(rx: &mpsc::Receiver<String>, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            rx.recv_timeout(DEADLINE)
                .unwrap_or_else(|e| panic!("line {i}: {e}"))
        })
        .collect()
}

/// The join URL in the master's line `pando: … pando work 'URL'`.
pub(crate) fn join_url(line: &str) -> String {
    line.split('\'')
        .nth(1)
        .unwrap_or_else(|| panic!("no join URL in {line:?}"))
        .to_string()
}

/// Writes `input` to `stdin` in a thread, then closes it.
pub(crate) fn feed(mut stdin: ChildStdin, input: String) {
    thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
}

/// Reads the rest of `stderr` in a thread, so the process never blocks on it.
pub(crate) fn drain(stderr: BufReader<ChildStderr>) {
    thread::spawn(move || for _ in stderr.lines().map_while(Result::ok) {});
}

/// A master with no local workers, bound to loopback, its first stderr line
/// (the join URL) read.
pub(crate) struct Master {
    pub(crate) child: Child,
    /// The join URL it printed.
    pub(crate) url: String,
    pub(crate) stdin: ChildStdin,
    /// Its stderr after the first line.
    pub(crate) stderr: BufReader<ChildStderr>,
    /// Its stdout lines.
    pub(crate) stdout: mpsc::Receiver<String>,
}

/// `pando --local 0 --bind 127.0.0.1 EXTRA -- COMMAND`, all three pipes.
pub(crate) fn master(extra: &[&str], command: &[&str]) -> Master {
    let mut child = Command::new(PANDO)
        .args(["--local", "0", "--bind", "127.0.0.1"])
        .args(extra)
        .arg("--")
        .args(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let url = join_url(&first);
    let stdout = lines(child.stdout.take().unwrap());
    Master {
        child,
        url,
        stdin,
        stderr,
        stdout,
    }
}

/// `pando --local 0 --bind 127.0.0.1 -- cat` at its default log level, its
/// stdout discarded: it, its stdin (the run goes on while that stays open),
/// and its stderr lines.
pub(crate) fn cat_master() -> (Child, ChildStdin, mpsc::Receiver<String>) {
    let mut child = Command::new(PANDO)
        .args(["--local", "0", "--bind", "127.0.0.1", "--", "cat"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    let stderr = lines(child.stderr.take().unwrap());
    (child, stdin, stderr)
}

/// `pando ARGS` with `env` set and no stdin, stdout or stderr.
pub(crate) fn quiet(args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new(PANDO)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// `pando work URL --accept`, quiet.
pub(crate) fn worker(url: &str) -> Child {
    worker_with(url, &[], &[])
}

/// `pando work URL --accept EXTRA` with `env` set, quiet.
pub(crate) fn worker_with(url: &str, extra: &[&str], env: &[(&str, &str)]) -> Child {
    let args: Vec<&str> = ["work", url, "--accept"]
        .into_iter()
        .chain(extra.iter().copied())
        .collect();
    quiet(&args, env)
}

/// Waits for `child` to end (in a thread, within [`DEADLINE`]).
pub(crate) fn wait(mut child: Child, what: &str) -> ExitStatus {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait().unwrap());
    });
    rx.recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("{what} did not end within {DEADLINE:?}"))
}

/// Kills the process when the test ends, whatever happens.
pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
