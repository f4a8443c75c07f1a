//! Many executions: the runner behind `cargo run -p pando-checker` and the
//! test blocks.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{Config, Execution, Faults, Poison, Property, Scenario, SubStreamModule, run};

/// A block of executions: run `i` (from 0) uses seed `seed + i`, with the
/// parameters derived from that seed ([`Config::varied`]) unless fixed here.
///
/// ```
/// use pando_checker::{Campaign, Faults, TestError};
/// use pando_lend_stream::StreamLender;
///
/// let mut campaign = Campaign::new(200, 1);
/// campaign.count = Some(3);
/// campaign.faults = Some(Faults::NONE); // the original tester's model
/// campaign.max_retries = Some(None);
/// let summary = campaign.run::<StreamLender<u64, u64, TestError>>(&|failed| panic!("{failed}"));
/// assert_eq!(summary.to_string(), "200 executions, 0 failures");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Campaign {
    /// The number of executions.
    pub runs: u64,
    /// The seed of the first execution.
    pub seed: u64,
    /// A fixed number of values.
    pub count: Option<u64>,
    /// A fixed parallelism.
    pub parallelism: Option<usize>,
    /// A fixed maximum number of sub-streams.
    pub max_sub_streams: Option<usize>,
    /// A fixed order.
    pub ordered: Option<bool>,
    /// A fixed scenario.
    pub scenario: Option<Scenario>,
    /// A fixed read-ahead bound (`Some(None)`: no bound).
    pub read_ahead: Option<Option<u64>>,
    /// A fixed retry cap (`Some(None)`: none).
    pub max_retries: Option<Option<u32>>,
    /// A fixed poison policy.
    pub poison: Option<Poison>,
    /// A fixed set of faults.
    pub faults: Option<Faults>,
    /// A fixed number of replicas.
    pub replicas: Option<u32>,
    /// A step bound other than the default.
    pub step_bound: Option<u64>,
    /// The number of threads running executions (each execution is
    /// single-threaded and deterministic).
    pub jobs: usize,
    /// How many failed executions the summary keeps (the first ones, by seed).
    pub keep: usize,
}

impl Campaign {
    /// `runs` executions from `seed`, everything varied, on one thread.
    ///
    /// ```
    /// let c = pando_checker::Campaign::new(10, 5);
    /// assert_eq!((c.runs, c.seed, c.jobs), (10, 5, 1));
    /// ```
    pub fn new(runs: u64, seed: u64) -> Self {
        Campaign {
            runs,
            seed,
            count: None,
            parallelism: None,
            max_sub_streams: None,
            ordered: None,
            scenario: None,
            read_ahead: None,
            max_retries: None,
            poison: None,
            faults: None,
            replicas: None,
            step_bound: None,
            jobs: 1,
            keep: 10,
        }
    }

    /// The same campaign on every core this machine offers (its available
    /// parallelism, at least 1).
    ///
    /// ```
    /// let c = pando_checker::Campaign::new(10, 5).on_every_core();
    /// assert!(c.jobs >= 1);
    /// ```
    #[must_use]
    pub fn on_every_core(mut self) -> Self {
        self.jobs = std::thread::available_parallelism().map_or(1, |n| n.get());
        self
    }

    /// The configuration of run `i`.
    ///
    /// ```
    /// use pando_checker::{Campaign, Config};
    /// let mut c = Campaign::new(10, 100);
    /// assert_eq!(c.config(3), Config::varied(103));
    /// c.parallelism = Some(2);
    /// assert_eq!(c.config(3).parallelism, 2);
    /// ```
    pub fn config(&self, i: u64) -> Config {
        let mut c = Config::varied(self.seed.wrapping_add(i));
        if let Some(count) = self.count {
            c.count = count;
        }
        if let Some(p) = self.parallelism {
            c = c.parallelism(p);
            c.max_sub_streams = c.max_sub_streams.max(c.parallelism);
        }
        if let Some(m) = self.max_sub_streams {
            c = c.max_sub_streams(m);
        }
        if let Some(o) = self.ordered {
            c.ordered = o;
        }
        c.scenario = self.scenario;
        if let Some(bound) = self.read_ahead {
            c = c.read_ahead(bound);
        }
        if let Some(max) = self.max_retries {
            c.max_retries = max;
        }
        if let Some(poison) = self.poison {
            c.poison = poison;
        }
        if let Some(faults) = self.faults {
            c.faults = faults;
        }
        // Replicas last: they need as many sub-streams at once.
        let k = self.replicas.unwrap_or(c.replicas);
        c = c.replicas(k);
        if let Some(b) = self.step_bound {
            c.step_bound = b;
        }
        c
    }

    /// Runs the executions of module `M`, calling `on_failure` for each
    /// failed one as it happens (from the worker threads).
    ///
    /// See [`Campaign`] for an example.
    pub fn run<M: SubStreamModule>(&self, on_failure: &(dyn Fn(&Execution) + Sync)) -> Summary {
        let start = Instant::now();
        let next = AtomicU64::new(0);
        let failures = AtomicU64::new(0);
        let kept = Mutex::new(Vec::new());
        let by_property = Mutex::new(Vec::<(Property, u64, u64)>::new());
        let worker = || {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= self.runs {
                    break;
                }
                let execution = run::<M>(&self.config(i));
                if !execution.is_ok() {
                    failures.fetch_add(1, Ordering::Relaxed);
                    on_failure(&execution);
                    if let Some(f) = &execution.failure {
                        let mut by = by_property.lock().unwrap_or_else(|p| p.into_inner());
                        match by.iter_mut().find(|(p, _, _)| *p == f.property) {
                            Some((_, n, first)) => {
                                *n += 1;
                                *first = (*first).min(execution.config.seed);
                            }
                            None => by.push((f.property, 1, execution.config.seed)),
                        }
                    }
                    kept.lock().unwrap_or_else(|p| p.into_inner()).push(execution);
                }
            }
        };
        std::thread::scope(|scope| {
            for _ in 1..self.jobs.max(1) {
                scope.spawn(worker);
            }
            worker();
        });
        let mut failed = kept.into_inner().unwrap_or_else(|p| p.into_inner());
        failed.sort_by_key(|e| e.config.seed);
        failed.truncate(self.keep);
        let mut by_property = by_property.into_inner().unwrap_or_else(|p| p.into_inner());
        by_property.sort_by_key(|&(_, n, _)| std::cmp::Reverse(n));
        Summary {
            executions: self.runs,
            failures: failures.into_inner(),
            failed,
            by_property,
            elapsed: start.elapsed(),
        }
    }
}

/// The outcome of a [`Campaign`]. Its `Display` is the runner's last line,
/// `N executions, F failures`.
///
/// ```
/// use pando_checker::{Campaign, TestError};
/// use pando_lend_stream::StreamLender;
///
/// let mut campaign = Campaign::new(20, 9);
/// campaign.faults = Some(pando_checker::Faults::NONE);
/// campaign.max_retries = Some(None);
/// let summary = campaign.run::<StreamLender<u64, u64, TestError>>(&|_| {});
/// assert!(summary.is_ok(), "{:?}", summary.failed);
/// assert_eq!(summary.executions, 20);
/// ```
#[derive(Clone, Debug)]
pub struct Summary {
    /// The number of executions.
    pub executions: u64,
    /// The number of failed executions.
    pub failures: u64,
    /// The first failed executions, by seed (at most [`Campaign::keep`]).
    pub failed: Vec<Execution>,
    /// The failures by violated property: the property, how many
    /// executions, and the smallest failing seed.
    pub by_property: Vec<(Property, u64, u64)>,
    /// How long the campaign took.
    pub elapsed: Duration,
}

impl Summary {
    /// Whether every execution passed.
    ///
    /// See [`Summary`] for an example.
    pub fn is_ok(&self) -> bool {
        self.failures == 0
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} executions, {} failures", self.executions, self.failures)
    }
}
