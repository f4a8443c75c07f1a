//! The StreamLender with K in-process sub-streams against `buffered(K)` and
//! against the original `pull-lend-stream` on node.

use super::Group;
use crate::bench_support::ns_per_item;
use crate::lender::{buffered, lender};
use crate::measure::{Contender, Unit, round_robin};
use crate::report::Row;
use crate::tools::Ctx;

pub(crate) const GROUP: Group = Group {
    name: "lender",
    about: "the StreamLender at K = 1, 8, 64 against buffered(K) and pull-lend-stream 1.2.2 on node",
    run,
};

fn run(ctx: &Ctx) -> Vec<Row> {
    let (n, n_js, sizes) = if ctx.quick {
        (100_000, 20_000, ("10^5", "2·10^4"))
    } else {
        (1_000_000, 200_000, ("10^6", "2·10^5"))
    };
    let mut rows = Vec::new();
    for k in [1usize, 8, 64] {
        let ks = k.to_string();
        let mut c = [
            Contender::new("pando-lend-stream", || Ok(ns_per_item(|| lender(k, n), n, 1))).warmed_up(),
            Contender::new(format!("buffered({k})"), || {
                Ok(ns_per_item(|| buffered(k, n), n, 1))
            })
            .warmed_up(),
            Contender::when(
                format!(
                    "pull-lend-stream 1.2.2 (node), {} items, async map (process.nextTick)",
                    sizes.1
                ),
                ctx.node("pull-lend-stream"),
                |node| node.ns_per_item(&["lend", &ks], n_js),
            ),
        ];
        round_robin(ctx.runs, &mut c);
        let what = format!(
            "StreamLender, K = {k} sub-streams doing an async map, {} items",
            sizes.0
        );
        rows.push(Row::versus(&what, Unit::NsPerItem, &c[0], &c[1]));
        rows.push(Row::versus(&what, Unit::NsPerItem, &c[0], &c[2]));
    }
    rows
}
