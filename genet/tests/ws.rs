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
        Frame::App {
            payload: vec![1, 2, 3],
        },
    ];
    for (i, f) in frames.iter().enumerate() {
        let bytes = f.encode();
        assert_eq!(usize::from(bytes[0]), i, "{f:?}");
        assert_eq!(&Frame::decode(&bytes).unwrap(), f);
        assert_eq!(
            bytes,
            postcard::to_allocvec(f).unwrap(),
            "postcard's bytes: {f:?}"
        );
    }
    assert_eq!(usize::from(pando_genet::ws::APP_INDEX), frames.len() - 1);
    assert_eq!(Frame::App { payload: vec![9] }.encode(), [12, 1, 9]);
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

/// App frames: encode and decode take a shortcut past serde for the
/// payload; the bytes and the verdicts are postcard's own.
#[test]
fn app_frames_are_postcard_frames() {
    use pando_genet::ws::{APP_OVERHEAD, Frame};
    for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 1 << 20] {
        let f = Frame::App {
            payload: (0..len).map(|i| (i % 251) as u8).collect(),
        };
        let bytes = f.encode();
        assert_eq!(bytes, postcard::to_allocvec(&f).unwrap(), "{len} bytes");
        assert!(bytes.len() <= len + APP_OVERHEAD);
        assert_eq!(Frame::decode(&bytes).unwrap(), f);
        // One byte short, one byte too many: malformed, as postcard says.
        let short = &bytes[..bytes.len() - 1];
        if len > 0 {
            assert!(postcard::from_bytes::<Frame>(short).is_err());
            let e = Frame::decode(short).unwrap_err();
            assert!(e.reason.contains("end of buffer"), "{e}");
        }
        let mut long = bytes.clone();
        long.push(0);
        assert_eq!(Frame::decode(&long).unwrap_err().reason, "1 trailing bytes");
    }
    // A length that does not end, or that overflows.
    for bad in [
        &[12u8][..],
        &[12, 0x80],
        &[12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
    ] {
        assert!(postcard::from_bytes::<Frame>(bad).is_err());
        assert!(Frame::decode(bad).is_err(), "{bad:?}");
    }
}

// ---- application links ----

use pando_genet::ws::AppLink;
use pando_genet::{Link, NodeId};
use tokio::sync::mpsc::UnboundedReceiver;

/// A node of the application-link tests: a 50 ms reporting interval,
/// application links on, listening if `listens`.
fn app_node(relay: &Relay, seed: u64, listens: bool) -> WsNodeConfig {
    WsNodeConfig {
        app_links: true,
        listen: listens.then(|| "127.0.0.1:0".to_owned()),
        ..listening(relay, seed)
    }
}

/// Starts a node and takes its links.
async fn start_with_links(cfg: WsNodeConfig) -> (WsNode, UnboundedReceiver<AppLink>) {
    let mut node = WsNode::start(cfg).await.unwrap();
    let links = node.take_links().expect("app_links is set");
    (node, links)
}

/// A registered root with application links, and its links.
async fn app_root(relay: &Relay, children_limit: usize) -> (WsNode, UnboundedReceiver<AppLink>) {
    let mut cfg = app_node(relay, 1, true);
    cfg.genet.children_limit = children_limit;
    let (root, links) = start_with_links(cfg).await;
    root.become_root("secret").await.unwrap();
    root.wait_for(|s| s.root_registered, WAIT, "the root")
        .await
        .unwrap();
    (root, links)
}

/// The next link handed to the application.
async fn next_link(links: &mut UnboundedReceiver<AppLink>, what: &str) -> AppLink {
    tokio::time::timeout(WAIT, links.recv())
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
        .unwrap_or_else(|| panic!("{what}: the node stopped"))
}

/// The next payload of a link (`None`: it ended).
async fn recv(link: &mut AppLink, what: &str) -> Option<Vec<u8>> {
    tokio::time::timeout(WAIT, link.rx.recv())
        .await
        .unwrap_or_else(|_| panic!("nothing on {what} within {WAIT:?}"))
}

/// Waits until `link`'s leaf count is `n`.
async fn leaves_reach(link: &mut AppLink, n: u64, what: &str) {
    let seen = tokio::time::timeout(WAIT, link.leaves.wait_for(|v| *v == n))
        .await
        .is_ok_and(|r| r.is_ok());
    assert!(
        seen,
        "{what}: {n} leaves not seen within {WAIT:?} (last {})",
        *link.leaves.borrow()
    );
}

/// Waits until the link's sending half is closed, then checks `send` fails.
async fn sending_fails(link: &AppLink, what: &str) {
    tokio::time::timeout(WAIT, link.tx.closed())
        .await
        .unwrap_or_else(|_| panic!("{what}: tx still open after {WAIT:?}"));
    assert!(link.tx.send(vec![1]).await.is_err(), "{what}");
}

/// Payload `i` of `len` bytes, recognisable: its index, then a pattern.
fn payload(i: u32, len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len)
        .map(|j| (j as u32).wrapping_mul(31).wrapping_add(i) as u8)
        .collect();
    if len >= 4 {
        p[..4].copy_from_slice(&i.to_le_bytes());
    }
    p
}

fn id(node: &WsNode) -> NodeId {
    node.status().borrow().id.unwrap()
}

/// A root and a leaf exchange payloads both ways at once, in order,
/// among them an empty one and one of 1 MiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_and_a_leaf_exchange_payloads_both_ways_in_order() {
    let relay = relay().await;
    let (root, mut root_links) = app_root(&relay, 10).await;
    let (leaf, mut leaf_links) = start_with_links(app_node(&relay, 2, false)).await;
    joined(&leaf, "the leaf joined").await;
    let mut up = next_link(&mut leaf_links, "the leaf's parent link").await;
    let mut down = next_link(&mut root_links, "the root's child link").await;
    assert_eq!((up.link, up.peer), (Link::Parent, id(&root)));
    assert_eq!((down.link, down.peer), (Link::Child(id(&leaf)), id(&leaf)));

    let sizes: Vec<usize> = (0..200)
        .map(|i| if i == 100 { 1 << 20 } else { i * 7 % 1000 })
        .collect();
    async fn send(tx: tokio::sync::mpsc::Sender<Vec<u8>>, sizes: &[usize], salt: u32) {
        for (i, &len) in sizes.iter().enumerate() {
            tx.send(payload(i as u32 ^ salt, len)).await.unwrap();
        }
    }
    async fn receive(link: &mut AppLink, sizes: &[usize], salt: u32, what: &str) {
        for (i, &len) in sizes.iter().enumerate() {
            let p = recv(link, what)
                .await
                .unwrap_or_else(|| panic!("{what} ended at {i}"));
            assert!(p == payload(i as u32 ^ salt, len), "{what}: payload {i} differs");
        }
    }
    tokio::join!(
        send(up.tx.clone(), &sizes, 0),
        send(down.tx.clone(), &sizes, 1 << 16),
        receive(&mut down, &sizes, 0, "up"),
        receive(&mut up, &sizes, 1 << 16, "down"),
    );
    for n in [&root, &leaf] {
        let s = n.status().borrow().clone();
        assert_eq!(s.errors, 0, "{:?}", s.last_error);
    }
    assert_eq!(root.status().borrow().children, 1);
}

/// A three-level tree: every link's `leaves` reaches its count, the
/// parent link's being the node's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_links_leaves_reach_the_right_count() {
    let relay = relay().await;
    let (root, mut root_links) = app_root(&relay, 1).await;
    let (middle, mut middle_links) = start_with_links(app_node(&relay, 2, true)).await;
    joined(&middle, "middle joined").await;
    let mut middle_up = next_link(&mut middle_links, "middle's parent link").await;
    let mut root_down = next_link(&mut root_links, "the root's link to middle").await;
    assert_eq!(root_down.peer, id(&middle));
    assert_eq!(middle_up.peer, id(&root));

    let mut leaves = Vec::new();
    for seed in [3, 4] {
        let (leaf, mut links) = start_with_links(app_node(&relay, seed, false)).await;
        let s = joined(&leaf, "a leaf joined").await;
        assert_eq!(s.parent(), Some(id(&middle)), "the root is full");
        let up = next_link(&mut links, "a leaf's parent link").await;
        assert_eq!((up.link, up.peer), (Link::Parent, id(&middle)));
        let down = next_link(&mut middle_links, "middle's link to a leaf").await;
        assert_eq!((down.link, down.peer), (Link::Child(id(&leaf)), id(&leaf)));
        leaves.push((leaf, up, down));
    }
    leaves_reach(&mut root_down, 2, "the root's link to middle").await;
    leaves_reach(&mut middle_up, 2, "middle's own count").await;
    for (leaf, up, down) in &mut leaves {
        // A childless node has one leaf: itself; so its parent counts it.
        leaves_reach(up, 1, "a leaf's own count").await;
        leaves_reach(down, 1, "middle's link to a leaf").await;
        leaf.wait_for(|s| s.leaves == Some(1), WAIT, "a leaf's first report")
            .await
            .unwrap();
        assert_eq!(*up.leaves.borrow(), 1);
    }
    root.wait_for(|s| s.leaves == Some(2), WAIT, "the root to count 2 leaves")
        .await
        .unwrap();

    // A leaf goes: middle's count, and the root's link, come down to 1.
    let (leaf, _, mut down) = leaves.pop().unwrap();
    leaf.shutdown().await;
    assert_eq!(recv(&mut down, "middle's link to the leaf gone").await, None);
    leaves_reach(&mut middle_up, 1, "middle's own count, one leaf gone").await;
    leaves_reach(&mut root_down, 1, "the root's link to middle, one leaf gone").await;
}

/// A leaf that shuts down ends its parent's end of their link; a parent
/// that shuts down ends its children's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_ends_with_either_of_its_nodes() {
    let relay = relay().await;
    let (root, mut root_links) = app_root(&relay, 10).await;

    let (leaf_a, mut a_links) = start_with_links(app_node(&relay, 2, false)).await;
    joined(&leaf_a, "leaf A joined").await;
    let mut a_up = next_link(&mut a_links, "A's parent link").await;
    let mut to_a = next_link(&mut root_links, "the root's link to A").await;
    a_up.tx.send(b"from A".to_vec()).await.unwrap();
    assert_eq!(recv(&mut to_a, "the root's link to A").await.unwrap(), b"from A");
    leaf_a.shutdown().await;
    assert_eq!(recv(&mut to_a, "the root's link to A after A left").await, None);
    sending_fails(&to_a, "the root's link to A after A left").await;
    assert_eq!(recv(&mut a_up, "A's own link after its shutdown").await, None);
    sending_fails(&a_up, "A's own link after its shutdown").await;
    root.wait_for(|s| s.children == 0, WAIT, "A gone").await.unwrap();
    assert!(to_a.leaves.has_changed().is_err(), "the watch's sender is gone");

    let (leaf_b, mut b_links) = start_with_links(app_node(&relay, 3, false)).await;
    joined(&leaf_b, "leaf B joined").await;
    let mut b_up = next_link(&mut b_links, "B's parent link").await;
    let mut to_b = next_link(&mut root_links, "the root's link to B").await;
    to_b.tx.send(b"to B".to_vec()).await.unwrap();
    assert_eq!(recv(&mut b_up, "B's parent link").await.unwrap(), b"to B");
    root.shutdown().await;
    assert_eq!(recv(&mut b_up, "B's parent link after the root left").await, None);
    sending_fails(&b_up, "B's parent link after the root left").await;
    assert_eq!(recv(&mut to_b, "the root's own link to B").await, None);
    leaf_b
        .wait_for(|s| s.parent().is_none(), WAIT, "B without a parent")
        .await
        .unwrap();
}

/// An application that does not read for a while holds its peer back
/// (backpressure) and nothing fails: 5000 payloads of 16 KiB (far more
/// than the queues and sockets hold) all arrive, in order, once it reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_that_does_not_read_holds_its_peer_back() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const COUNT: usize = 5000;
    const LEN: usize = 16 * 1024;
    let relay = relay().await;
    let (root, mut root_links) = app_root(&relay, 10).await;
    let (leaf, mut leaf_links) = start_with_links(app_node(&relay, 2, false)).await;
    let mut leaf_events = leaf.subscribe();
    joined(&leaf, "the leaf joined").await;
    let mut up = next_link(&mut leaf_links, "the leaf's parent link").await;
    let down = next_link(&mut root_links, "the root's child link").await;
    let leaf_id = id(&leaf);

    let sent = Arc::new(AtomicUsize::new(0));
    let sender = tokio::spawn({
        let sent = sent.clone();
        let tx = down.tx.clone();
        async move {
            for i in 0..COUNT {
                tx.send(payload(i as u32, LEN)).await.unwrap();
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    // The leaf's application reads nothing while its node reports its leaf
    // count ten times (every 50 ms): its Genet side carries on.
    let mut reports = 0;
    while reports < 10 {
        let e = tokio::time::timeout(WAIT, leaf_events.recv())
            .await
            .expect("the leaf's reports")
            .unwrap();
        if matches!(e, Event::LeafNumber { id, .. } if id == leaf_id) {
            reports += 1;
        }
    }
    let before = sent.load(Ordering::Relaxed);
    println!("{before} payloads sent before the leaf's application read any");
    assert!(before < COUNT, "backpressure held the sender back");
    for n in [&root, &leaf] {
        let s = n.status().borrow().clone();
        assert_eq!(s.errors, 0, "{:?}", s.last_error);
    }
    for i in 0..COUNT {
        let p = recv(&mut up, "the leaf's parent link")
            .await
            .unwrap_or_else(|| panic!("the link ended at payload {i}"));
        assert!(p == payload(i as u32, LEN), "payload {i} differs");
    }
    tokio::time::timeout(WAIT, sender).await.unwrap().unwrap();
    for n in [&root, &leaf] {
        let s = n.status().borrow().clone();
        assert_eq!(s.errors, 0, "{:?}", s.last_error);
    }
    assert_eq!(root.status().borrow().children, 1);
    assert_eq!(leaf.status().borrow().parent(), Some(id(&root)));
}

/// An App frame to a node without application links is a protocol error:
/// named, the link closed, counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_frame_to_a_node_without_app_links_fails_the_link() {
    let relay = relay().await;
    let root = WsNode::start(listening(&relay, 1)).await.unwrap();
    root.become_root("secret").await.unwrap();
    root.wait_for(|s| s.root_registered, WAIT, "the root")
        .await
        .unwrap();
    let mut root_events = root.subscribe();
    let (leaf, mut leaf_links) = start_with_links(app_node(&relay, 2, false)).await;
    joined(&leaf, "the leaf joined").await;
    let mut up = next_link(&mut leaf_links, "the leaf's parent link").await;
    up.tx.send(b"hello?".to_vec()).await.unwrap();
    let leaf_id = id(&leaf);
    loop {
        let e = tokio::time::timeout(WAIT, root_events.recv())
            .await
            .expect("the root's error")
            .unwrap();
        if let Event::Error(GenetError::ChannelFailed { link, reason }) = e {
            assert_eq!(link, Link::Child(leaf_id));
            assert!(
                reason.contains("App frame (6 bytes)") && reason.contains("app_links"),
                "{reason}"
            );
            break;
        }
    }
    let s = root
        .wait_for(|s| s.children == 0, WAIT, "the child link closed")
        .await
        .unwrap();
    assert!(s.errors >= 1);
    assert_eq!(recv(&mut up, "the leaf's parent link, closed").await, None);
    leaf.wait_for(|s| s.parent().is_none(), WAIT, "the leaf without a parent")
        .await
        .unwrap();
}

/// A payload over `max_app_frame` fails its link, the error naming its
/// size: at the sender's writer if it is over the sender's limit, at the
/// receiver if only over the receiver's. Payloads up to it pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_over_max_app_frame_fails_its_link() {
    let relay = relay().await;
    let mut cfg = app_node(&relay, 1, true);
    cfg.max_app_frame = 1000;
    let (root, mut root_links) = start_with_links(cfg).await;
    root.become_root("secret").await.unwrap();
    root.wait_for(|s| s.root_registered, WAIT, "the root")
        .await
        .unwrap();
    let mut root_events = root.subscribe();

    // Leaf A has the default limit: the root refuses its 1001 bytes.
    let (a, mut a_links) = start_with_links(app_node(&relay, 2, false)).await;
    joined(&a, "A joined").await;
    let mut a_up = next_link(&mut a_links, "A's parent link").await;
    let mut to_a = next_link(&mut root_links, "the root's link to A").await;
    a_up.tx.send(payload(1, 1000)).await.unwrap();
    assert_eq!(recv(&mut to_a, "1000 bytes").await.unwrap(), payload(1, 1000));
    a_up.tx.send(payload(2, 1001)).await.unwrap();
    loop {
        let e = tokio::time::timeout(WAIT, root_events.recv())
            .await
            .expect("the root's error")
            .unwrap();
        if let Event::Error(GenetError::ChannelFailed { reason, .. }) = e {
            assert!(reason.contains("1001 bytes"), "{reason}");
            break;
        }
    }
    assert_eq!(recv(&mut to_a, "the root's link to A, failed").await, None);
    assert_eq!(recv(&mut a_up, "A's parent link, closed").await, None);

    // Leaf B has the root's limit: its own writer refuses the payload.
    let mut cfg = app_node(&relay, 3, false);
    cfg.max_app_frame = 1000;
    let (b, mut b_links) = start_with_links(cfg).await;
    let mut b_events = b.subscribe();
    joined(&b, "B joined").await;
    let b_up = next_link(&mut b_links, "B's parent link").await;
    b_up.tx.send(vec![0; 5000]).await.unwrap();
    loop {
        let e = tokio::time::timeout(WAIT, b_events.recv())
            .await
            .expect("B's error")
            .unwrap();
        if let Event::Error(GenetError::ChannelFailed { link, reason }) = e {
            assert_eq!(link, Link::Parent);
            assert!(
                reason.contains("payload of 5000 bytes") && reason.contains("1000"),
                "{reason}"
            );
            break;
        }
    }
    sending_fails(&b_up, "B's parent link after its payload was refused").await;
}

/// Raw frames where they do not belong: version 1 is refused by the relay
/// and by a parent, an App frame to the relay or before a `PeerHello` is
/// refused, each with its reason.
#[tokio::test]
async fn misplaced_frames_and_version_1_are_refused() {
    use futures::{SinkExt, StreamExt};
    use pando_genet::ws::{Frame, GENET_VERSION};
    use tokio_tungstenite::tungstenite::Message as WsMessage;

    /// Sends `frames` on a new connection to `url`; the first frame back.
    async fn exchange(url: &str, frames: &[Frame]) -> Frame {
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        for f in frames {
            ws.send(WsMessage::Binary(f.encode().into())).await.unwrap();
        }
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("an answer")
            .expect("a message")
            .unwrap();
        Frame::decode(&m.into_data()).unwrap()
    }
    let refused = |f: Frame| match f {
        Frame::Refused { reason } => reason,
        other => panic!("expected Refused, got {other:?}"),
    };

    let relay = relay().await;
    let v1 = Frame::Hello {
        version: 1,
        token: "token".into(),
    };
    let r = refused(exchange(relay.url(), &[v1]).await);
    assert_eq!(r, "version 1 is not supported: this relay speaks 2");
    let hello = Frame::Hello {
        version: GENET_VERSION,
        token: "token".into(),
    };
    let app = Frame::App { payload: vec![1] };
    let (mut ws, _) = tokio_tungstenite::connect_async(relay.url()).await.unwrap();
    for f in [&hello, &app] {
        ws.send(WsMessage::Binary(f.encode().into())).await.unwrap();
    }
    let mut answers = Vec::new();
    while answers.len() < 2 {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("an answer")
            .unwrap()
            .unwrap();
        answers.push(Frame::decode(&m.into_data()).unwrap());
    }
    assert!(matches!(answers[0], Frame::Welcome { version: 2 }));
    assert_eq!(
        refused(answers.remove(1)),
        "a node does not send App to the relay"
    );

    let parent = WsNode::start(listening(&relay, 1)).await.unwrap();
    let url = parent.listen_url().unwrap().to_owned();
    let r = refused(exchange(&url, std::slice::from_ref(&app)).await);
    assert_eq!(r, "expected PeerHello, got App");
    let v1 = Frame::PeerHello {
        version: 1,
        child: NodeId(5),
        ticket: 1,
    };
    let r = refused(exchange(&url, &[v1]).await);
    assert_eq!(r, "version 1 is not supported: this node speaks 2");
}

/// An application that drops its `rx` keeps the link: the peer's payloads
/// are dropped on arrival (its sends never stall), and the other way still
/// works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_rx_drops_payloads_and_keeps_the_link() {
    let relay = relay().await;
    let (root, mut root_links) = app_root(&relay, 10).await;
    let (leaf, mut leaf_links) = start_with_links(app_node(&relay, 2, false)).await;
    joined(&leaf, "the leaf joined").await;
    let mut up = next_link(&mut leaf_links, "the leaf's parent link").await;
    let down = next_link(&mut root_links, "the root's child link").await;
    let AppLink { tx: down_tx, rx, .. } = down;
    drop(rx);
    // Far more than the queues and sockets hold: only dropping lets them
    // all through.
    let sends = async {
        for i in 0..2000 {
            up.tx.send(payload(i, 16 * 1024)).await.unwrap();
        }
    };
    tokio::time::timeout(WAIT, sends)
        .await
        .expect("the leaf's sends went through");
    down_tx.send(b"still here".to_vec()).await.unwrap();
    assert_eq!(
        recv(&mut up, "the leaf's parent link").await.unwrap(),
        b"still here"
    );
    for n in [&root, &leaf] {
        let s = n.status().borrow().clone();
        assert_eq!(s.errors, 0, "{:?}", s.last_error);
    }
    assert_eq!(root.status().borrow().children, 1);
}
