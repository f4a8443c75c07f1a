//! pull-stream: count → map → drain against `futures::stream`, a plain loop
//! and the original `pull-stream` on node.

use super::Group;
use crate::bench_support::ns_per_item;
use crate::measure::{Contender, Unit, round_robin};
use crate::pipeline::{futures_stream, iterator_loop, pull_stream};
use crate::report::Row;
use crate::tools::Ctx;

pub(crate) const GROUP: Group = Group {
    name: "pipeline",
    about: "pull-stream count → map → drain against futures::stream, a loop and pull-stream 3.7.0 on node",
    run,
};

fn run(ctx: &Ctx) -> Vec<Row> {
    let n = 1_000_000;
    let mut c = [
        Contender::new("pando-pull-stream", || Ok(ns_per_item(|| pull_stream(n), n, 1))).warmed_up(),
        Contender::new("futures::stream", || Ok(ns_per_item(|| futures_stream(n), n, 1))).warmed_up(),
        Contender::when("pull-stream 3.7.0 (node)", ctx.node("pull-stream"), |node| {
            node.ns_per_item(&["pipeline"], n)
        }),
        Contender::new("iterator loop", || Ok(ns_per_item(|| iterator_loop(n), n, 1))).warmed_up(),
    ];
    round_robin(ctx.runs, &mut c);
    let what = "pull-stream: count → map → drain, 10^6 items";
    vec![
        Row::versus(what, Unit::NsPerItem, &c[0], &c[1]),
        Row::versus(what, Unit::NsPerItem, &c[0], &c[2]),
        Row::versus(what, Unit::NsPerItem, &c[0], &c[3]),
    ]
}
