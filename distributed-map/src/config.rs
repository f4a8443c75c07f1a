//! [`MapConfig`]: how a [`DistributedMap`](crate::DistributedMap) runs.

use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

use pando_lend_stream::PoisonPolicy;
use thiserror::Error;

use crate::frame::{CommandMode, DEFAULT_MAX_FRAME};
use crate::join::generate_token;

/// How a [`DistributedMap`](crate::DistributedMap) runs. Build it with
/// [`MapConfig::default`] and change the fields you need.
///
/// ```
/// use std::num::NonZeroUsize;
/// use pando_distributed_map::MapConfig;
///
/// let config = MapConfig { batch_size: NonZeroUsize::new(4).unwrap(), ..MapConfig::default() };
/// assert_eq!(config.token.len(), 32); // a fresh random join token
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug)]
pub struct MapConfig {
    /// The most values a worker holds at once (the Limiter's limit; seed 000
    /// §3.4.3): larger batches hide transmission latency. Default 2.
    pub batch_size: NonZeroUsize,
    /// How often each side sends a heartbeat when idle. Default 1 s.
    pub heartbeat: Duration,
    /// How long without hearing from a worker (or without it reading what
    /// is sent to it) before it is considered dead and its values are lent
    /// again; also the deadline for a new connection's handshake (including
    /// the WebSocket upgrade). Default 10 s.
    pub heartbeat_timeout: Duration,
    /// The per-value deadline, off by default (as in GNU parallel). The
    /// clock starts when a worker starts processing the value; the worker
    /// gives up on it and reports it failed. The master takes a value back
    /// itself if no answer comes within `value_timeout × batch_size +
    /// heartbeat_timeout` of sending it (a late answer is still taken once).
    /// A timed-out value counts as a failure of that value.
    pub value_timeout: Option<Duration>,
    /// Without a `value_timeout`, a value held this long without a result
    /// is logged as a warning naming it and its worker. Default 60 s.
    pub slow_value_warning: Option<Duration>,
    /// The join token, part of the join URL; workers without it are rejected
    /// before any value is sent. Default: 128 random bits, in hex.
    pub token: String,
    /// How many times a value may fail (its function failed or timed out on
    /// it, or its worker died holding it) before it is poisoned. Default 5;
    /// `None` retries forever. A value is poisoned only on its own failures:
    /// see [`PoisonPolicy`].
    pub max_retries: Option<u32>,
    /// What to do with a poisoned value: end the map with an error naming
    /// it (the default), or skip it.
    pub poison: PoisonPolicy,
    /// Output in input order (the default) or as results arrive.
    pub ordered: bool,
    /// The largest frame accepted. Default 16 MiB.
    pub max_frame: usize,
    /// The command the master's workers run, shown to volunteers (`pando work`).
    pub command: Vec<String>,
    /// How workers that run the master's command run it (told in the
    /// `Welcome`): once per value (the default), as a line filter, or once
    /// per block of lines. See also [`MapConfig::command_mode`].
    pub command_mode: CommandMode,
    /// At most this many values read and not yet output (bounded memory
    /// with a slow consumer). Default 65 536.
    pub read_ahead: Option<NonZeroU64>,
    /// Local workers started by [`DistributedMap::with_function`](crate::DistributedMap::with_function):
    /// `None` (the default) is one per core ([`default_workers`]); `Some(0)`
    /// turns local processing off.
    pub local_workers: Option<usize>,
    /// With [`DistributedMap::with_function`](crate::DistributedMap::with_function),
    /// start the local workers only once the first remote worker has joined.
    pub start_idle: bool,
    /// At most this many connections may be in their handshake at once;
    /// beyond it new connections are closed at once, with a log line.
    /// Default 256.
    pub max_pending: usize,
    /// At most this many workers may be connected at once; beyond it a
    /// worker is refused with a `Reject` saying the master is full.
    /// Default 4096.
    pub max_workers: usize,
    /// Majority voting: each value is computed by this many different
    /// workers (different connections), and a result is accepted once
    /// `⌊k/2⌋+1` of them are byte-equal (their postcard encodings). A value
    /// without a majority is lent to workers that have not computed it, up
    /// to [`max_retries`](Self::max_retries); with fewer workers connected
    /// than replicas, values wait (see
    /// [`LenderState::replicas_waiting`](pando_lend_stream::LenderState::replicas_waiting)).
    /// Throughput is divided by `k`. Default 1 (no voting); at most
    /// [`MAX_REPLICAS`]. Replicas defend against independent faulty or
    /// lying workers, not against one person opening `k` connections with
    /// the token: see `docs/SECURITY.md`.
    ///
    /// ```
    /// use pando_distributed_map::{ConfigError, MapConfig};
    /// assert!(MapConfig { replicas: 3, ..MapConfig::default() }.validate().is_ok());
    /// assert_eq!(
    ///     MapConfig { replicas: 0, ..MapConfig::default() }.validate(),
    ///     Err(ConfigError::Replicas(0))
    /// );
    /// ```
    pub replicas: u32,
}

/// The most replicas [`MapConfig::replicas`] accepts: beyond it, the
/// throughput left (divided by the replicas) is of no use.
///
/// ```
/// assert_eq!(pando_distributed_map::MAX_REPLICAS, 15);
/// ```
pub const MAX_REPLICAS: u32 = 15;

impl Default for MapConfig {
    fn default() -> Self {
        MapConfig {
            batch_size: NonZeroUsize::new(2).expect("nonzero"),
            heartbeat: Duration::from_secs(1),
            heartbeat_timeout: Duration::from_secs(10),
            value_timeout: None,
            slow_value_warning: Some(Duration::from_secs(60)),
            token: generate_token(),
            max_retries: Some(5),
            poison: PoisonPolicy::Fail,
            ordered: true,
            max_frame: DEFAULT_MAX_FRAME,
            command: Vec::new(),
            command_mode: CommandMode::PerValue,
            read_ahead: NonZeroU64::new(65_536),
            local_workers: None,
            start_idle: false,
            max_pending: 256,
            max_workers: 4096,
            replicas: 1,
        }
    }
}

/// A [`MapConfig`] that cannot work.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// A duration that must be positive is zero.
    #[error("{0} must be longer than zero")]
    ZeroDuration(&'static str),
    /// The heartbeat timeout is not longer than the heartbeat interval:
    /// idle peers would time out.
    #[error("the heartbeat timeout ({timeout:?}) must be longer than the heartbeat interval ({heartbeat:?})")]
    HeartbeatTimeout {
        /// The interval.
        heartbeat: Duration,
        /// The timeout.
        timeout: Duration,
    },
    /// A limit that must be positive is zero.
    #[error("{0} must be at least 1")]
    ZeroLimit(&'static str),
    /// [`MapConfig::replicas`] is 0 or more than [`MAX_REPLICAS`].
    #[error("replicas must be between 1 and {MAX_REPLICAS}, not {0}")]
    Replicas(u32),
    /// [`MapConfig::replicas`] is more than [`MapConfig::max_workers`]: no
    /// value could ever get its replicas.
    #[error("{replicas} replicas need {replicas} workers, but at most {max_workers} may connect")]
    ReplicasOverWorkers {
        /// The replicas asked for.
        replicas: u32,
        /// The most workers.
        max_workers: usize,
    },
    /// The join token is empty: anyone could join.
    #[error("the join token must not be empty")]
    EmptyToken,
    /// The frame limit is too small for the protocol's own frames.
    #[error("the frame limit ({0} bytes) must be at least 1024 bytes")]
    FrameLimit(usize),
}

impl MapConfig {
    /// Sets how workers that run the master's command ([`MapConfig::command`])
    /// run it; the master tells each worker in its `Welcome`.
    ///
    /// ```
    /// use pando_distributed_map::{CommandMode, MapConfig};
    /// let config = MapConfig { command: vec!["awk".into(), "{print $1}".into()], ..MapConfig::default() }
    ///     .command_mode(CommandMode::Lines);
    /// assert_eq!(config.command_mode, CommandMode::Lines);
    /// ```
    #[must_use]
    pub fn command_mode(mut self, mode: CommandMode) -> Self {
        self.command_mode = mode;
        self
    }

    /// Checks that the configuration can work.
    ///
    /// ```
    /// use std::time::Duration;
    /// use pando_distributed_map::{ConfigError, MapConfig};
    /// let config = MapConfig { heartbeat_timeout: Duration::from_millis(500), ..MapConfig::default() };
    /// assert!(matches!(config.validate(), Err(ConfigError::HeartbeatTimeout { .. })));
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.heartbeat.is_zero() {
            return Err(ConfigError::ZeroDuration("the heartbeat interval"));
        }
        if self.heartbeat_timeout <= self.heartbeat {
            return Err(ConfigError::HeartbeatTimeout {
                heartbeat: self.heartbeat,
                timeout: self.heartbeat_timeout,
            });
        }
        if self.value_timeout.is_some_and(|t| t.is_zero()) {
            return Err(ConfigError::ZeroDuration("the value timeout"));
        }
        if self.slow_value_warning.is_some_and(|t| t.is_zero()) {
            return Err(ConfigError::ZeroDuration("the slow-value warning"));
        }
        if self.token.is_empty() {
            return Err(ConfigError::EmptyToken);
        }
        if self.max_pending == 0 {
            return Err(ConfigError::ZeroLimit("max_pending"));
        }
        if self.max_workers == 0 {
            return Err(ConfigError::ZeroLimit("max_workers"));
        }
        if !(1..=MAX_REPLICAS).contains(&self.replicas) {
            return Err(ConfigError::Replicas(self.replicas));
        }
        if self.replicas as usize > self.max_workers {
            return Err(ConfigError::ReplicasOverWorkers {
                replicas: self.replicas,
                max_workers: self.max_workers,
            });
        }
        if self.max_frame < 1024 {
            return Err(ConfigError::FrameLimit(self.max_frame));
        }
        Ok(())
    }
}

/// The default number of local workers: one per core (the available
/// parallelism), at least 1.
///
/// ```
/// assert!(pando_distributed_map::default_workers() >= 1);
/// ```
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
