//! The simulator against the fast path, the seeds' depth bounds, and whole
//! trees under churn. Every run is seeded; a failure names its seed.

use std::time::Duration;

use pando_genet::fast::FastTree;
use pando_genet::scenario::Scenario;
use pando_genet::sim::{Sim, SimConfig};
use pando_genet::{Backoff, Config, Event, GenetError, LeftReason, State};

/// The full protocol simulation and the fast path build the same trees:
/// same identifiers, same parents, same slots, for the same scenario.
#[test]
fn fast_path_and_full_simulation_build_the_same_trees() {
    for limit in [10, 3, 1] {
        for nodes in [1, 10, 37, 100, 250] {
            if limit == 1 && nodes > 40 {
                continue; // a chain: the full simulation is quadratic
            }
            for failures in [0.0, 0.25] {
                for seed in 1..=3u64 {
                    let ctx = format!("seed {seed}, N {nodes}, L {limit}, F {failures}");
                    let (sim, full) = Sim::play(
                        SimConfig::default(),
                        &mut Scenario::new(seed, nodes, limit, failures),
                        seed,
                    );
                    let mut tree = FastTree::default();
                    let fast = tree.play(&mut Scenario::new(seed, nodes, limit, failures));
                    assert_eq!(full, fast, "{ctx}");
                    for n in 0..=nodes {
                        if !sim.is_alive(n) {
                            assert_eq!(tree.parent(n), None, "{ctx}: node {n}");
                            continue;
                        }
                        assert_eq!(sim.node(n).id(), Some(tree.id(n)), "{ctx}: node {n}");
                        assert_eq!(sim.parent_of(n), tree.parent(n), "{ctx}: node {n}");
                        assert_eq!(sim.slot_in_parent(n), tree.slot_in_parent(n), "{ctx}: node {n}");
                    }
                }
            }
        }
    }
}

/// The seeds' bounds (seed 000, lines 6393-6418): no node two levels
/// deeper than a balanced tree, at most 17% one level deeper — with the
/// full simulation on small trees, and with the fast path it is checked
/// against on larger ones.
#[test]
fn depth_stays_within_the_seeds_bounds() {
    for failures in [0.0, 0.25] {
        for (nodes, reps) in [(10, 20), (100, 20), (300, 5)] {
            let mut scenario = Scenario::new(11, nodes, 10, failures);
            for rep in 0..reps {
                if rep > 0 {
                    scenario.next_repetition();
                }
                let (_, s) = Sim::play(SimConfig::default(), &mut scenario.clone(), rep);
                let ctx = format!("full simulation, seed 11 rep {rep}, N {nodes}, F {failures}: {s:?}");
                assert_eq!(s.deeper, 0, "{ctx}");
                assert!(s.share_plus_one() <= 17.0, "{ctx}");
            }
        }
        for (nodes, reps) in [(1000, 50), (10_000, 5)] {
            let mut scenario = Scenario::new(11, nodes, 10, failures);
            let mut tree = FastTree::default();
            for rep in 0..reps {
                if rep > 0 {
                    scenario.next_repetition();
                }
                let s = tree.play(&mut scenario);
                let ctx = format!("fast path, seed 11 rep {rep}, N {nodes}, F {failures}: {s:?}");
                assert_eq!(s.deeper, 0, "{ctx}");
                assert!(s.share_plus_one() <= 17.0, "{ctx}");
            }
        }
    }
}

fn churn_config(open_failure: f64) -> SimConfig {
    SimConfig {
        node: Config {
            children_limit: 4,
            candidate_timeout: Duration::from_secs(5),
            join_timeout: Duration::from_secs(5),
            rejoin: Some(Backoff {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(5),
            }),
            ..Config::default()
        },
        open_failure,
        ..SimConfig::default()
    }
}

/// Everyone joins at once, some connections never open: with automatic
/// re-join every node ends in the tree, no node ever exceeds the degree
/// bound, and the root's leaf count reaches the number of leaves.
#[test]
fn a_crowd_joins_at_once_through_failing_connections() {
    for seed in 1..=3u64 {
        let n = 300;
        let mut sim = Sim::new(churn_config(0.2), n, seed);
        sim.become_root(0);
        for i in 1..=n {
            sim.join_after(i, Duration::from_millis(i as u64 * 7 % 2000));
        }
        let all_in = sim.run_until(|s| s.is_settled(), Duration::from_secs(600));
        let stuck: Vec<_> = (1..=n).filter(|&i| sim.node(i).parent().is_none()).collect();
        assert!(
            all_in,
            "seed {seed}: nodes not in the tree after 600 s: {stuck:?}"
        );
        assert!(
            sim.max_occupied() <= 4,
            "seed {seed}: a node held {} children",
            sim.max_occupied()
        );
        let leaves = (0..=n).filter(|&i| sim.node(i).children().count() == 0).count() as u64;
        let counted = sim.run_until(|s| s.reported_leaves(0) == Some(leaves), Duration::from_secs(60));
        assert!(
            counted,
            "seed {seed}: the root counts {:?} leaves, not {leaves}",
            sim.reported_leaves(0)
        );
    }
}

/// Without re-join, each joiner either connects or is told why not.
#[test]
fn every_joiner_connects_or_gets_an_error() {
    for seed in 1..=4u64 {
        let n = 120;
        let mut cfg = churn_config(0.3);
        cfg.node.rejoin = None;
        let mut sim = Sim::new(cfg, n, seed);
        sim.become_root(0);
        for i in 1..=n {
            sim.join_after(i, Duration::from_millis(i as u64 * 13 % 1000));
        }
        sim.run_for(Duration::from_secs(60));
        let (mut connected, mut failed) = (0, 0);
        for i in 1..=n {
            let events = sim.take_events(i);
            let left = events.iter().any(|e| {
                matches!(
                    e,
                    Event::Left {
                        reason: LeftReason::JoinFailed | LeftReason::ParentLost
                    }
                )
            });
            let error = events.iter().any(|e| matches!(e, Event::Error(_)));
            match sim.node(i).state() {
                State::Member { .. } => connected += 1,
                State::Idle => {
                    assert!(
                        left && error,
                        "seed {seed}: node {i} is idle without an error: {events:?}"
                    );
                    failed += 1;
                }
                s => panic!("seed {seed}: node {i} still {s:?} after 60 s: {events:?}"),
            }
            let completions = events
                .iter()
                .filter(|e| matches!(e, Event::ParentConnected { .. }))
                .count();
            assert!(
                completions <= 1,
                "seed {seed}: node {i} completed its join {completions} times"
            );
        }
        assert!(
            connected > 0 && failed > 0,
            "seed {seed}: {connected} connected, {failed} failed"
        );
    }
}

/// An intermediate node crashes: its parent drops it and carries on, its
/// orphans leave with their subtrees and re-join, and the root counts every
/// leaf again.
#[test]
fn an_intermediate_node_crashes_and_its_subtree_rejoins() {
    for seed in 1..=3u64 {
        let n = 60;
        let mut sim = Sim::new(churn_config(0.0), n, seed);
        sim.become_root(0);
        for i in 1..=n {
            sim.join_after(i, Duration::from_millis(i as u64 * 50));
        }
        assert!(
            sim.run_until(|s| s.is_settled(), Duration::from_secs(120)),
            "seed {seed}: the tree did not form"
        );
        // The deepest node that has children whose children have children.
        let victim = (1..=n)
            .filter(|&i| sim.node(i).children().count() > 0)
            .max_by_key(|&i| (sim.node(i).children().count(), i))
            .expect("a tree of 60 nodes with 4 children each has an intermediate node");
        let parent = sim.parent_of(victim).expect("the victim has a parent");
        let victim_id = sim.node(victim).id().expect("has an id");
        let _ = sim.take_events(parent);
        sim.crash(victim);
        let dropped = sim.run_until(
            |s| s.node(parent).children().all(|c| c != victim_id),
            Duration::from_secs(10),
        );
        assert!(dropped, "seed {seed}: the parent still holds the crashed child");
        let rejoined = sim.run_until(|s| s.is_settled(), Duration::from_secs(120));
        assert!(
            rejoined,
            "seed {seed}: the orphans of node {victim} did not all re-join"
        );
        let events = sim.take_events(parent);
        assert!(
            events.contains(&Event::ChildDisconnected { id: victim_id }),
            "seed {seed}: the parent did not drop the crashed child: {events:?}"
        );
        assert!(
            events
                .iter()
                .any(|e| matches!(e, Event::Error(GenetError::ChannelFailed { .. }))),
            "seed {seed}: the channel error was not reported: {events:?}"
        );
        let leaves = (0..=n)
            .filter(|&i| i != victim && sim.node(i).children().count() == 0)
            .count() as u64;
        let counted = sim.run_until(|s| s.reported_leaves(0) == Some(leaves), Duration::from_secs(60));
        assert!(
            counted,
            "seed {seed}: the root counts {:?} leaves, not {leaves}",
            sim.reported_leaves(0)
        );
    }
}

/// The same seed replays the same run.
#[test]
fn a_seed_replays_the_same_run() {
    let run = |seed| {
        let n = 80;
        let mut sim = Sim::new(churn_config(0.2), n, seed);
        sim.become_root(0);
        for i in 1..=n {
            sim.join_after(i, Duration::from_millis(i as u64 * 3));
        }
        sim.run_for(Duration::from_secs(30));
        (1..=n)
            .map(|i| (sim.node(i).id(), sim.parent_of(i), sim.slot_in_parent(i)))
            .collect::<Vec<_>>()
    };
    assert_eq!(run(5), run(5));
    assert_ne!(run(5), run(6));
}

/// Nodes that cannot take children (browser tabs, workers without a
/// listening address) join as leaves, and nobody is routed to them.
#[test]
fn leaf_only_nodes_join_as_leaves() {
    for seed in 1..=3u64 {
        let n = 150;
        let mut sim = Sim::new(churn_config(0.0), n, seed);
        for i in (1..=n).filter(|i| i % 3 != 0) {
            sim.set_leaf_only(i);
        }
        sim.become_root(0);
        for i in 1..=n {
            sim.join_after(i, Duration::from_millis(i as u64 * 11 % 1500));
        }
        let settled = sim.run_until(|s| s.is_settled(), Duration::from_secs(600));
        assert!(settled, "seed {seed}: the tree did not settle");
        for i in (1..=n).filter(|i| i % 3 != 0) {
            assert_eq!(
                sim.node(i).occupied(),
                0,
                "seed {seed}: leaf-only node {i} has children"
            );
        }
        assert!(sim.max_occupied() <= 4, "seed {seed}");
    }
}
