//! End-to-end tests of the `pando` command, as separate processes over
//! loopback sockets. They wait on events (a line printed, a process ending),
//! never on fixed sleeps; only the master's own heartbeat timeout takes time.

mod common;

use std::io::{BufRead, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{DEADLINE, PANDO, collect, feed, join_url, next_matching, seq, squares, worker, worker_with};

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

    let (status, _, err) = run(&["work", "ws://127.0.0.1:1/?token=the-secret"], "");
    assert!(!status.success());
    // The URL is named without its token.
    assert!(
        err.starts_with("pando: cannot join ws://127.0.0.1:1/: cannot reach"),
        "{err}"
    );
    assert!(!err.contains("the-secret"), "{err}");
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
        err.lines().any(|l| l.starts_with(
            "pando: input line 3 failed 2 times (more than --max-retries); last failure: worker local-0 ("
        ) && l.ends_with("): sh exited with exit status: 1")),
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
    master_gated(extra, command, input, None)
}

/// Like [`master`]; with `gate`, the input is written only once the master
/// printed a stderr line starting with `gate`.
fn master_gated(
    extra: &[&str],
    command: &[&str],
    input: String,
    gate: Option<&'static str>,
) -> (Child, String, mpsc::Receiver<String>) {
    let common::Master {
        child,
        url,
        stdin,
        stderr,
        stdout,
    } = common::master(extra, command);
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
        feed(stdin, input);
    });
    (child, url, stdout)
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

/// Runs `pando ARGS` with `input` on stdin and `env` set; kills it and
/// panics if it has not ended within `deadline`. Returns (status, stdout
/// bytes, stderr).
fn run_within(
    args: &[&str],
    env: &[(&str, &str)],
    input: &[u8],
    deadline: Duration,
) -> (std::process::ExitStatus, Vec<u8>, String) {
    let mut child = Command::new(PANDO)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let id = child.id();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(deadline) {
        Ok(out) => {
            let out = out.unwrap();
            (
                out.status,
                out.stdout,
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &id.to_string()]).status();
            let out = rx.recv().unwrap().unwrap();
            panic!(
                "pando {args:?} did not end within {deadline:?}; stderr:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn last_line(err: &str) -> &str {
    err.lines().last().unwrap_or("")
}

/// Issue 8 row 6: a local worker that dies is restarted, so a value that
/// kills its worker ends the run with the retry-cap error naming it.
#[test]
fn a_value_that_kills_its_local_worker_ends_with_an_error_naming_its_line() {
    let script = "read x; [ \"$x\" = 2 ] && kill -9 $PPID; echo $x";
    let (status, out, err) = run_within(
        &["--local", "2", "--", "sh", "-c", script],
        &[],
        b"1\n2\n",
        DEADLINE,
    );
    assert!(!status.success(), "{err}");
    assert!(
        last_line(&err).starts_with("pando: input line 2 failed 6 times (more than --max-retries)"),
        "{err}"
    );
    assert!(
        err.contains("died (killed by SIGKILL); restarting it in"),
        "{err}"
    );
    assert_eq!(out, b"1\n");
}

/// Issue 8, oversized results: a result over the frame limit is a failure
/// of its value, not a dead connection or a hang.
#[test]
fn an_oversized_result_fails_its_value_with_a_reason() {
    let (status, _, err) = run_within(
        &["--local", "2", "--", "sh", "-c", "head -c 17000000 /dev/zero"],
        &[],
        b"1\n",
        DEADLINE,
    );
    assert!(!status.success(), "{err}");
    assert!(last_line(&err).starts_with("pando: input line 1 failed"), "{err}");
    assert!(last_line(&err).contains("exceeds the limit of"), "{err}");
}

/// Issue 8 row 10: a heartbeat whose timeout (10 heartbeats) would overflow
/// is a clear usage error; a duration is accepted.
#[test]
fn a_huge_heartbeat_is_a_usage_error_and_durations_are_accepted() {
    let (status, _, err) = run_within(
        &["--heartbeat", "18446744073709551615", "--local", "1", "--", "cat"],
        &[],
        b"",
        DEADLINE,
    );
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("a heartbeat must be between 1 ms and 1 day"),
        "{err}"
    );

    let (status, out, err) = run_within(
        &[
            "--heartbeat",
            "2s",
            "--local",
            "1",
            "--",
            "sh",
            "-c",
            "read x; echo $((x*x))",
        ],
        &[],
        seq(5).as_bytes(),
        DEADLINE,
    );
    assert!(status.success(), "{err}");
    assert_eq!(String::from_utf8(out).unwrap(), squares(5));
}

/// Issue 8 row 11: a line filter that waits for more input than one line
/// (mawk buffers its input) is killed by --timeout, and the error says why.
#[test]
fn a_buffering_line_filter_times_out_with_an_explanation() {
    if runner_missing("mawk") {
        eprintln!("skipped: mawk is not installed (apt-get install mawk)");
        return;
    }
    let (status, _, err) = run_within(
        &[
            "--local",
            "1",
            "--lines",
            "--timeout",
            "1s",
            "--max-retries",
            "0",
            "--",
            "mawk",
            "{print $1*$1; fflush()}",
        ],
        &[],
        seq(5).as_bytes(),
        DEADLINE,
    );
    assert!(!status.success(), "{err}");
    assert!(
        last_line(&err).starts_with("pando: input line 1 failed 1 time ("),
        "{err}"
    );
    assert!(
        last_line(&err).ends_with(
            "a line filter must write its answer to each line without waiting for more input \
             (mawk -W interactive, sed -u, python3 -u, stdbuf -oL)"
        ),
        "{err}"
    );
}

fn runner_missing(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .map_or(true, |s| !s.success())
}

/// Issue 8 row 12: lines are bytes, and both modes strip `\n` then `\r`.
#[test]
fn lines_are_bytes_and_crlf_is_stripped_in_both_modes() {
    let input = b"a\xffb\nc\r\n\nlast";
    let want = b"a\xffb\nc\n\nlast\n";
    let (status, out, err) = run_within(&["--local", "1", "--", "cat"], &[], input, DEADLINE);
    assert!(status.success(), "{err}");
    assert_eq!(out, want);
    let (status, out, err) = run_within(&["--local", "1", "--lines", "--", "cat"], &[], input, DEADLINE);
    assert!(status.success(), "{err}");
    assert_eq!(out, want);
    // Results ending in \r\n lose both, in both modes.
    let crlf = ["sh", "-c", "while read x; do printf '%s\\r\\n' \"$x\"; done"];
    for lines in [false, true] {
        let mut args = vec!["--local", "1"];
        if lines {
            args.push("--lines");
        }
        args.push("--");
        args.extend(crlf);
        let (status, out, err) = run_within(&args, &[], b"1\n2\n", DEADLINE);
        assert!(status.success(), "{err}");
        assert_eq!(out, b"1\n2\n", "--lines: {lines}");
    }
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

/// Polls until `what` holds, panicking after `within`.
fn wait_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {within:?}"
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// A fresh directory for one test's files.
fn scratch(test: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("pando-cli-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A COMMAND that starts a background `sleep`, writes its pid to `pidfile`, and waits.
fn sleeper(pidfile: &std::path::Path) -> String {
    format!(
        "sleep 1000 & echo $! > {0}.tmp; mv {0}.tmp {0}; wait",
        pidfile.display()
    )
}

fn read_pid(pidfile: &std::path::Path) -> u32 {
    let mut pid = None;
    wait_until(DEADLINE, "the background sleep started", || {
        pid = std::fs::read_to_string(pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok());
        pid.is_some()
    });
    pid.unwrap()
}

/// Issue 8 row 7: after SIGTERM to the master (which stops its local
/// workers) or SIGINT to a worker, no grandchild survives.
#[test]
fn after_sigterm_or_sigint_no_grandchild_survives() {
    let dir = scratch("signals");
    // The master, with a local worker.
    let pidfile = dir.join("master.pid");
    let mut m = Command::new(PANDO)
        .args([
            "--local",
            "1",
            "--bind",
            "127.0.0.1",
            "--",
            "sh",
            "-c",
            &sleeper(&pidfile),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    m.stdin.take().unwrap().write_all(b"1\n").unwrap();
    let sleep = read_pid(&pidfile);
    signal(&m, "-TERM");
    let out = m.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{err}");
    wait_until(DEADLINE, "the master's grandchild is gone", || gone(sleep));

    // A remote worker, interrupted.
    let pidfile = dir.join("worker.pid");
    let (mut m, url, _rx) = master(&[], &["sh", "-c", &sleeper(&pidfile)], "1\n".to_string());
    let w = worker(&url);
    let sleep = read_pid(&pidfile);
    signal(&w, "-INT");
    let mut w = w;
    assert_eq!(w.wait().unwrap().code(), Some(130));
    wait_until(DEADLINE, "the worker's grandchild is gone", || gone(sleep));
    signal(&m, "-KILL");
    let _ = m.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 8 row 13: a worker that is dropped is logged with its name,
/// address and the reason.
#[test]
fn a_dropped_worker_is_logged_with_its_name_address_and_reason() {
    // stdin stays open: the run goes on while the worker is killed.
    let (mut m, _stdin, rx) = common::cat_master();
    let next = |what: &str, pred: &dyn Fn(&str) -> bool| next_matching(&rx, DEADLINE, what, pred);
    let first = next("the join URL", &|l| l.contains("pando work '"));
    let url = join_url(&first);
    let mut w = worker_with(&url, &["--name", "victim"], &[]);
    let joined = next("the join", &|l| {
        l.contains("worker victim (") && l.contains(") joined")
    });
    assert!(joined.contains("127.0.0.1:"), "{joined}");
    signal(&w, "-KILL");
    w.wait().unwrap();
    let dropped = next("the drop", &|l| l.contains("WARN") && l.contains("victim"));
    assert!(dropped.contains("victim (127.0.0.1:"), "{dropped}");
    assert!(
        dropped.contains(") dropped: it "),
        "the reason follows: {dropped}"
    );
    signal(&m, "-KILL");
    let _ = m.wait();
}

/// A value skipped by --skip-failed disappears from stdout; pando
/// should at least say which input line it skipped (or not exit 0 silently).
#[test]
fn a_skipped_value_is_reported_with_its_line() {
    let (status, out, err) = run(
        &[
            "--local",
            "1",
            "--bind",
            "127.0.0.1",
            "--skip-failed",
            "--max-retries",
            "0",
            "--",
            "sh",
            "-c",
            "read x; [ \"$x\" != 2 ] && echo $x",
        ],
        &seq(3),
    );
    assert_eq!(out, "1\n3\n");
    assert!(
        !status.success() || err.to_lowercase().contains("skip"),
        "line 2 vanished from the output without a word: status {status}, stderr:\n{err}"
    );
}

/// Results that cannot be written (stdout is /dev/full) are lost,
/// yet pando exits 0 without a word.
#[test]
fn results_that_cannot_be_written_stop_the_run_with_an_error() {
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let mut child = Command::new(PANDO)
        .args(["--local", "1", "--bind", "127.0.0.1", "--lines", "--", "cat"])
        .stdin(Stdio::piped())
        .stdout(full)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(seq(3).as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "every result was lost (ENOSPC) but pando succeeded; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- Issue 12: three modes, --jobs, pipelined filters, blocks; issue 13: the token off argv.

/// The three modes, each with a master flag set and a COMMAND that squares
/// each line (slowly enough that a killed worker holds values).
fn squaring_modes() -> Vec<(&'static str, Vec<&'static str>, Vec<&'static str>)> {
    vec![
        (
            "per value",
            vec!["--batch-size", "3"],
            vec!["sh", "-c", "read x; sleep 0.01; echo $((x*x))"],
        ),
        (
            "--lines",
            vec!["--lines", "--batch-size", "16"],
            vec!["sh", "-c", "while read x; do sleep 0.005; echo $((x*x)); done"],
        ),
        (
            "--pipe",
            vec!["--pipe", "--block-lines", "4", "--batch-size", "3"],
            vec!["sh", "-c", "while read x; do echo $((x*x)); done; sleep 0.02"],
        ),
    ]
}

#[test]
fn output_order_and_exactly_once_in_all_three_modes() {
    for (mode, flags, command) in squaring_modes() {
        let mut args = vec!["--local", "2", "--bind", "127.0.0.1"];
        args.extend(&flags);
        args.push("--");
        args.extend(&command);
        let (status, out, err) = run_within(&args, &[], seq(300).as_bytes(), DEADLINE);
        assert!(status.success(), "{mode}: {err}");
        assert_eq!(String::from_utf8(out).unwrap(), squares(300), "{mode}");
    }
}

/// The SIGKILL test in every mode: a worker killed while it holds values
/// loses nothing and duplicates nothing; the workers need no mode flag (the
/// master's Welcome says it).
#[test]
fn a_worker_killed_mid_run_loses_nothing_in_all_three_modes() {
    for (mode, flags, command) in squaring_modes() {
        let (mut m, url, rx) = master(&flags, &command, seq(200));
        let mut doomed = worker(&url);
        let mut first = collect(&rx, 20);
        let mut steady = worker(&url);
        signal(&doomed, "-KILL");
        doomed.wait().unwrap();
        first.extend(collect(&rx, 180));
        assert_eq!(first.join("\n") + "\n", squares(200), "{mode}");
        assert!(
            rx.recv_timeout(Duration::from_secs(10)).is_err(),
            "{mode}: nothing after the last result"
        );
        assert!(m.wait().unwrap().success(), "{mode}");
        assert!(steady.wait().unwrap().success(), "{mode}");
    }
}

/// A line filter that dies with many lines inside it: the line it was
/// answering fails (with --max-retries 0 and --skip-failed, it is skipped
/// and named), the other lines in it are answered by a fresh filter and
/// are not charged (or they would be skipped too), and nothing is lost.
#[test]
fn a_filter_that_dies_mid_batch_fails_its_line_and_loses_nothing() {
    let dir = scratch("filter-dies");
    let marker = dir.join("died");
    let script = format!(
        "while read x; do if [ \"$x\" = 50 ] && [ ! -e {0} ]; then touch {0}; exit 3; fi; echo $((x*x)); done",
        marker.display()
    );
    let (status, out, err) = run_within(
        &[
            "--local",
            "1",
            "--bind",
            "127.0.0.1",
            "--lines",
            "--batch-size",
            "256",
            "--max-retries",
            "0",
            "--skip-failed",
            "--",
            "sh",
            "-c",
            &script,
        ],
        &[],
        seq(1000).as_bytes(),
        DEADLINE,
    );
    assert!(status.success(), "{err}");
    let want: String = (1..=1000u64)
        .filter(|&x| x != 50)
        .map(|x| format!("{}\n", x * x))
        .collect();
    assert_eq!(String::from_utf8(out).unwrap(), want);
    assert_eq!(
        last_line(&err),
        "pando: skipped 1 input line(s) that failed more than --max-retries times (--skip-failed); the first: line 50",
        "{err}"
    );
    assert!(marker.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// The same filter, without --skip-failed and with the default retries:
/// the line it died on is retried, and the output is complete.
#[test]
fn a_filter_that_dies_once_mid_batch_gives_complete_output() {
    let dir = scratch("filter-dies-once");
    let marker = dir.join("died");
    let script = format!(
        "while read x; do if [ \"$x\" = 500 ] && [ ! -e {0} ]; then touch {0}; exit 3; fi; echo $((x*x)); done",
        marker.display()
    );
    let (status, out, err) = run_within(
        &[
            "--local",
            "2",
            "--bind",
            "127.0.0.1",
            "--lines",
            "--",
            "sh",
            "-c",
            &script,
        ],
        &[],
        seq(1000).as_bytes(),
        DEADLINE,
    );
    assert!(status.success(), "{err}");
    assert_eq!(String::from_utf8(out).unwrap(), squares(1000));
    assert!(marker.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pipe_blocks_by_lines_and_by_size_keep_every_byte_in_order() {
    // `wc -l` per block shows the cut; `cat` gives the input back as it is.
    let input = "1\n2\n3\n4\n5\n6\n7\n";
    let (status, out, err) = run_within(
        &[
            "--local",
            "2",
            "--bind",
            "127.0.0.1",
            "--pipe",
            "--block-lines",
            "3",
            "--",
            "wc",
            "-l",
        ],
        &[],
        input.as_bytes(),
        DEADLINE,
    );
    assert!(status.success(), "{err}");
    assert_eq!(String::from_utf8(out).unwrap(), "3\n3\n1\n");
    // 4 bytes hold two 2-byte lines.
    let (status, out, err) = run_within(
        &[
            "--local",
            "2",
            "--bind",
            "127.0.0.1",
            "--pipe",
            "--block",
            "4",
            "--",
            "wc",
            "-l",
        ],
        &[],
        input.as_bytes(),
        DEADLINE,
    );
    assert!(status.success(), "{err}");
    assert_eq!(String::from_utf8(out).unwrap(), "2\n2\n2\n1\n");
    // Bytes as they are: CRLF, no UTF-8, no final newline.
    let mut input = Vec::new();
    for i in 0..5000 {
        input.extend_from_slice(format!("line {i}\r\n\u{ff}\n").as_bytes());
        input.push(0xff);
        input.push(b'\n');
    }
    input.extend_from_slice(b"last, without a newline");
    let (status, out, err) = run_within(
        &[
            "--local",
            "2",
            "--bind",
            "127.0.0.1",
            "--pipe",
            "--block",
            "1k",
            "--",
            "cat",
        ],
        &[],
        &input,
        DEADLINE,
    );
    assert!(status.success(), "{err}");
    assert_eq!(out, input);
}

/// A line longer than --block is never split: it is a block of its own.
#[test]
fn a_block_smaller_than_a_line_holds_that_one_whole_line() {
    let (status, out, err) = run_within(
        &[
            "--local",
            "1",
            "--bind",
            "127.0.0.1",
            "--pipe",
            "--block",
            "4",
            "--",
            "wc",
            "-c",
        ],
        &[],
        b"a\nb\na line of 20 bytes..\nc\n",
        DEADLINE,
    );
    assert!(status.success(), "{err}");
    assert_eq!(String::from_utf8(out).unwrap(), "4\n21\n2\n");
}

/// A block whose command fails is retried, then ends the run with an
/// error naming the block and its input lines; with --skip-failed, the
/// block's lines are missing from the output and the last line says which.
#[test]
fn a_failing_block_is_named_by_its_lines_or_skipped_whole() {
    let command = ["awk", "{ if ($1 == 13) exit 1; print $1 * $1 }"];
    let mut args = vec![
        "--local",
        "2",
        "--bind",
        "127.0.0.1",
        "--pipe",
        "--block-lines",
        "5",
        "--max-retries",
        "1",
        "--",
    ];
    args.extend(command);
    let (status, out, err) = run_within(&args, &[], seq(20).as_bytes(), DEADLINE);
    assert!(!status.success(), "{err}");
    assert_eq!(String::from_utf8(out).unwrap(), squares(10));
    let last = last_line(&err);
    assert!(
        last.starts_with(
            "pando: block 3 (input lines 11-15) failed 2 times (more than --max-retries); last failure: worker local-"
        ) && last.ends_with("awk exited with exit status: 1"),
        "{err}"
    );

    args.insert(0, "--skip-failed");
    let (status, out, err) = run_within(&args, &[], seq(20).as_bytes(), DEADLINE);
    assert!(status.success(), "{err}");
    let want: String = (1..=20u64)
        .filter(|x| !(11..=15).contains(x))
        .map(|x| format!("{}\n", x * x))
        .collect();
    assert_eq!(String::from_utf8(out).unwrap(), want);
    assert_eq!(
        last_line(&err),
        "pando: skipped 1 block(s) that failed more than --max-retries times (--skip-failed): \
         none of their lines has output; the first: block 3 (input lines 11-15)",
        "{err}"
    );
}

#[test]
fn impossible_mode_combinations_are_usage_errors() {
    for (args, says) in [
        (&["--pipe", "--lines", "--", "cat"][..], "cannot be used with"),
        (
            &["--pipe", "--block", "0", "--", "cat"],
            "a block must be between 1 byte and",
        ),
        (
            &["--pipe", "--block", "1T", "--", "cat"],
            "a block must be between 1 byte and",
        ),
        (&["--pipe", "--block", "lots", "--", "cat"], "a size such as 64k"),
        (
            &["--pipe", "--block-lines", "0", "--", "cat"],
            "invalid value '0'",
        ),
        (&["--block", "1M", "--", "cat"], "--pipe"),
        (&["--block-lines", "10", "--", "cat"], "--pipe"),
        (&["work", "ws://127.0.0.1:1/", "--jobs", "0"], "invalid value '0'"),
    ] {
        let (status, _, err) = run_within(args, &[], b"", DEADLINE);
        assert_eq!(status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// --jobs 3: three values run at once on one worker (each waits until
/// three have started, so with fewer at once the run would not end).
#[test]
fn a_worker_runs_jobs_values_at_once() {
    let dir = scratch("jobs");
    let script = format!(
        "read x; touch {0}/$x; n=0; while [ $(ls {0} | wc -l) -lt 3 ]; do sleep 0.01; n=$((n+1)); [ $n -gt 6000 ] && exit 1; done; echo $x",
        dir.display()
    );
    let (mut m, url, rx) = master(&["--batch-size", "3"], &["sh", "-c", &script], seq(3));
    let mut w = worker_with(&url, &["--jobs", "3"], &[]);
    assert_eq!(collect(&rx, 3), ["1", "2", "3"]);
    assert!(m.wait().unwrap().success());
    assert!(w.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `pando work --lines` is not needed any more; given against a master
/// that does not run --lines, it is an error saying so.
#[test]
fn work_lines_against_a_per_value_master_is_an_error() {
    let (mut m, url, _rx) = master(&[], &["cat"], String::new());
    let out = Command::new(PANDO)
        .args(["work", &url, "--accept", "--lines"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("--lines: the master does not run its command as a line filter but once per value"),
        "{err}"
    );
    signal(&m, "-KILL");
    let _ = m.wait();
}

/// The parent pid of process `pid`.
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')').next()?.split_whitespace().nth(1)?.parse().ok()
}

/// Issue 13: the local workers get the token in their environment, not on
/// their command line (which `ps` shows to everyone); a remote worker can
/// do the same with PANDO_TOKEN.
#[test]
fn local_workers_have_no_token_on_their_command_line() {
    let token = "s3cret-token-for-the-argv-test";
    let dir = scratch("argv");
    let pidfile = dir.join("value.pid");
    let mut m = Command::new(PANDO)
        .args([
            "--local",
            "2",
            "--bind",
            "127.0.0.1",
            "--token",
            token,
            "--",
            "sh",
            "-c",
        ])
        .arg(sleeper(&pidfile))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    m.stdin.take().unwrap().write_all(b"1\n").unwrap();
    // A local worker runs the value: it is the sleeper's grandparent.
    let sleep = read_pid(&pidfile);
    let worker = parent_of(parent_of(sleep).unwrap()).unwrap();
    assert_eq!(parent_of(worker), Some(m.id()));
    let argv = std::fs::read(format!("/proc/{worker}/cmdline")).unwrap();
    let argv = String::from_utf8_lossy(&argv).replace('\0', " ");
    assert!(argv.contains(" work ws://127.0.0.1:"), "{argv}");
    assert!(!argv.contains(token) && !argv.contains("token="), "{argv}");
    let environ = std::fs::read(format!("/proc/{worker}/environ")).unwrap();
    assert!(
        environ
            .split(|&b| b == 0)
            .any(|v| v == format!("PANDO_TOKEN={token}").as_bytes()),
        "the token is in the worker's environment"
    );
    signal(&m, "-TERM");
    let _ = m.wait();
    let _ = std::fs::remove_dir_all(&dir);

    // A remote worker joins with the URL without its token, and PANDO_TOKEN.
    let (mut m, url, rx) = master(
        &["--token", token],
        &["sh", "-c", "read x; echo $((x*x))"],
        seq(10),
    );
    let bare = url.split('?').next().unwrap().to_string();
    let mut w = worker_with(&bare, &[], &[("PANDO_TOKEN", token)]);
    assert_eq!(collect(&rx, 10).join("\n") + "\n", squares(10));
    assert!(m.wait().unwrap().success());
    assert!(w.wait().unwrap().success());
}

#[test]
fn command_does_not_inherit_the_join_token_in_any_mode() {
    for mode in [&[][..], &["--lines"][..], &["--pipe"][..]] {
        let mut args = vec!["--local", "1", "--token", "the-secret"];
        args.extend_from_slice(mode);
        let script = if mode == ["--lines"] {
            "while read x; do echo \"$x:${PANDO_TOKEN:-none}\"; done"
        } else {
            "read x; echo \"$x:${PANDO_TOKEN:-none}\""
        };
        args.extend_from_slice(&["--", "sh", "-c", script]);
        let (status, out, err) = run(&args, "a\n");
        assert!(status.success(), "{mode:?}: {err}");
        assert_eq!(out, "a:none\n", "{mode:?}: COMMAND saw the token");
    }
}

#[test]
fn an_input_line_longer_than_a_value_can_carry_is_an_error_naming_it() {
    let long = "x".repeat(17 << 20);
    for mode in [&[][..], &["--pipe"][..]] {
        let mut args = vec!["--local", "1"];
        args.extend_from_slice(mode);
        args.extend_from_slice(&["--", "wc", "-c"]);
        let (status, _out, err) = run(&args, &format!("y\n{long}\nz\n"));
        assert!(!status.success(), "{mode:?}");
        assert!(
            last_line(&err).contains("input line 2 is longer than"),
            "{mode:?}: {}",
            last_line(&err)
        );
    }
}

#[test]
fn with_lines_the_timeout_counts_from_when_the_filter_starts_on_a_line_not_from_its_arrival() {
    // 40 lines in flight at once in one filter that takes 0.1 s a line: the
    // last waits about 4 s behind the others, twice the timeout, and still
    // must not fail (--max-retries 0 would end the run on any failure).
    let (status, out, err) = run(
        &[
            "--local",
            "1",
            "--lines",
            "--batch-size",
            "40",
            "--timeout",
            "2s",
            "--max-retries",
            "0",
            "--",
            "sh",
            "-c",
            "while read x; do sleep 0.1; echo $x; done",
        ],
        &seq(40),
    );
    assert!(status.success(), "{err}");
    assert_eq!(out, seq(40));
}
