//! The table's rows, in groups that `--only` selects by name.
//!
//! A later issue adds its rows in one place: a file here with a `GROUP`
//! (a name, a line of help and a function from the context to rows) and one
//! line in [`GROUPS`].

mod cli;
mod lender;
mod limiter;
mod map;
mod pipeline;

use crate::report::Row;
use crate::tools::Ctx;

pub(crate) use map::memory_child;

/// A group of rows measured together.
#[derive(Debug)]
pub(crate) struct Group {
    /// The name `--only` selects it by.
    pub(crate) name: &'static str,
    /// What it measures, for `--help`.
    pub(crate) about: &'static str,
    /// Measures the rows.
    pub(crate) run: fn(&Ctx) -> Vec<Row>,
}

/// Every group, in the table's order.
pub(crate) const GROUPS: &[Group] = &[
    pipeline::GROUP,
    limiter::GROUP,
    lender::GROUP,
    map::THROUGHPUT,
    map::SCALING,
    cli::GROUP,
    map::MEMORY,
];
