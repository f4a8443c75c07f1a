//! `pando relay`: real Genet nodes register a root and join a tree through it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use pando_distributed_map::split_join_url;
use pando_genet::ws::{WsNode, WsNodeConfig};
use wait_timeout::ChildExt;

const PANDO: &str = env!("CARGO_BIN_EXE_pando");
const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_a_tree_through_pando_relay() {
    let mut child = Command::new(PANDO)
        .args(["relay", "--bind", "127.0.0.1", "--secret", "s3cret"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let mut second = String::new();
    stdout.read_line(&mut second).unwrap();
    assert_eq!(second.trim(), "root secret: s3cret");
    let url = first
        .trim()
        .strip_prefix("relay: ")
        .unwrap_or_else(|| panic!("no relay URL in {first:?}"));
    let (relay, token) = split_join_url(url);
    assert_eq!(token.len(), 32, "a fresh token: {url}");

    let root = WsNode::start(WsNodeConfig {
        listen: Some("127.0.0.1:0".into()),
        ..WsNodeConfig::new(&relay, &token, 1)
    })
    .await
    .unwrap();
    root.become_root("s3cret").await.unwrap();
    root.wait_for(|s| s.root_registered, WAIT, "the root")
        .await
        .unwrap();
    let mut leaves = Vec::new();
    for seed in 2..6 {
        let leaf = WsNode::start(WsNodeConfig::new(&relay, &token, seed))
            .await
            .unwrap();
        leaf.join().await.unwrap();
        leaves.push(leaf);
    }
    for leaf in &leaves {
        leaf.wait_for(|s| s.parent().is_some(), WAIT, "a leaf to join")
            .await
            .unwrap();
    }
    root.wait_for(|s| s.children == 4, WAIT, "four children")
        .await
        .unwrap();

    // A wrong token is refused.
    let e = WsNode::start(WsNodeConfig::new(&relay, "nope", 9))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("wrong join token"), "{e}");

    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let status = child
        .wait_timeout(WAIT)
        .unwrap()
        .expect("pando relay ends on SIGTERM");
    assert_eq!(status.code(), Some(143));
}
