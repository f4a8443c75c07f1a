//! Real Genet nodes over loopback WebSocket: trees of 60 and 1000 nodes,
//! failures, refusals. No time bound on the runs: every wait is on an event,
//! with a deadline only to fail with a message instead of hanging.

use std::time::Duration;

use pando_genet::ws::loopback::{LoopbackTree, TreeReport};
use pando_genet::ws::{Relay, RelayConfig, Status, WsError, WsNode, WsNodeConfig};
use pando_genet::{Config, Event, GenetError, LeftReason, State};

const WAIT: Duration = Duration::from_secs(120);

fn check(r: &TreeReport, limit: usize) {
    println!("{r:?}");
    assert_eq!(r.root_leaves, r.leaves, "the root counts every leaf");
    assert!(r.max_degree <= limit, "a node exceeded the degree bound: {r:?}");
    assert_eq!(r.leaf_only_parents, 0, "a leaf-only node got a child");
    assert_eq!(r.relay_bound, r.nodes + 1, "every node is bound at the relay");
}

/// 60 nodes, at most 3 children each: a tree of four levels or more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_nodes_join_a_deep_tree() {
    let mut t = LoopbackTree::new(60);
    t.genet.children_limit = 3;
    t.leaf_only_every = 7;
    t.deadline = WAIT;
    let r = t.run().await.unwrap();
    check(&r, 3);
    assert!(r.max_depth >= 4, "{r:?}");
}

/// The 1000-node test: 1000 real nodes, tasks of this process, join one
/// tree over loopback WebSocket; the root counts every leaf and no node
/// exceeds the degree bound. Each node holds two connections (relay,
/// parent) and, if it listens, a listener: both ends of each connection are
/// in this one process, so about five descriptors per node. The soft limit
/// on open files is raised to 16384 (or the hard limit) if it is lower.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_nodes_join_one_tree() {
    let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
    let want = 16384.min(hard);
    if soft < want {
        rlimit::Resource::NOFILE.set(want, hard).unwrap();
    }
    let mut t = LoopbackTree::new(1000);
    t.deadline = Duration::from_secs(600);
    let r = t.run().await.unwrap();
    check(&r, 10);
    println!(
        "1000 nodes: joined in {:?}, every leaf counted at the root in {:?}, depth {}",
        r.joined, r.counted, r.max_depth
    );
}

async fn relay() -> Relay {
    Relay::bind("127.0.0.1:0", RelayConfig::new("secret", "token"))
        .await
        .unwrap()
}

/// Starts `node` joining the tree; its status once it has a parent.
async fn joined(node: &WsNode, what: &str) -> Status {
    node.join().await.unwrap();
    node.wait_for(|s| s.parent().is_some(), WAIT, what).await.unwrap()
}

/// A registered root of one slot, and a listening node (`middle`) joined
/// below it.
async fn a_root_of_one_slot_and_a_middle(relay: &Relay) -> (WsNode, WsNode) {
    let mut cfg = listening(relay, 1);
    cfg.genet.children_limit = 1;
    let root = WsNode::start(cfg).await.unwrap();
    root.become_root("secret").await.unwrap();
    root.wait_for(|s| s.root_registered, WAIT, "the root")
        .await
        .unwrap();
    let middle = WsNode::start(listening(relay, 2)).await.unwrap();
    joined(&middle, "middle joined").await;
    (root, middle)
}

fn listening(relay: &Relay, seed: u64) -> WsNodeConfig {
    WsNodeConfig {
        listen: Some("127.0.0.1:0".into()),
        genet: Config {
            reporting_interval: Duration::from_millis(50),
            ..Config::default()
        },
        ..WsNodeConfig::new(relay.url(), "token", seed)
    }
}

#[tokio::test]
async fn a_wrong_token_is_refused() {
    let relay = relay().await;
    let e = WsNode::start(WsNodeConfig::new(relay.url(), "nope", 1))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, WsError::Relay { reason, .. } if reason.contains("wrong join token")),
        "{e}"
    );
}

#[tokio::test]
async fn a_wrong_secret_and_a_second_root_are_refused() {
    let relay = relay().await;
    let bad = WsNode::start(listening(&relay, 1)).await.unwrap();
    let mut events = bad.subscribe();
    bad.become_root("guess").await.unwrap();
    let s = bad
        .wait_for(|s| s.state == State::Idle, WAIT, "the refusal")
        .await
        .unwrap();
    assert!(matches!(&s.last_error, Some(GenetError::RootRefused(r)) if r.contains("wrong root secret")));
    assert!(matches!(
        events.recv().await.unwrap(),
        Event::Error(GenetError::RootRefused(_))
    ));

    let root = WsNode::start(listening(&relay, 2)).await.unwrap();
    root.become_root("secret").await.unwrap();
    root.wait_for(|s| s.root_registered, WAIT, "the root")
        .await
        .unwrap();
    let second = WsNode::start(listening(&relay, 3)).await.unwrap();
    second.become_root("secret").await.unwrap();
    let s = second
        .wait_for(|s| s.state == State::Idle, WAIT, "the refusal")
        .await
        .unwrap();
    assert!(matches!(&s.last_error, Some(GenetError::RootRefused(r)) if r.contains("already")));
}

#[tokio::test]
async fn joining_without_a_root_fails_the_join() {
    let relay = relay().await;
    let node = WsNode::start(listening(&relay, 1)).await.unwrap();
    let mut events = node.subscribe();
    node.join().await.unwrap();
    loop {
        match events.recv().await.unwrap() {
            Event::Left { reason } => {
                assert_eq!(reason, LeftReason::JoinFailed);
                break;
            }
            Event::Error(e) => println!("reported: {e}"),
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A child that fails is removed and reported, the rest carries on; a
/// parent that fails makes its children leave and close their subtrees.
#[tokio::test]
async fn failures_free_the_slot_and_close_the_subtree() {
    let relay = relay().await;
    let (root, middle) = a_root_of_one_slot_and_a_middle(&relay).await;
    let middle_id = middle.status().borrow().id.unwrap();

    // The root is full: the leaf goes below `middle`.
    let leaf_a = WsNode::start(WsNodeConfig::new(relay.url(), "token", 3))
        .await
        .unwrap();
    let s = joined(&leaf_a, "leaf A joined").await;
    assert_eq!(s.parent(), Some(middle_id));
    middle
        .wait_for(|s| s.children == 1, WAIT, "middle's child")
        .await
        .unwrap();

    // Leaf A fails: `middle` reports it gone and has room again.
    let mut middle_events = middle.subscribe();
    let a_id = s.id.unwrap();
    leaf_a.shutdown().await;
    loop {
        if let Event::ChildDisconnected { id } = middle_events.recv().await.unwrap() {
            assert_eq!(id, a_id);
            break;
        }
    }
    middle
        .wait_for(|s| s.children == 0, WAIT, "the child gone")
        .await
        .unwrap();

    let leaf_b = WsNode::start(WsNodeConfig::new(relay.url(), "token", 4))
        .await
        .unwrap();
    let mut b_events = leaf_b.subscribe();
    let s = joined(&leaf_b, "leaf B joined").await;
    assert_eq!(s.parent(), Some(middle_id));

    // The root fails: `middle` loses its parent, leaves, and closes its
    // subtree, so leaf B loses its parent too.
    root.shutdown().await;
    for (name, events) in [("middle", &mut middle_events), ("leaf B", &mut b_events)] {
        loop {
            match events.recv().await.unwrap() {
                Event::Left { reason } => {
                    assert_eq!(reason, LeftReason::ParentLost, "{name}");
                    break;
                }
                other => println!("{name}: {other:?}"),
            }
        }
    }
}

/// The variant indices PROTOCOL.md gives ("Genet over WebSocket").
#[test]
fn frames_have_the_documented_indices() {
    use pando_genet::ws::{Dest, Frame, WsSignal};
    use pando_genet::{Message, NodeId, Signal};
    let m = Message::Report { leaves: 3 };
    let frames = [
        Frame::Hello {
            version: 1,
            token: "t".into(),
        },
        Frame::Welcome { version: 1 },
        Frame::Refused { reason: "r".into() },
        Frame::RegisterRoot {
            secret: "s".into(),
            id: NodeId(1),
        },
        Frame::RootAccepted,
        Frame::Bind { id: NodeId(1) },
        Frame::Forward {
            to: Dest::Root,
            message: m.clone(),
        },
        Frame::Deliver { message: m.clone() },
        Frame::Undeliverable {
            to: Dest::Node(NodeId(2)),
            kind: "Report".into(),
        },
        Frame::PeerHello {
            version: 1,
            child: NodeId(1),
            ticket: 9,
        },
        Frame::PeerWelcome,
        Frame::Peer { message: m },
    ];
    for (i, f) in frames.iter().enumerate() {
        let bytes = f.encode();
        assert_eq!(usize::from(bytes[0]), i, "{f:?}");
        assert_eq!(&Frame::decode(&bytes).unwrap(), f);
    }
    // A join request forwarded to the root, byte by byte.
    let f = Frame::Forward {
        to: Dest::Root,
        message: Message::JoinRequest {
            origin: NodeId(300),
            signal: Signal(WsSignal::Join.encode()),
            can_parent: true,
        },
    };
    assert_eq!(f.encode(), [6, 0, 0, 0xac, 0x02, 1, 0, 1]);
    assert_eq!(
        WsSignal::Offer {
            url: "ws://h/".into(),
            ticket: 1
        }
        .encode(),
        [1, 7, b'w', b's', b':', b'/', b'/', b'h', b'/', 1]
    );
}

/// With automatic re-join, the orphans of a failed intermediate node join
/// again (with fresh identifiers) and the root counts them again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_rejoin_after_their_parent_fails() {
    let relay = relay().await;
    let (root, middle) = a_root_of_one_slot_and_a_middle(&relay).await;

    let mut orphans = Vec::new();
    for seed in 3..6 {
        // They listen: below a root of one slot, they must take children.
        let mut cfg = listening(&relay, seed);
        cfg.genet.rejoin = Some(pando_genet::Backoff {
            initial: Duration::from_millis(20),
            max: Duration::from_millis(200),
        });
        let leaf = WsNode::start(cfg).await.unwrap();
        joined(&leaf, "a leaf joined").await;
        orphans.push(leaf);
    }
    root.wait_for(|s| s.leaves == Some(3), WAIT, "the root to count 3 leaves")
        .await
        .unwrap();

    // The intermediate node fails: the root's slot frees up; each orphan
    // re-joins, the first as the root's child, the others below it.
    let first_ids: Vec<_> = orphans.iter().map(|o| o.status().borrow().id).collect();
    middle.shutdown().await;
    for (o, old) in orphans.iter().zip(first_ids) {
        let s = o
            .wait_for(
                |s| s.parent().is_some() && s.id != old,
                WAIT,
                "an orphan to re-join",
            )
            .await
            .unwrap();
        assert_ne!(s.id, old, "a fresh identifier");
    }
    // Three nodes in a chain or a fan below the root's one slot: the root
    // counts the leaves of the new shape.
    let parents: Vec<_> = orphans
        .iter()
        .map(|o| o.status().borrow().parent().unwrap())
        .collect();
    let ids: Vec<_> = orphans.iter().map(|o| o.status().borrow().id.unwrap()).collect();
    let leaves = ids.iter().filter(|id| !parents.contains(id)).count() as u64;
    root.wait_for(
        |s| s.leaves == Some(leaves),
        WAIT,
        "the root to count the new leaves",
    )
    .await
    .unwrap();
    assert!(root.status().borrow().max_occupied <= 1);
}
