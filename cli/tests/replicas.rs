//! `pando --replicas 3` end to end, as separate processes over loopback
//! WebSocket: a master without local workers and three `pando work`
//! processes, one of which runs a COMMAND that lies (its environment makes
//! it answer x²+1). The output is right. It waits on events (the join URL
//! printed, output lines, processes ending), each with a deadline.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const PANDO: &str = env!("CARGO_BIN_EXE_pando");
/// The deadline of each wait.
const DEADLINE: Duration = Duration::from_secs(120);

fn worker(url: &str, lie: bool) -> Child {
    let mut cmd = Command::new(PANDO);
    cmd.args(["work", url, "--accept"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if lie {
        cmd.env("PANDO_TEST_LIE", "1");
    }
    cmd.spawn().unwrap()
}

/// Waits for `child` to end (in a thread, with the deadline).
fn wait(mut child: Child, what: &str) -> std::process::ExitStatus {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait().unwrap());
    });
    rx.recv_timeout(DEADLINE)
        .unwrap_or_else(|_| panic!("{what} did not end within {DEADLINE:?}"))
}

#[test]
fn three_replicas_with_one_lying_pando_work_out_of_three_give_the_right_output() {
    let n = 60;
    let command = "read x; if [ -n \"$PANDO_TEST_LIE\" ]; then echo $((x*x+1)); else echo $((x*x)); fi";
    let mut master = Command::new(PANDO)
        .args([
            "--local",
            "0",
            "--bind",
            "127.0.0.1",
            "--replicas",
            "3",
            "--",
            "sh",
            "-c",
            command,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // No gate needed: with replicas, nothing is read before three workers joined.
    let mut stdin = master.stdin.take().unwrap();
    let input: String = (1..=n).map(|x| format!("{x}\n")).collect();
    thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let mut stderr = BufReader::new(master.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let url = first
        .split('\'')
        .nth(1)
        .unwrap_or_else(|| panic!("no join URL in {first:?}"))
        .to_string();
    let (err_tx, err_rx) = mpsc::channel();
    thread::spawn(move || {
        let rest: Vec<String> = stderr.lines().map_while(Result::ok).collect();
        let _ = err_tx.send(rest.join("\n"));
    });
    let (tx, rx) = mpsc::channel();
    let stdout = BufReader::new(master.stdout.take().unwrap());
    thread::spawn(move || {
        for line in stdout.lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let workers = [worker(&url, false), worker(&url, true), worker(&url, false)];
    let got: Vec<u64> = (0..n)
        .map(|i| {
            let line = rx
                .recv_timeout(DEADLINE)
                .unwrap_or_else(|e| panic!("output line {i}: {e}"));
            line.parse().unwrap()
        })
        .collect();
    assert_eq!(
        got,
        (1..=n).map(|x| x * x).collect::<Vec<_>>(),
        "the lie is outvoted"
    );
    let status = wait(master, "the master");
    let err = err_rx.recv_timeout(DEADLINE).unwrap_or_default();
    assert!(status.success(), "{err}");
    for (i, w) in workers.into_iter().enumerate() {
        assert!(wait(w, &format!("worker {i}")).success());
    }
}

#[test]
fn impossible_replicas_are_one_clear_line() {
    for k in ["0", "16"] {
        let out = Command::new(PANDO)
            .args(["--local", "0", "--replicas", k, "--", "cat"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert_eq!(
            String::from_utf8(out.stderr).unwrap(),
            format!("pando: --replicas: replicas must be between 1 and 15, not {k}\n")
        );
    }
}
