//! `pando --children-limit` and `pando work` with a tree's URL, end to end:
//! a master as the root of a Genet tree and `pando work` nodes taking
//! children, three levels or more, with a node that has children killed
//! mid-run. Every wait is on an event (a line printed), with a deadline.

mod common;

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;

use common::{DEADLINE, collect, feed, join_url, master, seq, squares, wait};

/// A process killed when the test ends, unless taken to be waited for.
struct Guard(Option<Child>);

impl Guard {
    fn take(&mut self) -> Child {
        self.0.take().expect("not taken yet")
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `pando work TREE --accept --reconnect --listen 127.0.0.1:0 --children-limit L --name NAME`,
/// its stderr lines sent to `lines` with its index.
fn node(url: &str, i: usize, limit: &str, lines: &mpsc::Sender<(usize, String)>) -> Child {
    let mut child = Command::new(common::PANDO)
        .args(["work", url, "--accept", "--reconnect", "--listen", "127.0.0.1:0"])
        .args(["--children-limit", limit, "--name", &format!("n{i}")])
        .env("RUST_LOG", "info,pando=debug")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let tx = lines.clone();
    thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if tx.send((i, line)).is_err() {
                break;
            }
        }
    });
    child
}

/// Runs N values through a tree of `nodes` nodes of at most `limit`
/// children (the master's too), kills the first node that says it has a
/// child once results flow, and checks every result and every exit.
fn run_and_kill_a_parent(limit: &str, nodes: usize) {
    const N: u64 = 2000;
    let mut m = master(
        &["--children-limit", limit],
        &["sh", "-c", "read x; echo $((x*x))"],
    );
    let tree = loop {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut m.stderr, &mut line).unwrap();
        assert!(
            !line.is_empty(),
            "the master ended before printing the tree's URL"
        );
        if line.contains("tree nodes join with") {
            break join_url(&line);
        }
    };
    assert!(tree.contains("/genet?token="), "{tree}");
    common::drain(m.stderr);
    feed(m.stdin, seq(N));
    let mut master = Guard(Some(m.child));

    let (tx, nodes_said) = mpsc::channel();
    let mut nodes: Vec<Guard> = (0..nodes)
        .map(|i| Guard(Some(node(&tree, i, limit, &tx))))
        .collect();
    let first = common::next_line(&m.stdout, DEADLINE, "the first result");
    let victim = loop {
        let (i, line) = nodes_said
            .recv_timeout(DEADLINE)
            .expect("a node says a child joined it");
        if line.contains("a child joined; local processing paused") {
            break i;
        }
    };
    let mut killed = nodes[victim].take();
    killed.kill().unwrap();
    let _ = killed.wait();

    let mut out = vec![first];
    out.extend(collect(&m.stdout, N as usize - 1));
    assert_eq!(out.join("\n") + "\n", squares(N), "every result once, in order");
    assert!(wait(master.take(), "the master").success());
    for (i, n) in nodes.iter_mut().enumerate() {
        if i != victim {
            let mut child = n.take();
            let pid = child.id();
            let (tx, rx) = mpsc::channel();
            thread::spawn(move || {
                let _ = tx.send(child.wait());
            });
            let status = rx.recv_timeout(DEADLINE);
            if !matches!(&status, Ok(Ok(s)) if s.success()) {
                // Kill it (by pid: the waiting thread owns it), then say what it said.
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
                let said: Vec<String> = nodes_said
                    .try_iter()
                    .filter(|(j, _)| *j == i)
                    .map(|(_, l)| l)
                    .collect();
                panic!(
                    "node n{i}: {status:?}, not a success within {DEADLINE:?}; it said:\n{}",
                    said.join("\n")
                );
            }
        }
    }
}

/// Six nodes of at most two children: three levels or more below the master.
#[test]
fn a_three_level_tree_with_a_killed_node_loses_nothing() {
    run_and_kill_a_parent("2", 6);
}

/// A chain (one child each): the master, A, B. A is killed; B, its orphan,
/// re-joins at the master and finishes the run.
#[test]
fn an_orphan_rejoins_when_its_parent_is_killed() {
    run_and_kill_a_parent("1", 2);
}
