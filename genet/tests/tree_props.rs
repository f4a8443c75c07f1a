//! Properties 1-10 of the Scalable DistributedMap (seed 000, Abstraction 5)
//! over real Genet nodes (tasks of this process) on loopback WebSocket,
//! one test each, and the pause and resumption of a node's local
//! processing (Algorithms 20-21). Every wait is on an event (a status
//! change, a counter, a result), with a deadline only to fail with a
//! message; nothing sleeps to synchronise. Victims and topologies come
//! from fixed node seeds.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::{
    Counter, Member, Opts, Run, WAIT, assert_doubles, depths, double, root, root_counted, spawn_volunteer,
    volunteer, wait_members, wait_settled,
};
use pando_distributed_map::MapConfig;
use pando_genet::{NodeId, State};
use pando_pull_stream::{collect, count, infinite, pull, take};

/// Runs `count(n)` through `map` to the end, within [`WAIT`].
async fn run_to_end(
    map: &pando_distributed_map::DistributedMap<u64, u64, ()>,
    n: u64,
    what: &str,
) -> Vec<u64> {
    let run = pull!(count(n), map.clone(), collect::<Vec<_>>());
    match tokio::time::timeout(WAIT, run).await {
        Ok(out) => out.expect("the run succeeds"),
        Err(_) => panic!(
            "waited {WAIT:?} for {what}; the root's lender: {:?}\n{}",
            map.lender().state(),
            map.stats()
        ),
    }
}

/// The members without children, by index.
fn leaves(members: &[Member]) -> Vec<usize> {
    (0..members.len())
        .filter(|&i| members[i].status.borrow().children == 0)
        .collect()
}

/// A histogram of depths, for the logs.
fn histogram(d: &[Option<usize>]) -> Vec<(usize, usize)> {
    let mut h: HashMap<usize, usize> = HashMap::new();
    for d in d.iter().flatten() {
        *h.entry(*d).or_default() += 1;
    }
    let mut h: Vec<_> = h.into_iter().collect();
    h.sort_unstable();
    h
}

/// Waits until every member is in the root's tree.
async fn wait_joined(root_id: NodeId, members: &[Member], what: &str) {
    wait_members(members, what, |m| depths(root_id, m).iter().all(Option::is_some)).await;
}

/// Property 1, **unbounded**: 100 volunteers (`children_limit` 3, five
/// levels or so) join one tree, and every leaf computes, at the same time:
/// each leaf's function holds its first value until every leaf holds one,
/// which happens only if the root's lending reaches all of them at once
/// (`batch_size` × leaves, through every level). Nodes with children
/// compute nothing (leaves compute).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbounded_100_volunteers_all_compute_at_once() {
    const V: u64 = 100;
    const B: usize = 2;
    let (relay, root_node, map, root_id) = root(3, B).await;
    let target = Arc::new(AtomicU64::new(u64::MAX));
    let holding: Arc<Mutex<HashSet<u64>>> = Arc::default();
    let distinct = Arc::new(Counter::default());
    let mut members = Vec::new();
    for i in 0..V {
        let seed = 1000 + i;
        let (target, holding, distinct) = (target.clone(), holding.clone(), distinct.clone());
        let f = move |x: u64| {
            let (target, holding, distinct) = (target.clone(), holding.clone(), distinct.clone());
            async move {
                if holding.lock().unwrap().insert(seed) {
                    distinct.incr();
                }
                let n = target.load(Ordering::Relaxed);
                distinct.wait_for(n, "every leaf holding a value at once").await;
                Ok::<_, String>(x * 2)
            }
        };
        members.push(spawn_volunteer(relay.url(), seed, Opts::new(3, B), f).await);
    }
    wait_settled(&root_node, root_id, &members).await;
    let d = depths(root_id, &members);
    let leaf_idx = leaves(&members);
    println!(
        "{V} volunteers, depths {:?}, {} leaves",
        histogram(&d),
        leaf_idx.len()
    );
    assert!(d.iter().flatten().any(|&d| d >= 3), "a tree of 3 levels or more");
    target.store(leaf_idx.len() as u64, Ordering::Relaxed);

    let what = "2000 values through 100 volunteers, each leaf holding its first value until all do";
    let out = tokio::select! {
        out = run_to_end(&map, 2_000, what) => out,
        // On failure, say how many leaves held a value.
        () = async {
            tokio::time::sleep(WAIT - std::time::Duration::from_secs(1)).await;
            println!("{} of {} leaves hold a value", distinct.get(), leaf_idx.len());
            std::future::pending::<()>().await;
        } => unreachable!(),
    };
    assert_doubles(&out);
    assert_eq!(out.len(), 2_000);
    let held = holding.lock().unwrap().clone();
    for (i, m) in members.iter().enumerate() {
        let computed = m.computed.get();
        if leaf_idx.contains(&i) {
            assert!(held.contains(&m.seed), "leaf v{} computed", m.seed);
        } else {
            assert_eq!(computed, 0, "v{} has children: it computes nothing", m.seed);
        }
    }
}

/// Property 2, **dynamic**: over an endless input, 3 volunteers join
/// mid-run and each of them that is a leaf computes; then 2 leave gracefully (shut down) and
/// 2 crash (their tasks aborted, one of them a newcomer); the run goes on
/// for 2000 more results. The output is exact and in order from the
/// first result to the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_join_leave_and_crash_mid_run() {
    let (relay, _root, map, root_id) = root(2, 2).await;
    let mut members = Vec::new();
    for i in 0..4 {
        members.push(volunteer(relay.url(), 200 + i, 2, 2).await);
    }
    wait_joined(root_id, &members, "4 volunteers in the tree").await;
    let run = Run::start(&map);
    run.output.wait_for(500, "500 results").await;
    for i in 0..3 {
        members.push(volunteer(relay.url(), 300 + i, 2, 2).await);
    }
    // Once all are in, no node joins any more: the newcomers without
    // children (one may have joined below another) compute.
    wait_joined(root_id, &members, "the newcomers in the tree").await;
    let mut computing = 0;
    for m in &members[4..] {
        if m.status.borrow().children == 0 {
            let what = format!("the newcomer v{} computing", m.seed);
            m.computed.wait_for(1, &what).await;
            computing += 1;
        }
    }
    assert!(computing > 0, "a newcomer is a leaf");
    println!(
        "newcomers computing at {} results; depths {:?}",
        run.output.get(),
        depths(root_id, &members)
    );
    for i in [0, 1] {
        members[i].leave().await;
    }
    let at = run.output.get();
    println!("v200 and v201 left at {at} results");
    for i in [2, 5] {
        members[i].task.abort();
    }
    println!("v202 and v301 crashed at {} results", run.output.get());
    run.output
        .wait_for(at + 2_000, "2000 results after the departures")
        .await;
    let out = run.stop().await;
    assert!(out.len() as u64 >= at + 2_000);
    assert_doubles(&out);
}

/// Property 3, **lazy**: the input counts its reads, and is endless
/// (`take(N)` ends the run). At every read, the values the root has lent
/// and not yet had answered (its lender's `in_flight`, with the one being
/// read) are at most `batch_size × L + C`: `batch_size × L` is what the
/// Limiters of the root's children let through once their leaf counts are
/// in (`batch_size × leaves` each, `L` leaves in all), and `C`, the
/// root's children, one result each between its child's Limiter (which
/// counts it out) and the lender (which then counts it answered). The
/// rest of `read − output`, results waiting for an earlier one (ordered
/// output), is bounded by the map's `read_ahead`, which is checked too.
/// The endless input is read no further than that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_reads_in_proportion_to_the_leaves() {
    const B: usize = 3;
    const N: u64 = 5_000;
    const READ_AHEAD: u64 = 65_536;
    let (relay, root_node, map, root_id) = root(2, B).await;
    let mut members = Vec::new();
    for i in 0..6 {
        members.push(volunteer(relay.url(), 400 + i, 2, B).await);
    }
    wait_settled(&root_node, root_id, &members).await;
    let l = leaves(&members).len() as u64;
    let c = root_node.status().borrow().children as u64;
    let bound = B as u64 * l + c;
    println!(
        "depths {:?}, {l} leaves, {c} children of the root: bound {bound}",
        depths(root_id, &members)
    );

    let read = Arc::new(AtomicU64::new(0));
    let max_in_flight = Arc::new(AtomicU64::new(0));
    let max_gap = Arc::new(AtomicU64::new(0));
    let input = {
        let (read, max_in_flight, m) = (read.clone(), max_in_flight.clone(), map.clone());
        infinite::<_, _, ()>(move || {
            let s = m.lender().state();
            max_in_flight.fetch_max(s.in_flight + s.waiting_to_be_relent + 1, Ordering::Relaxed);
            read.fetch_add(1, Ordering::Relaxed) + 1
        })
    };
    let output = Arc::new(AtomicU64::new(0));
    let record = {
        let (read, output, max_gap) = (read.clone(), output.clone(), max_gap.clone());
        pando_pull_stream::map(move |r: u64| {
            let o = output.fetch_add(1, Ordering::Relaxed) + 1;
            max_gap.fetch_max(read.load(Ordering::Relaxed) - o, Ordering::Relaxed);
            r
        })
    };
    let run = pull!(input, map.clone(), take(N), record, collect::<Vec<_>>());
    let out = tokio::time::timeout(WAIT, run)
        .await
        .expect("the run ended within its deadline")
        .unwrap();
    assert_doubles(&out);
    assert_eq!(out.len() as u64, N);
    let (in_flight, gap, read) = (
        max_in_flight.load(Ordering::Relaxed),
        max_gap.load(Ordering::Relaxed),
        read.load(Ordering::Relaxed),
    );
    println!("most in flight at a read: {in_flight}; most read − output: {gap}; read {read} for {N}");
    assert!(
        in_flight <= bound,
        "in flight {in_flight} > batch_size × leaves + children = {bound}"
    );
    assert!(gap <= READ_AHEAD, "read − output {gap} > read_ahead");
    assert!(
        read <= N + READ_AHEAD,
        "the endless input was read lazily ({read})"
    );
}

/// Property 4, **conservative**: in a run without failures (the root's
/// lender lends nothing again), the leaves record the start and the end of
/// each value: no value is started while it is being computed, and each is
/// computed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conservative_one_leaf_at_a_time_and_exactly_once() {
    const N: u64 = 5_000;
    let (relay, _root, map, root_id) = root(2, 4).await;
    // Per value: computing now, and times computed.
    let seen: Arc<Mutex<HashMap<u64, (bool, u32)>>> = Arc::default();
    let overlaps: Arc<Mutex<Vec<u64>>> = Arc::default();
    let mut members = Vec::new();
    for i in 0..8 {
        let (seen, overlaps) = (seen.clone(), overlaps.clone());
        let f = move |x: u64| {
            let (seen, overlaps) = (seen.clone(), overlaps.clone());
            async move {
                {
                    let mut s = seen.lock().unwrap();
                    let e = s.entry(x).or_default();
                    if e.0 {
                        overlaps.lock().unwrap().push(x);
                    }
                    *e = (true, e.1 + 1);
                }
                tokio::task::yield_now().await;
                seen.lock().unwrap().get_mut(&x).unwrap().0 = false;
                Ok::<_, String>(x * 2)
            }
        };
        members.push(spawn_volunteer(relay.url(), 500 + i, Opts::new(2, 4), f).await);
    }
    wait_joined(root_id, &members, "8 volunteers in the tree").await;
    let out = run_to_end(&map, N, "the run").await;
    assert_doubles(&out);
    assert_eq!(out.len() as u64, N);
    let s = map.lender().state();
    println!("lender: {s:?}");
    assert_eq!(
        (s.relent, s.rejected, s.reclaimed),
        (0, 0, 0),
        "a run without failures"
    );
    assert_eq!(
        *overlaps.lock().unwrap(),
        Vec::<u64>::new(),
        "values computed twice at once"
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len() as u64, N, "every value computed");
    let twice: Vec<_> = seen.iter().filter(|(_, e)| e.1 != 1).collect();
    assert!(twice.is_empty(), "values computed more than once: {twice:?}");
}

/// Property 5, **fault-tolerant**: every volunteer but one leaf (the
/// deepest) crashes after 1000 of 6000 results, its ancestors included;
/// the survivor re-joins at the root, and the run completes exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_tolerant_all_but_one_leaf_crash() {
    const N: u64 = 6_000;
    let (relay, root_node, map, root_id) = root(2, 2).await;
    let mut members = Vec::new();
    for i in 0..6 {
        members.push(volunteer(relay.url(), 600 + i, 2, 2).await);
    }
    wait_settled(&root_node, root_id, &members).await;
    let d = depths(root_id, &members);
    let survivor = leaves(&members)
        .into_iter()
        .max_by_key(|&i| d[i])
        .expect("a leaf");
    println!("depths {d:?}; v{} survives", members[survivor].seed);
    let output = Arc::new(Counter::default());
    let record = {
        let output = output.clone();
        pando_pull_stream::map(move |r: u64| {
            output.incr();
            r
        })
    };
    let run = tokio::spawn(pull!(count(N), map.clone(), record, collect::<Vec<_>>()));
    output.wait_for(1_000, "1000 results").await;
    for (i, m) in members.iter().enumerate() {
        if i != survivor {
            m.task.abort();
        }
    }
    let at_kill = members[survivor].computed.get();
    let Ok(out) = tokio::time::timeout(WAIT, run).await else {
        panic!(
            "waited {WAIT:?} for the run; the survivor: {:?}; the root's lender: {:?}\n{}",
            members[survivor].status.borrow(),
            map.lender().state(),
            map.stats()
        );
    };
    let out = out.unwrap().unwrap();
    assert_doubles(&out);
    assert_eq!(out.len() as u64, N);
    let after = members[survivor].computed.get() - at_kill;
    println!("the survivor computed {after} values after the crashes");
    assert!(after > 0, "the survivor finished the run");
}

/// Property 6, **ordered**: three leaves, one of which answers late: it
/// holds its k-th value until the other two have started `100 k` values
/// (event-controlled, not timed). Results reach the root out of order (the
/// late leaf finishes values after others have finished later ones), yet
/// the output is in input order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_despite_leaves_of_very_different_speeds() {
    const N: u64 = 3_000;
    let (relay, _root, map, root_id) = root(3, 2).await;
    let fast = Arc::new(Counter::default());
    let late_started = Arc::new(Counter::default());
    // (value, from the late leaf), in the order computations finished.
    let finished: Arc<Mutex<Vec<(u64, bool)>>> = Arc::default();
    let mut members = Vec::new();
    for i in 0..2 {
        let (fast, finished) = (fast.clone(), finished.clone());
        let f = move |x: u64| {
            let (fast, finished) = (fast.clone(), finished.clone());
            async move {
                fast.incr();
                tokio::task::yield_now().await;
                finished.lock().unwrap().push((x, false));
                Ok::<_, String>(x * 2)
            }
        };
        members.push(spawn_volunteer(relay.url(), 700 + i, Opts::new(3, 2), f).await);
    }
    let f = {
        let (fast, late_started, finished) = (fast.clone(), late_started.clone(), finished.clone());
        move |x: u64| {
            let (fast, late_started, finished) = (fast.clone(), late_started.clone(), finished.clone());
            async move {
                let k = late_started.incr();
                fast.wait_for((100 * k).min(N / 2), "the fast leaves to go ahead")
                    .await;
                finished.lock().unwrap().push((x, true));
                Ok::<_, String>(x * 2)
            }
        }
    };
    members.push(spawn_volunteer(relay.url(), 710, Opts::new(3, 2), f).await);
    wait_members(&members, "three leaves below the root", |m| {
        depths(root_id, m).iter().all(|d| *d == Some(1))
    })
    .await;
    let out = run_to_end(&map, N, "the run").await;
    assert_doubles(&out);
    assert_eq!(out.len() as u64, N);
    let finished = finished.lock().unwrap();
    let late: Vec<u64> = finished.iter().filter(|e| e.1).map(|e| e.0).collect();
    println!("the late leaf computed {} values", late.len());
    assert!(!late.is_empty(), "the late leaf computed");
    // A value of the late leaf finished after a later value of a fast one.
    let mut max_fast = 0;
    let mut overtaken = 0;
    for &(x, is_late) in finished.iter() {
        if is_late {
            if max_fast > x {
                overtaken += 1;
            }
        } else {
            max_fast = max_fast.max(x);
        }
    }
    println!("{overtaken} values of the late leaf finished after later values");
    assert!(overtaken > 0, "results came out of order at the leaves");
}

/// Property 7, **capability-balanced**: three leaves of the root
/// (`batch_size` 2), one of which holds its values until the other two
/// have started 90% of the run (event-controlled). While it holds, it gets
/// no more than its Limiter's limit (`batch_size × 1` leaf); the fast ones
/// get the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capability_balanced_a_stalled_leaf_gets_its_limit_only() {
    const N: u64 = 2_000;
    const B: usize = 2;
    let (relay, root_node, map, root_id) = root(3, B).await;
    let fast = Arc::new(Counter::default());
    let mut members = Vec::new();
    for i in 0..2 {
        let fast = fast.clone();
        let f = move |x: u64| {
            fast.incr();
            double(x)
        };
        members.push(spawn_volunteer(relay.url(), 800 + i, Opts::new(3, B), f).await);
    }
    let while_held = Arc::new(Counter::default());
    let f = {
        let (fast, while_held) = (fast.clone(), while_held.clone());
        move |x: u64| {
            let (fast, while_held) = (fast.clone(), while_held.clone());
            async move {
                if fast.get() < N * 9 / 10 {
                    while_held.incr();
                }
                fast.wait_for(N * 9 / 10, "the fast leaves to do 90%").await;
                Ok::<_, String>(x * 2)
            }
        }
    };
    members.push(spawn_volunteer(relay.url(), 810, Opts::new(3, B), f).await);
    wait_settled(&root_node, root_id, &members).await;
    assert!(
        depths(root_id, &members).iter().all(|d| *d == Some(1)),
        "three leaves below the root"
    );
    let out = run_to_end(&map, N, "the run").await;
    assert_doubles(&out);
    let slow = members[2].computed.get();
    let fast_each: Vec<u64> = members[..2].iter().map(|m| m.computed.get()).collect();
    println!(
        "the stalled leaf: {} while it held, {slow} in all; the fast ones: {fast_each:?}",
        while_held.get()
    );
    assert!(
        while_held.get() <= B as u64,
        "the stalled leaf got more than its limit"
    );
    assert!(fast.get() >= N * 9 / 10);
    assert!(fast_each.iter().all(|&n| n > slow), "the faster leaves got more");
}

/// Property 8, **bounded connections**: 30 volunteers join a tree of
/// `children_limit` 3 and run a map. Every node (the root too) never had
/// more than 3 child links at once — from its status
/// (`max_child_links`, WebSocket connections open or awaited) and from the
/// application links it was handed (counted from its `ChildConnected` and
/// `ChildDisconnected` events; the root's counted on their way to its
/// map) — and at most one parent link (`ParentConnected` until `Left`;
/// none at the root).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_connections_per_node() {
    const L: usize = 3;
    let (relay, root_node, map, root_id, root_links) = root_counted(L, 2, MapConfig::default()).await;
    let root_events = common::LinkCount::watch(&root_node);
    let mut members = Vec::new();
    for i in 0..30 {
        members.push(volunteer(relay.url(), 900 + i, L, 2).await);
    }
    wait_joined(root_id, &members, "30 volunteers in the tree").await;
    let out = run_to_end(&map, 3_000, "the run").await;
    assert_doubles(&out);
    let rs = root_node.status().borrow().clone();
    println!(
        "root: {} children, max_child_links {}, app links at once {}",
        rs.children,
        rs.max_child_links,
        root_links.max_children()
    );
    assert!(rs.max_child_links <= L && rs.children <= L, "the root: {rs:?}");
    assert!(root_links.max_children() <= L, "the root's app links");
    assert!(root_links.max_children() > 0);
    assert_eq!(root_links.parents(), 0, "the root has no parent link");
    assert!(root_events.max_children() <= L);
    assert_eq!(root_events.max_parents(), 0);
    for m in &members {
        let s = m.status.borrow().clone();
        assert!(
            s.max_child_links <= L && s.children <= L,
            "v{}: {} child links at once",
            m.seed,
            s.max_child_links
        );
        assert!(m.links.max_children() <= L, "v{}: app links", m.seed);
        m.links.wait_parent().await;
        assert_eq!(m.links.max_parents(), 1, "v{}: one parent link", m.seed);
    }
}

/// Property 9, **logarithmic latency**: N = 60 volunteers join one by one
/// a tree of `children_limit` L = 3; every node's depth (the root's
/// children at 1, from the statuses) is at most ⌈log_L N⌉ + 1 = 5, so a
/// value crosses at most that many links to its leaf. A run through the
/// tree then completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logarithmic_latency_depth_bound() {
    const N: usize = 60;
    const L: usize = 3;
    let (relay, _root, map, root_id) = root(L, 2).await;
    let mut members = Vec::new();
    for i in 0..N {
        members.push(volunteer(relay.url(), 1200 + i as u64, L, 2).await);
        wait_joined(root_id, &members, "the newcomer in the tree").await;
    }
    let mut log = 0;
    while L.pow(log) < N {
        log += 1;
    }
    let bound = log as usize + 1;
    let d = depths(root_id, &members);
    println!("N {N}, L {L}: depths {:?}, bound {bound}", histogram(&d));
    assert!(
        d.iter().all(|d| d.is_some_and(|d| d <= bound)),
        "depths {d:?} > {bound}"
    );
    let out = run_to_end(&map, 1_000, "the run").await;
    assert_doubles(&out);
}

/// Property 10, **quick bootstrap** (the tree): 20 volunteers joining at
/// once all become members with one parent link each, every join resolved
/// by the relay and the routing (no retry, no re-join), and a run goes
/// through them. The time a tree of 1000 nodes takes to form is a
/// benchmark: `examples/join_bench.rs`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_bootstrap_every_join_resolved_once() {
    let (relay, _root, map, root_id) = root(2, 2).await;
    let mut members = Vec::new();
    for i in 0..20 {
        members.push(volunteer(relay.url(), 1300 + i, 2, 2).await);
    }
    wait_joined(root_id, &members, "20 volunteers in the tree").await;
    for m in &members {
        m.links.wait_parent().await;
        assert_eq!(m.links.parent_links(), 1, "v{} joined once", m.seed);
        let s = m.status.borrow();
        assert!(matches!(s.state, State::Member { .. }));
    }
    let out = run_to_end(&map, 2_000, "the run").await;
    assert_doubles(&out);
    for m in &members {
        assert_eq!(m.links.parent_links(), 1, "v{} stayed", m.seed);
    }
}

/// Property 10, **quick bootstrap** (a newcomer): a volunteer that joins
/// mid-run (over an endless input) gets its first value, a fresh one past
/// the results already output, without the run restarting: the output
/// goes on in order from 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_bootstrap_a_newcomer_gets_values_mid_run() {
    let (relay, _root, map, root_id) = root(2, 2).await;
    let mut members = Vec::new();
    for i in 0..6 {
        members.push(volunteer(relay.url(), 1300 + i, 2, 2).await);
    }
    wait_joined(root_id, &members, "6 volunteers in the tree").await;
    let run = Run::start(&map);
    run.output.wait_for(300, "300 results").await;
    let first = Arc::new(AtomicU64::new(0));
    let got = Arc::new(Counter::default());
    let newcomer = {
        let (first, got) = (first.clone(), got.clone());
        let f = move |x: u64| {
            if first
                .compare_exchange(0, x, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
            {
                got.incr();
            }
            double(x)
        };
        spawn_volunteer(relay.url(), 1399, Opts::new(2, 2), f).await
    };
    let at_join = run.output.get();
    got.wait_for(1, "the newcomer's first value").await;
    let first = first.load(Ordering::Relaxed);
    println!("joined at {at_join} results; its first value: {first}");
    assert!(first > at_join, "a fresh value, not a restart");
    run.output.wait_for(first + 300, "300 results past it").await;
    let out = run.stop().await;
    assert_doubles(&out);
    newcomer.links.wait_parent().await;
    assert_eq!(newcomer.links.parent_links(), 1);
}

/// Local processing **pauses and resumes** (Algorithms 20-21): the root
/// takes one child, A, which computes locally while its function holds its
/// values. B joins below A; once B computes, A's pause is in effect: the
/// values A started before it (at most its local limit, `batch_size` 2)
/// are released, and A starts nothing new while B computes 200 more
/// values. B leaves; A resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_processing_pauses_for_a_child_and_resumes_after() {
    const B: usize = 2;
    let (relay, _root, map, root_id) = root(1, 2 * B).await;
    let (hold_tx, hold) = tokio::sync::watch::channel(true);
    let f = move |x: u64| {
        let mut hold = hold.clone();
        async move {
            let _ = hold.wait_for(|h| !*h).await;
            Ok::<_, String>(x * 2)
        }
    };
    let a = spawn_volunteer(relay.url(), 1400, Opts::new(2, B), f).await;
    wait_joined(root_id, std::slice::from_ref(&a), "A below the root").await;
    let run = Run::start(&map);
    a.computed.wait_for(B as u64, "A holding its local limit").await;
    let b = volunteer(relay.url(), 1401, 2, B).await;
    b.computed.wait_for(1, "B computing").await;
    let members = [a, b];
    // B computes once its link is up; its status follows.
    wait_members(&members, "B below A", |m| {
        depths(root_id, m) == [Some(1), Some(2)]
    })
    .await;
    let before_pause = members[0].computed.get();
    println!("A started {before_pause} values before the pause");
    assert!(before_pause <= B as u64);
    hold_tx.send_replace(false);
    let b_now = members[1].computed.get();
    members[1]
        .computed
        .wait_for(b_now + 200, "B computing 200 more")
        .await;
    assert_eq!(
        members[0].computed.get(),
        before_pause,
        "A computed locally while it had a child"
    );
    let [a, mut b] = members;
    b.leave().await;
    a.computed
        .wait_for(before_pause + 1, "A resuming local processing")
        .await;
    let at = run.output.get();
    run.output.wait_for(at + 100, "100 more results").await;
    let out = run.stop().await;
    assert_doubles(&out);
    println!("A computed {} values, {} results", a.computed.get(), out.len());
}
