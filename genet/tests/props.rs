//! Properties of the core and of whole simulated trees, over generated
//! inputs. proptest prints the failing case and its seed.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use pando_genet::sim::{Sim, SimConfig};
use pando_genet::{
    Action, Backoff, Config, Event, From, Link, Message, Node, NodeId, Signal, State, To, child_index,
};

/// Identifiers from a small pool, so that the same ones come back.
fn id() -> impl Strategy<Value = NodeId> {
    (0u64..12).prop_map(NodeId)
}

fn from() -> impl Strategy<Value = From> {
    prop_oneof![Just(From::Relay), Just(From::Parent), id().prop_map(From::Child)]
}

fn link() -> impl Strategy<Value = Link> {
    prop_oneof![Just(Link::Parent), id().prop_map(Link::Child)]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (id(), any::<u8>()).prop_map(|(origin, s)| Message::JoinRequest {
            origin,
            signal: Signal(vec![s]),
            can_parent: s % 2 == 0
        }),
        (id(), any::<u8>()).prop_map(|(from, s)| Message::JoinReply {
            from,
            signal: Signal(vec![s])
        }),
        any::<u64>().prop_map(|leaves| Message::Report { leaves }),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Message(From, Message),
    LocalSignal(Link),
    Opened(Link),
    Closed(Link, bool),
    Wait(u64),
    Join,
    BecomeRoot,
    Leave,
    RootRefused,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (from(), message()).prop_map(|(f, m)| Op::Message(f, m)),
        2 => link().prop_map(Op::LocalSignal),
        3 => link().prop_map(Op::Opened),
        2 => (link(), any::<bool>()).prop_map(|(l, f)| Op::Closed(l, f)),
        2 => (0u64..90_000).prop_map(Op::Wait),
        1 => Just(Op::Join),
        1 => Just(Op::BecomeRoot),
        1 => Just(Op::Leave),
        1 => Just(Op::RootRefused),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// No panic on any sequence of events; the degree bound holds at the
    /// connection level (child links opened and not closed never exceed
    /// `children_limit`), held requests stay bounded, and a node never
    /// opens a link it already has.
    #[test]
    fn any_event_sequence_keeps_the_bounds(
        limit in 1usize..4,
        max_stored in 0usize..4,
        rejoin in any::<bool>(),
        start_as_root in any::<bool>(),
        ops in prop::collection::vec(op(), 0..120),
    ) {
        let config = Config {
            children_limit: limit,
            max_stored,
            join_timeout: Duration::from_secs(20),
            rejoin: rejoin.then(Backoff::default),
            ..Config::default()
        };
        let mut now = Instant::now();
        let mut node = Node::new(config, 3).expect("valid");
        if start_as_root {
            node.become_root("s", now).expect("idle");
        }
        let mut children: HashSet<NodeId> = HashSet::new();
        let mut parent_open = false;
        let mut ops = ops.into_iter();
        loop {
            // Carry out the actions, as an adapter would.
            while let Some(action) = node.poll_action() {
                match action {
                    Action::Open(Link::Child(c)) => prop_assert!(children.insert(c), "opened child {c} twice"),
                    Action::Close(Link::Child(c)) => { children.remove(&c); }
                    Action::Open(Link::Parent) => {
                        prop_assert!(!parent_open, "opened the parent link twice");
                        parent_open = true;
                    }
                    Action::Close(Link::Parent) => parent_open = false,
                    _ => {}
                }
            }
            while node.poll_event().is_some() {}
            prop_assert!(children.len() <= limit, "{} child links, limit {limit}", children.len());
            prop_assert!(node.occupied() <= limit);
            prop_assert_eq!(node.occupied(), children.len());
            prop_assert!(node.stored_requests() <= max_stored);
            prop_assert!(node.leaves() >= 1);
            if let Some(t) = node.poll_timeout() {
                prop_assert!(t + Duration::from_secs(1) >= now, "a deadline far in the past");
            }
            let Some(op) = ops.next() else { break };
            match op {
                Op::Message(f, m) => node.handle_message(f, m, now),
                Op::LocalSignal(l) => node.handle_local_signal(l, Signal(vec![0]), now),
                Op::Opened(l) => node.handle_opened(l, now),
                Op::Closed(l, failed) => {
                    // The adapter reports closes of links it has.
                    let has = match l {
                        Link::Parent => parent_open,
                        Link::Child(c) => children.contains(&c),
                    };
                    if has {
                        match l {
                            Link::Parent => parent_open = false,
                            Link::Child(c) => { children.remove(&c); }
                        }
                        node.handle_closed(l, failed.then(|| "failed".to_owned()), now);
                    }
                }
                Op::Wait(ms) => {
                    now += Duration::from_millis(ms);
                    node.handle_timeout(now);
                }
                Op::Join => { let _ = node.join(now); }
                Op::BecomeRoot => { let _ = node.become_root("s", now); }
                Op::Leave => node.leave(now),
                Op::RootRefused => node.handle_root_refused("no", now),
            }
        }
    }

    /// The routing function is a pure function of its inputs, below the limit.
    #[test]
    fn routing_is_deterministic(node in any::<u64>(), origin in any::<u64>(), limit in 1usize..64) {
        let a = child_index(NodeId(node), NodeId(origin), limit);
        prop_assert!(a < limit);
        prop_assert_eq!(a, child_index(NodeId(node), NodeId(origin), limit));
    }

    /// A full node sends every request of one joiner to the same child,
    /// whatever the other joiners in between.
    #[test]
    fn all_messages_of_a_joiner_follow_the_same_path(
        seed in any::<u64>(),
        limit in 1usize..6,
        origins in prop::collection::vec(100u64..140, 1..60),
    ) {
        let now = Instant::now();
        let mut node = Node::new(Config { children_limit: limit, ..Config::default() }, seed).expect("valid");
        node.become_root("s", now).expect("idle");
        for c in 0..limit as u64 {
            node.handle_message(From::Relay, Message::JoinRequest { origin: NodeId(c + 1), signal: Signal(vec![]), can_parent: true }, now);
            node.handle_opened(Link::Child(NodeId(c + 1)), now);
        }
        while node.poll_action().is_some() {}
        let mut path = std::collections::HashMap::new();
        for o in origins {
            node.handle_message(From::Relay, Message::JoinRequest { origin: NodeId(o), signal: Signal(vec![]), can_parent: true }, now);
            let mut sent = Vec::new();
            while let Some(a) = node.poll_action() {
                if let Action::Send { to: To::Child(c), .. } = a { sent.push(c) }
            }
            prop_assert_eq!(sent.len(), 1);
            let first = *path.entry(o).or_insert(sent[0]);
            prop_assert_eq!(first, sent[0], "origin {} went two ways", o);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Whole simulated trees: with connections that fail to open and nodes
    /// that leave, every joiner ends connected or is told why not, and no
    /// node ever holds more than `children_limit` children and candidates.
    #[test]
    fn every_joiner_ends_connected_or_with_an_error(
        seed in any::<u64>(),
        limit in 1usize..5,
        open_failure in 0.0f64..0.5,
        leavers in prop::collection::vec(1usize..=40, 0..5),
    ) {
        let n = 40;
        let cfg = SimConfig {
            node: Config {
                children_limit: limit,
                candidate_timeout: Duration::from_secs(5),
                join_timeout: Duration::from_secs(5),
                ..Config::default()
            },
            open_failure,
            ..SimConfig::default()
        };
        let mut sim = Sim::new(cfg, n, seed);
        sim.become_root(0);
        for i in 1..=n {
            sim.join_after(i, Duration::from_millis((i as u64 * 37) % 1500));
        }
        for &l in &leavers {
            sim.leave_after(l, Duration::from_millis(800));
        }
        sim.run_for(Duration::from_secs(40));
        prop_assert!(sim.max_occupied() <= limit, "seed {seed}: {} > {limit}", sim.max_occupied());
        for i in 1..=n {
            let events = sim.take_events(i);
            let completions = events.iter().filter(|e| matches!(e, Event::ParentConnected { .. })).count();
            prop_assert!(completions <= 1, "seed {seed}: node {i} completed {completions} times");
            match sim.node(i).state() {
                State::Member { .. } => prop_assert_eq!(completions, 1),
                State::Idle => prop_assert!(
                    events.iter().any(|e| matches!(e, Event::Left { .. })),
                    "seed {seed}: node {i} idle without a Left: {events:?}"
                ),
                s => prop_assert!(false, "seed {seed}: node {i} still {s:?}: {events:?}"),
            }
        }
    }
}
