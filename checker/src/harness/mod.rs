//! The seeded interleaving harness (seed 000, §4.6 and Appendix A) for
//! modules with sub-streams.

use std::fmt;
use std::future::Future;

use pando_pull_stream::{Answer, Source};

mod campaign;
mod driver;
#[cfg(feature = "lender")]
mod lender;
mod modules;

pub use campaign::{Campaign, Summary};
pub use modules::{HarnessInput, TestError, TestResults, TestSource};

/// A module with sub-streams, as the harness drives it: a through whose
/// output is a source of `u64` results, from which any number of sub-streams
/// can be lent at any time, each a source of lent values and a sink for
/// their results (seed 000, Abstraction 2). [`StreamLender`](pando_lend_stream::StreamLender)
/// implements it; so can any module built on the same model.
///
/// The harness connects the module's input to a [`TestSource`] producing
/// `1, 2, 3, …`, lends sub-streams whose test transformers return, for the
/// value `v` with id `id`, the result [`result(id, work(v))`](SubStreamModule::result)
/// (see [`work`]), and checks that the output carries those results, in
/// input order if the module is ordered. A value's id is its position in the
/// input, from 0.
///
/// ```
/// use pando_checker::{Config, SubStreamModule, TestError, run};
/// use pando_lend_stream::StreamLender;
///
/// // Any implementation is driven the same way:
/// fn check<M: SubStreamModule>(seed: u64) -> bool {
///     run::<M>(&Config::new(seed)).is_ok()
/// }
/// assert!(check::<StreamLender<u64, u64, TestError>>(1));
/// ```
pub trait SubStreamModule: Sized {
    /// The module's output: the results.
    type Output: Source<Item = u64, Error = Self::OutputError> + Unpin;
    /// The error type of the output.
    type OutputError: fmt::Debug;
    /// What a sub-stream's source lends: a value with its id.
    type Lent: fmt::Debug;
    /// What a sub-stream's sink takes back: a result with the id of its value.
    type Result: fmt::Debug;
    /// A sub-stream's source of lent values.
    type SubSource: Source<Item = Self::Lent, Error = TestError> + Unpin;
    /// A concurrent ask on a sub-stream's source, that owns what it needs.
    type Ask: Future<Output = Answer<Self::Lent, TestError>> + Unpin;
    /// The future that pulls a sub-stream's results into the module.
    type SinkFuture: Future<Output = Result<(), Self::SinkError>>;
    /// The error a [`SinkFuture`](SubStreamModule::SinkFuture) resolves to.
    type SinkError: fmt::Debug;

    /// The module's outcome when it stops reading its input early
    /// ([`close`](SubStreamModule::close)); resolves to the input's answer.
    type CloseFuture: Future<Output = Result<(), TestError>> + Unpin;
    /// The future of [`settled`](SubStreamModule::settled).
    type Settled: Future<Output = ()> + Unpin;

    /// Whether the module can take a value back unanswered
    /// ([`reclaim`](SubStreamModule::reclaim)); the harness reclaims only if so.
    const CAN_RECLAIM: bool = false;

    /// A new module with these settings (order, read-ahead bound, retry cap).
    fn create(settings: &Settings) -> Self;
    /// Connects the module's input; returns its output.
    fn connect(&mut self, input: HarnessInput) -> Self::Output;
    /// Lends a new sub-stream whose results are read from `results`: its
    /// source, and the future that pulls the results into the module.
    fn lend_stream(&mut self, results: TestResults<Self::Result>) -> (Self::SubSource, Self::SinkFuture);
    /// Makes a concurrent ask on a sub-stream's source.
    fn ask(source: &Self::SubSource) -> Self::Ask;
    /// The sub-stream reports that it failed to process value `id`, which it
    /// holds (its own failure; a later result from it for `id` is unexpected).
    /// Returns whether the module accepted the rejection.
    fn reject(source: &Self::SubSource, id: u64) -> bool;
    /// The sub-stream gives value `id` back unanswered (a timeout): its own
    /// failure, lent again; a late result from it is accepted once if the
    /// value still has no result. Returns whether the module accepted it.
    /// Only called if [`CAN_RECLAIM`](SubStreamModule::CAN_RECLAIM).
    fn reclaim(source: &Self::SubSource, id: u64) -> bool {
        let _ = (source, id);
        false
    }
    /// Stops reading the input; the values read still get their results.
    fn close(&self) -> Self::CloseFuture;
    /// Gives up on the sub-streams: values without a result end the output
    /// with an error.
    fn cut_off(&self);
    /// Resolves when every value read has its result (or the module was
    /// terminated or cut off) and the input has ended.
    fn settled(&self) -> Self::Settled;
    /// The values the module holds for its read-ahead bound (read, not yet
    /// output, and not skipped), if it reports them.
    fn held(&self) -> Option<u64> {
        None
    }
    /// The id and the value of a lent item.
    fn lent(item: &Self::Lent) -> (u64, u64);
    /// The result for the value with id `id`, whose computed result is `result`.
    fn result(id: u64, result: u64) -> Self::Result;
    /// The error with which the test sink fails the output (scenario [`Scenario::Fail`]).
    fn output_failure() -> Self::OutputError;
    /// What an error of the output reports.
    fn output_error(error: &Self::OutputError) -> OutputError;
    /// How a sub-stream's sink future ended.
    fn sink_outcome(outcome: &Result<(), Self::SinkError>) -> SinkOutcome;
    /// A description of the module's state, for "no progress" reports.
    fn describe(&self) -> String {
        String::new()
    }
}

/// What an error on the module's output reports, as the harness checks it.
///
/// ```
/// use pando_checker::{OutputError, SubStreamModule, TestError};
/// use pando_lend_stream::{LendError, StreamLender};
///
/// type L = StreamLender<u64, u64, TestError>;
/// let e = LendError::Input(TestError::Source);
/// assert_eq!(<L as SubStreamModule>::output_error(&e), OutputError::Input(TestError::Source));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutputError {
    /// The input's error.
    Input(TestError),
    /// The value with this id failed more than the retry cap allows.
    Poisoned {
        /// The value's id.
        id: u64,
    },
    /// The module was cut off; the value with id `first` is the first without a result.
    Closed {
        /// The first value without a result.
        first: u64,
    },
    /// The input panicked.
    InputPanicked,
    /// Anything else, described.
    Other(String),
}

/// What happens to a value that fails more than the retry cap allows.
///
/// ```
/// assert_eq!(pando_checker::Poison::Skip.name(), "skip");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "runner", derive(clap::ValueEnum))]
pub enum Poison {
    /// The output ends with an error naming the value.
    #[default]
    Fail,
    /// The value is left out of the output.
    Skip,
}

impl Poison {
    /// The name used on the command line.
    ///
    /// ```
    /// assert_eq!(pando_checker::Poison::Fail.name(), "fail");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Poison::Fail => "fail",
            Poison::Skip => "skip",
        }
    }
}

/// The settings of the module under test, from the [`Config`].
///
/// ```
/// use pando_checker::{Config, Poison};
/// let s = Config::new(1).read_ahead(Some(2)).max_retries(Some(1), Poison::Skip).settings();
/// assert_eq!((s.read_ahead, s.max_retries, s.poison), (Some(2), Some(1), Poison::Skip));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Whether the output follows input order.
    pub ordered: bool,
    /// At most this many values held (read, not output, not skipped); `None`: no bound.
    pub read_ahead: Option<u64>,
    /// The retry cap: a value may fail this many times; `None`: retry forever.
    pub max_retries: Option<u32>,
    /// What happens beyond the cap.
    pub poison: Poison,
    /// How many sub-streams compute each value (majority voting); 1: none.
    pub replicas: u32,
}

/// A fault or feature the harness may drive in an execution, beyond the
/// original tester.
///
/// ```
/// use pando_checker::Fault;
/// assert_eq!(Fault::CutOff.name(), "cut-off");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "runner", derive(clap::ValueEnum))]
pub enum Fault {
    /// Sub-streams reject values they hold (a failed value, without ending).
    Reject,
    /// Sub-streams give values back unanswered (a timeout), and may answer later.
    Reclaim,
    /// The lender is closed (its input aborted) at a random time.
    Close,
    /// After a close, the sub-streams are cut off (`close_within`'s deadline).
    CutOff,
    /// A sub-stream stops polling one of its pending asks, without dropping it.
    Stall,
    /// The input panics instead of answering.
    Panic,
    /// The test sink ends the output early, even when the source ends the stream.
    EarlyEnd,
    /// `settled()` is awaited from a random time on, and must resolve.
    Settled,
    /// With replicas, sub-streams that are not correct sometimes answer a
    /// wrong result (a lie shared by every liar, or one of their own), which
    /// the majority must outvote.
    Lie,
}

impl Fault {
    /// Every fault.
    pub const ALL: [Fault; 9] = [
        Fault::Reject,
        Fault::Reclaim,
        Fault::Close,
        Fault::CutOff,
        Fault::Stall,
        Fault::Panic,
        Fault::EarlyEnd,
        Fault::Settled,
        Fault::Lie,
    ];

    /// The name used on the command line.
    ///
    /// ```
    /// assert_eq!(pando_checker::Fault::EarlyEnd.name(), "early-end");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Fault::Reject => "reject",
            Fault::Reclaim => "reclaim",
            Fault::Close => "close",
            Fault::CutOff => "cut-off",
            Fault::Stall => "stall",
            Fault::Panic => "panic",
            Fault::EarlyEnd => "early-end",
            Fault::Settled => "settled",
            Fault::Lie => "lie",
        }
    }
}

/// A set of [`Fault`]s. Its `Display` is the command-line form,
/// `reject,close` or `none`.
///
/// ```
/// use pando_checker::{Fault, Faults};
/// let f = Faults::NONE.with(Fault::Close).with(Fault::Stall);
/// assert!(f.contains(Fault::Close) && !f.contains(Fault::Panic));
/// assert_eq!(f.to_string(), "close,stall");
/// assert_eq!(Faults::NONE.to_string(), "none");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Faults(u16);

impl Faults {
    /// No fault: the original tester.
    pub const NONE: Faults = Faults(0);
    /// Every fault.
    pub const ALL: Faults = Faults((1 << Fault::ALL.len()) - 1);

    fn bit(fault: Fault) -> u16 {
        1 << Fault::ALL.iter().position(|&f| f == fault).unwrap_or(0)
    }

    /// This set with `fault`.
    pub fn with(self, fault: Fault) -> Faults {
        Faults(self.0 | Self::bit(fault))
    }

    /// Whether `fault` is in the set.
    pub fn contains(self, fault: Fault) -> bool {
        self.0 & Self::bit(fault) != 0
    }

    /// The set of these faults.
    ///
    /// ```
    /// use pando_checker::{Fault, Faults};
    /// assert_eq!(Faults::of(&Fault::ALL), Faults::ALL);
    /// ```
    pub fn of(faults: &[Fault]) -> Faults {
        faults.iter().fold(Faults::NONE, |set, &f| set.with(f))
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Fault::ALL
            .iter()
            .filter(|&&x| self.contains(x))
            .map(|x| x.name())
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

/// How a sub-stream's sink future ended, as the harness expects it: `Ok`
/// when the results ended with `done` or the module stopped them, `Failed`
/// when they ended with `error`, `Unexpected(id)` when the module rejected a
/// result for a value the sub-stream did not hold.
///
/// ```
/// use pando_checker::{SinkOutcome, SubStreamModule, TestError};
/// use pando_lend_stream::{StreamLender, SubStreamError};
///
/// type L = StreamLender<u64, u64, TestError>;
/// let e = Err(SubStreamError::UnexpectedResult { sub: 0, id: 9 });
/// assert_eq!(<L as SubStreamModule>::sink_outcome(&e), SinkOutcome::Unexpected(9));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SinkOutcome {
    /// The results ended normally, or the module stopped them.
    Ok,
    /// The results ended with an error.
    Failed,
    /// The module rejected the result with this id.
    Unexpected(u64),
}

/// The computation of the test transformers: the result of value `v` is
/// `work(v)`. It is injective, so the harness can tell which value every
/// output came from.
///
/// ```
/// assert_eq!(pando_checker::work(4), 13);
/// ```
pub const fn work(value: u64) -> u64 {
    value.wrapping_mul(3).wrapping_add(1)
}

/// The value whose result is `result`, if any.
pub(crate) fn unwork(result: u64) -> Option<u64> {
    (result % 3 == 1 && result > 1).then_some(result / 3)
}

/// The four execution scenarios of seed 000 (Algorithm 26): who ends the
/// stream, and how.
///
/// ```
/// use pando_checker::Scenario;
/// assert_eq!(Scenario::ALL.len(), 4);
/// assert!(Scenario::Done.source_ends());
/// assert!(!Scenario::Fail.source_ends());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "runner", derive(clap::ValueEnum))]
pub enum Scenario {
    /// The source produces `count` values then `done`; the sink reads to the end.
    Done,
    /// The source produces `count` values then `error`; the sink reads to the end.
    Error,
    /// The source is infinite; the sink reads `count` results then aborts.
    Abort,
    /// The source is infinite; the sink reads `count` results then fails.
    Fail,
}

impl Scenario {
    /// Every scenario.
    ///
    /// ```
    /// use pando_checker::Scenario;
    /// assert_eq!(Scenario::ALL[0], Scenario::Done);
    /// ```
    pub const ALL: [Scenario; 4] = [Scenario::Done, Scenario::Error, Scenario::Abort, Scenario::Fail];

    /// Whether the source ends the stream (the seeds' `normalSequence`).
    ///
    /// ```
    /// use pando_checker::Scenario;
    /// assert!(Scenario::Error.source_ends());
    /// ```
    pub fn source_ends(self) -> bool {
        matches!(self, Scenario::Done | Scenario::Error)
    }

    /// The name used on the command line: `done`, `error`, `abort` or `fail`.
    ///
    /// ```
    /// use pando_checker::Scenario;
    /// assert_eq!(Scenario::Abort.name(), "abort");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Done => "done",
            Scenario::Error => "error",
            Scenario::Abort => "abort",
            Scenario::Fail => "fail",
        }
    }

    /// The scenario named `name` (see [`name`](Scenario::name)).
    ///
    /// ```
    /// use pando_checker::Scenario;
    /// assert_eq!(Scenario::from_name("fail"), Some(Scenario::Fail));
    /// assert_eq!(Scenario::from_name("x"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The parameters of one execution. Everything else (the scenario unless
/// fixed, and every choice of the interleaving) follows from the seed, so
/// the same configuration replays the same execution.
///
/// ```
/// use pando_checker::Config;
/// let c = Config::new(7).count(3).parallelism(2).max_sub_streams(4);
/// assert_eq!((c.seed, c.count, c.parallelism, c.max_sub_streams), (7, 3, 2, 4));
/// // Parameters derived from the seed, as the runner does by default:
/// assert_eq!(Config::varied(7).seed, 7);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The seed of the interleaving.
    pub seed: u64,
    /// The number of values (or of results read, when the sink ends the stream).
    pub count: u64,
    /// The maximum number of sub-streams active at the same time.
    pub parallelism: usize,
    /// The maximum number of sub-streams created in total (at least 1). The
    /// last one is *correct*: it never fails, so that the fault-tolerance
    /// property requires every result.
    pub max_sub_streams: usize,
    /// Whether the module's output must follow input order.
    pub ordered: bool,
    /// The scenario; `None` chooses it from the seed.
    pub scenario: Option<Scenario>,
    /// The module's read-ahead bound; `None`: no bound.
    pub read_ahead: Option<u64>,
    /// The module's retry cap; `None`: retry forever.
    pub max_retries: Option<u32>,
    /// What happens to a value beyond the retry cap.
    pub poison: Poison,
    /// How many sub-streams compute each value (majority voting); 1: none.
    /// The last `replicas` sub-streams created are correct, and the
    /// parallelism is at least `replicas`.
    pub replicas: u32,
    /// The faults and features driven beyond the original tester.
    pub faults: Faults,
    /// The maximum number of steps before the execution is reported as
    /// making no progress.
    pub step_bound: u64,
    /// Keep the rendered trace even if the execution succeeds.
    pub trace: bool,
}

impl Config {
    /// The default parameters (5 values, parallelism 3, at most 5
    /// sub-streams, ordered, scenario from the seed) with this seed.
    ///
    /// ```
    /// use pando_checker::Config;
    /// assert_eq!(Config::new(1).count, 5);
    /// ```
    pub fn new(seed: u64) -> Self {
        Config {
            seed,
            count: 5,
            parallelism: 3,
            max_sub_streams: 5,
            ordered: true,
            scenario: None,
            read_ahead: None,
            max_retries: None,
            poison: Poison::Fail,
            replicas: 1,
            faults: Faults::NONE,
            step_bound: 100_000,
            trace: false,
        }
    }

    /// Parameters derived from the seed (independently of the interleaving's
    /// own choices): 0 to 8 values, parallelism 1 to 4, up to 4 more
    /// sub-streams in total than the parallelism, ordered three times in four;
    /// a read-ahead bound (1 to 3 mostly) in three executions out of five, a
    /// retry cap of 0 to 2 with either poison policy in three out of five,
    /// and each [`Fault`] in one execution out of two.
    ///
    /// ```
    /// use pando_checker::Config;
    /// let c = Config::varied(99);
    /// assert!(c.count <= 8 && (1..=4).contains(&c.parallelism));
    /// assert!(c.max_sub_streams >= c.parallelism);
    /// assert_eq!(c, Config::varied(99));
    /// ```
    pub fn varied(seed: u64) -> Self {
        let mut rng = crate::rng::SplitMix64::new(seed ^ 0x5DEE_CE66_D1CE_5EED);
        let parallelism = 1 + rng.below(4);
        let count = rng.below(9) as u64;
        let max_sub_streams = parallelism + rng.below(5);
        let ordered = rng.below(4) != 0;
        let read_ahead = match rng.below(10) {
            0..=3 => None,
            4..=8 => Some(1 + rng.below(3) as u64),
            _ => Some(4 + rng.below(5) as u64),
        };
        let max_retries = (rng.below(5) >= 2).then(|| rng.below(3) as u32);
        let poison = if rng.percent(50) {
            Poison::Fail
        } else {
            Poison::Skip
        };
        let faults = Fault::ALL
            .into_iter()
            .filter(|_| rng.percent(50))
            .fold(Faults::NONE, Faults::with);
        // Replicas from a stream of their own: the parameters above are
        // those of the seed before replicas existed.
        let mut votes = crate::rng::SplitMix64::new(seed ^ 0x2E91_1CA5_0F7E_5EED);
        let replicas = match votes.below(4) {
            0 | 1 => 1,
            2 => 2,
            _ => 3,
        };
        Config {
            count,
            parallelism,
            max_sub_streams,
            ordered,
            read_ahead,
            max_retries,
            poison,
            faults,
            ..Config::new(seed)
        }
        .replicas(replicas)
    }

    /// Sets the number of replicas (at least 1); the parallelism and the
    /// maximum number of sub-streams grow to at least that many.
    ///
    /// ```
    /// let c = pando_checker::Config::new(0).parallelism(1).replicas(3);
    /// assert_eq!((c.replicas, c.parallelism, c.max_sub_streams), (3, 3, 5));
    /// ```
    pub fn replicas(mut self, k: u32) -> Self {
        self.replicas = k.max(1);
        self.parallelism = self.parallelism.max(self.replicas as usize);
        self.max_sub_streams = self.max_sub_streams.max(self.replicas as usize);
        self
    }

    /// Sets the number of values.
    ///
    /// ```
    /// assert_eq!(pando_checker::Config::new(0).count(9).count, 9);
    /// ```
    pub fn count(mut self, count: u64) -> Self {
        self.count = count;
        self
    }

    /// Sets the maximum number of sub-streams active at the same time.
    ///
    /// ```
    /// assert_eq!(pando_checker::Config::new(0).parallelism(1).parallelism, 1);
    /// ```
    pub fn parallelism(mut self, parallelism: usize) -> Self {
        self.parallelism = parallelism.max(1);
        self
    }

    /// Sets the maximum number of sub-streams created in total.
    ///
    /// ```
    /// assert_eq!(pando_checker::Config::new(0).max_sub_streams(8).max_sub_streams, 8);
    /// ```
    pub fn max_sub_streams(mut self, max: usize) -> Self {
        self.max_sub_streams = max.max(1);
        self
    }

    /// Sets whether the output must follow input order.
    ///
    /// ```
    /// assert!(!pando_checker::Config::new(0).ordered(false).ordered);
    /// ```
    pub fn ordered(mut self, ordered: bool) -> Self {
        self.ordered = ordered;
        self
    }

    /// Sets the read-ahead bound (`Some(0)` counts as no bound).
    ///
    /// ```
    /// assert_eq!(pando_checker::Config::new(0).read_ahead(Some(3)).read_ahead, Some(3));
    /// ```
    pub fn read_ahead(mut self, bound: Option<u64>) -> Self {
        self.read_ahead = bound.filter(|&b| b > 0);
        self
    }

    /// Sets the retry cap and the poison policy.
    ///
    /// ```
    /// use pando_checker::{Config, Poison};
    /// assert_eq!(Config::new(0).max_retries(Some(2), Poison::Skip).max_retries, Some(2));
    /// ```
    pub fn max_retries(mut self, max_retries: Option<u32>, poison: Poison) -> Self {
        self.max_retries = max_retries;
        self.poison = poison;
        self
    }

    /// Sets the faults driven.
    ///
    /// ```
    /// use pando_checker::{Config, Faults};
    /// assert_eq!(Config::new(0).faults(Faults::ALL).faults, Faults::ALL);
    /// ```
    pub fn faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// The module's settings.
    ///
    /// See [`Settings`] for an example.
    pub fn settings(&self) -> Settings {
        Settings {
            ordered: self.ordered,
            read_ahead: self.read_ahead,
            max_retries: self.max_retries,
            poison: self.poison,
            replicas: self.replicas,
        }
    }

    /// Fixes the scenario.
    ///
    /// ```
    /// use pando_checker::{Config, Scenario};
    /// assert_eq!(Config::new(0).scenario(Scenario::Fail).scenario, Some(Scenario::Fail));
    /// ```
    pub fn scenario(mut self, scenario: Scenario) -> Self {
        self.scenario = Some(scenario);
        self
    }

    /// Sets the step bound.
    ///
    /// ```
    /// assert_eq!(pando_checker::Config::new(0).step_bound(10).step_bound, 10);
    /// ```
    pub fn step_bound(mut self, bound: u64) -> Self {
        self.step_bound = bound;
        self
    }

    /// Keeps the trace even when the execution succeeds.
    ///
    /// ```
    /// use pando_checker::{Config, run};
    /// use pando_lend_stream::StreamLender;
    /// let e = run::<StreamLender<u64, u64, pando_checker::TestError>>(&Config::new(3).trace(true));
    /// assert!(e.trace.unwrap().contains("Output:ask⟨1⟩"));
    /// ```
    pub fn trace(mut self, trace: bool) -> Self {
        self.trace = trace;
        self
    }

    /// The command that replays this execution.
    ///
    /// ```
    /// let c = pando_checker::Config::new(5).count(2);
    /// assert!(c.replay_command().contains("--seed 5 --runs 1 --count 2"));
    /// ```
    pub fn replay_command(&self) -> String {
        let mut cmd = format!(
            "cargo run --release -p pando-checker -- --seed {} --runs 1 --count {} --parallelism {} --max-sub-streams {}",
            self.seed, self.count, self.parallelism, self.max_sub_streams
        );
        if !self.ordered {
            cmd.push_str(" --unordered");
        }
        if let Some(s) = self.scenario {
            cmd.push_str(" --scenario ");
            cmd.push_str(s.name());
        }
        match self.read_ahead {
            Some(b) => cmd.push_str(&format!(" --read-ahead {b}")),
            None => cmd.push_str(" --read-ahead none"),
        }
        match self.max_retries {
            Some(m) => cmd.push_str(&format!(" --max-retries {m} --poison {}", self.poison.name())),
            None => cmd.push_str(" --max-retries none"),
        }
        if self.replicas > 1 {
            cmd.push_str(&format!(" --replicas {}", self.replicas));
        }
        cmd.push_str(&format!(" --faults {}", self.faults));
        if self.step_bound != Config::new(0).step_bound {
            cmd.push_str(&format!(" --step-bound {}", self.step_bound));
        }
        cmd.push_str(" --trace");
        cmd
    }
}

/// The properties the harness checks in every execution.
///
/// ```
/// use pando_checker::Property;
/// assert_eq!(Property::Lazy.to_string(), "lazy");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Property {
    /// The pull-stream protocol on every interface (the checker's invariants).
    Protocol,
    /// Results come out in input order (ordered modules).
    Ordered,
    /// Every result comes out once, and only results of values read.
    ExactlyOnce,
    /// Every value read gets its result, even if sub-streams fail, as long as
    /// one sub-stream is correct (the last one is).
    FaultTolerant,
    /// The output terminates, with the answer the scenario calls for.
    OutputTerminated,
    /// The input is asked only for a sub-stream's ask: input asks never
    /// outnumber sub-stream asks.
    Lazy,
    /// A value is lent to at most one live sub-stream at a time, and never back to one
    /// that was taken it back unanswered and may still answer it; with `k`
    /// replicas, to at most `k` at a time, never twice to one sub-stream
    /// (one that holds it, answered it, or may still answer it), and no
    /// more copies than its replicas, failures and votes call for.
    Conservative,
    /// With replicas: a result is output only once `⌊k/2⌋+1` sub-streams
    /// answered it equal (the model counts the votes as the lender sees
    /// them), and it is that result.
    Majority,
    /// The sub-streams' ends and answers are as documented (lent values,
    /// termination confirmations, the outcome of the sink futures).
    SubStreams,
    /// The execution ends: no "no progress" state before the output and
    /// every sub-stream terminated, within the step bound.
    Progress,
    /// No lost wake-up: a task that was not woken cannot make progress.
    WakeUps,
    /// A value is poisoned (skipped, or named by the output's error) only if
    /// it is a real culprit: its own failures took it over the retry cap,
    /// failures shared with other values never do (the blame rule).
    Blame,
    /// The module never holds more values than its read-ahead bound.
    Bounded,
    /// `settled()` resolves once the output ended, and not before the
    /// values read have their results (or the module was terminated or cut off).
    Settled,
    /// No panic but the input's own (a chosen fault) reaches the harness.
    NoPanic,
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Property::Protocol => "protocol",
            Property::Ordered => "ordered",
            Property::ExactlyOnce => "exactly once",
            Property::FaultTolerant => "fault tolerant",
            Property::OutputTerminated => "output terminated",
            Property::Lazy => "lazy",
            Property::Conservative => "conservative",
            Property::Majority => "majority",
            Property::SubStreams => "sub-streams",
            Property::Progress => "progress",
            Property::WakeUps => "wake-ups",
            Property::Blame => "blame",
            Property::Bounded => "memory bound",
            Property::Settled => "settled",
            Property::NoPanic => "no panic",
        })
    }
}

/// A violated property, with what happened.
///
/// ```
/// use pando_checker::{Failure, Property};
/// let f = Failure { property: Property::Lazy, message: "input asked 2 times".into() };
/// assert_eq!(f.to_string(), "lazy violated: input asked 2 times");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The property.
    pub property: Property,
    /// What happened.
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} violated: {}", self.property, self.message)
    }
}

/// The outcome of one execution.
///
/// Its `Display` gives the seed and parameters, the scenario, and for a
/// failure the violated property, the replay command and the event trace.
///
/// ```
/// use pando_checker::{Config, TestError, run};
/// use pando_lend_stream::StreamLender;
///
/// let e = run::<StreamLender<u64, u64, TestError>>(&Config::new(11));
/// assert!(e.is_ok(), "{e}");
/// assert!(e.steps > 0);
/// ```
#[derive(Clone, Debug)]
pub struct Execution {
    /// The configuration.
    pub config: Config,
    /// The scenario played.
    pub scenario: Scenario,
    /// The number of steps taken.
    pub steps: u64,
    /// The sub-streams created.
    pub sub_streams: usize,
    /// The first property violated, if any.
    pub failure: Option<Failure>,
    /// The event trace in the seeds' notation, interleaved with the
    /// harness's own actions: kept for failures, or if [`Config::trace`] is set.
    pub trace: Option<String>,
}

impl Execution {
    /// Whether every property held.
    ///
    /// See [`Execution`] for an example.
    pub fn is_ok(&self) -> bool {
        self.failure.is_none()
    }
}

impl fmt::Display for Execution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        write!(
            f,
            "seed {} (count {}, parallelism {}, max sub-streams {}, {}, scenario {}, read-ahead {}, retries {}, replicas {}, faults {}): ",
            c.seed,
            c.count,
            c.parallelism,
            c.max_sub_streams,
            if c.ordered { "ordered" } else { "unordered" },
            self.scenario.name(),
            c.read_ahead.map_or("none".to_string(), |b| b.to_string()),
            c.max_retries
                .map_or("none".to_string(), |m| format!("{m} then {}", c.poison.name())),
            c.replicas,
            c.faults,
        )?;
        match &self.failure {
            None => writeln!(f, "ok, {} steps, {} sub-streams", self.steps, self.sub_streams)?,
            Some(failure) => {
                writeln!(f, "FAILED after {} steps", self.steps)?;
                writeln!(f, "  {failure}")?;
                writeln!(f, "  replay: {}", c.replay_command())?;
            }
        }
        if let Some(trace) = &self.trace {
            f.write_str(trace)?;
        }
        Ok(())
    }
}

/// Runs one execution of module `M` with this configuration.
///
/// ```
/// use pando_checker::{Config, Scenario, TestError, run};
/// use pando_lend_stream::StreamLender;
///
/// for scenario in Scenario::ALL {
///     let config = Config::new(2024).count(4).scenario(scenario);
///     let e = run::<StreamLender<u64, u64, TestError>>(&config);
///     assert!(e.is_ok(), "{e}");
/// }
/// ```
pub fn run<M: SubStreamModule>(config: &Config) -> Execution {
    driver::execute::<M>(config)
}
