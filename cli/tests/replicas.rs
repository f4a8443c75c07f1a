//! `pando --replicas 3` end to end, as separate processes over loopback
//! WebSocket: a master without local workers and three `pando work`
//! processes, one of which runs a COMMAND that lies (its environment makes
//! it answer x²+1). The output is right. It waits on events (the join URL
//! printed, output lines, processes ending), each with a deadline.

mod common;

use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

use common::{DEADLINE, PANDO, feed, wait, worker_with};

fn worker(url: &str, lie: bool) -> std::process::Child {
    let env: &[(&str, &str)] = if lie { &[("PANDO_TEST_LIE", "1")] } else { &[] };
    worker_with(url, &[], env)
}

#[test]
fn three_replicas_with_one_lying_pando_work_out_of_three_give_the_right_output() {
    let n = 60;
    let command = "read x; if [ -n \"$PANDO_TEST_LIE\" ]; then echo $((x*x+1)); else echo $((x*x)); fi";
    // No gate needed: with replicas, nothing is read before three workers joined.
    let common::Master {
        child: master,
        url,
        stdin,
        stderr,
        stdout: rx,
    } = common::master(&["--replicas", "3"], &["sh", "-c", command]);
    feed(stdin, (1..=n).map(|x| format!("{x}\n")).collect());
    let (err_tx, err_rx) = mpsc::channel();
    thread::spawn(move || {
        let rest: Vec<String> = stderr.lines().map_while(Result::ok).collect();
        let _ = err_tx.send(rest.join("\n"));
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
