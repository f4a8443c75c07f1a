//! End-to-end tests of the `pando` command, as separate processes over
//! loopback sockets. They wait on events (a line printed, a process ending),
//! never on fixed sleeps; only the master's own heartbeat timeout takes time.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const PANDO: &str = env!("CARGO_BIN_EXE_pando");

fn squares(n: u64) -> String {
    (1..=n).map(|x| format!("{}\n", x * x)).collect()
}

fn seq(n: u64) -> String {
    (1..=n).map(|x| format!("{x}\n")).collect()
}

/// Runs `pando ARGS` with `input` on stdin; returns (status, stdout, stderr).
fn run(args: &[&str], input: &str) -> (std::process::ExitStatus, String, String) {
    let mut child = Command::new(PANDO)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status,
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn a_thousand_squares_in_order_one_process_per_value() {
    let (status, out, err) = run(
        &["--local", "2", "--", "sh", "-c", "read x; echo $((x*x))"],
        &seq(1000),
    );
    assert!(status.success(), "{err}");
    assert_eq!(out, squares(1000));
    assert!(
        err.contains("other machines join with: pando work 'ws://"),
        "{err}"
    );
}

#[test]
fn a_thousand_squares_in_order_with_line_filters() {
    let filter = "while read x; do echo $((x*x)); done";
    let (status, out, err) = run(&["--local", "2", "--lines", "--", "sh", "-c", filter], &seq(1000));
    assert!(status.success(), "{err}");
    assert_eq!(out, squares(1000));
}

#[test]
fn errors_are_one_clear_line() {
    let (status, _, err) = run(&["--local", "1", "--", "no-such-command-here"], "");
    assert!(!status.success());
    assert_eq!(err, "pando: command not found: no-such-command-here\n");

    let (status, _, err) = run(&["work", "ws://127.0.0.1:1/?token=x"], "");
    assert!(!status.success());
    assert!(
        err.starts_with("pando: cannot join ws://127.0.0.1:1/?token=x: cannot reach"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let (status, _, err) = run(
        &[
            "--local",
            "1",
            "--max-retries",
            "1",
            "--",
            "sh",
            "-c",
            "read x; [ $x -ne 3 ] && echo $x || exit 1",
        ],
        &seq(5),
    );
    assert!(!status.success());
    // (A worker's command may also complain on stderr as it is cut off.)
    assert!(
        err.lines()
            .any(|l| l == "pando: input line 3 failed 2 times (more than --max-retries); stopping"),
        "{err}"
    );
}

#[test]
fn a_port_in_use_is_reported() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let (status, _, err) = run(
        &[
            "--local",
            "0",
            "--bind",
            "127.0.0.1",
            "--port",
            &port,
            "--",
            "cat",
        ],
        "",
    );
    assert!(!status.success());
    assert!(err.contains("Address already in use"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// A master with no local workers, reading `input`; returns it, the join
/// URL it printed, and a receiver of its stdout lines.
fn master(extra: &[&str], command: &[&str], input: String) -> (Child, String, mpsc::Receiver<String>) {
    let (child, url, rx) = master_gated(extra, command, input, None);
    (child, url, rx)
}

/// Like [`master`]; with `gate`, the input is written only once the master
/// printed a stderr line starting with `gate`.
fn master_gated(
    extra: &[&str],
    command: &[&str],
    input: String,
    gate: Option<&'static str>,
) -> (Child, String, mpsc::Receiver<String>) {
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
    let mut stdin = child.stdin.take().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let url = first
        .split('\'')
        .nth(1)
        .unwrap_or_else(|| panic!("no join URL in {first:?}"))
        .to_string();
    let (open_tx, open_rx) = mpsc::channel::<()>();
    thread::spawn(move || {
        let mut open = Some(open_tx);
        for line in stderr.lines().map_while(Result::ok) {
            if gate.is_some_and(|g| line.starts_with(g)) {
                if let Some(tx) = open.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    thread::spawn(move || {
        if gate.is_some() && open_rx.recv().is_err() {
            return;
        }
        let _ = stdin.write_all(input.as_bytes());
    });
    let (tx, rx) = mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    thread::spawn(move || {
        for line in stdout.lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    (child, url, rx)
}

fn worker(url: &str) -> Child {
    Command::new(PANDO)
        .args(["work", url, "--accept"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn collect(rx: &mpsc::Receiver<String>, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            rx.recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|e| panic!("line {i}: {e}"))
        })
        .collect()
}

#[test]
fn remote_workers_join_with_pando_work() {
    // The input is written once both workers have joined (the --monitor line
    // says so), so neither can arrive after the other did everything.
    let command = ["sh", "-c", "read x; echo $((x*x))"];
    let (mut m, url, rx) = master_gated(&["--monitor"], &command, seq(300), Some("pando: 2 workers"));
    let mut workers = vec![worker(&url), worker(&url)];
    let got = collect(&rx, 300);
    assert_eq!(got.join("\n") + "\n", squares(300));
    assert!(m.wait().unwrap().success());
    for w in &mut workers {
        assert!(w.wait().unwrap().success());
    }
}

fn signal(child: &Child, sig: &str) {
    assert!(
        Command::new("kill")
            .args([sig, &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn a_worker_killed_mid_run_loses_nothing_and_duplicates_nothing() {
    // Each value takes a little while, so the killed worker holds values.
    let (mut m, url, rx) = master(
        &["--batch-size", "3"],
        &["sh", "-c", "read x; sleep 0.01; echo $((x*x))"],
        seq(200),
    );
    let mut doomed = worker(&url);
    let mut first = collect(&rx, 20);
    let mut steady = worker(&url);
    signal(&doomed, "-KILL");
    doomed.wait().unwrap();
    first.extend(collect(&rx, 180));
    assert_eq!(first.join("\n") + "\n", squares(200));
    assert!(
        rx.recv_timeout(Duration::from_secs(30)).is_err(),
        "nothing after the last result"
    );
    assert!(m.wait().unwrap().success());
    assert!(steady.wait().unwrap().success());
}

#[test]
fn a_stopped_worker_is_detected_by_heartbeat_and_its_values_lent_again() {
    let (mut m, url, rx) = master(
        &["--heartbeat", "250"],
        &["sh", "-c", "read x; echo $((x*x))"],
        seq(100),
    );
    let mut stalled = worker(&url);
    let mut got = collect(&rx, 10);
    signal(&stalled, "-STOP");
    let mut steady = worker(&url);
    got.extend(collect(&rx, 90));
    assert_eq!(got.join("\n") + "\n", squares(100));
    assert!(m.wait().unwrap().success());
    assert!(steady.wait().unwrap().success());
    signal(&stalled, "-KILL");
    let _ = stalled.wait();
}
