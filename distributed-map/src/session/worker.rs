//! The worker's side of a connection to a master.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::frame::{CommandMode, Frame, FrameError, Item, PROTOCOL_VERSION};
use crate::worker::WorkerSummary;

use super::{Outbox, RESULT_OVERHEAD, SessionError, at, earliest};

/// How a [`WorkerSession`] starts.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct WorkerSessionConfig {
    /// The name shown in the master's monitoring.
    pub name: String,
    /// The join token.
    pub token: String,
    /// How long to wait for the master's `Welcome`.
    pub handshake_timeout: Duration,
    /// How many values run at once (at least 1).
    pub jobs: usize,
}

impl WorkerSessionConfig {
    /// A configuration with a 30 s handshake deadline and one value at a time.
    ///
    /// ```
    /// use pando_distributed_map::session::WorkerSessionConfig;
    /// let config = WorkerSessionConfig::new("laptop", "t0k");
    /// assert_eq!(config.jobs, 1);
    /// ```
    pub fn new(name: impl Into<String>, token: impl Into<String>) -> Self {
        WorkerSessionConfig {
            name: name.into(),
            token: token.into(),
            handshake_timeout: Duration::from_secs(30),
            jobs: 1,
        }
    }
}

/// What the worker's session asks of its adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerEvent {
    /// The master welcomed this worker.
    Welcomed {
        /// The master's command (for `pando work`), to show the volunteer.
        command: Vec<String>,
        /// How the master asks that its command be run.
        mode: CommandMode,
        /// The per-value deadline, if any.
        value_timeout: Option<Duration>,
    },
    /// Start processing value `id`; answer with
    /// [`WorkerSession::handle_result`].
    Run {
        /// The value's id.
        id: u64,
        /// The value, encoded.
        payload: Vec<u8>,
    },
    /// Stop processing value `id` (drop its computation): it ran past the
    /// value timeout, and its failure was reported.
    Cancel {
        /// The value's id.
        id: u64,
    },
    /// The session ended: `Ok` once the master said `Done` and every value
    /// was answered (the worker's `Done` is sent), or why not. No event follows.
    Closed(Result<WorkerSummary, SessionError>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    AwaitingWelcome,
    Running,
    Closing,
    Closed,
}

/// The worker's side of the wire protocol: a deterministic, sans-IO state
/// machine (see the [module documentation](super)).
///
/// ```
/// use std::time::{Duration, Instant};
/// use pando_distributed_map::frame::{Frame, PROTOCOL_VERSION};
/// use pando_distributed_map::session::{WorkerEvent, WorkerSession, WorkerSessionConfig};
///
/// let t0 = Instant::now();
/// let mut session = WorkerSession::new(WorkerSessionConfig::new("laptop", "t0k"), t0);
/// assert!(matches!(session.poll_transmit(t0), Some(Frame::Hello { .. })));
/// session.handle_frame(t0, Frame::Welcome {
///     version: PROTOCOL_VERSION, heartbeat_ms: 1000, heartbeat_timeout_ms: 10_000,
///     value_timeout_ms: Some(3000), max_frame: 1 << 20, command: vec![],
///     mode: Default::default(),
/// });
/// assert!(matches!(session.poll_event(), Some(WorkerEvent::Welcomed { .. })));
///
/// session.handle_frame(t0, Frame::Value { id: 0, payload: vec![5] });
/// assert_eq!(session.poll_event(), Some(WorkerEvent::Run { id: 0, payload: vec![5] }));
/// session.handle_result(t0, 0, Ok(vec![25]));
/// assert_eq!(session.poll_transmit(t0), Some(Frame::Result { id: 0, payload: vec![25] }));
///
/// // A value that runs past the value timeout (with a grace of a tenth, at
/// // most 1 s, for a function that keeps the deadline itself) is cancelled
/// // and reported as failed.
/// session.handle_frame(t0, Frame::Value { id: 1, payload: vec![6] });
/// assert!(matches!(session.poll_event(), Some(WorkerEvent::Run { id: 1, .. })));
/// session.handle_timeout(t0 + Duration::from_millis(3300));
/// assert_eq!(session.poll_event(), Some(WorkerEvent::Cancel { id: 1 }));
/// let sent: Vec<Frame> = std::iter::from_fn(|| session.poll_transmit(t0)).collect();
/// assert!(matches!(sent.last(), Some(Frame::Failed { id: 1, .. }))); // after a heartbeat
/// ```
#[derive(Debug)]
pub struct WorkerSession {
    state: State,
    /// The handshake deadline, then the closing deadline.
    deadline: Instant,
    heartbeat: Duration,
    heartbeat_timeout: Duration,
    value_timeout: Option<Duration>,
    /// The master's frame limit.
    max_frame: usize,
    jobs: usize,
    handshake_timeout: Duration,
    outbox: Outbox,
    events: VecDeque<WorkerEvent>,
    /// Values received and not started, in order.
    queue: VecDeque<(u64, Vec<u8>)>,
    /// Values handed to the function, with when they started.
    running: Vec<(u64, Instant)>,
    master_done: bool,
    summary: WorkerSummary,
}

impl WorkerSession {
    /// A session started at `now`: its `Hello` is the first frame to send.
    ///
    /// See [`WorkerSession`] for an example.
    pub fn new(config: WorkerSessionConfig, now: Instant) -> Self {
        let mut outbox = Outbox::new(now);
        outbox.push(
            Frame::Hello {
                version: PROTOCOL_VERSION,
                token: config.token,
                name: config.name,
            },
            now,
        );
        WorkerSession {
            state: State::AwaitingWelcome,
            deadline: at(now, config.handshake_timeout),
            heartbeat: Duration::from_secs(1),
            heartbeat_timeout: Duration::from_secs(10),
            value_timeout: None,
            max_frame: usize::MAX,
            jobs: config.jobs.max(1),
            handshake_timeout: config.handshake_timeout,
            outbox,
            events: VecDeque::new(),
            queue: VecDeque::new(),
            running: Vec::new(),
            master_done: false,
            summary: WorkerSummary::default(),
        }
    }

    /// Changes how many values run at once (at least 1), for an adapter
    /// that learns only from the `Welcome` what the values are (`pando
    /// work`: one process per value, or lines for its line filters).
    /// Queued values start at once if more may run now; running values
    /// keep running if fewer may.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use pando_distributed_map::frame::{Frame, PROTOCOL_VERSION};
    /// # use pando_distributed_map::session::{WorkerEvent, WorkerSession, WorkerSessionConfig};
    /// let t0 = Instant::now();
    /// let mut session = WorkerSession::new(WorkerSessionConfig::new("w", "t"), t0);
    /// # session.poll_transmit(t0);
    /// # session.handle_frame(t0, Frame::Welcome { version: PROTOCOL_VERSION, heartbeat_ms: 1000,
    /// #     heartbeat_timeout_ms: 10_000, value_timeout_ms: None, max_frame: 1 << 20, command: vec![],
    /// #     mode: pando_distributed_map::CommandMode::PerValue });
    /// # session.poll_event();
    /// for id in 0..3 {
    ///     session.handle_frame(t0, Frame::Value { id, payload: vec![] });
    /// }
    /// assert!(matches!(session.poll_event(), Some(WorkerEvent::Run { id: 0, .. })));
    /// assert_eq!(session.poll_event(), None); // one at a time by default
    /// session.set_jobs(t0, 8);
    /// assert!(matches!(session.poll_event(), Some(WorkerEvent::Run { id: 1, .. })));
    /// assert!(matches!(session.poll_event(), Some(WorkerEvent::Run { id: 2, .. })));
    /// ```
    pub fn set_jobs(&mut self, now: Instant, jobs: usize) {
        self.jobs = jobs.max(1);
        if self.state == State::Running {
            self.start(now);
        }
    }

    /// Replaces the per-value deadline the `Welcome` gave (`None`: no
    /// deadline), for the values running and those to come: for a worker
    /// whose function keeps each value's deadline itself, counted from when
    /// it really starts on it (a line filter with many lines in flight). The
    /// master's own backstop still applies.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use pando_distributed_map::frame::Frame;
    /// # use pando_distributed_map::session::{WorkerSession, WorkerSessionConfig, WorkerEvent};
    /// # let t0 = Instant::now();
    /// # let mut session = WorkerSession::new(WorkerSessionConfig::new("laptop", "t0k"), t0);
    /// # session.handle_frame(t0, Frame::Welcome { version: pando_distributed_map::frame::PROTOCOL_VERSION,
    /// #     heartbeat_ms: 1_000_000, heartbeat_timeout_ms: 10_000_000, value_timeout_ms: Some(1000),
    /// #     max_frame: 1 << 20, command: vec![], mode: pando_distributed_map::CommandMode::Lines });
    /// # session.poll_event();
    /// session.handle_frame(t0, Frame::Value { id: 0, payload: vec![] });
    /// session.set_value_timeout(None);
    /// session.handle_timeout(t0 + Duration::from_secs(60));
    /// assert!(matches!(session.poll_event(), Some(WorkerEvent::Run { id: 0, .. })));
    /// assert_eq!(session.poll_event(), None); // not cancelled: the function keeps its deadline
    /// ```
    pub fn set_value_timeout(&mut self, timeout: Option<Duration>) {
        self.value_timeout = timeout;
    }

    /// Whether the session is over; the adapter drops the transport.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use pando_distributed_map::{frame::Frame, session::{WorkerSession, WorkerSessionConfig}};
    /// let t0 = Instant::now();
    /// let mut session = WorkerSession::new(WorkerSessionConfig::new("w", "t"), t0);
    /// session.handle_frame(t0, Frame::Reject { reason: "wrong join token".into() });
    /// assert!(session.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether the session is closing and every last frame was taken: the
    /// adapter flushes and closes the transport.
    ///
    /// See [`MasterSession::is_done_sending`](super::MasterSession::is_done_sending).
    pub fn is_done_sending(&self) -> bool {
        matches!(self.state, State::Closing | State::Closed) && self.outbox.frames.is_empty()
    }

    /// `upon` a frame from the master.
    ///
    /// See [`WorkerSession`] for an example.
    pub fn handle_frame(&mut self, now: Instant, frame: Frame) {
        self.outbox.last_heard = now;
        match self.state {
            State::AwaitingWelcome => match frame {
                Frame::Welcome {
                    version,
                    heartbeat_ms,
                    heartbeat_timeout_ms,
                    value_timeout_ms,
                    max_frame,
                    command,
                    mode,
                } if version == PROTOCOL_VERSION => {
                    self.state = State::Running;
                    self.heartbeat = Duration::from_millis(heartbeat_ms.max(1));
                    self.heartbeat_timeout = Duration::from_millis(heartbeat_timeout_ms.max(1));
                    self.value_timeout = value_timeout_ms.map(|ms| Duration::from_millis(ms.max(1)));
                    self.max_frame = usize::try_from(max_frame).unwrap_or(usize::MAX);
                    self.events.push_back(WorkerEvent::Welcomed {
                        command,
                        mode,
                        value_timeout: self.value_timeout,
                    });
                }
                Frame::Welcome { version, .. } => self.fail(
                    now,
                    SessionError::Refused(format!(
                        "the master speaks protocol version {version}, this worker {PROTOCOL_VERSION}"
                    )),
                ),
                Frame::Reject { reason } => {
                    self.events
                        .push_back(WorkerEvent::Closed(Err(SessionError::Refused(reason))));
                    self.outbox.frames.clear();
                    self.state = State::Closed;
                }
                other => self.fail(now, SessionError::Unexpected(other.name())),
            },
            State::Running => match frame {
                Frame::Value { id, payload } => {
                    self.value(now, id, payload);
                    self.start(now);
                }
                // Several values at once: each as if it were its own `Value`
                // frame, in order.
                Frame::Values { values } if values.is_empty() => {
                    self.fail(now, SessionError::Unexpected("empty Values"));
                }
                Frame::Values { values } => {
                    for Item { id, payload } in values {
                        self.value(now, id, payload);
                        if self.state != State::Running {
                            return;
                        }
                    }
                    self.start(now);
                }
                Frame::Heartbeat => {}
                Frame::Done => {
                    self.master_done = true;
                    self.finish_if_done(now);
                }
                Frame::Error { message } => {
                    self.events
                        .push_back(WorkerEvent::Closed(Err(SessionError::Remote(message))));
                    self.close(now);
                }
                other => self.fail(now, SessionError::Unexpected(other.name())),
            },
            State::Closing | State::Closed => {}
        }
    }

    /// Queues value `id`, unless the master may not send it.
    fn value(&mut self, now: Instant, id: u64, payload: Vec<u8>) {
        if self.master_done {
            self.fail(now, SessionError::Unexpected("Value"));
        } else if self.holds(id) {
            self.fail(now, SessionError::DuplicateValue(id));
        } else {
            self.queue.push_back((id, payload));
        }
    }

    fn holds(&self, id: u64) -> bool {
        self.running.iter().any(|(r, _)| *r == id) || self.queue.iter().any(|(q, _)| *q == id)
    }

    /// Starts queued values while fewer than `jobs` run.
    fn start(&mut self, now: Instant) {
        while self.running.len() < self.jobs {
            let Some((id, payload)) = self.queue.pop_front() else {
                break;
            };
            self.running.push((id, now));
            self.events.push_back(WorkerEvent::Run { id, payload });
        }
    }

    fn finish_if_done(&mut self, now: Instant) {
        if self.master_done && self.running.is_empty() && self.queue.is_empty() {
            self.outbox.push(Frame::Done, now);
            self.events.push_back(WorkerEvent::Closed(Ok(self.summary)));
            self.close(now);
        }
    }

    /// `upon` bytes from the master that are not a frame.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use pando_distributed_map::{frame::{Frame, FrameError}, session::{WorkerEvent, WorkerSession, WorkerSessionConfig}};
    /// let t0 = Instant::now();
    /// let mut session = WorkerSession::new(WorkerSessionConfig::new("w", "t"), t0);
    /// session.handle_bad_frame(t0, FrameError::Malformed { size: 1, reason: "?".into() });
    /// assert!(matches!(session.poll_event(), Some(WorkerEvent::Closed(Err(_)))));
    /// ```
    pub fn handle_bad_frame(&mut self, now: Instant, error: FrameError) {
        self.outbox.last_heard = now;
        if matches!(self.state, State::AwaitingWelcome | State::Running) {
            self.fail(now, SessionError::Malformed(error));
        }
    }

    /// `upon` the transport closing: `None` if the master closed it, or the
    /// transport's error.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use pando_distributed_map::session::{SessionError, WorkerEvent, WorkerSession, WorkerSessionConfig};
    /// let t0 = Instant::now();
    /// let mut session = WorkerSession::new(WorkerSessionConfig::new("w", "t"), t0);
    /// session.handle_closed(t0, None);
    /// assert_eq!(session.poll_event(), Some(WorkerEvent::Closed(Err(SessionError::Disconnected))));
    /// ```
    pub fn handle_closed(&mut self, _now: Instant, error: Option<String>) {
        if self.state == State::Closed {
            return;
        }
        self.outbox.frames.clear();
        if self.state != State::Closing {
            let reason = error.map_or(SessionError::Disconnected, SessionError::Transport);
            self.events.push_back(WorkerEvent::Closed(Err(reason)));
        }
        self.state = State::Closed;
    }

    /// `upon` the function's answer for value `id`: its result encoded, or
    /// why it failed. A result that would make a frame over the master's
    /// limit is reported as a failure of the value. An answer for a value
    /// that is not running (it was cancelled) is ignored.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use pando_distributed_map::{frame::{Frame, PROTOCOL_VERSION}, session::{WorkerSession, WorkerSessionConfig}};
    /// let t0 = Instant::now();
    /// let mut session = WorkerSession::new(WorkerSessionConfig::new("w", "t"), t0);
    /// session.handle_frame(t0, Frame::Welcome {
    ///     version: PROTOCOL_VERSION, heartbeat_ms: 1000, heartbeat_timeout_ms: 10_000,
    ///     value_timeout_ms: None, max_frame: 1000, command: vec![],
    ///     mode: Default::default(),
    /// });
    /// session.handle_frame(t0, Frame::Value { id: 0, payload: vec![] });
    /// session.handle_result(t0, 0, Ok(vec![0; 2000]));
    /// session.poll_transmit(t0); // the Hello
    /// assert_eq!(session.poll_transmit(t0), Some(Frame::Failed {
    ///     id: 0,
    ///     reason: "result of 2000 bytes exceeds the limit of 936 bytes (the frame limit less 64 bytes of header)".into(),
    /// }));
    /// ```
    pub fn handle_result(&mut self, now: Instant, id: u64, result: Result<Vec<u8>, String>) {
        if self.state != State::Running {
            return;
        }
        let Some(i) = self.running.iter().position(|(r, _)| *r == id) else {
            return;
        };
        self.running.swap_remove(i);
        let frame = match result {
            Ok(payload) if payload.len() <= self.max_frame.saturating_sub(RESULT_OVERHEAD) => {
                self.summary.done += 1;
                Frame::Result { id, payload }
            }
            Ok(payload) => {
                self.summary.failed += 1;
                Frame::Failed {
                    id,
                    reason: format!(
                        "result of {} bytes exceeds the limit of {} bytes (the frame limit less {RESULT_OVERHEAD} bytes of header)",
                        payload.len(),
                        self.max_frame.saturating_sub(RESULT_OVERHEAD)
                    ),
                }
            }
            Err(reason) => {
                self.summary.failed += 1;
                Frame::Failed { id, reason }
            }
        };
        self.outbox.push(frame, now);
        self.start(now);
        self.finish_if_done(now);
    }

    /// `upon` a timer: call it when [`poll_timeout`](Self::poll_timeout)'s
    /// deadline has passed.
    ///
    /// See [`WorkerSession`] for an example.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::AwaitingWelcome if now >= self.deadline => {
                self.fail(now, SessionError::HandshakeTimeout(self.handshake_timeout));
            }
            State::Running => {
                if let Err(e) = self.outbox.check(now, self.heartbeat, self.heartbeat_timeout) {
                    return self.fail(now, e);
                }
                if let Some(timeout) = self.value_timeout {
                    let mut expired = Vec::new();
                    self.running.retain(|&(id, started)| {
                        let keep = now < at(started, with_grace(timeout));
                        if !keep {
                            expired.push(id);
                        }
                        keep
                    });
                    expired.sort_unstable();
                    for id in expired {
                        self.summary.failed += 1;
                        self.events.push_back(WorkerEvent::Cancel { id });
                        self.outbox.push(
                            Frame::Failed {
                                id,
                                reason: format!("timed out after {timeout:?}"),
                            },
                            now,
                        );
                    }
                    self.start(now);
                    self.finish_if_done(now);
                }
            }
            State::Closing if now >= self.deadline => self.state = State::Closed,
            _ => {}
        }
    }

    /// The worker stops: an `Error` with `reason` tells the master why.
    ///
    /// ```
    /// # use std::time::Instant;
    /// # use pando_distributed_map::{frame::Frame, session::{WorkerSession, WorkerSessionConfig}};
    /// let t0 = Instant::now();
    /// let mut session = WorkerSession::new(WorkerSessionConfig::new("w", "t"), t0);
    /// session.stop(t0, "the volunteer left".into());
    /// session.poll_transmit(t0); // the Hello
    /// assert_eq!(session.poll_transmit(t0), Some(Frame::Error { message: "the volunteer left".into() }));
    /// ```
    pub fn stop(&mut self, now: Instant, reason: String) {
        if matches!(self.state, State::AwaitingWelcome | State::Running) {
            self.outbox.push(
                Frame::Error {
                    message: reason.clone(),
                },
                now,
            );
            self.events
                .push_back(WorkerEvent::Closed(Err(SessionError::Remote(reason))));
            self.close(now);
        }
    }

    /// Ends because the master broke the protocol or its liveness: the
    /// master is told why.
    fn fail(&mut self, now: Instant, error: SessionError) {
        self.outbox.push(
            Frame::Error {
                message: format!("the master {error}"),
            },
            now,
        );
        self.events.push_back(WorkerEvent::Closed(Err(error)));
        self.close(now);
    }

    fn close(&mut self, now: Instant) {
        self.state = State::Closing;
        self.queue.clear();
        self.running.clear();
        self.deadline = at(now, self.heartbeat.min(self.heartbeat_timeout));
    }

    /// The next frame to send, if any; the time is when it is taken.
    ///
    /// See [`WorkerSession`] for an example.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Frame> {
        if self.state == State::Closed {
            return None;
        }
        self.outbox.pop(now, self.max_frame)
    }

    /// The next event for the adapter, if any.
    ///
    /// See [`WorkerSession`] for an example.
    pub fn poll_event(&mut self) -> Option<WorkerEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # use pando_distributed_map::session::{WorkerSession, WorkerSessionConfig};
    /// let t0 = Instant::now();
    /// let session = WorkerSession::new(WorkerSessionConfig::new("w", "t"), t0);
    /// assert_eq!(session.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    /// ```
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::AwaitingWelcome | State::Closing => Some(self.deadline),
            State::Closed => None,
            State::Running => {
                let liveness = self.outbox.deadline(self.heartbeat, self.heartbeat_timeout);
                let values = self.value_timeout.and_then(|timeout| {
                    self.running
                        .iter()
                        .map(|&(_, started)| at(started, with_grace(timeout)))
                        .min()
                });
                earliest(Some(liveness), values)
            }
        }
    }
}

/// The value timeout with the grace the worker's session gives a function
/// that keeps the deadline itself (and can say better what it stopped):
/// a tenth of the timeout, at most one second.
fn with_grace(timeout: Duration) -> Duration {
    timeout.saturating_add((timeout / 10).min(Duration::from_secs(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn welcome(value_timeout_ms: Option<u64>) -> Frame {
        Frame::Welcome {
            version: PROTOCOL_VERSION,
            heartbeat_ms: 1000,
            heartbeat_timeout_ms: 10_000,
            value_timeout_ms,
            max_frame: 1 << 20,
            command: vec!["cat".into()],
            mode: CommandMode::Pipe,
        }
    }

    fn running(t0: Instant, value_timeout_ms: Option<u64>, jobs: usize) -> WorkerSession {
        let mut config = WorkerSessionConfig::new("w", "tok");
        config.jobs = jobs;
        let mut s = WorkerSession::new(config, t0);
        assert!(matches!(s.poll_transmit(t0), Some(Frame::Hello { .. })));
        s.handle_frame(t0, welcome(value_timeout_ms));
        assert!(matches!(s.poll_event(), Some(WorkerEvent::Welcomed { .. })));
        s
    }

    fn drain(s: &mut WorkerSession, now: Instant) -> Vec<Frame> {
        std::iter::from_fn(|| s.poll_transmit(now)).collect()
    }

    fn events(s: &mut WorkerSession) -> Vec<WorkerEvent> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    #[test]
    fn a_rejection_ends_the_session_with_the_masters_reason() {
        let t0 = Instant::now();
        let mut s = WorkerSession::new(WorkerSessionConfig::new("w", "bad"), t0);
        s.handle_frame(
            t0,
            Frame::Reject {
                reason: "wrong join token".into(),
            },
        );
        assert_eq!(
            events(&mut s),
            [WorkerEvent::Closed(Err(SessionError::Refused(
                "wrong join token".into()
            )))]
        );
        assert!(s.is_closed());
    }

    #[test]
    fn the_welcome_tells_the_command_and_its_mode() {
        let t0 = Instant::now();
        let mut s = WorkerSession::new(WorkerSessionConfig::new("w", "tok"), t0);
        s.handle_frame(t0, welcome(Some(2000)));
        assert_eq!(
            events(&mut s),
            [WorkerEvent::Welcomed {
                command: vec!["cat".into()],
                mode: CommandMode::Pipe,
                value_timeout: Some(2 * S),
            }]
        );
    }

    #[test]
    fn values_wait_in_order_for_a_free_job() {
        let t0 = Instant::now();
        let mut s = running(t0, None, 1);
        for id in 0..3 {
            s.handle_frame(
                t0,
                Frame::Value {
                    id,
                    payload: vec![id as u8],
                },
            );
        }
        assert_eq!(
            events(&mut s),
            [WorkerEvent::Run {
                id: 0,
                payload: vec![0]
            }]
        );
        s.handle_result(t0, 0, Ok(vec![10]));
        assert_eq!(
            events(&mut s),
            [WorkerEvent::Run {
                id: 1,
                payload: vec![1]
            }]
        );
        s.handle_result(t0, 1, Err("exit status 1".into()));
        assert_eq!(
            events(&mut s),
            [WorkerEvent::Run {
                id: 2,
                payload: vec![2]
            }]
        );
        assert_eq!(
            drain(&mut s, t0),
            [
                Frame::Result {
                    id: 0,
                    payload: vec![10]
                },
                Frame::Failed {
                    id: 1,
                    reason: "exit status 1".into()
                }
            ]
        );
    }

    #[test]
    fn several_jobs_run_at_once() {
        let t0 = Instant::now();
        let mut s = running(t0, None, 2);
        for id in 0..3 {
            s.handle_frame(t0, Frame::Value { id, payload: vec![] });
        }
        assert_eq!(events(&mut s).len(), 2);
    }

    fn item(id: u64, payload: Vec<u8>) -> Item {
        Item { id, payload }
    }

    #[test]
    fn a_values_frame_is_each_of_its_values_in_order() {
        let t0 = Instant::now();
        let mut s = running(t0, None, 2);
        s.handle_frame(
            t0,
            Frame::Values {
                values: vec![item(4, vec![4]), item(2, vec![2]), item(7, vec![7])],
            },
        );
        assert_eq!(
            events(&mut s),
            [
                WorkerEvent::Run {
                    id: 4,
                    payload: vec![4]
                },
                WorkerEvent::Run {
                    id: 2,
                    payload: vec![2]
                }
            ]
        );
        s.handle_result(t0, 2, Ok(vec![20]));
        assert_eq!(
            events(&mut s),
            [WorkerEvent::Run {
                id: 7,
                payload: vec![7]
            }]
        );
    }

    #[test]
    fn results_ready_together_leave_in_one_results_frame_within_the_masters_limit() {
        let t0 = Instant::now();
        let mut s = running(t0, None, 8);
        s.handle_frame(
            t0,
            Frame::Values {
                values: (0..6).map(|id| item(id, vec![])).collect(),
            },
        );
        events(&mut s);
        // Out of order, with a failure between them: runs of results coalesce.
        s.handle_result(t0, 3, Ok(vec![3]));
        s.handle_result(t0, 1, Ok(vec![1]));
        s.handle_result(t0, 0, Err("exit status 1".into()));
        s.handle_result(t0, 2, Ok(vec![2]));
        assert_eq!(
            drain(&mut s, t0),
            [
                Frame::Results {
                    results: vec![item(3, vec![3]), item(1, vec![1])]
                },
                Frame::Failed {
                    id: 0,
                    reason: "exit status 1".into()
                },
                Frame::Result {
                    id: 2,
                    payload: vec![2]
                },
            ]
        );
        // The master's limit (here 1024 bytes): as many as fit in one frame.
        let mut s = WorkerSession::new(WorkerSessionConfig::new("w", "tok"), t0);
        s.poll_transmit(t0);
        s.handle_frame(
            t0,
            Frame::Welcome {
                version: PROTOCOL_VERSION,
                heartbeat_ms: 1000,
                heartbeat_timeout_ms: 10_000,
                value_timeout_ms: None,
                max_frame: 1024,
                command: vec![],
                mode: CommandMode::PerValue,
            },
        );
        s.handle_frame(
            t0,
            Frame::Values {
                values: (0..3).map(|id| item(id, vec![])).collect(),
            },
        );
        for id in 0..3 {
            s.handle_result(t0, id, Ok(vec![id as u8; 500]));
        }
        let frames = drain(&mut s, t0);
        let sizes: Vec<usize> = frames
            .iter()
            .map(|f| crate::codec::Codec::Postcard.encode(f).len())
            .collect();
        // 1 + 1 + 2 × (1 + 2 + 500) = 1008; 1 + 1 + 2 + 500 = 504 (Result: variant, id, length, bytes).
        assert_eq!(sizes, [1008, 504], "{frames:?}");
    }

    #[test]
    fn a_hostile_values_frame_ends_the_session_naming_the_value() {
        let t0 = Instant::now();
        // The same value twice in one frame.
        let mut s = running(t0, None, 1);
        s.handle_frame(
            t0,
            Frame::Values {
                values: vec![item(5, vec![]), item(5, vec![])],
            },
        );
        assert_eq!(
            events(&mut s),
            [WorkerEvent::Closed(Err(SessionError::DuplicateValue(5)))],
            "nothing of a frame that breaks the rules is run"
        );
        assert_eq!(
            drain(&mut s, t0),
            [Frame::Error {
                message: "the master sent value #5, which it had already sent".into()
            }]
        );
        // A value the worker already holds (running).
        let mut s = running(t0, None, 1);
        s.handle_frame(
            t0,
            Frame::Value {
                id: 1,
                payload: vec![],
            },
        );
        s.handle_frame(
            t0,
            Frame::Values {
                values: vec![item(2, vec![]), item(1, vec![])],
            },
        );
        assert_eq!(
            events(&mut s).last(),
            Some(&WorkerEvent::Closed(Err(SessionError::DuplicateValue(1))))
        );
        // Empty, or after Done.
        for (before, name) in [(None, "empty Values"), (Some(Frame::Done), "Value")] {
            let mut s = running(t0, None, 1);
            s.handle_frame(
                t0,
                Frame::Value {
                    id: 0,
                    payload: vec![],
                },
            );
            if let Some(frame) = before {
                s.handle_frame(t0, frame);
            }
            let values = if name == "Value" {
                vec![item(1, vec![])]
            } else {
                vec![]
            };
            s.handle_frame(t0, Frame::Values { values });
            assert_eq!(
                events(&mut s).last(),
                Some(&WorkerEvent::Closed(Err(SessionError::Unexpected(name))))
            );
        }
        // A Results frame from the master.
        let mut s = running(t0, None, 1);
        s.handle_frame(
            t0,
            Frame::Results {
                results: vec![item(0, vec![])],
            },
        );
        assert_eq!(
            events(&mut s),
            [WorkerEvent::Closed(Err(SessionError::Unexpected("Results")))]
        );
        // Over the size limit: the codec refuses it before the core sees it.
        let mut s = running(t0, None, 1);
        let error = FrameError::TooLarge {
            size: 2000,
            max: 1024,
        };
        s.handle_bad_frame(t0, error.clone());
        assert_eq!(
            events(&mut s),
            [WorkerEvent::Closed(Err(SessionError::Malformed(error)))]
        );
    }

    #[test]
    fn jobs_raised_after_the_welcome_start_the_queued_values_and_lowered_stop_starting_more() {
        let t0 = Instant::now();
        let mut s = running(t0, None, 1);
        for id in 0..4 {
            s.handle_frame(t0, Frame::Value { id, payload: vec![] });
        }
        assert_eq!(events(&mut s).len(), 1);
        s.set_jobs(t0, 3);
        assert_eq!(events(&mut s).len(), 2);
        s.set_jobs(t0, 1);
        s.handle_result(t0, 0, Ok(vec![]));
        s.handle_result(t0, 1, Ok(vec![]));
        // Two of three ran out: one still runs, so the last one waits.
        assert!(events(&mut s).is_empty());
        s.handle_result(t0, 2, Ok(vec![]));
        assert_eq!(events(&mut s).len(), 1);
    }

    #[test]
    fn the_value_clock_starts_when_processing_starts() {
        let t0 = Instant::now();
        let mut s = running(t0, Some(3000), 1);
        s.handle_frame(
            t0,
            Frame::Value {
                id: 0,
                payload: vec![],
            },
        );
        s.handle_frame(
            t0,
            Frame::Value {
                id: 1,
                payload: vec![],
            },
        );
        events(&mut s);
        s.handle_result(t0 + 2 * S, 0, Ok(vec![]));
        assert_eq!(
            events(&mut s),
            [WorkerEvent::Run {
                id: 1,
                payload: vec![]
            }]
        );
        // Value 1 started at 2 s: it times out at 5.3 s (3 s and a tenth of grace), not 3.3 s.
        s.handle_frame(t0 + 3 * S, Frame::Heartbeat);
        s.handle_timeout(t0 + 3 * S);
        assert_eq!(events(&mut s), []);
        drain(&mut s, t0 + 3 * S);
        assert_eq!(s.poll_timeout(), Some(t0 + 4 * S)); // the next heartbeat comes first
        s.handle_frame(t0 + 5 * S, Frame::Heartbeat);
        s.handle_timeout(t0 + 5 * S);
        assert_eq!(events(&mut s), []);
        s.handle_timeout(t0 + 5 * S + S * 3 / 10);
        assert_eq!(events(&mut s), [WorkerEvent::Cancel { id: 1 }]);
        assert_eq!(
            drain(&mut s, t0 + 6 * S).last(),
            Some(&Frame::Failed {
                id: 1,
                reason: "timed out after 3s".into()
            })
        );
        // A result computed anyway is ignored: the value was answered.
        s.handle_result(t0 + 6 * S, 1, Ok(vec![]));
        assert_eq!(drain(&mut s, t0 + 6 * S), []);
    }

    #[test]
    fn done_is_answered_once_every_value_has_its_answer() {
        let t0 = Instant::now();
        let mut s = running(t0, None, 1);
        s.handle_frame(
            t0,
            Frame::Value {
                id: 7,
                payload: vec![],
            },
        );
        s.handle_frame(t0, Frame::Done);
        events(&mut s);
        assert!(!s.is_done_sending());
        s.handle_result(t0, 7, Ok(vec![1]));
        assert_eq!(
            drain(&mut s, t0),
            [
                Frame::Result {
                    id: 7,
                    payload: vec![1]
                },
                Frame::Done
            ]
        );
        assert_eq!(
            events(&mut s),
            [WorkerEvent::Closed(Ok(WorkerSummary { done: 1, failed: 0 }))]
        );
        assert!(s.is_done_sending());
    }

    #[test]
    fn protocol_violations_by_the_master_end_the_session_and_say_why() {
        let t0 = Instant::now();
        let mut s = running(t0, None, 1);
        s.handle_frame(
            t0,
            Frame::Value {
                id: 1,
                payload: vec![],
            },
        );
        s.handle_frame(
            t0,
            Frame::Value {
                id: 1,
                payload: vec![],
            },
        );
        assert_eq!(
            events(&mut s).last(),
            Some(&WorkerEvent::Closed(Err(SessionError::DuplicateValue(1))))
        );
        assert_eq!(
            drain(&mut s, t0),
            [Frame::Error {
                message: "the master sent value #1, which it had already sent".into()
            }]
        );
        let mut s = running(t0, None, 1);
        s.handle_frame(t0, Frame::Done);
        s.handle_frame(
            t0,
            Frame::Value {
                id: 1,
                payload: vec![],
            },
        );
        assert_eq!(
            events(&mut s).len(),
            1,
            "Done then a Value: only the clean end is reported"
        );
    }

    #[test]
    fn a_silent_master_is_given_up_after_its_heartbeat_timeout() {
        let t0 = Instant::now();
        let mut s = running(t0, None, 1);
        s.handle_timeout(t0 + 10 * S);
        assert_eq!(
            events(&mut s),
            [WorkerEvent::Closed(Err(SessionError::Silent(10 * S)))]
        );
    }

    #[test]
    fn no_welcome_in_time_ends_the_handshake() {
        let t0 = Instant::now();
        let mut s = WorkerSession::new(WorkerSessionConfig::new("w", "t"), t0);
        s.handle_timeout(t0 + 30 * S);
        assert_eq!(
            events(&mut s),
            [WorkerEvent::Closed(Err(SessionError::HandshakeTimeout(30 * S)))]
        );
    }
}
