//! The scalable DistributedMap over real Genet nodes on loopback
//! WebSocket: values go down a tree of three levels or more, results come
//! back up, and nodes are killed mid-run, intermediate ones included.
//! Nothing is lost or duplicated and the output is in order. Every wait is
//! on an event, with a deadline only to fail with a message.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{WAIT, depths, next, root, volunteer, wait_members};
use pando_pull_stream::{collect, count, pull};

/// 10^5 values through 12 nodes of at most 3 children (three levels below
/// the root), killing three random nodes mid-run, the first an
/// intermediate one. The seed is printed; `PANDO_TREE_SEED` replays the
/// choice of victims.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_nodes_lose_nothing_in_a_three_level_tree() {
    let seed: u64 = std::env::var("PANDO_TREE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    println!("seed {seed} (replay with PANDO_TREE_SEED={seed})");
    let (relay, _root, map, root_id) = root(3, 8).await;
    let mut members = Vec::new();
    for i in 0..12 {
        members.push(volunteer(relay.url(), 100 + i, 3, 8).await);
    }
    wait_members(&members, "a tree of three levels", |m| {
        let d = depths(root_id, m);
        d.iter().all(Option::is_some) && d.iter().flatten().any(|&d| d >= 2)
    })
    .await;
    println!("depths before the run: {:?}", depths(root_id, &members));

    const N: u64 = 100_000;
    let done = Arc::new(AtomicUsize::new(0));
    let (kill_tx, mut kill_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let record = {
        let done = done.clone();
        pando_pull_stream::map(move |r: u64| {
            let k = done.fetch_add(1, Ordering::Relaxed) + 1;
            if k % 20_000 == 0 && k < 80_000 {
                let _ = kill_tx.send(k);
            }
            r
        })
    };
    let run = tokio::spawn(pull!(count(N), map.clone(), record, collect::<Vec<_>>()));

    let mut rng = seed;
    let mut killed = Vec::new();
    let mut intermediate_killed = false;
    while let Some(at) = kill_rx.recv().await {
        let d = depths(root_id, &members);
        // The first victim has children: an intermediate node.
        let parents: Vec<usize> = (0..members.len())
            .filter(|&i| !killed.contains(&i) && members[i].status.borrow().children > 0)
            .collect();
        let alive: Vec<usize> = (0..members.len()).filter(|i| !killed.contains(i)).collect();
        let pool = if killed.is_empty() && !parents.is_empty() {
            &parents
        } else {
            &alive
        };
        let victim = pool[(next(&mut rng) % pool.len() as u64) as usize];
        let had_children = members[victim].status.borrow().children;
        intermediate_killed |= had_children > 0;
        println!(
            "after {at} results: killing v{} (depth {:?}, {had_children} children)",
            100 + victim,
            d[victim]
        );
        members[victim].task.abort();
        killed.push(victim);
        if killed.len() == 3 {
            break;
        }
    }
    let out = tokio::time::timeout(WAIT, run)
        .await
        .expect("the run ended within its deadline")
        .unwrap()
        .unwrap();
    assert!(intermediate_killed, "an intermediate node was killed");
    assert_eq!(out.len() as u64, N, "every value has one result");
    assert!(
        out.iter().zip(1..=N).all(|(&r, x)| r == x * 2),
        "results in order"
    );
    let computed: Vec<u64> = members.iter().map(|m| m.computed.get()).collect();
    println!("computed per node: {computed:?}");
    assert!(computed.iter().sum::<u64>() >= N);
}

/// An orphan re-joins: with the root full (one child), B joins below A;
/// A is killed mid-run; B re-joins at the root and finishes the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_orphan_rejoins_and_finishes_the_run() {
    let (relay, _root, map, root_id) = root(1, 4).await;
    let a = volunteer(relay.url(), 200, 2, 4).await;
    wait_members(std::slice::from_ref(&a), "A below the root", |m| {
        depths(root_id, m)[0] == Some(1)
    })
    .await;
    let b = volunteer(relay.url(), 201, 2, 4).await;
    let members = vec![a, b];
    wait_members(&members, "B below A", |m| depths(root_id, m)[1] == Some(2)).await;
    let (kill_tx, mut kill_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let done = Arc::new(AtomicUsize::new(0));
    let record = {
        let done = done.clone();
        pando_pull_stream::map(move |r: u64| {
            if done.fetch_add(1, Ordering::Relaxed) + 1 == 2_000 {
                let _ = kill_tx.send(());
            }
            r
        })
    };
    let run = tokio::spawn(pull!(count(10_000), map.clone(), record, collect::<Vec<_>>()));
    kill_rx.recv().await.unwrap();
    members[0].task.abort();
    let b_at_kill = members[1].computed.get();
    let out = tokio::time::timeout(WAIT, run)
        .await
        .expect("the run ended within its deadline")
        .unwrap()
        .unwrap();
    assert_eq!(out, (1..=10_000).map(|x| x * 2).collect::<Vec<u64>>());
    let b_after = members[1].computed.get();
    println!("B computed {b_at_kill} before A was killed, {b_after} in all");
    assert!(b_after > b_at_kill, "B computed after re-joining");
}
