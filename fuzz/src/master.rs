//! The `master_session` target: [`MasterSession`] fed an arbitrary sequence
//! of events, as its adapter could feed them (frames, bad frames and raw
//! bytes from the worker, the transport closing, timeouts after arbitrary
//! time steps, admit, refuse, values to send, `end_values`, `close`, and
//! frames taken when the transport has room), with an arbitrary valid
//! [`MapConfig`].
//!
//! Properties:
//!
//! * it never panics;
//! * it never sends a `Value` before the `Welcome`, nor a `Welcome` after a
//!   `Reject` or after the session ended, nor two `Welcome`s or `Reject`s;
//! * it never accepts two answers (`Result` or `Failed`) for one value sent
//!   (a value re-sent after the master's backstop took it back may be
//!   answered once per send), nor an answer for a value never sent;
//! * it never emits anything after closing: no event after `Closed`, no
//!   frame and no deadline once [`is_closed`](MasterSession::is_closed), and
//!   a value passed to `send_value` after the end is never sent.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use pando_distributed_map::MapConfig;
use pando_distributed_map::codec::Codec;
use pando_distributed_map::frame::{Frame, FrameError, PROTOCOL_VERSION};
use pando_distributed_map::session::{MasterEvent, MasterSession};

use crate::arbitrary_serde;

/// The join token of every fuzzed master.
pub(crate) const TOKEN: &str = "fuzz-token";
/// At most this many events per input.
const MAX_STEPS: usize = 400;

/// One event the adapter feeds the session (or one thing it does).
#[derive(Arbitrary, Debug)]
enum Step {
    /// The worker's `Hello`.
    Hello {
        right_version: bool,
        right_token: bool,
        name: String,
    },
    /// The worker answers the `which`-th value sent.
    Result { which: u8, payload: Vec<u8> },
    /// The worker reports the `which`-th value sent as failed.
    Failed { which: u8, reason: String },
    /// A result for a value that was never sent.
    StrayResult { id: u64 },
    /// The worker's `Done`.
    Done,
    /// The worker's `Heartbeat`.
    Heartbeat,
    /// The worker's `Error`.
    Error(String),
    /// Any frame at all (any variant, any fields).
    AnyFrame,
    /// Raw bytes off the wire, through the codec.
    Bytes(Vec<u8>),
    /// Bytes that are not a frame.
    BadFrame { too_large: bool },
    /// The transport closed (cleanly, or with an error).
    Closed(Option<String>),
    /// Time passes, then the timer fires.
    Advance { ms: u32 },
    /// The timer fires at the session's deadline.
    Deadline,
    /// The adapter admits the worker.
    Admit,
    /// The adapter refuses the worker.
    Refuse(String),
    /// The lender hands a value over: a new one, or (`again`) one of the
    /// values sent before that the worker no longer holds.
    SendValue { len: u16, again: Option<u8> },
    /// No more values.
    EndValues(Option<String>),
    /// The master stops the session.
    Close(Option<String>),
    /// The transport takes up to `max` frames.
    Transmit { max: u8 },
}

/// The session's configuration, from the fuzzer's bytes; `None` if invalid.
pub(crate) fn config(u: &mut Unstructured<'_>) -> arbitrary::Result<Option<MapConfig>> {
    let ms = |u: &mut Unstructured<'_>, max: u64| -> arbitrary::Result<Duration> {
        Ok(Duration::from_millis(u.int_in_range(1..=max)?))
    };
    let heartbeat = ms(u, 5_000)?;
    let heartbeat_timeout = heartbeat + ms(u, 20_000)?;
    let value_timeout = if u.arbitrary()? {
        Some(ms(u, 30_000)?)
    } else {
        None
    };
    let slow_value_warning = if u.arbitrary()? {
        Some(ms(u, 60_000)?)
    } else {
        None
    };
    let config = MapConfig {
        batch_size: NonZeroUsize::new(u.int_in_range(1..=4)?).unwrap_or(NonZeroUsize::MIN),
        heartbeat,
        heartbeat_timeout,
        value_timeout,
        slow_value_warning,
        token: TOKEN.into(),
        max_frame: u.int_in_range(64..=4096)?,
        command: if u.arbitrary()? {
            vec!["sh".into(), "-c".into(), "cat".into()]
        } else {
            Vec::new()
        },
        ..MapConfig::default()
    };
    Ok(config.validate().is_ok().then_some(config))
}

/// What the test knows of the session's past.
#[derive(Default)]
struct Model {
    /// Every value id sent, in order (with repeats).
    sent: Vec<u64>,
    /// Per id: how many times `send_value` was accepted for it.
    sends: BTreeMap<u64, u32>,
    /// The values sent and not answered, in sending order, each with
    /// whether the master's backstop took it back (`TimedOut`): an answer
    /// takes the first one with its id, as a late answer is still taken once.
    outstanding: Vec<(u64, bool)>,
    /// Per id: how many times its `Value` frame was taken.
    transmitted: BTreeMap<u64, u32>,
    next_id: u64,
    hello: bool,
    admitted: bool,
    welcome_sent: bool,
    reject_sent: bool,
    /// The session reported `Closed`.
    closed: bool,
}

impl Model {
    /// The `which`-th id sent, if any.
    fn pick(&self, which: u8) -> Option<u64> {
        (!self.sent.is_empty()).then(|| self.sent[usize::from(which) % self.sent.len()])
    }

    /// Whether the worker holds `id` (sent, not answered, not taken back):
    /// the lender would not lend it again.
    fn held(&self, id: u64) -> bool {
        self.outstanding
            .iter()
            .any(|&(o, timed_out)| o == id && !timed_out)
    }
}

/// Runs the `master_session` target on one input.
///
/// # Panics
///
/// On a violated property, naming it (libFuzzer records the input).
///
/// ```
/// pando_fuzz::master::check(b"");
/// pando_fuzz::master::check(&[7; 64]);
/// ```
pub fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(Some(config)) = config(&mut u) else {
        return;
    };
    let config = Arc::new(config);
    let t0 = Instant::now();
    let mut now = t0;
    let mut session = MasterSession::new(config.clone(), now);
    let mut m = Model::default();
    let mut trace = Vec::new();

    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let Ok(step) = Step::arbitrary(&mut u) else {
            break;
        };
        trace.push(format!("{:?} {step:?}", now - t0));
        match step {
            Step::Hello {
                right_version,
                right_token,
                name,
            } => {
                let frame = Frame::Hello {
                    version: if right_version {
                        PROTOCOL_VERSION
                    } else {
                        PROTOCOL_VERSION.wrapping_add(1)
                    },
                    token: if right_token { TOKEN.into() } else { name.clone() },
                    name,
                };
                session.handle_frame(now, frame);
            }
            Step::Result { which, payload } => {
                if let Some(id) = m.pick(which) {
                    session.handle_frame(now, Frame::Result { id, payload });
                }
            }
            Step::Failed { which, reason } => {
                if let Some(id) = m.pick(which) {
                    session.handle_frame(now, Frame::Failed { id, reason });
                }
            }
            Step::StrayResult { id } => {
                let id = id | 1 << 63; // never sent
                session.handle_frame(now, Frame::Result { id, payload: vec![] });
            }
            Step::Done => session.handle_frame(now, Frame::Done),
            Step::Heartbeat => session.handle_frame(now, Frame::Heartbeat),
            Step::Error(message) => session.handle_frame(now, Frame::Error { message }),
            Step::AnyFrame => match arbitrary_serde::<Frame>(&mut u) {
                Ok(frame) => {
                    trace.push(format!("  = {frame:?}"));
                    session.handle_frame(now, frame);
                }
                Err(_) => break,
            },
            Step::Bytes(bytes) => match Codec::Postcard.decode(&bytes, config.max_frame) {
                Ok(frame) => session.handle_frame(now, frame),
                Err(e) => session.handle_bad_frame(now, e),
            },
            Step::BadFrame { too_large } => {
                let error = if too_large {
                    FrameError::TooLarge {
                        size: config.max_frame + 1,
                        max: config.max_frame,
                    }
                } else {
                    FrameError::Malformed {
                        size: 3,
                        reason: "fuzz".into(),
                    }
                };
                session.handle_bad_frame(now, error);
            }
            Step::Closed(error) => session.handle_closed(now, error),
            Step::Advance { ms } => {
                now += Duration::from_millis(u64::from(ms));
                session.handle_timeout(now);
            }
            Step::Deadline => {
                if let Some(deadline) = session.poll_timeout() {
                    now = now.max(deadline);
                    session.handle_timeout(now);
                }
            }
            Step::Admit => {
                if m.hello && !m.closed {
                    m.admitted = true;
                }
                session.admit(now);
            }
            Step::Refuse(reason) => session.refuse(now, reason),
            Step::SendValue { len, again } => {
                // The lender never hands a worker a value it holds.
                let id = match again.and_then(|w| m.pick(w)) {
                    Some(id) if !m.held(id) => id,
                    _ => {
                        m.next_id += 1;
                        m.next_id - 1
                    }
                };
                if session.is_running() {
                    assert!(!m.closed, "the session runs after it reported Closed");
                    m.sent.push(id);
                    *m.sends.entry(id).or_default() += 1;
                    m.outstanding.push((id, false));
                }
                session.send_value(now, id, vec![0; usize::from(len)]);
            }
            Step::EndValues(error) => session.end_values(now, error),
            Step::Close(reason) => session.close(now, reason),
            Step::Transmit { max } => {
                for _ in 0..max {
                    let Some(frame) = session.poll_transmit(now) else {
                        break;
                    };
                    on_frame(&mut m, &frame, &trace);
                }
            }
        }
        events(&mut session, &mut m, &trace);
        if session.is_closed() {
            assert_eq!(
                session.poll_timeout(),
                None,
                "a closed session has a deadline\n{trace:#?}"
            );
            assert_eq!(
                session.poll_transmit(now),
                None,
                "a closed session sends a frame\n{trace:#?}"
            );
        }
        if let Some(deadline) = session.poll_timeout() {
            assert!(
                deadline.checked_duration_since(t0).is_some(),
                "a deadline before the session started\n{trace:#?}"
            );
        }
    }
    // The adapter drains what is left.
    while let Some(frame) = session.poll_transmit(now) {
        on_frame(&mut m, &frame, &trace);
    }
    events(&mut session, &mut m, &trace);
}

/// Takes the session's events and checks them.
fn events(session: &mut MasterSession, m: &mut Model, trace: &[String]) {
    while let Some(event) = session.poll_event() {
        assert!(!m.closed, "{event:?} after Closed\n{trace:#?}");
        match event {
            MasterEvent::Hello { .. } => {
                assert!(!m.hello, "a second Hello event\n{trace:#?}");
                m.hello = true;
            }
            MasterEvent::Result { id, .. } | MasterEvent::Failed { id, .. } => {
                let Some(i) = m.outstanding.iter().position(|&(o, _)| o == id) else {
                    panic!(
                        "value #{id} was answered more times than it was sent ({} sends)\n{trace:#?}",
                        m.sends.get(&id).copied().unwrap_or(0)
                    );
                };
                m.outstanding.remove(i);
            }
            MasterEvent::TimedOut { id, .. } => {
                let Some(held) = m
                    .outstanding
                    .iter_mut()
                    .find(|(o, timed_out)| *o == id && !timed_out)
                else {
                    panic!("value #{id} timed out without being held, or twice\n{trace:#?}");
                };
                held.1 = true;
            }
            MasterEvent::Slow { id, .. } => {
                assert!(
                    m.held(id),
                    "value #{id} reported slow without being held\n{trace:#?}"
                );
            }
            MasterEvent::Closed(_) => m.closed = true,
            // Events added later: nothing to check yet.
            _ => {}
        }
    }
}

/// Checks a frame the session sent.
fn on_frame(m: &mut Model, frame: &Frame, trace: &[String]) {
    match frame {
        Frame::Welcome { .. } => {
            assert!(
                !m.welcome_sent && !m.reject_sent,
                "a Welcome after a Welcome or a Reject\n{trace:#?}"
            );
            assert!(m.admitted, "a Welcome without admit\n{trace:#?}");
            m.welcome_sent = true;
        }
        Frame::Reject { .. } => {
            assert!(
                !m.welcome_sent && !m.reject_sent,
                "a Reject after a Welcome or a Reject\n{trace:#?}"
            );
            m.reject_sent = true;
        }
        Frame::Hello { .. } | Frame::Result { .. } | Frame::Failed { .. } => {
            panic!("the master sent a worker's frame: {frame:?}\n{trace:#?}")
        }
        // Before the Welcome, only a Reject or an Error.
        Frame::Error { .. } => {}
        // Values, Done, heartbeats, and frames added later.
        other => {
            assert!(
                m.welcome_sent,
                "{} sent before the Welcome\n{trace:#?}",
                other.name()
            );
            assert!(!m.reject_sent, "{} sent after a Reject\n{trace:#?}", other.name());
            if let Frame::Value { id, .. } = other {
                let sent = m.transmitted.entry(*id).or_default();
                *sent += 1;
                assert!(
                    *sent <= m.sends.get(id).copied().unwrap_or(0),
                    "value #{id} sent more times than the lender handed it over (or after the end)\n{trace:#?}"
                );
            }
        }
    }
}
