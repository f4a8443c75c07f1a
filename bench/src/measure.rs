//! Samples, medians and spreads, and the round-robin that measures the
//! contenders of a row alternately, run after run, so that a slow spell of
//! the machine hits both sides of a ratio alike.

use std::fmt::Write as _;

/// What a figure counts, and which way is better.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Nanoseconds per item (lower is better).
    NsPerItem,
    /// Items per second (higher is better).
    ItemsPerSec,
    /// Wall-clock seconds of a whole job (lower is better).
    Seconds,
    /// Mebibytes of peak resident memory (lower is better).
    MiB,
}

impl Unit {
    /// Whether a smaller figure is the better one.
    pub(crate) fn lower_is_better(self) -> bool {
        !matches!(self, Unit::ItemsPerSec)
    }

    /// `value` with as many decimals as it deserves, without the unit.
    pub(crate) fn number(self, value: f64) -> String {
        match self {
            Unit::ItemsPerSec => grouped(value.round() as u64),
            Unit::NsPerItem | Unit::Seconds | Unit::MiB => {
                if value >= 100.0 {
                    format!("{value:.0}")
                } else if value >= 10.0 {
                    format!("{value:.1}")
                } else {
                    format!("{value:.2}")
                }
            }
        }
    }

    /// The unit's name after a figure.
    pub(crate) fn suffix(self) -> &'static str {
        match self {
            Unit::NsPerItem => "ns/item",
            Unit::ItemsPerSec => "items/s",
            Unit::Seconds => "s",
            Unit::MiB => "MiB",
        }
    }
}

/// `1234567` as `1 234 567`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// The median of `values` (the mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// `median [min-max]` of `values` in `unit`; the bracket only when there are
/// several values.
pub(crate) fn summary(values: &[f64], unit: Unit) -> String {
    let mut out = format!("{} {}", unit.number(median(values)), unit.suffix());
    if values.len() > 1 {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let _ = write!(out, " [{}–{}]", unit.number(min), unit.number(max));
    }
    out
}

/// What became of one contender.
#[derive(Clone, Debug)]
pub(crate) enum Outcome {
    /// One figure per run.
    Measured(Vec<f64>),
    /// Not run: what is missing (`… not found`, `… not supported by this build`).
    Skipped(String),
    /// Run, and it went wrong: what happened.
    Failed(String),
}

type Sample<'a> = Box<dyn FnMut() -> Result<f64, String> + 'a>;

/// One side of one or more rows: a name and a way to take one sample.
pub(crate) struct Contender<'a> {
    name: String,
    sample: Option<Sample<'a>>,
    warm_up: bool,
    outcome: Outcome,
}

impl<'a> Contender<'a> {
    /// A contender whose every sample is `sample()`.
    pub(crate) fn new(name: impl Into<String>, sample: impl FnMut() -> Result<f64, String> + 'a) -> Self {
        Contender {
            name: name.into(),
            sample: Some(Box::new(sample)),
            warm_up: false,
            outcome: Outcome::Measured(Vec::new()),
        }
    }

    /// A contender that cannot run here, and why.
    pub(crate) fn skipped(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Contender {
            name: name.into(),
            sample: None,
            warm_up: false,
            outcome: Outcome::Skipped(reason.into()),
        }
    }

    /// `new` when `available` is `Ok`, else `skipped` with its reason.
    pub(crate) fn when<T>(
        name: impl Into<String>,
        available: Result<T, String>,
        sample: impl FnMut(&T) -> Result<f64, String> + 'a,
    ) -> Self
    where
        T: 'a,
    {
        let mut sample = sample;
        match available {
            Ok(t) => Contender::new(name, move || sample(&t)),
            Err(reason) => Contender::skipped(name, reason),
        }
    }

    /// Take one unmeasured sample before the first measured one (for cheap,
    /// in-process contenders: caches, allocator, lazy statics).
    pub(crate) fn warmed_up(mut self) -> Self {
        self.warm_up = true;
        self
    }

    /// The contender's name, as the table shows it.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// What was measured, or why not.
    pub(crate) fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    fn take_sample(&mut self) {
        let Some(sample) = self.sample.as_mut() else {
            return;
        };
        match sample() {
            Ok(value) if value.is_finite() => {
                if let Outcome::Measured(values) = &mut self.outcome {
                    values.push(value);
                }
            }
            Ok(value) => {
                self.outcome = Outcome::Failed(format!("a sample was {value}"));
                self.sample = None;
            }
            Err(reason) => {
                self.outcome = Outcome::Failed(reason);
                self.sample = None;
            }
        }
    }
}

/// Measures `contenders` round-robin, `runs` times each: run 1 of each, then
/// run 2 of each, and so on. A contender that fails once is not run again.
pub(crate) fn round_robin(runs: usize, contenders: &mut [Contender<'_>]) {
    for c in contenders.iter_mut().filter(|c| c.warm_up) {
        if let Some(Err(reason)) = c.sample.as_mut().map(|sample| sample()) {
            c.outcome = Outcome::Failed(reason);
            c.sample = None;
        }
    }
    for _ in 0..runs {
        for c in contenders.iter_mut() {
            c.take_sample();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_spreads() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(
            summary(&[12.5, 10.31, 14.0], Unit::NsPerItem),
            "12.5 ns/item [10.3–14.0]"
        );
        assert_eq!(summary(&[1234567.0], Unit::ItemsPerSec), "1 234 567 items/s");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1 000");
    }

    #[test]
    fn round_robin_alternates_and_stops_a_failed_contender() {
        let order = std::cell::RefCell::new(Vec::new());
        let mut calls = 0;
        let mut contenders = [
            Contender::new("a", || {
                order.borrow_mut().push('a');
                Ok(1.0)
            })
            .warmed_up(),
            Contender::new("b", || {
                order.borrow_mut().push('b');
                calls += 1;
                if calls == 2 {
                    Err("broke".to_string())
                } else {
                    Ok(2.0)
                }
            }),
            Contender::skipped("c", "c not found"),
        ];
        round_robin(3, &mut contenders);
        assert_eq!(order.borrow().iter().collect::<String>(), "aababa");
        assert!(matches!(contenders[0].outcome(), Outcome::Measured(v) if v.len() == 3));
        assert!(matches!(contenders[1].outcome(), Outcome::Failed(r) if r == "broke"));
        assert!(matches!(contenders[2].outcome(), Outcome::Skipped(r) if r == "c not found"));
    }
}
