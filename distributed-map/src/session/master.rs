//! The master's side of one worker connection.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::MapConfig;
use crate::frame::{Frame, FrameError, Item, PROTOCOL_VERSION};
use crate::join::same_token;

use super::{Outbox, SessionError, at, earliest};

/// What the master's session asks of its adapter.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MasterEvent {
    /// A worker presented a valid `Hello` (right version and token): call
    /// [`MasterSession::admit`] or [`MasterSession::refuse`].
    Hello {
        /// The name it gave.
        name: String,
    },
    /// The result of value `id`, which the worker held: hand it to the lender.
    Result {
        /// The value's id.
        id: u64,
        /// The result, encoded.
        payload: Vec<u8>,
    },
    /// The worker reports that value `id`, which it held, failed: the
    /// lender counts a failure of that value and lends it again.
    Failed {
        /// The value's id.
        id: u64,
        /// The worker's reason.
        reason: String,
    },
    /// The worker kept value `id` past the master's backstop deadline
    /// ([`MapConfig::value_timeout`] × batch size + heartbeat timeout): the
    /// lender takes it back and lends it again. A late answer from this
    /// worker is still taken, once.
    TimedOut {
        /// The value's id.
        id: u64,
        /// Why, in one line.
        reason: String,
    },
    /// Value `id` has been held for [`MapConfig::slow_value_warning`]
    /// without a result, and no value timeout is set: worth a warning. Said
    /// once per value.
    Slow {
        /// The value's id.
        id: u64,
        /// How long it has been held.
        held: Duration,
    },
    /// The session ended: `Ok` after a clean end (the worker answered
    /// everything and said `Done`, or the master closed it), or why not. No
    /// event follows.
    Closed(Result<(), SessionError>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for the worker's `Hello` until the deadline.
    AwaitingHello,
    /// A valid `Hello` was reported; the adapter decides.
    Admitting,
    /// Values and answers flow.
    Running,
    /// The last frames are being sent until the deadline.
    Closing,
    /// Nothing more to do: the adapter drops the transport.
    Closed,
}

/// A value sent to the worker and not answered yet.
#[derive(Debug)]
struct Held {
    id: u64,
    sent: Instant,
    /// The backstop fired: the lender took the value back.
    timed_out: bool,
    /// The slow-value warning was given.
    warned: bool,
}

/// The master's side of the wire protocol for one connection: a
/// deterministic, sans-IO state machine (see the [module documentation](super)).
///
/// ```
/// use std::sync::Arc;
/// use std::time::{Duration, Instant};
/// use pando_distributed_map::MapConfig;
/// use pando_distributed_map::frame::{Frame, PROTOCOL_VERSION};
/// use pando_distributed_map::session::{MasterEvent, MasterSession};
///
/// let config = Arc::new(MapConfig { token: "t0k".into(), ..MapConfig::default() });
/// let t0 = Instant::now();
/// let mut session = MasterSession::new(config, t0);
/// session.handle_frame(t0, Frame::Hello { version: PROTOCOL_VERSION, token: "t0k".into(), name: "laptop".into() });
/// assert_eq!(session.poll_event(), Some(MasterEvent::Hello { name: "laptop".into() }));
/// session.admit(t0);
/// assert!(matches!(session.poll_transmit(t0), Some(Frame::Welcome { .. })));
///
/// session.send_value(t0, 0, vec![42]);
/// assert_eq!(session.poll_transmit(t0), Some(Frame::Value { id: 0, payload: vec![42] }));
/// session.handle_frame(t0, Frame::Result { id: 0, payload: vec![7] });
/// assert_eq!(session.poll_event(), Some(MasterEvent::Result { id: 0, payload: vec![7] }));
///
/// // A second answer for the same value breaks the protocol: the worker is told why.
/// session.handle_frame(t0, Frame::Result { id: 0, payload: vec![7] });
/// assert!(matches!(session.poll_event(), Some(MasterEvent::Closed(Err(_)))));
/// assert!(matches!(session.poll_transmit(t0), Some(Frame::Error { .. })));
///
/// // Time is passed in: the session never reads a clock.
/// assert!(session.poll_timeout().is_some());
/// session.handle_timeout(t0 + Duration::from_secs(60));
/// assert!(session.is_closed());
/// ```
#[derive(Debug)]
pub struct MasterSession {
    config: Arc<MapConfig>,
    state: State,
    /// The handshake deadline, then the closing deadline.
    deadline: Instant,
    outbox: Outbox,
    events: VecDeque<MasterEvent>,
    held: VecDeque<Held>,
    /// `Done` or `Error` was queued after the last value.
    values_ended: bool,
}

impl MasterSession {
    /// A session for a connection accepted at `now`: the worker's `Hello`
    /// must arrive within [`MapConfig::heartbeat_timeout`].
    ///
    /// See [`MasterSession`] for an example.
    pub fn new(config: Arc<MapConfig>, now: Instant) -> Self {
        MasterSession {
            deadline: at(now, config.heartbeat_timeout),
            config,
            state: State::AwaitingHello,
            outbox: Outbox::new(now),
            events: VecDeque::new(),
            held: VecDeque::new(),
            values_ended: false,
        }
    }

    /// Whether the handshake is done and values may be sent
    /// ([`send_value`](Self::send_value)).
    ///
    /// See [`MasterSession::admit`].
    pub fn is_running(&self) -> bool {
        self.state == State::Running && !self.values_ended
    }

    /// Whether the session is over: nothing more to send or receive; the
    /// adapter drops the transport.
    ///
    /// See [`MasterSession`] for an example.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether the session is closing and every last frame was taken: the
    /// adapter flushes and closes the transport (or drops it at the deadline).
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use pando_distributed_map::{MapConfig, session::MasterSession};
    /// let t0 = Instant::now();
    /// let mut session = MasterSession::new(Arc::new(MapConfig::default()), t0);
    /// session.close(t0, Some("shutting down".into()));
    /// assert!(!session.is_done_sending()); // the Reject is still to be sent
    /// while session.poll_transmit(t0).is_some() {}
    /// assert!(session.is_done_sending());
    /// ```
    pub fn is_done_sending(&self) -> bool {
        matches!(self.state, State::Closing | State::Closed) && self.outbox.frames.is_empty()
    }

    /// How many values the worker holds (sent, not answered, not timed out).
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use pando_distributed_map::{MapConfig, session::MasterSession};
    /// let session = MasterSession::new(Arc::new(MapConfig::default()), Instant::now());
    /// assert_eq!(session.held(), 0);
    /// ```
    pub fn held(&self) -> usize {
        self.held.iter().filter(|h| !h.timed_out).count()
    }

    /// `upon` a frame from the worker.
    ///
    /// See [`MasterSession`] for an example.
    pub fn handle_frame(&mut self, now: Instant, frame: Frame) {
        self.outbox.last_heard = now;
        match self.state {
            State::AwaitingHello => match frame {
                Frame::Hello { version, .. } if version != PROTOCOL_VERSION => self.reject(
                    now,
                    format!(
                        "protocol version {version} is not supported (this master speaks version {PROTOCOL_VERSION})"
                    ),
                ),
                Frame::Hello { token, .. } if !same_token(&token, &self.config.token) => {
                    let reason = if token.is_empty() {
                        "missing join token"
                    } else {
                        "wrong join token"
                    };
                    self.reject(now, reason.to_string());
                }
                Frame::Hello { name, .. } => {
                    self.state = State::Admitting;
                    self.events.push_back(MasterEvent::Hello {
                        name: printable_name(&name),
                    });
                }
                other => self.reject(now, format!("expected a Hello frame, got {}", other.name())),
            },
            // A worker may send a heartbeat right after its Hello, before the
            // adapter decided: harmless.
            State::Admitting if frame == Frame::Heartbeat => {}
            State::Admitting => self.fail(now, SessionError::Unexpected(frame.name())),
            State::Running => self.running_frame(now, frame),
            State::Closing | State::Closed => {}
        }
    }

    fn running_frame(&mut self, now: Instant, frame: Frame) {
        match frame {
            Frame::Result { id, payload } => self.result(now, id, payload),
            // Several results at once: each as if it were its own `Result`
            // frame, in order; the first one that breaks the rules ends the
            // session (those before it were valid answers, and stand).
            Frame::Results { results } if results.is_empty() => {
                self.fail(now, SessionError::Unexpected("empty Results"));
            }
            Frame::Results { results } => {
                for Item { id, payload } in results {
                    self.result(now, id, payload);
                    if self.state != State::Running {
                        break;
                    }
                }
            }
            Frame::Failed { id, reason } => match self.take_held(id) {
                Some(_) => self.events.push_back(MasterEvent::Failed {
                    id,
                    reason: printable_text(&reason),
                }),
                None => self.fail(now, SessionError::UnknownValue(id)),
            },
            Frame::Heartbeat => {}
            Frame::Done => {
                let held = self.held();
                if held > 0 {
                    self.fail(now, SessionError::DoneEarly(held));
                } else {
                    self.end(now, Ok(()), None);
                }
            }
            Frame::Error { message } => {
                self.end(now, Err(SessionError::Remote(printable_text(&message))), None)
            }
            other => self.fail(now, SessionError::Unexpected(other.name())),
        }
    }

    /// The result of value `id`: an answer if the worker holds it, a
    /// violation otherwise.
    fn result(&mut self, now: Instant, id: u64, payload: Vec<u8>) {
        match self.take_held(id) {
            Some(_) => self.events.push_back(MasterEvent::Result { id, payload }),
            None => self.fail(now, SessionError::UnknownValue(id)),
        }
    }

    /// Removes value `id` from the values held; `None` if it is not held.
    fn take_held(&mut self, id: u64) -> Option<Held> {
        let i = self.held.iter().position(|h| h.id == id)?;
        self.held.remove(i)
    }

    /// `upon` bytes from the worker that are not a frame (the codec's error).
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use pando_distributed_map::{MapConfig, frame::{Frame, FrameError}, session::{MasterEvent, MasterSession}};
    /// let t0 = Instant::now();
    /// let mut session = MasterSession::new(Arc::new(MapConfig::default()), t0);
    /// session.handle_bad_frame(t0, FrameError::TooLarge { size: 99, max: 10 });
    /// assert!(matches!(session.poll_transmit(t0), Some(Frame::Reject { .. })));
    /// assert!(matches!(session.poll_event(), Some(MasterEvent::Closed(Err(_)))));
    /// ```
    pub fn handle_bad_frame(&mut self, now: Instant, error: FrameError) {
        self.outbox.last_heard = now;
        match self.state {
            State::AwaitingHello => self.reject(now, format!("malformed first frame: {error}")),
            State::Admitting | State::Running => self.fail(now, SessionError::Malformed(error)),
            State::Closing | State::Closed => {}
        }
    }

    /// `upon` the transport closing: `None` if the worker closed it, or the
    /// transport's error.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use pando_distributed_map::{MapConfig, session::{MasterEvent, MasterSession, SessionError}};
    /// let t0 = Instant::now();
    /// let mut session = MasterSession::new(Arc::new(MapConfig::default()), t0);
    /// session.handle_closed(t0, None);
    /// assert_eq!(session.poll_event(), Some(MasterEvent::Closed(Err(SessionError::Disconnected))));
    /// assert!(session.is_closed());
    /// ```
    pub fn handle_closed(&mut self, _now: Instant, error: Option<String>) {
        if self.state == State::Closed {
            return;
        }
        self.outbox.frames.clear();
        if self.state != State::Closing {
            let reason = error.map_or(SessionError::Disconnected, SessionError::Transport);
            self.events.push_back(MasterEvent::Closed(Err(reason)));
        }
        self.state = State::Closed;
    }

    /// `upon` a timer: call it when [`poll_timeout`](Self::poll_timeout)'s
    /// deadline has passed (calling it early is harmless).
    ///
    /// ```
    /// # use std::{sync::Arc, time::{Duration, Instant}};
    /// # use pando_distributed_map::{MapConfig, frame::Frame, session::{MasterEvent, MasterSession}};
    /// let t0 = Instant::now();
    /// let config = Arc::new(MapConfig { heartbeat_timeout: Duration::from_secs(10), ..MapConfig::default() });
    /// let mut session = MasterSession::new(config, t0);
    /// assert_eq!(session.poll_timeout(), Some(t0 + Duration::from_secs(10)));
    /// session.handle_timeout(t0 + Duration::from_secs(10)); // a peer that says nothing
    /// assert_eq!(session.poll_transmit(t0), Some(Frame::Reject { reason: "no Hello within 10s".into() }));
    /// ```
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.state {
            State::AwaitingHello if now >= self.deadline => {
                let reason = format!("no Hello within {:?}", self.config.heartbeat_timeout);
                self.reject(now, reason);
            }
            State::Running => {
                let (heartbeat, timeout) = (self.config.heartbeat, self.config.heartbeat_timeout);
                if let Err(e) = self.outbox.check(now, heartbeat, timeout) {
                    return self.fail(now, e);
                }
                self.check_values(now);
            }
            State::Closing if now >= self.deadline => self.state = State::Closed,
            _ => {}
        }
    }

    /// The master's deadline on values held by a worker that does not report
    /// a timeout itself: each of the `batch_size` values it may hold can take
    /// the whole value timeout, plus the time to hear about it.
    fn backstop(&self, value_timeout: Duration) -> Duration {
        let batch = u32::try_from(self.config.batch_size.get()).unwrap_or(u32::MAX);
        value_timeout
            .saturating_mul(batch)
            .saturating_add(self.config.heartbeat_timeout)
    }

    fn check_values(&mut self, now: Instant) {
        match (self.config.value_timeout, self.config.slow_value_warning) {
            (Some(timeout), _) => {
                let backstop = self.backstop(timeout);
                for held in self.held.iter_mut().filter(|h| !h.timed_out) {
                    if now >= at(held.sent, backstop) {
                        held.timed_out = true;
                        self.events.push_back(MasterEvent::TimedOut {
                            id: held.id,
                            reason: format!(
                                "no answer within {backstop:?} (value timeout {timeout:?}, for a batch of up to {}, plus the heartbeat timeout)",
                                self.config.batch_size
                            ),
                        });
                    }
                }
            }
            (None, Some(warning)) => {
                for held in self.held.iter_mut().filter(|h| !h.warned) {
                    if now >= at(held.sent, warning) {
                        held.warned = true;
                        self.events.push_back(MasterEvent::Slow {
                            id: held.id,
                            held: now - held.sent,
                        });
                    }
                }
            }
            (None, None) => {}
        }
    }

    /// Admits the worker whose `Hello` was reported: the `Welcome` is sent
    /// and values may follow.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use pando_distributed_map::{MapConfig, frame::{Frame, PROTOCOL_VERSION}, session::MasterSession};
    /// let t0 = Instant::now();
    /// let config = Arc::new(MapConfig::default());
    /// let mut session = MasterSession::new(config.clone(), t0);
    /// session.handle_frame(t0, Frame::Hello { version: PROTOCOL_VERSION, token: config.token.clone(), name: "w".into() });
    /// assert!(!session.is_running());
    /// session.admit(t0);
    /// assert!(session.is_running());
    /// ```
    pub fn admit(&mut self, now: Instant) {
        if self.state != State::Admitting {
            return;
        }
        self.state = State::Running;
        let config = &self.config;
        let welcome = Frame::Welcome {
            version: PROTOCOL_VERSION,
            heartbeat_ms: millis(config.heartbeat),
            heartbeat_timeout_ms: millis(config.heartbeat_timeout),
            value_timeout_ms: config.value_timeout.map(millis),
            max_frame: config.max_frame as u64,
            command: config.command.clone(),
            mode: config.command_mode,
        };
        self.outbox.push(welcome, now);
    }

    /// Refuses the worker whose `Hello` was reported (for example, the
    /// master is full): a `Reject` with `reason` is sent and the session closes.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use pando_distributed_map::{MapConfig, frame::{Frame, PROTOCOL_VERSION}, session::MasterSession};
    /// let t0 = Instant::now();
    /// let config = Arc::new(MapConfig::default());
    /// let mut session = MasterSession::new(config.clone(), t0);
    /// session.handle_frame(t0, Frame::Hello { version: PROTOCOL_VERSION, token: config.token.clone(), name: "w".into() });
    /// session.refuse(t0, "the master is full (4096 workers)".into());
    /// assert_eq!(session.poll_transmit(t0), Some(Frame::Reject { reason: "the master is full (4096 workers)".into() }));
    /// ```
    pub fn refuse(&mut self, now: Instant, reason: String) {
        if self.state == State::Admitting {
            self.reject(now, reason);
        }
    }

    /// Sends value `id` (its payload encoded by the codec). Only while
    /// [`is_running`](Self::is_running); ignored otherwise. A value too large
    /// for a frame is not sent: it fails at once ([`MasterEvent::Failed`]).
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use pando_distributed_map::{MapConfig, frame::{Frame, PROTOCOL_VERSION}, session::{MasterEvent, MasterSession}};
    /// let t0 = Instant::now();
    /// let config = Arc::new(MapConfig { max_frame: 1024, ..MapConfig::default() });
    /// let mut session = MasterSession::new(config.clone(), t0);
    /// session.handle_frame(t0, Frame::Hello { version: PROTOCOL_VERSION, token: config.token.clone(), name: "w".into() });
    /// session.poll_event();
    /// session.admit(t0);
    /// session.send_value(t0, 0, vec![0; 2000]);
    /// assert_eq!(session.poll_event(), Some(MasterEvent::Failed {
    ///     id: 0,
    ///     reason: "value of 2000 bytes exceeds the limit of 960 bytes (the frame limit less 64 bytes of header)".into(),
    /// }));
    /// ```
    pub fn send_value(&mut self, now: Instant, id: u64, payload: Vec<u8>) {
        if !self.is_running() {
            return;
        }
        let limit = self.config.max_frame.saturating_sub(super::RESULT_OVERHEAD);
        if payload.len() > limit {
            let reason = format!(
                "value of {} bytes exceeds the limit of {limit} bytes (the frame limit less {} bytes of header)",
                payload.len(),
                super::RESULT_OVERHEAD
            );
            self.events.push_back(MasterEvent::Failed { id, reason });
            return;
        }
        self.held.push_back(Held {
            id,
            sent: now,
            timed_out: false,
            warned: false,
        });
        self.outbox.push(Frame::Value { id, payload }, now);
    }

    /// No more values for this worker: `None` sends `Done` (the worker
    /// answers what it holds, then says `Done` too), `Some(message)` sends
    /// `Error` and closes.
    ///
    /// ```
    /// # use std::{sync::Arc, time::Instant};
    /// # use pando_distributed_map::{MapConfig, frame::{Frame, PROTOCOL_VERSION}, session::{MasterEvent, MasterSession}};
    /// let t0 = Instant::now();
    /// let config = Arc::new(MapConfig::default());
    /// let mut session = MasterSession::new(config.clone(), t0);
    /// session.handle_frame(t0, Frame::Hello { version: PROTOCOL_VERSION, token: config.token.clone(), name: "w".into() });
    /// session.admit(t0);
    /// session.end_values(t0, None);
    /// assert!(matches!(session.poll_transmit(t0), Some(Frame::Welcome { .. })));
    /// assert_eq!(session.poll_transmit(t0), Some(Frame::Done));
    /// session.handle_frame(t0, Frame::Done); // the worker answered everything
    /// assert_eq!(session.poll_event(), Some(MasterEvent::Hello { name: "w".into() }));
    /// assert_eq!(session.poll_event(), Some(MasterEvent::Closed(Ok(()))));
    /// ```
    pub fn end_values(&mut self, now: Instant, error: Option<String>) {
        if !self.is_running() {
            return;
        }
        self.values_ended = true;
        match error {
            None => self.outbox.push(Frame::Done, now),
            Some(message) => {
                self.outbox.push(Frame::Error { message }, now);
                self.end(now, Ok(()), None);
            }
        }
    }

    /// The master stops this session (its lender stopped, or it shuts
    /// down): `None` ends with `Done` if values were flowing, `Some(reason)`
    /// with `Error` (or `Reject` during the handshake). The session's end is
    /// reported as `Closed(Ok(()))`.
    ///
    /// See [`MasterSession::is_done_sending`] for an example.
    pub fn close(&mut self, now: Instant, reason: Option<String>) {
        match self.state {
            State::AwaitingHello | State::Admitting => {
                self.reject(now, reason.unwrap_or_else(|| "the master is done".into()));
            }
            State::Running => {
                let frame = match reason {
                    Some(message) => Some(Frame::Error { message }),
                    None if !self.values_ended => Some(Frame::Done),
                    None => None,
                };
                self.end(now, Ok(()), frame);
            }
            State::Closing | State::Closed => {}
        }
    }

    /// Ends the handshake with a `Reject`.
    fn reject(&mut self, now: Instant, reason: String) {
        self.outbox.push(
            Frame::Reject {
                reason: reason.clone(),
            },
            now,
        );
        self.end(now, Err(SessionError::Refused(reason)), None);
    }

    /// Ends a running session because the worker broke the protocol or its
    /// liveness: the worker is told why with an `Error` frame.
    fn fail(&mut self, now: Instant, error: SessionError) {
        let message = format!("the worker {error}");
        self.end(now, Err(error), Some(Frame::Error { message }));
    }

    /// Reports the end, queues a last frame, and starts closing.
    fn end(&mut self, now: Instant, result: Result<(), SessionError>, last: Option<Frame>) {
        if let Some(frame) = last {
            self.outbox.push(frame, now);
        }
        self.events.push_back(MasterEvent::Closed(result));
        self.state = State::Closing;
        self.deadline = at(now, self.config.heartbeat.min(self.config.heartbeat_timeout));
    }

    /// The next frame to send, if any. Call it when the transport can take a
    /// frame; the time is when it is taken.
    ///
    /// See [`MasterSession`] for an example.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Frame> {
        if self.state == State::Closed {
            return None;
        }
        self.outbox.pop(now, self.config.max_frame)
    }

    /// The next event for the adapter, if any.
    ///
    /// See [`MasterSession`] for an example.
    pub fn poll_event(&mut self) -> Option<MasterEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next;
    /// `None` once closed.
    ///
    /// See [`MasterSession::handle_timeout`] for an example.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::AwaitingHello | State::Closing => Some(self.deadline),
            State::Admitting | State::Closed => None,
            State::Running => {
                let config = &self.config;
                let liveness = self.outbox.deadline(config.heartbeat, config.heartbeat_timeout);
                let values = match (config.value_timeout, config.slow_value_warning) {
                    (Some(timeout), _) => {
                        let backstop = self.backstop(timeout);
                        self.held
                            .iter()
                            .find(|h| !h.timed_out)
                            .map(|h| at(h.sent, backstop))
                    }
                    (None, Some(warning)) => {
                        self.held.iter().find(|h| !h.warned).map(|h| at(h.sent, warning))
                    }
                    (None, None) => None,
                };
                earliest(Some(liveness), values)
            }
        }
    }
}

/// The longest worker name kept, in characters.
pub const MAX_NAME: usize = 64;

/// A worker's name as the master shows it (logs, monitoring): at most
/// [`MAX_NAME`] characters, control characters replaced by `?`, so that a
/// name can neither forge log lines nor flood them.
fn printable_name(name: &str) -> String {
    let name: String = name
        .chars()
        .take(MAX_NAME)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if name.is_empty() { "?".to_string() } else { name }
}

/// The most characters of a worker's failure reason or error message that
/// the master keeps (and logs).
pub(crate) const MAX_REASON: usize = 1024;

/// A worker's free text (a failure's reason, an error message) made safe to
/// log on one line: at most [`MAX_REASON`] characters (then `…`), a newline
/// shown as `\n` and other control characters as `?`, so that it can
/// neither flood the log nor forge a line of its own.
fn printable_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_REASON + 8));
    for (i, c) in text.chars().enumerate() {
        if i == MAX_REASON {
            out.push('…');
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push('?'),
            c => out.push(c),
        }
    }
    out
}

/// A duration in whole milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_workers_text_is_logged_on_one_bounded_line() {
        assert_eq!(
            printable_text("x\n pando: all done\u{1b}[2J"),
            "x\\n pando: all done?[2J"
        );
        let long = "a".repeat(10 * MAX_REASON);
        let shown = printable_text(&long);
        assert_eq!(shown.chars().count(), MAX_REASON + 1);
        assert!(shown.ends_with('…'));
        assert_eq!(
            printable_text("sh exited with exit status: 3"),
            "sh exited with exit status: 3"
        );
    }

    fn config(f: impl FnOnce(&mut MapConfig)) -> Arc<MapConfig> {
        let mut c = MapConfig {
            token: "tok".into(),
            heartbeat: S,
            heartbeat_timeout: 10 * S,
            ..MapConfig::default()
        };
        f(&mut c);
        Arc::new(c)
    }

    fn hello(token: &str) -> Frame {
        Frame::Hello {
            version: PROTOCOL_VERSION,
            token: token.into(),
            name: "w".into(),
        }
    }

    /// A running session at t0, with its Welcome taken.
    fn running(c: Arc<MapConfig>, t0: Instant) -> MasterSession {
        let mut s = MasterSession::new(c, t0);
        s.handle_frame(t0, hello("tok"));
        assert_eq!(s.poll_event(), Some(MasterEvent::Hello { name: "w".into() }));
        s.admit(t0);
        assert!(matches!(s.poll_transmit(t0), Some(Frame::Welcome { .. })));
        s
    }

    fn drain(s: &mut MasterSession, now: Instant) -> Vec<Frame> {
        std::iter::from_fn(|| s.poll_transmit(now)).collect()
    }

    #[test]
    fn wrong_token_missing_token_and_wrong_version_are_rejected_before_any_value() {
        let t0 = Instant::now();
        for (frame, reason) in [
            (hello("nope"), "wrong join token"),
            (hello(""), "missing join token"),
            (
                Frame::Hello {
                    version: 1,
                    token: "tok".into(),
                    name: "w".into(),
                },
                "protocol version 1 is not supported (this master speaks version 3)",
            ),
            (Frame::Heartbeat, "expected a Hello frame, got Heartbeat"),
        ] {
            let mut s = MasterSession::new(config(|_| {}), t0);
            s.handle_frame(t0, frame);
            s.send_value(t0, 0, vec![1]);
            assert_eq!(
                drain(&mut s, t0),
                [Frame::Reject {
                    reason: reason.into()
                }]
            );
            assert_eq!(
                s.poll_event(),
                Some(MasterEvent::Closed(Err(SessionError::Refused(reason.into()))))
            );
            assert!(s.is_done_sending());
        }
    }

    #[test]
    fn a_name_that_could_forge_or_flood_log_lines_is_cut_and_cleaned() {
        let t0 = Instant::now();
        let mut s = MasterSession::new(config(|_| {}), t0);
        let name = format!("x\n INFO worker root joined{}", "y".repeat(1 << 20));
        s.handle_frame(
            t0,
            Frame::Hello {
                version: PROTOCOL_VERSION,
                token: "tok".into(),
                name,
            },
        );
        let Some(MasterEvent::Hello { name }) = s.poll_event() else {
            panic!("a Hello")
        };
        assert_eq!(name.chars().count(), MAX_NAME);
        assert!(name.starts_with("x? INFO worker root joined"), "{name}");
    }

    #[test]
    fn a_heartbeat_right_after_the_hello_is_harmless() {
        let t0 = Instant::now();
        let mut s = MasterSession::new(config(|_| {}), t0);
        s.handle_frame(t0, hello("tok"));
        s.handle_frame(t0, Frame::Heartbeat);
        assert_eq!(s.poll_event(), Some(MasterEvent::Hello { name: "w".into() }));
        s.admit(t0);
        assert!(s.is_running());
        assert_eq!(s.poll_event(), None);
    }

    #[test]
    fn welcome_carries_the_timeouts_the_frame_limit_the_command_and_its_mode() {
        let t0 = Instant::now();
        let c = config(|c| {
            c.value_timeout = Some(3 * S);
            c.command = vec!["cat".into()];
            c.command_mode = crate::frame::CommandMode::Lines;
        });
        let mut s = MasterSession::new(c, t0);
        s.handle_frame(t0, hello("tok"));
        s.admit(t0);
        assert_eq!(
            s.poll_transmit(t0),
            Some(Frame::Welcome {
                version: PROTOCOL_VERSION,
                heartbeat_ms: 1000,
                heartbeat_timeout_ms: 10_000,
                value_timeout_ms: Some(3000),
                max_frame: crate::frame::DEFAULT_MAX_FRAME as u64,
                command: vec!["cat".into()],
                mode: crate::frame::CommandMode::Lines,
            })
        );
    }

    #[test]
    fn a_peer_that_says_nothing_is_rejected_at_the_deadline() {
        let t0 = Instant::now();
        let mut s = MasterSession::new(config(|_| {}), t0);
        assert_eq!(s.poll_timeout(), Some(t0 + 10 * S));
        s.handle_timeout(t0 + 9 * S);
        assert_eq!(s.poll_event(), None);
        s.handle_timeout(t0 + 10 * S);
        assert!(matches!(
            s.poll_event(),
            Some(MasterEvent::Closed(Err(SessionError::Refused(_))))
        ));
        assert_eq!(drain(&mut s, t0 + 10 * S).len(), 1);
        // The closing deadline: the transport is dropped even if the Reject cannot be flushed.
        s.handle_timeout(t0 + 20 * S);
        assert!(s.is_closed());
    }

    #[test]
    fn heartbeats_are_sent_when_idle_and_silence_ends_the_session() {
        let t0 = Instant::now();
        let mut s = running(config(|_| {}), t0);
        assert_eq!(s.poll_timeout(), Some(t0 + S));
        s.handle_timeout(t0 + S);
        assert_eq!(drain(&mut s, t0 + S), [Frame::Heartbeat]);
        s.handle_frame(t0 + 5 * S, Frame::Heartbeat);
        s.handle_timeout(t0 + 14 * S);
        assert!(s.poll_event().is_none());
        s.handle_timeout(t0 + 15 * S);
        assert_eq!(
            s.poll_event(),
            Some(MasterEvent::Closed(Err(SessionError::Silent(10 * S))))
        );
        assert!(matches!(
            drain(&mut s, t0 + 15 * S).last(),
            Some(Frame::Error { .. })
        ));
    }

    #[test]
    fn a_worker_that_does_not_read_is_dropped_even_if_it_sends_heartbeats() {
        let t0 = Instant::now();
        let mut s = running(config(|_| {}), t0);
        s.send_value(t0, 0, vec![1]); // never taken: the transport is full
        for t in 1..10 {
            s.handle_frame(t0 + t * S, Frame::Heartbeat);
            s.handle_timeout(t0 + t * S);
        }
        assert_eq!(s.poll_event(), None);
        s.handle_frame(t0 + 10 * S, Frame::Heartbeat);
        s.handle_timeout(t0 + 10 * S);
        assert_eq!(
            s.poll_event(),
            Some(MasterEvent::Closed(Err(SessionError::NotReading(10 * S))))
        );
    }

    #[test]
    fn one_answer_per_value() {
        let t0 = Instant::now();
        for bad in [
            Frame::Result {
                id: 9,
                payload: vec![],
            },
            Frame::Failed {
                id: 9,
                reason: "x".into(),
            },
        ] {
            let mut s = running(config(|_| {}), t0);
            s.send_value(t0, 0, vec![]);
            s.handle_frame(t0, bad);
            assert_eq!(
                s.poll_event(),
                Some(MasterEvent::Closed(Err(SessionError::UnknownValue(9))))
            );
            let frames = drain(&mut s, t0);
            assert_eq!(
                frames.last(),
                Some(&Frame::Error {
                    message: "the worker answered value #9, which it does not hold".into()
                })
            );
        }
        let mut s = running(config(|_| {}), t0);
        s.send_value(t0, 4, vec![]);
        s.handle_frame(
            t0,
            Frame::Failed {
                id: 4,
                reason: "exit 1".into(),
            },
        );
        assert_eq!(
            s.poll_event(),
            Some(MasterEvent::Failed {
                id: 4,
                reason: "exit 1".into()
            })
        );
        assert_eq!(s.held(), 0);
    }

    fn item(id: u64, payload: Vec<u8>) -> Item {
        Item { id, payload }
    }

    #[test]
    fn values_ready_together_leave_in_one_values_frame_within_the_frame_limit() {
        let t0 = Instant::now();
        let mut s = running(config(|_| {}), t0);
        for id in 0..3 {
            s.send_value(t0, id, vec![id as u8]);
        }
        assert_eq!(
            drain(&mut s, t0),
            [Frame::Values {
                values: vec![item(0, vec![0]), item(1, vec![1]), item(2, vec![2])]
            }]
        );
        assert_eq!(s.held(), 3);
        // One value alone is a `Value` frame.
        s.send_value(t0, 3, vec![3]);
        assert_eq!(
            drain(&mut s, t0),
            [Frame::Value {
                id: 3,
                payload: vec![3]
            }]
        );
        // With a small frame limit, as many as fit: 1 + 1 + 2 × (1 + 2 + 400)
        // = 808 bytes; a third would make 1211 > 1024.
        let mut s = running(config(|c| c.max_frame = 1024), t0);
        for id in 0..5 {
            s.send_value(t0, id, vec![7; 400]);
        }
        s.send_value(t0, 5, vec![7; 1024 - 64]); // the largest value allowed, alone
        let frames = drain(&mut s, t0);
        let sizes: Vec<usize> = frames
            .iter()
            .map(|f| crate::codec::Codec::Postcard.encode(f).len())
            .collect();
        assert_eq!(sizes, [808, 808, 404, 964], "{frames:?}");
        assert!(matches!(&frames[0], Frame::Values { values } if values.len() == 2));
        assert!(matches!(&frames[2], Frame::Value { id: 4, .. }));
        assert!(matches!(&frames[3], Frame::Value { id: 5, .. }));
    }

    #[test]
    fn a_results_frame_answers_each_of_its_values_in_any_order() {
        let t0 = Instant::now();
        let mut s = running(config(|_| {}), t0);
        for id in 0..4 {
            s.send_value(t0, id, vec![]);
        }
        drain(&mut s, t0);
        s.handle_frame(
            t0,
            Frame::Results {
                results: vec![item(2, vec![20]), item(0, vec![0])],
            },
        );
        s.handle_frame(
            t0,
            Frame::Failed {
                id: 3,
                reason: "exit 1".into(),
            },
        );
        s.handle_frame(
            t0,
            Frame::Results {
                results: vec![item(1, vec![10])],
            },
        );
        assert_eq!(
            std::iter::from_fn(|| s.poll_event()).collect::<Vec<_>>(),
            [
                MasterEvent::Result {
                    id: 2,
                    payload: vec![20]
                },
                MasterEvent::Result {
                    id: 0,
                    payload: vec![0]
                },
                MasterEvent::Failed {
                    id: 3,
                    reason: "exit 1".into()
                },
                MasterEvent::Result {
                    id: 1,
                    payload: vec![10]
                },
            ]
        );
        assert_eq!(s.held(), 0);
        assert!(s.is_running());
    }

    #[test]
    fn a_results_frame_with_a_duplicate_or_unknown_id_ends_the_session_naming_it() {
        let t0 = Instant::now();
        for (results, valid, bad) in [
            // The same value twice in one frame.
            (vec![item(0, vec![1]), item(0, vec![1])], Some(0), 0),
            // A value never lent to this worker.
            (vec![item(1, vec![1]), item(9, vec![1])], Some(1), 9),
            // A value already answered by an earlier frame.
            (vec![item(2, vec![1]), item(0, vec![1])], None, 2),
        ] {
            let mut s = running(config(|_| {}), t0);
            for id in 0..3 {
                s.send_value(t0, id, vec![]);
            }
            drain(&mut s, t0);
            s.handle_frame(
                t0,
                Frame::Result {
                    id: 2,
                    payload: vec![],
                },
            );
            assert!(matches!(s.poll_event(), Some(MasterEvent::Result { id: 2, .. })));
            s.handle_frame(t0, Frame::Results { results });
            let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
            // A valid answer before the bad one stands; nothing after it is taken.
            let mut expected: Vec<MasterEvent> = valid
                .map(|id| MasterEvent::Result { id, payload: vec![1] })
                .into_iter()
                .collect();
            expected.push(MasterEvent::Closed(Err(SessionError::UnknownValue(bad))));
            assert_eq!(events, expected);
            assert_eq!(
                drain(&mut s, t0),
                [Frame::Error {
                    message: format!("the worker answered value #{bad}, which it does not hold")
                }]
            );
            assert!(!s.is_running());
        }
    }

    #[test]
    fn an_empty_results_frame_and_a_values_frame_from_the_worker_are_violations() {
        let t0 = Instant::now();
        for (frame, name) in [
            (Frame::Results { results: vec![] }, "empty Results"),
            (
                Frame::Values {
                    values: vec![item(0, vec![])],
                },
                "Values",
            ),
        ] {
            let mut s = running(config(|_| {}), t0);
            s.send_value(t0, 0, vec![]);
            drain(&mut s, t0);
            s.handle_frame(t0, frame);
            assert_eq!(
                s.poll_event(),
                Some(MasterEvent::Closed(Err(SessionError::Unexpected(name))))
            );
            assert_eq!(
                drain(&mut s, t0),
                [Frame::Error {
                    message: format!("the worker sent an unexpected {name} frame")
                }]
            );
        }
    }

    #[test]
    fn a_results_frame_over_the_size_limit_ends_the_session() {
        let t0 = Instant::now();
        let mut s = running(config(|c| c.max_frame = 1024), t0);
        s.send_value(t0, 0, vec![]);
        s.send_value(t0, 1, vec![]);
        drain(&mut s, t0);
        // Each result fits a frame alone; together they do not.
        let frame = Frame::Results {
            results: vec![item(0, vec![1; 600]), item(1, vec![1; 600])],
        };
        let bytes = crate::codec::Codec::Postcard.encode(&frame);
        let error = crate::codec::Codec::Postcard
            .decode(&bytes, 1024)
            .expect_err("over the limit");
        assert_eq!(
            error,
            FrameError::TooLarge {
                size: bytes.len(),
                max: 1024
            }
        );
        s.handle_bad_frame(t0, error.clone());
        assert_eq!(
            s.poll_event(),
            Some(MasterEvent::Closed(Err(SessionError::Malformed(error))))
        );
        assert_eq!(
            drain(&mut s, t0),
            [Frame::Error {
                message: format!(
                    "the worker sent a malformed frame: frame of {} bytes exceeds the limit of 1024 bytes",
                    bytes.len()
                )
            }]
        );
    }

    #[test]
    fn unexpected_and_malformed_frames_end_the_session_with_an_error_frame() {
        let t0 = Instant::now();
        let mut s = running(config(|_| {}), t0);
        s.handle_frame(
            t0,
            Frame::Value {
                id: 0,
                payload: vec![],
            },
        );
        assert_eq!(
            s.poll_event(),
            Some(MasterEvent::Closed(Err(SessionError::Unexpected("Value"))))
        );
        let mut s = running(config(|_| {}), t0);
        let error = FrameError::Malformed {
            size: 3,
            reason: "bad".into(),
        };
        s.handle_bad_frame(t0, error.clone());
        assert_eq!(
            s.poll_event(),
            Some(MasterEvent::Closed(Err(SessionError::Malformed(error))))
        );
        assert!(matches!(drain(&mut s, t0).as_slice(), [Frame::Error { .. }]));
        // Nothing more is accepted after that.
        s.handle_frame(t0, Frame::Heartbeat);
        assert_eq!(s.poll_event(), None);
    }

    #[test]
    fn the_backstop_takes_back_a_value_once_and_a_late_answer_is_still_taken() {
        let t0 = Instant::now();
        let c = config(|c| {
            c.value_timeout = Some(3 * S);
            c.batch_size = std::num::NonZeroUsize::new(2).unwrap();
        });
        let mut s = running(c, t0);
        s.send_value(t0, 0, vec![]);
        s.send_value(t0 + S, 1, vec![]);
        drain(&mut s, t0 + S);
        // Backstop: 3 s × 2 + 10 s = 16 s after sending; heartbeats keep the worker alive.
        let mut t = t0;
        while t < t0 + 16 * S {
            t += S / 2;
            s.handle_frame(t, Frame::Heartbeat);
            s.handle_timeout(t);
            drain(&mut s, t);
            if t < t0 + 16 * S {
                assert_eq!(s.poll_event(), None, "at {:?}", t - t0);
            }
        }
        assert_eq!(s.poll_timeout(), Some((t0 + 17 * S).min(t + S)));
        assert!(matches!(
            s.poll_event(),
            Some(MasterEvent::TimedOut { id: 0, .. })
        ));
        assert_eq!(s.held(), 1);
        s.handle_timeout(t0 + 17 * S);
        assert!(matches!(
            s.poll_event(),
            Some(MasterEvent::TimedOut { id: 1, .. })
        ));
        s.handle_timeout(t0 + 18 * S);
        assert_eq!(s.poll_event(), None, "a timed-out value is reported once");
        // A late result is still an answer (the lender accepts it once or drops it).
        s.handle_frame(
            t0 + 18 * S,
            Frame::Result {
                id: 0,
                payload: vec![],
            },
        );
        assert_eq!(
            s.poll_event(),
            Some(MasterEvent::Result {
                id: 0,
                payload: vec![]
            })
        );
    }

    #[test]
    fn without_a_timeout_a_long_held_value_is_reported_once() {
        let t0 = Instant::now();
        let mut s = running(config(|c| c.slow_value_warning = Some(60 * S)), t0);
        s.send_value(t0, 5, vec![]);
        for t in 1..=70 {
            s.handle_frame(t0 + t * S, Frame::Heartbeat);
            s.handle_timeout(t0 + t * S);
            drain(&mut s, t0 + t * S);
        }
        assert_eq!(s.poll_event(), Some(MasterEvent::Slow { id: 5, held: 60 * S }));
        assert_eq!(s.poll_event(), None);
    }

    #[test]
    fn the_closing_sequence_after_done() {
        let t0 = Instant::now();
        let mut s = running(config(|_| {}), t0);
        s.send_value(t0, 0, vec![]);
        s.end_values(t0, None);
        s.send_value(t0, 1, vec![]); // ignored: values ended
        assert_eq!(
            drain(&mut s, t0),
            [
                Frame::Value {
                    id: 0,
                    payload: vec![]
                },
                Frame::Done
            ]
        );
        s.handle_frame(
            t0,
            Frame::Result {
                id: 0,
                payload: vec![1],
            },
        );
        s.handle_frame(t0, Frame::Done);
        assert_eq!(
            s.poll_event(),
            Some(MasterEvent::Result {
                id: 0,
                payload: vec![1]
            })
        );
        assert_eq!(s.poll_event(), Some(MasterEvent::Closed(Ok(()))));
        assert!(s.is_done_sending());
    }

    #[test]
    fn done_while_holding_values_is_an_error_and_an_error_frame_is_reported() {
        let t0 = Instant::now();
        let mut s = running(config(|_| {}), t0);
        s.send_value(t0, 0, vec![]);
        s.handle_frame(t0, Frame::Done);
        assert_eq!(
            s.poll_event(),
            Some(MasterEvent::Closed(Err(SessionError::DoneEarly(1))))
        );
        assert_eq!(
            drain(&mut s, t0).last(),
            Some(&Frame::Error {
                message: "the worker said it was done while holding 1 value(s)".into()
            })
        );
        let mut s = running(config(|_| {}), t0);
        s.handle_frame(
            t0,
            Frame::Error {
                message: "out of memory".into(),
            },
        );
        assert_eq!(
            s.poll_event(),
            Some(MasterEvent::Closed(Err(SessionError::Remote(
                "out of memory".into()
            ))))
        );
    }

    #[test]
    fn heartbeat_and_timeouts_near_the_maximum_do_not_overflow() {
        let t0 = Instant::now();
        let c = config(|c| {
            c.heartbeat = Duration::from_secs(u64::MAX / 4);
            c.heartbeat_timeout = Duration::from_secs(u64::MAX / 4);
            c.value_timeout = Some(Duration::MAX);
        });
        let mut s = MasterSession::new(c, t0);
        s.handle_frame(t0, hello("tok"));
        s.admit(t0);
        s.send_value(t0, 0, vec![]);
        let _ = s.poll_timeout();
        s.handle_timeout(t0 + S);
    }
}
