//! The worker (seed 000, Algorithm 15): connect to a master, then apply a
//! function to the values it sends. This is the thin adapter around the
//! [`WorkerSession`] core: every protocol decision is the core's.

use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures::FutureExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::codec::Codec;
use crate::error::JoinError;
use crate::frame::{CommandMode, DEFAULT_MAX_FRAME};
use crate::io::{FrameIo, Step, now};
use crate::join::split_join_url;
use crate::session::{SessionError, WorkerEvent, WorkerSession, WorkerSessionConfig};
use crate::transport::{Connector, TransportError};

/// A worker: joins a master with [`connect`](Worker::connect), then
/// processes the values it sends with [`Session::run`].
///
/// ```no_run
/// use pando_distributed_map::Worker;
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let session = Worker::new("laptop").connect("ws://192.0.2.1:9000/?token=…").await?;
/// println!("the master runs {:?}", session.command());
/// let summary = session.run(|x: u64| async move { Ok::<_, String>(x * x) }).await?;
/// println!("{} values processed", summary.done);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Worker {
    name: String,
    max_frame: usize,
    handshake_timeout: Duration,
    jobs: usize,
    reconnect: Option<Reconnect>,
}

/// How a [`Worker`] reconnects when its master cannot be reached or goes
/// away ([`Worker::reconnect`]): an option of its own, off by default.
///
/// Waits grow exponentially from [`initial_delay`](Reconnect::initial_delay)
/// to [`max_delay`](Reconnect::max_delay), each with a random part ("equal
/// jitter": half the delay, plus up to as much again) drawn from a seeded
/// generator, so that the workers of a master that restarts do not all come
/// back at the same instant, and a test replays by its seed. The worker gives
/// up, with the last error, after [`max_attempts`](Reconnect::max_attempts)
/// failed attempts in a row or [`max_duration`](Reconnect::max_duration)
/// without a master, whichever comes first. A session that loses its master
/// after lasting at least `max_delay` starts the count over (the first
/// attempt is then at once); one that lasted less counts as a failed attempt,
/// so that a master that drops its workers as soon as they join is not
/// hammered.
///
/// Only the loss of the master is retried: a connection refused, reset or
/// closed, a handshake or heartbeat timeout. A refusal (wrong token, another
/// protocol version, a full master), a protocol error or a master that stops
/// with an error of its own end the worker as without the option.
///
/// ```
/// use std::time::Duration;
/// use pando_distributed_map::{Reconnect, Worker};
/// let policy = Reconnect::default()
///     .max_attempts(Some(20))
///     .max_duration(Some(Duration::from_secs(600)))
///     .delays(Duration::from_millis(100), Duration::from_secs(10))
///     .seed(7);
/// assert_eq!(policy.max_attempts, Some(20));
/// let _worker = Worker::new("laptop").reconnect(policy);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reconnect {
    /// Give up after this many failed attempts in a row (`None`: no limit).
    /// Default 10.
    pub max_attempts: Option<u32>,
    /// Give up after this long without a master, counted from the loss or
    /// the first attempt (`None`: no limit). Default 10 minutes.
    pub max_duration: Option<Duration>,
    /// The first wait's base (the wait is between half of it and all of
    /// it; at least 1 ms). Default 250 ms.
    pub initial_delay: Duration,
    /// The largest base: the waits stop doubling there. Default 30 s.
    pub max_delay: Duration,
    /// The seed of the jitter's generator. Default: drawn from the operating
    /// system.
    pub seed: u64,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            max_attempts: Some(10),
            max_duration: Some(Duration::from_secs(600)),
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
            seed: getrandom::u64().unwrap_or(0x5eed),
        }
    }
}

impl Reconnect {
    /// Gives up after `max` failed attempts in a row (`None`: no limit).
    ///
    /// See [`Reconnect`] for an example.
    #[must_use]
    pub fn max_attempts(mut self, max: Option<u32>) -> Self {
        self.max_attempts = max;
        self
    }

    /// Gives up after `max` without a master (`None`: no limit).
    ///
    /// See [`Reconnect`] for an example.
    #[must_use]
    pub fn max_duration(mut self, max: Option<Duration>) -> Self {
        self.max_duration = max;
        self
    }

    /// The first wait's base and the largest one (at least the first).
    ///
    /// See [`Reconnect`] for an example.
    #[must_use]
    pub fn delays(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_delay = initial;
        self.max_delay = max.max(initial);
        self
    }

    /// The seed of the jitter, to replay a run.
    ///
    /// See [`Reconnect`] for an example.
    #[must_use]
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The base of the wait after `failures` failed attempts (1 for the
    /// first): `initial_delay` doubled `failures - 1` times, at most
    /// `max_delay`.
    fn base(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        // At least a millisecond: a zero delay would retry in a tight loop.
        let first = self.initial_delay.max(Duration::from_millis(1));
        first
            .saturating_mul(1 << doublings)
            .min(self.max_delay.max(first))
    }
}

/// The waits of a [`Reconnect`] policy: attempts failed so far, since
/// when, and the jitter's generator. [`Worker::run_with`] keeps one for a
/// whole run; a caller that runs its own loop of sessions (as `pando work`
/// does, to check each master's command) keeps one too.
///
/// ```
/// use std::time::Duration;
/// use pando_distributed_map::{Backoff, JoinError, Reconnect, session::SessionError};
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let policy = Reconnect::default().max_attempts(Some(3)).seed(1);
/// let mut backoff = Backoff::new(&policy);
/// let lost = JoinError::Master(SessionError::Disconnected);
/// assert!(backoff.wait("ws://master/", &lost).await); // after the 1st failure
/// assert!(backoff.wait("ws://master/", &lost).await); // after the 2nd
/// assert!(!backoff.wait("ws://master/", &lost).await); // the 3rd: give up
/// backoff.reset(); // a master answered and the session lasted
/// assert!(backoff.wait("ws://master/", &lost).await);
/// # }
/// ```
#[derive(Debug)]
pub struct Backoff {
    policy: Reconnect,
    rng: fastrand::Rng,
    failures: u32,
    since: tokio::time::Instant,
}

impl Backoff {
    /// The waits of `policy`, for an outage from now.
    ///
    /// See [`Backoff`] for an example.
    pub fn new(policy: &Reconnect) -> Self {
        Backoff {
            policy: policy.clone(),
            rng: fastrand::Rng::with_seed(policy.seed),
            failures: 0,
            since: tokio::time::Instant::now(),
        }
    }

    /// A new outage from now (a master answered, and the session lasted):
    /// the attempts count from zero again, the jitter goes on.
    ///
    /// See [`Backoff`] for an example.
    pub fn reset(&mut self) {
        self.failures = 0;
        self.since = tokio::time::Instant::now();
    }

    /// Counts a failed attempt to reach the master at `url` (or the loss of
    /// a session that did not last), logs it, and waits before the next
    /// attempt; `false`, at once and with a log line, if the policy says to
    /// give up.
    ///
    /// See [`Backoff`] for an example.
    pub async fn wait(&mut self, url: &str, error: &JoinError) -> bool {
        self.failures += 1;
        let policy = &self.policy;
        if policy.max_attempts.is_some_and(|max| self.failures >= max) {
            tracing::warn!(
                "giving up on the master at {url} after {} failed attempt(s): {error}",
                self.failures
            );
            return false;
        }
        let base = policy.base(self.failures);
        let half = base / 2;
        let jitter = Duration::from_nanos(
            self.rng
                .u64(0..=u64::try_from(half.as_nanos()).unwrap_or(u64::MAX)),
        );
        let delay = half + jitter;
        let waited = self.since.elapsed();
        if let Some(max) = policy.max_duration {
            if waited + delay > max {
                tracing::warn!(
                    "giving up on the master at {url} after {waited:?} without it ({} failed attempt(s)): {error}",
                    self.failures
                );
                return false;
            }
        }
        let of = policy
            .max_attempts
            .map_or_else(String::new, |max| format!(" of {max}"));
        tracing::warn!(
            "no master at {url} ({error}); waiting {delay:?} before attempt {}{of} to reconnect",
            self.failures + 1
        );
        tokio::time::sleep(delay).await;
        true
    }
}

impl JoinError {
    /// Whether this error is the loss of the master (it could not be
    /// reached, the connection was refused, reset or closed, or the master
    /// went silent), which [`Reconnect`] retries, rather than a refusal or a
    /// broken protocol, which it does not.
    ///
    /// ```
    /// use pando_distributed_map::{JoinError, session::SessionError};
    /// assert!(JoinError::Master(SessionError::Disconnected).is_lost_master());
    /// assert!(!JoinError::Rejected("wrong token".into()).is_lost_master());
    /// ```
    pub fn is_lost_master(&self) -> bool {
        matches!(
            self,
            JoinError::Transport(TransportError::Io { .. } | TransportError::Closed { .. })
                | JoinError::Master(
                    SessionError::Disconnected
                        | SessionError::Transport(_)
                        | SessionError::Silent(_)
                        | SessionError::NotReading(_)
                        | SessionError::HandshakeTimeout(_),
                )
        )
    }
}

/// What a worker did, once the master said it was done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerSummary {
    /// Values processed successfully.
    pub done: u64,
    /// Values whose processing failed or timed out (reported to the master).
    pub failed: u64,
}

/// A worker connected to a master, after the handshake.
pub struct Session {
    core: WorkerSession,
    io: FrameIo,
    command: Vec<String>,
    mode: CommandMode,
    value_timeout: Option<Duration>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("master", &self.io.peer)
            .field("command", &self.command)
            .field("mode", &self.mode)
            .field("value_timeout", &self.value_timeout)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker named `name` (shown in the master's monitoring).
    ///
    /// ```
    /// let w = pando_distributed_map::Worker::new("phone");
    /// # let _ = w;
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Worker {
            name: name.into(),
            max_frame: DEFAULT_MAX_FRAME,
            handshake_timeout: Duration::from_secs(30),
            jobs: 1,
            reconnect: None,
        }
    }

    /// Reconnects with backoff when the master cannot be reached or goes
    /// away, as `policy` says (default: off, the first failure ends the
    /// worker). With it, [`connect`](Worker::connect) and
    /// [`connect_with`](Worker::connect_with) retry until a master answers,
    /// and [`run`](Worker::run) and [`run_with`](Worker::run_with) also
    /// reconnect when a session loses its master, and go on with the
    /// master that answers (a master restarted without a journal starts its
    /// input over, so values may be computed again; the master's output
    /// still has each exactly once). The master's join token must not have
    /// changed.
    ///
    /// Off by default: a worker that waits for a master that is gone for
    /// good would hang its caller, and a master that stops does not say
    /// whether it will be back.
    ///
    /// See [`Reconnect`] for an example.
    pub fn reconnect(mut self, policy: Reconnect) -> Self {
        self.reconnect = Some(policy);
        self
    }

    /// The reconnection policy, if any ([`Worker::reconnect`]).
    ///
    /// ```
    /// use pando_distributed_map::{Reconnect, Worker};
    /// assert!(Worker::new("w").reconnect_policy().is_none());
    /// assert!(Worker::new("w").reconnect(Reconnect::default()).reconnect_policy().is_some());
    /// ```
    pub fn reconnect_policy(&self) -> Option<&Reconnect> {
        self.reconnect.as_ref()
    }

    /// Refuses frames larger than `max_frame` bytes (default 16 MiB).
    ///
    /// ```
    /// let w = pando_distributed_map::Worker::new("phone").max_frame(1 << 20);
    /// # let _ = w;
    /// ```
    pub fn max_frame(mut self, max_frame: usize) -> Self {
        self.max_frame = max_frame;
        self
    }

    /// How long to wait for the master to answer the handshake, the
    /// connection included (default 30 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let w = pando_distributed_map::Worker::new("phone").handshake_timeout(Duration::from_secs(5));
    /// # let _ = w;
    /// ```
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// How many values to process at once (default 1; at least 1). Up to
    /// `jobs` futures of the function are in progress together, polled by
    /// the session's task (concurrency, not threads: a CPU-bound function
    /// gains from more jobs only if its future hands the work to other
    /// threads, with `tokio::task::spawn_blocking` for example). A worker
    /// never holds more values than the master's batch size, so more jobs
    /// than that are idle. Values start in the order they arrive, and their
    /// results are sent as they finish, in any order: the master matches
    /// them by id and restores the input order itself.
    ///
    /// The default, 1, keeps the library's behaviour of one value at a time
    /// for functions that are not meant to run concurrently.
    ///
    /// ```
    /// let w = pando_distributed_map::Worker::new("server").jobs(8);
    /// # let _ = w;
    /// ```
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs.max(1);
        self
    }

    /// Connects to the master at a join URL (`ws://…/?token=…` or
    /// `tcp://…?token=…`) and performs the handshake; with
    /// [`Worker::reconnect`], retries while the master cannot be reached.
    ///
    /// See [`Worker`] for an example.
    pub async fn connect(&self, url: &str) -> Result<Session, JoinError> {
        #[cfg(feature = "ws")]
        if url.starts_with("ws://") {
            return self
                .connect_with(&crate::transport::ws::WsConnector::new(self.max_frame), url)
                .await;
        }
        #[cfg(feature = "tcp")]
        if url.starts_with("tcp://") {
            return self
                .connect_with(&crate::transport::tcp::TcpConnector::new(self.max_frame), url)
                .await;
        }
        Err(JoinError::Transport(TransportError::BadUrl {
            url: url.to_string(),
            reason: "expected ws://HOST:PORT/?token=… or tcp://HOST:PORT?token=…".to_string(),
        }))
    }

    /// Connects with a given transport and performs the handshake; with
    /// [`Worker::reconnect`], retries while the master cannot be reached.
    ///
    /// See the [crate documentation](crate) for an example.
    pub async fn connect_with<C: Connector>(&self, connector: &C, url: &str) -> Result<Session, JoinError> {
        let Some(policy) = &self.reconnect else {
            return self.connect_once(connector, url).await;
        };
        let mut backoff = Backoff::new(policy);
        self.connect_retrying(connector, url, &mut backoff).await
    }

    /// Attempts to connect until a master answers or `backoff` gives up.
    async fn connect_retrying<C: Connector>(
        &self,
        connector: &C,
        url: &str,
        backoff: &mut Backoff,
    ) -> Result<Session, JoinError> {
        let shown = split_join_url(url).0;
        loop {
            match self.connect_once(connector, url).await {
                Err(e) if e.is_lost_master() && backoff.wait(&shown, &e).await => {}
                done => return done,
            }
        }
    }

    /// One attempt: connects and performs the handshake.
    async fn connect_once<C: Connector>(&self, connector: &C, url: &str) -> Result<Session, JoinError> {
        let (base, token) = split_join_url(url);
        // One deadline for the connection and the handshake together.
        let started = now();
        let connection = match tokio::time::timeout(self.handshake_timeout, connector.connect(&base)).await {
            Ok(connection) => connection?,
            Err(_) => {
                return Err(JoinError::Master(SessionError::HandshakeTimeout(
                    self.handshake_timeout,
                )));
            }
        };
        let mut config = WorkerSessionConfig::new(self.name.clone(), token);
        config.handshake_timeout = self.handshake_timeout;
        config.jobs = self.jobs;
        let mut core = WorkerSession::new(config, started);
        let mut io = FrameIo::new(connection, Codec::Postcard, self.max_frame);
        let welcomed = std::future::poll_fn(|cx| {
            io.drive(&mut core, cx, |core, _, _| {
                let mut step = Step::Idle;
                while let Some(event) = core.poll_event() {
                    step = Step::Progressed;
                    match event {
                        WorkerEvent::Welcomed {
                            command,
                            mode,
                            value_timeout,
                        } => return Step::Done(Ok((command, mode, value_timeout))),
                        WorkerEvent::Closed(Err(e)) => return Step::Done(Err(join_error(e))),
                        _ => {}
                    }
                }
                step
            })
            .map(|welcomed| welcomed.unwrap_or(Err(JoinError::Master(SessionError::Disconnected))))
        })
        .await;
        let (command, mode, value_timeout) = welcomed?;
        Ok(Session {
            core,
            io,
            command,
            mode,
            value_timeout,
        })
    }

    /// Connects with `connector` and runs `f` until the master is done;
    /// with [`Worker::reconnect`], reconnects when the master goes away and
    /// goes on with the master that answers. The summary is the last
    /// session's: the one the master ended.
    ///
    /// See the [crate documentation](crate) for an example.
    pub async fn run_with<C, In, Out, F, Fut, Err>(
        &self,
        connector: &C,
        url: &str,
        mut f: F,
    ) -> Result<WorkerSummary, JoinError>
    where
        C: Connector,
        In: DeserializeOwned,
        Out: Serialize,
        F: FnMut(In) -> Fut,
        Fut: Future<Output = Result<Out, Err>>,
        Err: Display,
    {
        let Some(policy) = &self.reconnect else {
            return self.connect_once(connector, url).await?.run(f).await;
        };
        let shown = split_join_url(url).0;
        // One backoff for the whole run: a master that drops its workers
        // soon after taking them is retried with growing waits too, not in
        // a tight loop; a session that lasted starts the count over.
        let mut backoff = Backoff::new(policy);
        loop {
            let session = self.connect_retrying(connector, url, &mut backoff).await?;
            let started = tokio::time::Instant::now();
            match session.run(&mut f).await {
                Err(e) if e.is_lost_master() => {
                    tracing::warn!("lost the master at {shown} ({e}); reconnecting");
                    if started.elapsed() >= policy.max_delay {
                        backoff.reset();
                    } else if !backoff.wait(&shown, &e).await {
                        return Err(e);
                    }
                }
                ended => return ended,
            }
        }
    }

    /// Connects to the master at a join URL (`ws://…/?token=…` or
    /// `tcp://…?token=…`) and runs `f` until the master is done, as
    /// [`run_with`](Worker::run_with) does.
    ///
    /// ```no_run
    /// use pando_distributed_map::{Reconnect, Worker};
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let summary = Worker::new("laptop")
    ///     .reconnect(Reconnect::default())
    ///     .run("ws://192.0.2.1:9000/?token=…", |x: u64| async move { Ok::<_, String>(x * x) })
    ///     .await?;
    /// println!("{} values processed in the last session", summary.done);
    /// # Ok(()) }
    /// ```
    pub async fn run<In, Out, F, Fut, Err>(&self, url: &str, f: F) -> Result<WorkerSummary, JoinError>
    where
        In: DeserializeOwned,
        Out: Serialize,
        F: FnMut(In) -> Fut,
        Fut: Future<Output = Result<Out, Err>>,
        Err: Display,
    {
        #[cfg(feature = "ws")]
        if url.starts_with("ws://") {
            let connector = crate::transport::ws::WsConnector::new(self.max_frame);
            return self.run_with(&connector, url, f).await;
        }
        #[cfg(feature = "tcp")]
        if url.starts_with("tcp://") {
            let connector = crate::transport::tcp::TcpConnector::new(self.max_frame);
            return self.run_with(&connector, url, f).await;
        }
        let _ = f;
        Err(JoinError::Transport(TransportError::BadUrl {
            url: url.to_string(),
            reason: "expected ws://HOST:PORT/?token=… or tcp://HOST:PORT?token=…".to_string(),
        }))
    }
}

/// A session's end, as the worker's error.
fn join_error(e: SessionError) -> JoinError {
    match e {
        SessionError::Refused(reason) => JoinError::Rejected(reason),
        other => JoinError::Master(other),
    }
}

/// The answer of a computation: its result, its error, or its panic.
fn settle<Out, Err: Display>(answer: std::thread::Result<Result<Out, Err>>) -> Result<Out, String> {
    match answer {
        Ok(Ok(out)) => Ok(out),
        Ok(Err(e)) => Err(e.to_string()),
        Err(panic) => Err(format!("the function panicked: {}", panic_message(&*panic))),
    }
}

/// The message of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

impl Session {
    /// The command the master's workers run (`pando`'s COMMAND), for a
    /// volunteer to review before agreeing to run it.
    ///
    /// See [`Worker`] for an example.
    pub fn command(&self) -> &[String] {
        &self.command
    }

    /// How the master asks that its command be run ([`MapConfig::command_mode`](crate::MapConfig::command_mode)):
    /// once per value, as a line filter, or once per block of lines. A
    /// worker that runs the master's command (`pando work`) runs it so; a
    /// library worker that applies its own function may ignore it.
    ///
    /// ```no_run
    /// # async fn f(session: pando_distributed_map::Session) {
    /// use pando_distributed_map::CommandMode;
    /// match session.command_mode() {
    ///     CommandMode::Lines => println!("{:?} is a line filter", session.command()),
    ///     CommandMode::Pipe => println!("{:?} runs once per block of lines", session.command()),
    ///     _ => println!("{:?} runs once per value", session.command()),
    /// }
    /// # }
    /// ```
    pub fn command_mode(&self) -> CommandMode {
        self.mode
    }

    /// The master's per-value deadline, if it set one: a value still
    /// running after that long is cancelled (its future is dropped) and
    /// reported as failed.
    ///
    /// ```no_run
    /// # async fn f(session: pando_distributed_map::Session) {
    /// if let Some(timeout) = session.value_timeout() {
    ///     println!("each value must be done within {timeout:?}");
    /// }
    /// # }
    /// ```
    pub fn value_timeout(&self) -> Option<Duration> {
        self.value_timeout
    }

    /// How many values to process at once from now on (at least 1),
    /// instead of what [`Worker::jobs`] said: for a worker that learns only
    /// from the master's `Welcome` what its values are.
    ///
    /// ```no_run
    /// # async fn f(session: pando_distributed_map::Session) {
    /// // Lines for a long-running line filter: take all the master lends.
    /// let session = session.jobs(usize::MAX);
    /// # let _ = session;
    /// # }
    /// ```
    #[must_use]
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.core.set_jobs(now(), jobs);
        self
    }

    /// The function keeps each value's deadline itself (see
    /// [`Session::value_timeout`]): the session no longer drops a value that
    /// runs past it. For a function whose values wait inside it before it
    /// starts on them, such as a line filter with many lines in flight, where
    /// the deadline must count from the start of the work. The master's
    /// backstop still applies.
    ///
    /// ```no_run
    /// # async fn f(session: pando_distributed_map::Session) {
    /// let session = session.jobs(usize::MAX).own_deadlines();
    /// # let _ = session;
    /// # }
    /// ```
    #[must_use]
    pub fn own_deadlines(mut self) -> Self {
        self.core.set_value_timeout(None);
        self
    }

    /// Leaves without running anything: the master gets an `Error` frame
    /// with `reason` (its log says why the worker left, not just that the
    /// connection closed), and the connection is closed once the frame is
    /// sent, or at the closing deadline (the heartbeat interval).
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let session = pando_distributed_map::Worker::new("laptop")
    ///     .connect("ws://192.0.2.1:9000/?token=…")
    ///     .await?;
    /// if session.command() != ["cat"] {
    ///     session.stop("this volunteer only runs cat").await;
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn stop(self, reason: impl Into<String>) {
        let Session { mut core, mut io, .. } = self;
        core.stop(now(), reason.into());
        std::future::poll_fn(|cx| {
            io.drive(&mut core, cx, |core, _, finished| {
                let mut step = Step::Idle;
                while core.poll_event().is_some() {
                    step = Step::Progressed;
                }
                if finished { Step::Done(()) } else { step }
            })
            .map(|_| ())
        })
        .await;
    }

    /// Applies `f` to each value the master sends (up to
    /// [`Worker::jobs`] at once), and sends back each result, or the
    /// failure, which counts towards that value's retries. A value whose
    /// future runs past the value timeout is dropped (so the future must
    /// release what it holds when dropped: kill its process, for example)
    /// and reported as failed; so is a value whose future panics, or whose
    /// result is larger than the master accepts. Heartbeats are sent while
    /// idle or computing. Returns when the master says it is done and every
    /// value received has its answer.
    ///
    /// See [`Worker`] for an example.
    pub async fn run<In, Out, F, Fut, Err>(self, mut f: F) -> Result<WorkerSummary, JoinError>
    where
        In: DeserializeOwned,
        Out: Serialize,
        F: FnMut(In) -> Fut,
        Fut: Future<Output = Result<Out, Err>>,
        Err: Display,
    {
        /// A value being computed: its id and its future, panics caught.
        type Computing<Fut, Out, Err> = (
            u64,
            Pin<
                Box<
                    futures::future::Map<
                        futures::future::CatchUnwind<AssertUnwindSafe<Fut>>,
                        fn(std::thread::Result<Result<Out, Err>>) -> Result<Out, String>,
                    >,
                >,
            >,
        );
        let Session { mut core, mut io, .. } = self;
        let codec = io.codec();
        let mut running: Vec<Computing<Fut, Out, Err>> = Vec::new();
        let mut end: Option<Result<WorkerSummary, JoinError>> = None;
        std::future::poll_fn(|cx| {
            io.drive(&mut core, cx, |core, cx, finished| {
                let mut step = Step::Idle;
                while let Some(event) = core.poll_event() {
                    step = Step::Progressed;
                    match event {
                        WorkerEvent::Run { id, payload } => match codec.decode_payload::<In>(&payload) {
                            Ok(value) => {
                                let computing = AssertUnwindSafe(f(value))
                                    .catch_unwind()
                                    .map(settle::<Out, Err> as fn(_) -> _);
                                running.push((id, Box::pin(computing)));
                            }
                            Err(e) => {
                                core.handle_result(now(), id, Err(format!("cannot decode the value: {e}")))
                            }
                        },
                        WorkerEvent::Cancel { id } => running.retain(|(r, _)| *r != id),
                        WorkerEvent::Closed(result) => {
                            running.clear();
                            end = Some(result.map_err(join_error));
                        }
                        WorkerEvent::Welcomed { .. } => {}
                    }
                }
                let mut i = 0;
                while i < running.len() {
                    match running[i].1.as_mut().poll(cx) {
                        Poll::Ready(result) => {
                            let (id, _) = running.swap_remove(i);
                            let answer = result.map(|out| codec.encode_payload(&out));
                            core.handle_result(now(), id, answer);
                            step = Step::Progressed;
                        }
                        Poll::Pending => i += 1,
                    }
                }
                match end.take() {
                    Some(end) if finished => Step::Done(end),
                    Some(not_yet) => {
                        end = Some(not_yet);
                        step
                    }
                    None => step,
                }
            })
            .map(|end| end.unwrap_or(Err(JoinError::Master(SessionError::Disconnected))))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The waits of a backoff until it gives up (at most 64), measured on
    /// tokio's paused clock.
    fn waits(policy: &Reconnect) -> Vec<Duration> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let mut backoff = Backoff::new(policy);
            let lost = JoinError::Master(SessionError::Disconnected);
            let mut waits = Vec::new();
            loop {
                let before = tokio::time::Instant::now();
                if waits.len() == 64 || !backoff.wait("ws://master/", &lost).await {
                    return waits;
                }
                waits.push(before.elapsed());
            }
        })
    }

    fn policies() -> impl Strategy<Value = Reconnect> {
        (
            any::<u64>(),
            1..2_000u64,
            0..60_000u64,
            proptest::option::of(1..30u32),
            proptest::option::of(1..600_000u64),
        )
            .prop_map(|(seed, initial, more, attempts, within)| {
                Reconnect::default()
                    .seed(seed)
                    .delays(
                        Duration::from_millis(initial),
                        Duration::from_millis(initial + more),
                    )
                    .max_attempts(attempts)
                    .max_duration(within.map(Duration::from_millis))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Each wait is between half its base and its base (the base doubles
        /// from the first delay up to the largest); the worker gives up at the
        /// attempt limit and before the duration limit; a seed replays.
        #[test]
        fn waits_grow_with_jitter_within_the_policy_and_replay_by_seed(policy in policies()) {
            let waits = waits(&policy);
            for (i, wait) in waits.iter().enumerate() {
                let base = policy.base(i as u32 + 1);
                prop_assert!(*wait >= base / 2, "wait {i}: {wait:?} < half of {base:?}");
                // tokio's timer rounds up to the millisecond.
                prop_assert!(*wait <= base + Duration::from_millis(1), "wait {i}: {wait:?} > {base:?}");
            }
            if let Some(max) = policy.max_attempts {
                prop_assert!(waits.len() < max as usize);
            }
            if let Some(max) = policy.max_duration {
                let total: Duration = waits.iter().sum();
                prop_assert!(total <= max + Duration::from_millis(waits.len() as u64));
            }
            prop_assert_eq!(&waits, &super::tests::waits(&policy));
        }
    }

    #[test]
    fn the_base_doubles_up_to_the_largest_delay_without_overflowing() {
        let policy = Reconnect::default().delays(Duration::from_millis(100), Duration::from_secs(1));
        let bases: Vec<u64> = (1..=6).map(|n| policy.base(n).as_millis() as u64).collect();
        assert_eq!(bases, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(policy.base(u32::MAX), Duration::from_secs(1));
    }

    #[test]
    fn only_the_loss_of_the_master_is_retried() {
        let io = || std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let lost = [
            JoinError::Transport(TransportError::Io {
                context: "cannot reach ws://m/".into(),
                source: io(),
            }),
            JoinError::Transport(TransportError::Closed { peer: "m".into() }),
            JoinError::Master(SessionError::Disconnected),
            JoinError::Master(SessionError::Silent(Duration::from_secs(10))),
            JoinError::Master(SessionError::HandshakeTimeout(Duration::from_secs(30))),
            JoinError::Master(SessionError::Transport("reset".into())),
            JoinError::Master(SessionError::NotReading(Duration::from_secs(10))),
        ];
        for e in &lost {
            assert!(e.is_lost_master(), "{e}");
        }
        let final_ = [
            JoinError::Rejected("wrong token".into()),
            JoinError::Master(SessionError::Remote("its input failed".into())),
            JoinError::Master(SessionError::Unexpected("Hello")),
            JoinError::Transport(TransportError::BadUrl {
                url: "http://m".into(),
                reason: "expected ws://".into(),
            }),
        ];
        for e in &final_ {
            assert!(!e.is_lost_master(), "{e}");
        }
    }
}
