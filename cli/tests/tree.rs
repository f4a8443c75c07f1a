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

/// `pando work TREE --accept --reconnect --listen 127.0.0.1:0 --children-limit 2 --name NAME`,
/// its stderr lines sent to `lines` with its index.
fn node(url: &str, i: usize, lines: &mpsc::Sender<(usize, String)>) -> Child {
    let mut child = Command::new(common::PANDO)
        .args(["work", url, "--accept", "--reconnect", "--listen", "127.0.0.1:0"])
        .args(["--children-limit", "2", "--name", &format!("n{i}")])
        .env_remove("RUST_LOG")
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

#[test]
fn a_three_level_tree_with_a_killed_node_loses_nothing() {
    const N: u64 = 2000;
    let mut m = master(&["--children-limit", "2"], &["sh", "-c", "read x; echo $((x*x))"]);
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
    let mut nodes: Vec<Guard> = (0..6).map(|i| Guard(Some(node(&tree, i, &tx)))).collect();
    // A node with children (two levels below the root are filled by six
    // nodes of at most two children each), once results flow.
    let first = common::next_line(&m.stdout, DEADLINE, "the first result");
    let (victim, _) = loop {
        let (i, line) = nodes_said
            .recv_timeout(DEADLINE)
            .expect("a node says a child joined it");
        if line.contains("a child joined; local processing paused") {
            break (i, line);
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
            assert!(
                wait(n.take(), &format!("node n{i}")).success(),
                "node n{i} ends with success"
            );
        }
    }
}
