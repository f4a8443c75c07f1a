//! The Limiter around a map against the original `pull-limit` on node, and
//! against the same pipeline without a limiter.

use super::Group;
use crate::bench_support::ns_per_item;
use crate::limiter::{LIMIT, limited, unlimited};
use crate::measure::{Contender, Unit, round_robin};
use crate::report::Row;
use crate::tools::Ctx;

pub(crate) const GROUP: Group = Group {
    name: "limiter",
    about: "count → limit(map, 8) → drain against pull-limit 1.2.2 on node and against no limiter",
    run,
};

fn run(ctx: &Ctx) -> Vec<Row> {
    let n = 1_000_000;
    let mut c = [
        Contender::new("pando-limiter", || Ok(ns_per_item(|| limited(n), n, 1))).warmed_up(),
        Contender::when("pull-limit 1.2.2 (node)", ctx.node("pull-limit"), |node| {
            node.ns_per_item(&["limit"], n)
        }),
        Contender::new("count → map → drain, no limiter", || {
            Ok(ns_per_item(|| unlimited(n), n, 1))
        })
        .warmed_up(),
    ];
    round_robin(ctx.runs, &mut c);
    let what = format!("Limiter: count → limit(map, {LIMIT}) → drain, 10^6 items");
    vec![
        Row::versus(&what, Unit::NsPerItem, &c[0], &c[1]),
        Row::versus(&what, Unit::NsPerItem, &c[0], &c[2]),
    ]
}
