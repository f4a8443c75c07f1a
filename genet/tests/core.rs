//! The core, one event at a time: Algorithms 16-19 and each fix of the
//! original's defects (SPEC.md, "Genet (webrtc-tree-overlay)").

use std::time::{Duration, Instant};

use pando_genet::{
    Action, Backoff, Config, Event, From, GenetError, LeftReason, Link, Message, Node, NodeId, Signal, State,
    To, child_index,
};

fn cfg(limit: usize) -> Config {
    Config {
        children_limit: limit,
        ..Config::default()
    }
}

fn drain(node: &mut Node) -> Vec<Action> {
    std::iter::from_fn(|| node.poll_action()).collect()
}

fn events(node: &mut Node) -> Vec<Event> {
    std::iter::from_fn(|| node.poll_event()).collect()
}

fn root(config: Config, now: Instant) -> Node {
    let mut node = Node::new(config, 1).expect("valid config");
    node.become_root("secret", now).expect("idle");
    drain(&mut node);
    node
}

fn offer(node: &mut Node, origin: u64, now: Instant) -> Vec<Action> {
    let message = Message::JoinRequest {
        origin: NodeId(origin),
        signal: Signal(vec![origin as u8]),
        can_parent: true,
    };
    node.handle_message(From::Relay, message, now);
    drain(node)
}

fn connect(node: &mut Node, origin: u64, now: Instant) {
    offer(node, origin, now);
    node.handle_opened(Link::Child(NodeId(origin)), now);
    drain(node);
    events(node);
}

/// A joiner connected below a parent `p`.
fn member(config: Config, now: Instant) -> (Node, NodeId) {
    let mut node = Node::new(config, 2).expect("valid config");
    node.join(now).expect("idle");
    node.handle_local_signal(Link::Parent, Signal(vec![1]), now);
    let p = NodeId(77);
    node.handle_message(
        From::Relay,
        Message::JoinReply {
            from: p,
            signal: Signal(vec![2]),
        },
        now,
    );
    node.handle_opened(Link::Parent, now);
    drain(&mut node);
    events(&mut node);
    (node, p)
}

#[test]
fn a_free_slot_takes_the_joiner_and_a_full_node_delegates_by_hash() {
    let now = Instant::now();
    let mut node = root(cfg(2), now);
    assert_eq!(
        offer(&mut node, 10, now),
        vec![
            Action::Open(Link::Child(NodeId(10))),
            Action::Signal {
                link: Link::Child(NodeId(10)),
                signal: Signal(vec![10])
            }
        ]
    );
    node.handle_opened(Link::Child(NodeId(10)), now);
    connect(&mut node, 11, now);
    assert_eq!(node.occupied(), 2);
    let me = node.id().expect("root has an id");
    for origin in [12u64, 13, 14, 99, 1234] {
        let slot = child_index(me, NodeId(origin), 2);
        let child = node.slot(slot).expect("full").id;
        for _ in 0..3 {
            let actions = offer(&mut node, origin, now);
            assert_eq!(
                actions,
                vec![Action::Send {
                    to: To::Child(child),
                    message: Message::JoinRequest {
                        origin: NodeId(origin),
                        signal: Signal(vec![origin as u8]),
                        can_parent: true
                    }
                }],
                "origin {origin}"
            );
        }
    }
    assert_eq!(node.occupied(), 2);
}

#[test]
fn held_requests_expire() {
    let now = Instant::now();
    let config = Config {
        join_timeout: Duration::from_secs(10),
        ..cfg(1)
    };
    let mut node = root(config, now);
    offer(&mut node, 10, now); // the candidate, not connected
    assert!(offer(&mut node, 20, now).is_empty()); // held for slot 0
    assert_eq!(node.stored_requests(), 1);
    node.handle_timeout(now + Duration::from_secs(10));
    assert_eq!(node.stored_requests(), 0);
    let errors = events(&mut node);
    assert!(
        errors.contains(&Event::Error(GenetError::RequestExpired {
            origin: NodeId(20),
            after: Duration::from_secs(10)
        })),
        "{errors:?}"
    );
}

#[test]
fn held_requests_are_bounded() {
    let now = Instant::now();
    let config = Config {
        max_stored: 2,
        ..cfg(1)
    };
    let mut node = root(config, now);
    offer(&mut node, 10, now);
    for origin in 20..25 {
        offer(&mut node, origin, now);
    }
    assert_eq!(node.stored_requests(), 2);
    let errors = events(&mut node);
    assert_eq!(
        errors
            .iter()
            .filter(|e| matches!(e, Event::Error(GenetError::TooManyStored { .. })))
            .count(),
        3
    );
}

#[test]
fn a_failed_candidate_promotes_a_waiting_request() {
    let now = Instant::now();
    // Held requests outlive the candidate here.
    let mut node = root(
        Config {
            join_timeout: Duration::from_secs(120),
            ..cfg(1)
        },
        now,
    );
    offer(&mut node, 10, now);
    offer(&mut node, 20, now);
    offer(&mut node, 30, now);
    offer(&mut node, 20, now); // a second signal of 20
    // The candidate times out: 20, first in line, takes the slot with both
    // of its signals; 30 keeps waiting.
    let at = now + Config::default().candidate_timeout;
    node.handle_timeout(at);
    let actions = drain(&mut node);
    assert_eq!(
        actions,
        vec![
            Action::Close(Link::Child(NodeId(10))),
            Action::Open(Link::Child(NodeId(20))),
            Action::Signal {
                link: Link::Child(NodeId(20)),
                signal: Signal(vec![20])
            },
            Action::Signal {
                link: Link::Child(NodeId(20)),
                signal: Signal(vec![20])
            },
        ]
    );
    assert!(
        events(&mut node).contains(&Event::Error(GenetError::CandidateTimeout {
            id: NodeId(10),
            after: Config::default().candidate_timeout
        }))
    );
    assert_eq!(node.stored_requests(), 1);
    // That candidate's connection fails: 30 is promoted in turn.
    node.handle_closed(Link::Child(NodeId(20)), Some("ICE failed".into()), at);
    assert_eq!(
        drain(&mut node),
        vec![
            Action::Open(Link::Child(NodeId(30))),
            Action::Signal {
                link: Link::Child(NodeId(30)),
                signal: Signal(vec![30])
            },
        ]
    );
    assert_eq!(node.stored_requests(), 0);
}

#[test]
fn held_requests_go_down_once_the_candidate_connects() {
    let now = Instant::now();
    let mut node = root(cfg(1), now);
    offer(&mut node, 10, now);
    offer(&mut node, 20, now);
    node.handle_opened(Link::Child(NodeId(10)), now);
    assert_eq!(
        drain(&mut node),
        vec![Action::Send {
            to: To::Child(NodeId(10)),
            message: Message::JoinRequest {
                origin: NodeId(20),
                signal: Signal(vec![20]),
                can_parent: true
            }
        }]
    );
    assert_eq!(events(&mut node), vec![Event::ChildConnected { id: NodeId(10) }]);
}

#[test]
fn a_late_signal_of_a_connected_child_is_not_a_new_join() {
    let now = Instant::now();
    let mut node = root(cfg(1), now);
    connect(&mut node, 10, now);
    assert_eq!(
        offer(&mut node, 10, now),
        vec![Action::Signal {
            link: Link::Child(NodeId(10)),
            signal: Signal(vec![10])
        }]
    );
    assert_eq!(node.occupied(), 1);
    assert!(events(&mut node).is_empty());
}

#[test]
fn leave_closes_every_child_and_candidate() {
    let now = Instant::now();
    let mut node = root(cfg(4), now);
    connect(&mut node, 10, now);
    connect(&mut node, 11, now);
    offer(&mut node, 12, now);
    node.leave(now);
    let mut closed: Vec<Action> = drain(&mut node);
    closed.sort_by_key(|a| format!("{a:?}"));
    assert_eq!(
        closed,
        vec![
            Action::Close(Link::Child(NodeId(10))),
            Action::Close(Link::Child(NodeId(11))),
            Action::Close(Link::Child(NodeId(12))),
        ]
    );
    assert_eq!(node.occupied(), 0);
    assert_eq!(
        events(&mut node),
        vec![Event::Left {
            reason: LeftReason::Requested
        }]
    );
    assert_eq!(
        node.poll_timeout(),
        None,
        "a node out of the tree stops reporting"
    );
}

#[test]
fn losing_the_parent_closes_the_subtree() {
    let now = Instant::now();
    let (mut node, _) = member(cfg(3), now);
    node.handle_message(
        From::Parent,
        Message::JoinRequest {
            origin: NodeId(5),
            signal: Signal(vec![5]),
            can_parent: true,
        },
        now,
    );
    node.handle_opened(Link::Child(NodeId(5)), now);
    drain(&mut node);
    events(&mut node);
    node.handle_closed(Link::Parent, None, now);
    assert_eq!(drain(&mut node), vec![Action::Close(Link::Child(NodeId(5)))]);
    assert_eq!(
        events(&mut node),
        vec![Event::Left {
            reason: LeftReason::ParentLost
        }]
    );
    assert_eq!(node.state(), State::Idle);
}

#[test]
fn a_failed_child_is_removed_and_the_error_reported() {
    let now = Instant::now();
    let mut node = root(cfg(2), now);
    connect(&mut node, 10, now);
    connect(&mut node, 11, now);
    node.handle_closed(Link::Child(NodeId(10)), Some("connection reset".into()), now);
    assert_eq!(
        events(&mut node),
        vec![
            Event::Error(GenetError::ChannelFailed {
                link: Link::Child(NodeId(10)),
                reason: "connection reset".into()
            }),
            Event::ChildDisconnected { id: NodeId(10) },
        ]
    );
    assert_eq!(node.children().collect::<Vec<_>>(), vec![NodeId(11)]);
    assert_eq!(node.state(), State::Root);
}

#[test]
fn the_join_completes_once() {
    let now = Instant::now();
    let mut node = Node::new(Config::default(), 3).expect("valid");
    node.join(now).expect("idle");
    node.handle_message(
        From::Relay,
        Message::JoinReply {
            from: NodeId(7),
            signal: Signal(vec![]),
        },
        now,
    );
    node.handle_opened(Link::Parent, now);
    node.handle_opened(Link::Parent, now);
    node.handle_message(
        From::Relay,
        Message::JoinReply {
            from: NodeId(7),
            signal: Signal(vec![]),
        },
        now,
    );
    let completions = events(&mut node)
        .into_iter()
        .filter(|e| matches!(e, Event::ParentConnected { .. }))
        .count();
    assert_eq!(completions, 1);
}

#[test]
fn the_joiner_sends_late_signals_to_the_node_that_answered() {
    let now = Instant::now();
    let mut node = Node::new(Config::default(), 3).expect("valid");
    node.join(now).expect("idle");
    drain(&mut node);
    node.handle_local_signal(Link::Parent, Signal(vec![1]), now);
    node.handle_message(
        From::Relay,
        Message::JoinReply {
            from: NodeId(7),
            signal: Signal(vec![]),
        },
        now,
    );
    node.handle_local_signal(Link::Parent, Signal(vec![2]), now);
    let tos: Vec<To> = drain(&mut node)
        .into_iter()
        .filter_map(|a| match a {
            Action::Send { to, .. } => Some(to),
            _ => None,
        })
        .collect();
    assert_eq!(tos, vec![To::Root, To::Node(NodeId(7))]);
}

#[test]
fn automatic_rejoin_backs_off_with_a_fresh_identifier() {
    let now = Instant::now();
    let backoff = Backoff {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(3),
    };
    let (mut node, _) = member(
        Config {
            rejoin: Some(backoff),
            ..Config::default()
        },
        now,
    );
    let first_id = node.id();
    node.handle_closed(Link::Parent, Some("gone".into()), now);
    let at = events(&mut node)
        .into_iter()
        .find_map(|e| match e {
            Event::Rejoining { at } => Some(at),
            _ => None,
        })
        .expect("a re-join is planned");
    assert!(
        at >= now + Duration::from_secs(1) && at <= now + Duration::from_millis(1500),
        "{:?}",
        at - now
    );
    drain(&mut node);
    node.handle_timeout(at);
    assert_eq!(drain(&mut node), vec![Action::Open(Link::Parent)]);
    assert_ne!(node.id(), first_id);
    // The second attempt times out: the wait doubles.
    let deadline = node.poll_timeout().expect("the join has a deadline");
    node.handle_timeout(deadline);
    let at2 = events(&mut node)
        .into_iter()
        .find_map(|e| match e {
            Event::Rejoining { at } => Some(at),
            _ => None,
        })
        .expect("another re-join is planned");
    assert!(at2 - deadline >= Duration::from_secs(2), "{:?}", at2 - deadline);
    // Leaving cancels it.
    node.leave(deadline);
    assert_eq!(node.state(), State::Idle);
    assert_eq!(node.poll_timeout(), None);
}

#[test]
fn leaves_are_counted_and_reported_every_interval() {
    let now = Instant::now();
    let (mut node, _) = member(cfg(3), now);
    let me = node.id().expect("joined");
    let interval = Config::default().reporting_interval;
    node.handle_timeout(now + interval);
    assert_eq!(events(&mut node), vec![Event::LeafNumber { id: me, n: 1 }]);
    assert_eq!(
        drain(&mut node),
        vec![Action::Send {
            to: To::Parent,
            message: Message::Report { leaves: 1 }
        }]
    );
    for (c, n) in [(5u64, 3u64), (6, 4)] {
        node.handle_message(
            From::Parent,
            Message::JoinRequest {
                origin: NodeId(c),
                signal: Signal(vec![]),
                can_parent: true,
            },
            now,
        );
        node.handle_opened(Link::Child(NodeId(c)), now);
        node.handle_message(From::Child(NodeId(c)), Message::Report { leaves: n }, now);
    }
    drain(&mut node);
    assert!(events(&mut node).contains(&Event::LeafNumber { id: NodeId(6), n: 4 }));
    node.handle_timeout(now + interval * 2);
    assert_eq!(events(&mut node), vec![Event::LeafNumber { id: me, n: 7 }]);
    node.handle_closed(Link::Child(NodeId(5)), None, now);
    node.handle_closed(Link::Child(NodeId(6)), None, now);
    events(&mut node);
    assert_eq!(node.leaves(), 1, "a node whose last child left is a leaf again");
}

#[test]
fn messages_from_the_wrong_place_are_reported_and_ignored() {
    let now = Instant::now();
    let mut node = root(cfg(2), now);
    node.handle_message(From::Child(NodeId(9)), Message::Report { leaves: 5 }, now);
    node.handle_message(
        From::Parent,
        Message::JoinRequest {
            origin: NodeId(9),
            signal: Signal(vec![]),
            can_parent: true,
        },
        now,
    );
    node.handle_message(
        From::Relay,
        Message::JoinReply {
            from: NodeId(9),
            signal: Signal(vec![]),
        },
        now,
    );
    let me = node.id().expect("root");
    node.handle_message(
        From::Relay,
        Message::JoinRequest {
            origin: me,
            signal: Signal(vec![]),
            can_parent: true,
        },
        now,
    );
    let evs = events(&mut node);
    assert_eq!(evs.len(), 4, "{evs:?}");
    assert!(
        evs.iter()
            .all(|e| matches!(e, Event::Error(GenetError::Unexpected { .. }))),
        "{evs:?}"
    );
    assert!(drain(&mut node).is_empty());
    assert_eq!(node.occupied(), 0);
}

#[test]
fn a_refused_root_says_so() {
    let now = Instant::now();
    let mut node = root(cfg(2), now);
    node.handle_root_refused("wrong secret", now);
    assert_eq!(
        events(&mut node),
        vec![
            Event::Error(GenetError::RootRefused("wrong secret".into())),
            Event::Left {
                reason: LeftReason::RootRefused
            }
        ]
    );
}

fn offer_from(node: &mut Node, origin: u64, can_parent: bool, now: Instant) -> Vec<Action> {
    let message = Message::JoinRequest {
        origin: NodeId(origin),
        signal: Signal(vec![]),
        can_parent,
    };
    node.handle_message(From::Relay, message, now);
    drain(node)
}

#[test]
fn full_nodes_never_route_to_leaf_only_children() {
    let now = Instant::now();
    let mut node = root(cfg(3), now);
    for (c, can) in [(10u64, false), (11, true), (12, false)] {
        offer_from(&mut node, c, can, now);
        node.handle_opened(Link::Child(NodeId(c)), now);
    }
    drain(&mut node);
    events(&mut node);
    for origin in 100..160u64 {
        let actions = offer_from(&mut node, origin, true, now);
        assert!(
            matches!(
                actions.as_slice(),
                [Action::Send {
                    to: To::Child(NodeId(11)),
                    ..
                }]
            ),
            "origin {origin}: {actions:?}"
        );
    }
    // With no child that takes children, a full node has no room.
    node.handle_closed(Link::Child(NodeId(11)), None, now);
    offer_from(&mut node, 13, false, now);
    node.handle_opened(Link::Child(NodeId(13)), now);
    drain(&mut node);
    events(&mut node);
    assert!(offer_from(&mut node, 200, true, now).is_empty());
    assert_eq!(
        events(&mut node),
        vec![Event::Error(GenetError::NoRoom { origin: NodeId(200) })]
    );
}

#[test]
fn a_leaf_only_node_says_so_and_takes_no_child() {
    let now = Instant::now();
    let (mut node, _) = member(
        Config {
            accepts_children: false,
            ..cfg(3)
        },
        now,
    );
    node.handle_message(
        From::Parent,
        Message::JoinRequest {
            origin: NodeId(5),
            signal: Signal(vec![]),
            can_parent: true,
        },
        now,
    );
    assert!(drain(&mut node).is_empty());
    assert!(matches!(
        events(&mut node).as_slice(),
        [Event::Error(GenetError::Unexpected { .. })]
    ));
    assert_eq!(node.occupied(), 0);
    // Its own join requests say it takes no children.
    let mut joiner = Node::new(
        Config {
            accepts_children: false,
            ..cfg(3)
        },
        9,
    )
    .expect("valid");
    joiner.join(now).expect("idle");
    joiner.handle_local_signal(Link::Parent, Signal(vec![1]), now);
    let sent = drain(&mut joiner);
    assert!(
        sent.iter().any(|a| matches!(
            a,
            Action::Send {
                message: Message::JoinRequest {
                    can_parent: false,
                    ..
                },
                ..
            }
        )),
        "{sent:?}"
    );
}

/// A joiner's later signals follow its first one down, even when a slot
/// frees up at a node it passed through (the original would have made it a
/// candidate there too, splitting its signals between two nodes).
#[test]
fn later_signals_follow_the_first_even_when_a_slot_frees() {
    let now = Instant::now();
    let mut node = root(cfg(2), now);
    connect(&mut node, 10, now);
    connect(&mut node, 11, now);
    let me = node.id().expect("root");
    let origin = NodeId(500);
    let target = node.slot(child_index(me, origin, 2)).expect("full").id;
    let other = if target == NodeId(10) {
        NodeId(11)
    } else {
        NodeId(10)
    };
    let first = offer_from(&mut node, origin.0, true, now);
    assert!(
        matches!(first.as_slice(), [Action::Send { to: To::Child(c), .. }] if *c == target),
        "{first:?}"
    );
    node.handle_closed(Link::Child(other), None, now);
    events(&mut node);
    let second = offer_from(&mut node, origin.0, true, now);
    assert!(
        matches!(second.as_slice(), [Action::Send { to: To::Child(c), .. }] if *c == target),
        "{second:?}"
    );
    assert_eq!(node.occupied(), 1, "no second candidate for the same joiner");
    // A new joiner takes the free slot.
    assert!(matches!(
        offer_from(&mut node, 600, true, now).as_slice(),
        [Action::Open(_), Action::Signal { .. }]
    ));
}

/// A joiner whose requests were held for a candidate's slot, and handed to
/// it once it connected, keeps going that way when a slot frees up here:
/// the node remembers the delegation as it does for requests routed to a
/// connected child.
#[test]
fn held_requests_handed_down_keep_their_way() {
    let now = Instant::now();
    let mut node = root(cfg(2), now);
    let me = node.id().unwrap();
    connect(&mut node, 10, now); // slot 0
    offer(&mut node, 20, now); // slot 1: a candidate
    let o = (100..).find(|&o| child_index(me, NodeId(o), 2) == 1).unwrap();
    assert_eq!(offer(&mut node, o, now), vec![], "held for slot 1");
    node.handle_opened(Link::Child(NodeId(20)), now);
    let down = |o: u64| Action::Send {
        to: To::Child(NodeId(20)),
        message: Message::JoinRequest {
            origin: NodeId(o),
            signal: Signal(vec![o as u8]),
            can_parent: true,
        },
    };
    assert_eq!(drain(&mut node), vec![down(o)]);
    // Slot 0 frees up; the joiner's next signal still goes to child 20.
    node.handle_closed(Link::Child(NodeId(10)), None, now);
    drain(&mut node);
    assert_eq!(offer(&mut node, o, now), vec![down(o)]);
}
