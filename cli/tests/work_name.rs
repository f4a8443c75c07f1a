//! `pando work --name NAME`: the name a worker gives in its `Hello`, shown in
//! the master's logs and on the monitoring page; the host name by default.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

const PANDO: &str = env!("CARGO_BIN_EXE_pando");
const DEADLINE: Duration = Duration::from_secs(60);

/// Kills the process when the test ends, whatever happens.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn worker(url: &str, name: Option<&str>) -> Killed {
    let mut command = Command::new(PANDO);
    command.args(["work", url, "--accept"]);
    if let Some(name) = name {
        command.args(["--name", name]);
    }
    Killed(
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

#[test]
fn a_worker_joins_with_its_name_or_the_host_name() {
    let mut master = Command::new(PANDO)
        .args(["--local", "0", "--bind", "127.0.0.1", "--", "cat"])
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // stdin stays open: the run goes on while the workers join.
    let _stdin = master.stdin.take().unwrap();
    let stderr = BufReader::new(master.stderr.take().unwrap());
    let _master = Killed(master);
    let (tx, rx) = mpsc::channel::<String>();
    thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let next = |what: &str, pred: &dyn Fn(&str) -> bool| -> String {
        loop {
            let line = rx
                .recv_timeout(DEADLINE)
                .unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
            if pred(&line) {
                return line;
            }
        }
    };
    let first = next("the join URL", &|l| l.contains("pando work '"));
    let url = first.split('\'').nth(1).unwrap().to_string();

    let _named = worker(&url, Some("lab bench 7"));
    next("the named worker's join", &|l| {
        l.contains("worker lab bench 7 (") && l.contains(") joined")
    });

    let host = pando_distributed_map::join::hostname();
    let _unnamed = worker(&url, None);
    let expected = format!("worker {host} (");
    next(&format!("a worker named {host:?} (the host name)"), &|l| {
        l.contains(&expected) && l.contains(") joined")
    });
}
