//! A node's parameters, with the seeds' defaults.

use std::time::Duration;

use thiserror::Error;

/// The default `children_limit`: seed 000, line 5726 ("a deployment
/// parameter with a default of 10") and SPEC.md.
///
/// ```
/// assert_eq!(pando_genet::DEFAULT_CHILDREN_LIMIT, 10);
/// ```
pub const DEFAULT_CHILDREN_LIMIT: usize = 10;

/// The default reporting interval: 3 s, the interval the seeds' deployments
/// used (seed 000, lines 6517-6518: "We used an interval of 3 seconds
/// between reports"; seed 004, §IV-B2).
///
/// ```
/// assert_eq!(pando_genet::DEFAULT_REPORTING_INTERVAL.as_secs(), 3);
/// ```
pub const DEFAULT_REPORTING_INTERVAL: Duration = Duration::from_secs(3);

/// The default candidate timeout: 60 s (seed 000, lines 5772-5773: "the
/// parent node will remove the potential candidate after a configurable
/// timeout, with a default value of 60 seconds"; seed 004, §II).
///
/// ```
/// assert_eq!(pando_genet::DEFAULT_CANDIDATE_TIMEOUT.as_secs(), 60);
/// ```
pub const DEFAULT_CANDIDATE_TIMEOUT: Duration = Duration::from_secs(60);

/// The default bound on join requests a node holds for candidates that have
/// not connected yet. Beyond it, new ones are dropped and reported.
pub const DEFAULT_MAX_STORED: usize = 1024;

/// Automatic re-join after the parent is lost or a join times out: the
/// original left it to the user (seed 000, lines 6076-6077).
///
/// The `k`-th attempt in a row waits `min(initial · 2^k, max)`, plus up to
/// half of that again as seeded jitter, so that the orphans of one failure
/// do not all hit the root at once.
///
/// ```
/// use std::time::Duration;
/// use pando_genet::Backoff;
/// let b = Backoff::default();
/// assert_eq!(b.initial, Duration::from_millis(500));
/// assert_eq!(b.max, Duration::from_secs(30));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first re-join.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
        }
    }
}

/// A node's parameters (Abstraction 4: `ChildrenLimit`, `ReportingInterval`,
/// plus the timeouts the seeds describe in prose).
///
/// ```
/// use pando_genet::Config;
/// let c = Config::default();
/// assert_eq!(c.children_limit, 10);
/// assert_eq!(c.reporting_interval.as_secs(), 3);
/// assert_eq!(c.candidate_timeout.as_secs(), 60);
/// assert!(c.rejoin.is_none());
/// c.validate().unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The most children (connected or connecting) a node has at once.
    pub children_limit: usize,
    /// How often a node reports its number of leaves.
    pub reporting_interval: Duration,
    /// How long a candidate child may take to connect before it is dropped.
    pub candidate_timeout: Duration,
    /// How long a joiner waits for its parent link before giving up. Also
    /// how long a node holds a join request for a candidate that has not
    /// connected. Defaults to the candidate timeout.
    pub join_timeout: Duration,
    /// The most join requests a node holds at once.
    pub max_stored: usize,
    /// Re-join automatically (with this backoff) after losing the parent or
    /// timing out; `None` (the default, as in the seeds) leaves it to the user.
    pub rejoin: Option<Backoff>,
    /// Whether this node takes children (the default). A node that cannot
    /// be reached by others (a browser tab or a worker without a listening
    /// address, over WebSocket) sets it to `false`: it joins as a leaf, and
    /// its parent never routes joiners to it.
    pub accepts_children: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            children_limit: DEFAULT_CHILDREN_LIMIT,
            reporting_interval: DEFAULT_REPORTING_INTERVAL,
            candidate_timeout: DEFAULT_CANDIDATE_TIMEOUT,
            join_timeout: DEFAULT_CANDIDATE_TIMEOUT,
            max_stored: DEFAULT_MAX_STORED,
            rejoin: None,
            accepts_children: true,
        }
    }
}

/// A [`Config`] that cannot work, naming the field.
///
/// ```
/// use pando_genet::{Config, ConfigError};
/// let c = Config { children_limit: 0, ..Config::default() };
/// assert_eq!(c.validate(), Err(ConfigError::ZeroChildrenLimit));
/// ```
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `children_limit` is 0: nobody could ever join.
    #[error("children_limit must be at least 1")]
    ZeroChildrenLimit,
    /// A duration that must be positive is zero.
    #[error("{0} must be longer than zero")]
    ZeroDuration(&'static str),
}

impl Config {
    /// Checks the parameters.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pando_genet::{Config, ConfigError};
    /// let c = Config { reporting_interval: Duration::ZERO, ..Config::default() };
    /// assert_eq!(c.validate(), Err(ConfigError::ZeroDuration("reporting_interval")));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.children_limit == 0 {
            return Err(ConfigError::ZeroChildrenLimit);
        }
        for (name, d) in [
            ("reporting_interval", self.reporting_interval),
            ("candidate_timeout", self.candidate_timeout),
            ("join_timeout", self.join_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        if let Some(b) = self.rejoin {
            if b.initial.is_zero() {
                return Err(ConfigError::ZeroDuration("rejoin.initial"));
            }
        }
        Ok(())
    }
}
