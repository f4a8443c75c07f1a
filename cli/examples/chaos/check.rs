//! The check of a run's output: each input's result exactly once, in order.

/// What a run's output did wrong.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Inputs without their result in the output (a value skipped as
    /// poisoned, or never written, or whose result was wrong).
    pub(crate) lost: u64,
    /// Results written more than once: every copy after the first.
    pub(crate) duplicated: u64,
    /// First copies written after the result of a later input.
    pub(crate) out_of_order: u64,
    /// Lines that are no input's result.
    pub(crate) wrong: u64,
}

impl Tally {
    /// Whether the output was exactly right.
    pub(crate) fn clean(&self) -> bool {
        *self == Tally::default()
    }

    /// Adds `other` to `self`.
    pub(crate) fn add(&mut self, other: Tally) {
        self.lost += other.lost;
        self.duplicated += other.duplicated;
        self.out_of_order += other.out_of_order;
        self.wrong += other.wrong;
    }
}

/// Checks an output of `values` lines: `output` holds, line by line, the
/// index of the input whose result the line is (`None`: no input's).
///
/// ```text
/// [0, 1, 2]        clean
/// [0, 2]           1 lost
/// [0, 1, 1, 2]     1 duplicated
/// [1, 0, 2]        1 out of order (0 came after 1)
/// ```
pub(crate) fn tally(values: usize, output: &[Option<usize>]) -> Tally {
    let mut seen = vec![false; values];
    let mut t = Tally::default();
    let mut highest: Option<usize> = None;
    for line in output {
        let Some(i) = *line else {
            t.wrong += 1;
            continue;
        };
        if seen[i] {
            t.duplicated += 1;
            continue;
        }
        seen[i] = true;
        if highest.is_some_and(|h| i < h) {
            t.out_of_order += 1;
        }
        highest = highest.max(Some(i));
    }
    t.lost = seen.iter().filter(|s| !**s).count() as u64;
    t
}
