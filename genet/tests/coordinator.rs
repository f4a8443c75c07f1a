//! The scalable DistributedMap's per-node policy, driven by simulated
//! trees and by generated event sequences.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use proptest::prelude::*;

use pando_genet::coordinator::{Coordinator, Step};
use pando_genet::sim::{Sim, SimConfig};
use pando_genet::{Backoff, Config, Event, LeftReason, NodeId};

const BATCH: usize = 2;

fn sim_config() -> SimConfig {
    SimConfig {
        node: Config {
            children_limit: 3,
            rejoin: Some(Backoff {
                initial: Duration::from_millis(200),
                max: Duration::from_secs(2),
            }),
            ..Config::default()
        },
        keep_leaf_numbers: true,
        ..SimConfig::default()
    }
}

/// Feeds each node's new events to its coordinator.
fn feed(sim: &mut Sim, coords: &mut [Coordinator]) {
    for (i, c) in coords.iter_mut().enumerate() {
        for e in sim.take_events(i) {
            c.on_event(&e);
        }
    }
}

/// The leaves below node `i` in the true tree (1 for a leaf).
fn subtree_leaves(sim: &Sim, i: usize) -> u64 {
    let kids: Vec<usize> = sim.node(i).children().filter_map(|c| sim.index_of(c)).collect();
    if kids.is_empty() {
        1
    } else {
        kids.iter().map(|&k| subtree_leaves(sim, k)).sum()
    }
}

/// Every node in the tree processes locally exactly when it has no child,
/// and lends to each child through a limit of batch × the child's leaves.
fn check(sim: &Sim, coords: &[Coordinator], seed: u64) {
    for (i, c) in coords.iter().enumerate() {
        if !sim.is_alive(i) {
            continue;
        }
        let kids: BTreeSet<NodeId> = sim.node(i).children().collect();
        assert_eq!(
            c.processing_locally(),
            kids.is_empty(),
            "seed {seed}: node {i} with children {kids:?}"
        );
        let lent: BTreeSet<NodeId> = c.children().map(|(k, _)| k).collect();
        assert_eq!(
            lent, kids,
            "seed {seed}: node {i} lends to other nodes than its children"
        );
        for (k, limit) in c.children() {
            let leaves = subtree_leaves(sim, sim.index_of(k).expect("a child is a node"));
            assert_eq!(
                limit as u64,
                BATCH as u64 * leaves,
                "seed {seed}: node {i}, child {k}"
            );
        }
    }
}

#[test]
fn coordinators_follow_the_tree_through_joins_crashes_and_leaves() {
    for seed in 1..=3u64 {
        let n = 60;
        let mut sim = Sim::new(sim_config(), n, seed);
        let mut coords: Vec<Coordinator> = (0..=n)
            .map(|_| Coordinator::new(BATCH).expect("batch > 0"))
            .collect();
        sim.become_root(0);
        coords[0].start();
        for i in 1..=n {
            sim.join_after(i, Duration::from_millis(i as u64 * 20));
        }
        assert!(
            sim.run_until(|s| s.is_settled(), Duration::from_secs(300)),
            "seed {seed}: no tree"
        );
        // Reports climb one level per interval.
        sim.run_for(Duration::from_secs(30));
        feed(&mut sim, &mut coords);
        check(&sim, &coords, seed);

        // An intermediate node crashes; its orphans re-join elsewhere.
        let victim = (1..=n)
            .find(|&i| sim.node(i).children().count() > 0)
            .expect("an intermediate node");
        sim.crash(victim);
        sim.run_for(Duration::from_secs(1));
        assert!(
            sim.run_until(|s| s.is_settled(), Duration::from_secs(300)),
            "seed {seed}: no tree after the crash"
        );
        sim.run_for(Duration::from_secs(30));
        feed(&mut sim, &mut coords);
        check(&sim, &coords, seed);

        // Every child of one coordinator leaves: it processes again (the
        // seeds' `n = 0` test would never fire: it reports 1 leaf).
        let parent = (1..=n)
            .find(|&i| sim.is_alive(i) && sim.node(i).children().count() > 0)
            .expect("a coordinator");
        assert!(!coords[parent].processing_locally());
        let kids: Vec<usize> = sim
            .node(parent)
            .children()
            .filter_map(|c| sim.index_of(c))
            .collect();
        for k in kids {
            sim.leave(k);
        }
        sim.run_until_quiet();
        feed(&mut sim, &mut coords);
        assert!(
            coords[parent].processing_locally(),
            "seed {seed}: node {parent} did not resume"
        );
        assert_eq!(
            sim.reported_leaves(parent).unwrap_or(1),
            sim.reported_leaves(parent).unwrap_or(1)
        );
    }
}

#[test]
fn a_childless_node_reports_one_leaf_and_still_resumes() {
    let mut c = Coordinator::new(3).expect("batch > 0");
    let me = NodeId(1);
    let kid = NodeId(2);
    assert_eq!(
        c.on_event(&Event::ParentConnected { id: NodeId(9) }),
        vec![Step::ResumeLocal]
    );
    c.on_event(&Event::ChildConnected { id: kid });
    assert!(!c.processing_locally());
    c.on_event(&Event::LeafNumber { id: me, n: 1 });
    assert_eq!(
        c.on_event(&Event::ChildDisconnected { id: kid }),
        vec![Step::Reclaim { child: kid }, Step::ResumeLocal]
    );
    // Afterwards the node reports 1 leaf, never 0: nothing depends on it.
    assert_eq!(c.on_event(&Event::LeafNumber { id: me, n: 1 }), vec![]);
    assert!(c.processing_locally());
    assert_eq!(
        c.on_event(&Event::Left {
            reason: LeftReason::ParentLost
        }),
        vec![Step::StopLocal]
    );
}

fn event() -> impl Strategy<Value = Event> {
    let id = (0u64..6).prop_map(NodeId);
    prop_oneof![
        1 => id.clone().prop_map(|id| Event::ParentConnected { id }),
        3 => id.clone().prop_map(|id| Event::ChildConnected { id }),
        3 => id.clone().prop_map(|id| Event::ChildDisconnected { id }),
        3 => (id, 0u64..50).prop_map(|(id, n)| Event::LeafNumber { id, n }),
        1 => Just(Event::Left { reason: LeftReason::ParentLost }),
    ]
}

proptest! {
    /// Lend and Reclaim alternate per child; local processing runs exactly
    /// when the node is started and childless; limits are batch × leaves.
    #[test]
    fn steps_stay_consistent(batch in 1usize..5, events in prop::collection::vec(event(), 0..80)) {
        let mut c = Coordinator::new(batch).expect("batch > 0");
        let mut lent: HashMap<NodeId, usize> = HashMap::new();
        let mut running = false;
        let mut started = false;
        for e in events {
            for step in c.on_event(&e) {
                match step {
                    Step::Lend { child, limit } => {
                        prop_assert!(lent.insert(child, limit).is_none(), "lent to {child} twice");
                        prop_assert_eq!(limit, batch);
                    }
                    Step::UpdateLimit { child, limit } => {
                        prop_assert!(lent.insert(child, limit).is_some(), "updated an unknown child");
                        prop_assert_eq!(limit % batch, 0);
                    }
                    Step::Reclaim { child } => prop_assert!(lent.remove(&child).is_some(), "reclaimed {child} twice"),
                    Step::ResumeLocal => { prop_assert!(!running); running = true; started = true; }
                    Step::PauseLocal => { prop_assert!(running); running = false; }
                    Step::StopLocal => { running = false; started = false; }
                }
            }
            prop_assert_eq!(running, c.processing_locally());
            if running {
                prop_assert!(lent.is_empty(), "processing locally with children");
            }
            if started && lent.is_empty() {
                prop_assert!(running, "childless but not processing");
            }
            let mine: HashMap<NodeId, usize> = c.children().collect();
            prop_assert_eq!(&mine, &lent);
        }
    }
}
