//! `pando work --name NAME`: the name a worker gives in its `Hello`, shown in
//! the master's logs and on the monitoring page; the host name by default.

mod common;

use std::time::Duration;

use common::{Killed, cat_master, join_url, next_matching, worker_with};

const DEADLINE: Duration = Duration::from_secs(60);

fn worker(url: &str, name: Option<&str>) -> Killed {
    let extra = match name {
        Some(name) => vec!["--name", name],
        None => vec![],
    };
    Killed(worker_with(url, &extra, &[]))
}

#[test]
fn a_worker_joins_with_its_name_or_the_host_name() {
    // stdin stays open: the run goes on while the workers join.
    let (master, _stdin, rx) = cat_master();
    let _master = Killed(master);
    let next = |what: &str, pred: &dyn Fn(&str) -> bool| next_matching(&rx, DEADLINE, what, pred);
    let first = next("the join URL", &|l| l.contains("pando work '"));
    let url = join_url(&first);

    let _named = worker(&url, Some("lab bench 7"));
    next("the named worker's join", &|l| {
        l.contains("worker lab bench 7 (") && l.contains(") joined")
    });

    let host = pando_distributed_map::join::hostname();
    let _unnamed = worker(&url, None);
    let expected = format!("worker {host} (");
    next(&format!("a worker named {host:?} (the host name)"), &|l| {
        l.contains(&expected) && l.contains(") joined")
    });
}
