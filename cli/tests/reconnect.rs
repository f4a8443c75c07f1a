//! `pando work --reconnect`: a worker whose master is killed and started
//! again (same port, same --token) reconnects with backoff and completes the
//! new master's run; a master that comes back asking for another command is
//! refused. Separate processes over loopback sockets; the tests wait on
//! events (lines printed, processes ending), never on fixed sleeps.

mod common;

use std::io::{BufReader, Read};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;

use common::{PANDO, collect, drain, feed, seq, squares};

const TOKEN: &str = "reconnect-test-token";

/// A master on `port` (0: any) with the test's token and no local workers,
/// running `command` on `input`; returns it, the port it listens on, and a
/// receiver of its stdout lines.
fn master(port: u16, command: &[&str], input: String) -> (Child, u16, mpsc::Receiver<String>) {
    let (child, port, stdout, stderr) = master_logged(port, command, input);
    drain(stderr);
    (child, port, stdout)
}

/// [`master`], with its stderr left to read.
fn master_logged(
    port: u16,
    command: &[&str],
    input: String,
) -> (Child, u16, mpsc::Receiver<String>, BufReader<ChildStderr>) {
    let common::Master {
        child,
        url,
        stdin,
        stderr,
        stdout,
    } = common::master(
        &["--batch-size", "2", "--token", TOKEN, "--port", &port.to_string()],
        command,
    );
    let port = url
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(['/', '?']).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {url:?}"));
    feed(stdin, input);
    (child, port, stdout, stderr)
}

/// `pando work --reconnect=60s --accept` on the master at `port`, its
/// stderr piped.
fn worker(port: u16) -> Child {
    worker_with(port, &[])
}

/// [`worker`] with `extra` arguments.
fn worker_with(port: u16, extra: &[&str]) -> Child {
    Command::new(PANDO)
        .args(["work", "--reconnect=60s", "--accept", "--name", "phoenix-worker"])
        .args(extra)
        .arg(format!("ws://127.0.0.1:{port}/?token={TOKEN}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn kill(child: &mut Child) {
    assert!(
        Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    child.wait().unwrap();
}

/// The worker's exit status and stderr.
fn finish(mut w: Child) -> (std::process::ExitStatus, String) {
    let mut err = String::new();
    w.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (w.wait().unwrap(), err)
}

#[test]
fn a_worker_reconnects_to_a_restarted_master_which_completes() {
    let command = ["sh", "-c", "read x; sleep 0.01; echo $((x*x))"];
    let (mut first, port, rx) = master(0, &command, seq(200));
    let w = worker(port);
    // The first master is killed mid-run: the worker loses it.
    collect(&rx, 20);
    kill(&mut first);
    // The second one, on the same port with the same token, starts its input
    // over (no journal) and gets the worker back.
    let (mut second, _, rx) = master(port, &command, seq(200));
    let got = collect(&rx, 200);
    assert_eq!(got.join("\n") + "\n", squares(200));
    assert!(second.wait().unwrap().success());
    let (status, err) = finish(w);
    assert!(status.success(), "{err}");
    assert!(err.contains("lost the master at ws://127.0.0.1:"), "{err}");
    assert!(err.contains("rejoined the master"), "{err}");
    assert!(!err.contains(TOKEN), "the token is never shown: {err}");
}

#[test]
fn a_worker_refuses_a_restarted_master_that_asks_for_another_command() {
    let (mut first, port, rx) = master(0, &["sh", "-c", "read x; sleep 0.01; echo $((x*x))"], seq(200));
    let w = worker(port);
    collect(&rx, 10);
    kill(&mut first);
    // The master comes back asking for a command the worker never agreed to.
    let (mut second, _, _rx, stderr) = master_logged(port, &["sh", "-c", "read x; echo pwned $x"], seq(200));
    let (status, err) = finish(w);
    assert!(!status.success());
    assert!(
        err.contains("came back asking to run [\"sh\", \"-c\", \"read x; echo pwned $x\"]"),
        "{err}"
    );
    // The master's log says why the worker left, not just that it went.
    let log = common::lines(stderr);
    let line = common::next_matching(
        &log,
        common::DEADLINE,
        "the master's line on the worker that left",
        &|l| l.contains("phoenix-worker") && !l.ends_with("joined"),
    );
    assert!(
        line.contains(
            "the volunteer refuses: the master came back asking to run [\"sh\", \"-c\", \"read x; echo pwned $x\"], not [\"sh\", \"-c\", \"read x; sleep 0.01; echo $((x*x))\"] as agreed"
        ),
        "{line}"
    );
    kill(&mut second);
}

/// Each reconnection attempt is logged once: the rejoins share the
/// backoff of the whole run (they used to start a second count, and log
/// "attempt 2" twice).
#[test]
fn each_reconnection_attempt_is_logged_once() {
    let (mut first, port, rx) = master(0, &["sh", "-c", "read x; sleep 0.01; echo $((x*x))"], seq(200));
    let w = worker_with(port, &["--reconnect-attempts", "3"]);
    collect(&rx, 10);
    kill(&mut first);
    // No master comes back: the worker gives up at the third failure.
    let (status, err) = finish(w);
    assert!(!status.success(), "{err}");
    assert_eq!(err.matches("lost the master at").count(), 1, "{err}");
    assert_eq!(
        err.matches("before attempt 2 of 3 to reconnect").count(),
        1,
        "{err}"
    );
    assert_eq!(
        err.matches("before attempt 3 of 3 to reconnect").count(),
        1,
        "{err}"
    );
    assert_eq!(err.matches("giving up on the master").count(), 1, "{err}");
}
