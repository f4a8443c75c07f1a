//! The `worker_session` target: [`WorkerSession`] fed an arbitrary sequence
//! of events, as its adapter could feed them (frames, bad frames and raw
//! bytes from the master, the transport closing, timeouts after arbitrary
//! time steps, the function's results, `stop`, and frames taken when the
//! transport has room), with an arbitrary configuration. Its `Welcome`
//! frames are made by a real [`MasterSession`] with an arbitrary valid
//! [`MapConfig`](pando_distributed_map::MapConfig), so that the target
//! follows the protocol's `Welcome` as it grows.
//!
//! Properties:
//!
//! * it never panics;
//! * its first frame is its `Hello`; it runs no value before it was
//!   welcomed, and never more at once than its `jobs`;
//! * it never sends two answers (`Result` or `Failed`) for one value it
//!   received, nor an answer the function did not give (or a timeout did
//!   not cause), nor an answer after its `Done`;
//! * it never emits anything after closing: no event after `Closed`, no
//!   frame and no deadline once [`is_closed`](WorkerSession::is_closed), and
//!   a result handed over after the end is never sent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use pando_distributed_map::codec::Codec;
use pando_distributed_map::frame::{Frame, FrameError, PROTOCOL_VERSION};
use pando_distributed_map::session::{MasterSession, WorkerEvent, WorkerSession, WorkerSessionConfig};

use crate::arbitrary_serde;
use crate::master::{TOKEN, config};

/// At most this many events per input.
const MAX_STEPS: usize = 400;

/// One event the adapter feeds the session (or one thing it does).
#[derive(Arbitrary, Debug)]
enum Step {
    /// The master's `Welcome` (made by a master session), possibly with
    /// another protocol version.
    Welcome { wrong_version: bool },
    /// The master's `Reject`.
    Reject(String),
    /// A value: a new one, or (`again`) the id of a value received before.
    Value { len: u8, again: Option<u8> },
    /// The master's `Done`.
    Done,
    /// The master's `Error`.
    Error(String),
    /// The master's `Heartbeat`.
    Heartbeat,
    /// Any frame at all (any variant, any fields).
    AnyFrame,
    /// Raw bytes off the wire, through the codec.
    Bytes(Vec<u8>),
    /// Bytes that are not a frame.
    BadFrame,
    /// The transport closed (cleanly, or with an error).
    Closed(Option<String>),
    /// Time passes, then the timer fires.
    Advance { ms: u32 },
    /// The timer fires at the session's deadline.
    Deadline,
    /// The function answers the `which`-th value received: a result of
    /// `len` bytes, or an error.
    Result { which: u8, ok: bool, len: u16 },
    /// The function answers a value never received.
    StrayResult { id: u64 },
    /// The worker stops.
    Stop(String),
    /// The transport takes up to `max` frames.
    Transmit { max: u8 },
    /// The function keeps the deadlines itself (`None`), or another
    /// per-value deadline applies (`Session::own_deadlines`).
    SetValueTimeout { ms: Option<u16> },
}

/// What the test knows of the session's past.
#[derive(Default)]
struct Model {
    /// The session's `jobs`.
    jobs: usize,
    /// Every value id received (with repeats).
    received: Vec<u64>,
    next_id: u64,
    welcomed: bool,
    /// The values being run (`Run` events not answered nor cancelled).
    running: Vec<u64>,
    /// Per id: `Run` events.
    runs: BTreeMap<u64, u32>,
    /// Per id: answers the session may send (the function answered a
    /// running value, or the session cancelled it).
    may_answer: BTreeMap<u64, u32>,
    /// Per id: answers sent.
    answers: BTreeMap<u64, u32>,
    /// Frames taken so far.
    frames: usize,
    /// The worker's `Done` was sent.
    done_sent: bool,
    /// A `Done` from the master was handed to the session.
    master_done: bool,
    /// The session reported `Closed`.
    closed: bool,
}

/// Runs the `worker_session` target on one input.
///
/// # Panics
///
/// On a violated property, naming it (libFuzzer records the input).
///
/// ```
/// pando_fuzz::worker::check(b"");
/// pando_fuzz::worker::check(&[1; 64]);
/// ```
pub fn check(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(Some(map_config)) = config(&mut u) else {
        return;
    };
    let Ok(jobs) = u.int_in_range(1..=3usize) else {
        return;
    };
    let Ok(handshake_ms) = u.int_in_range(1..=60_000u64) else {
        return;
    };
    let t0 = Instant::now();
    let welcome = {
        let mut master = MasterSession::new(Arc::new(map_config.clone()), t0);
        master.handle_frame(
            t0,
            Frame::Hello {
                version: PROTOCOL_VERSION,
                token: TOKEN.into(),
                name: "w".into(),
            },
        );
        master.admit(t0);
        match master.poll_transmit(t0) {
            Some(welcome @ Frame::Welcome { .. }) => welcome,
            other => panic!("the master did not welcome a worker with the right token: {other:?}"),
        }
    };
    let mut config = WorkerSessionConfig::new("fuzz", TOKEN);
    config.jobs = jobs;
    config.handshake_timeout = Duration::from_millis(handshake_ms);
    let mut now = t0;
    let mut session = WorkerSession::new(config, now);
    let mut m = Model {
        jobs,
        ..Model::default()
    };
    let mut trace = vec![format!("jobs {jobs}, handshake {handshake_ms} ms, {welcome:?}")];

    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let Ok(step) = Step::arbitrary(&mut u) else {
            break;
        };
        trace.push(format!("{:?} {step:?}", now - t0));
        match step {
            Step::Welcome { wrong_version } => {
                let mut frame = welcome.clone();
                if let Frame::Welcome { version, .. } = &mut frame {
                    if wrong_version {
                        *version = version.wrapping_add(1);
                    }
                }
                handle(&mut session, &mut m, now, frame);
            }
            Step::Reject(reason) => handle(&mut session, &mut m, now, Frame::Reject { reason }),
            Step::Value { len, again } => {
                let id = match again {
                    Some(w) if !m.received.is_empty() => m.received[usize::from(w) % m.received.len()],
                    _ => {
                        m.next_id += 1;
                        m.next_id - 1
                    }
                };
                let payload = vec![0; usize::from(len)];
                handle(&mut session, &mut m, now, Frame::Value { id, payload });
            }
            Step::Done => handle(&mut session, &mut m, now, Frame::Done),
            Step::Error(message) => handle(&mut session, &mut m, now, Frame::Error { message }),
            Step::Heartbeat => handle(&mut session, &mut m, now, Frame::Heartbeat),
            Step::AnyFrame => match arbitrary_serde::<Frame>(&mut u) {
                Ok(frame) => {
                    trace.push(format!("  = {frame:?}"));
                    handle(&mut session, &mut m, now, frame);
                }
                Err(_) => break,
            },
            Step::Bytes(bytes) => match Codec::Postcard.decode(&bytes, map_config.max_frame) {
                Ok(frame) => handle(&mut session, &mut m, now, frame),
                Err(e) => session.handle_bad_frame(now, e),
            },
            Step::BadFrame => session.handle_bad_frame(
                now,
                FrameError::Malformed {
                    size: 1,
                    reason: "fuzz".into(),
                },
            ),
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
            Step::Result { which, ok, len } => {
                if !m.received.is_empty() {
                    let id = m.received[usize::from(which) % m.received.len()];
                    answer(&mut session, &mut m, now, id, ok, len);
                }
            }
            Step::StrayResult { id } => answer(&mut session, &mut m, now, id | 1 << 63, true, 0),
            Step::Stop(reason) => session.stop(now, reason),
            Step::SetValueTimeout { ms } => {
                session.set_value_timeout(ms.map(|ms| Duration::from_millis(u64::from(ms) + 1)));
            }
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
    }
    while let Some(frame) = session.poll_transmit(now) {
        on_frame(&mut m, &frame, &trace);
    }
    events(&mut session, &mut m, &trace);
}

/// Hands a frame from the master to the session.
fn handle(session: &mut WorkerSession, m: &mut Model, now: Instant, frame: Frame) {
    if let Frame::Value { id, .. } = &frame {
        m.received.push(*id);
    }
    if frame == Frame::Done {
        m.master_done = true;
    }
    session.handle_frame(now, frame);
}

/// Hands the function's answer for value `id` to the session.
fn answer(session: &mut WorkerSession, m: &mut Model, now: Instant, id: u64, ok: bool, len: u16) {
    if let Some(i) = m.running.iter().position(|&r| r == id) {
        if !m.closed {
            m.running.swap_remove(i);
            *m.may_answer.entry(id).or_default() += 1;
        }
    }
    let result = if ok {
        Ok(vec![0; usize::from(len)])
    } else {
        Err("fuzz".to_string())
    };
    session.handle_result(now, id, result);
}

/// Takes the session's events and checks them.
fn events(session: &mut WorkerSession, m: &mut Model, trace: &[String]) {
    while let Some(event) = session.poll_event() {
        assert!(!m.closed, "{event:?} after Closed\n{trace:#?}");
        match event {
            WorkerEvent::Welcomed { .. } => {
                assert!(!m.welcomed, "welcomed twice\n{trace:#?}");
                m.welcomed = true;
            }
            WorkerEvent::Run { id, .. } => {
                assert!(m.welcomed, "value #{id} run before the Welcome\n{trace:#?}");
                assert!(
                    !m.running.contains(&id),
                    "value #{id} run while it runs\n{trace:#?}"
                );
                assert!(
                    m.running.len() < m.jobs,
                    "value #{id} run while {} values run\n{trace:#?}",
                    m.running.len()
                );
                m.running.push(id);
                *m.runs.entry(id).or_default() += 1;
            }
            WorkerEvent::Cancel { id } => {
                let Some(i) = m.running.iter().position(|&r| r == id) else {
                    panic!("value #{id} cancelled while it does not run\n{trace:#?}");
                };
                m.running.swap_remove(i);
                *m.may_answer.entry(id).or_default() += 1;
            }
            WorkerEvent::Closed(_) => {
                m.closed = true;
                m.running.clear();
            }
            // Events added later: nothing to check yet.
            _ => {}
        }
    }
}

/// Checks a frame the session sent.
fn on_frame(m: &mut Model, frame: &Frame, trace: &[String]) {
    m.frames += 1;
    if m.frames == 1 {
        assert!(
            matches!(frame, Frame::Hello { .. }),
            "the first frame is {frame:?}, not the Hello\n{trace:#?}"
        );
        return;
    }
    match frame {
        Frame::Result { id, .. } | Frame::Failed { id, .. } => {
            assert!(
                !m.done_sent,
                "value #{id} answered after the worker's Done\n{trace:#?}"
            );
            let sent = m.answers.entry(*id).or_default();
            *sent += 1;
            assert!(
                *sent <= m.runs.get(id).copied().unwrap_or(0),
                "value #{id} answered {sent} times, run {} times\n{trace:#?}",
                m.runs.get(id).copied().unwrap_or(0)
            );
            assert!(
                *sent <= m.may_answer.get(id).copied().unwrap_or(0),
                "value #{id} answered without a result of the function (or after the end)\n{trace:#?}"
            );
        }
        Frame::Done => {
            assert!(
                m.master_done,
                "the worker said Done before the master did\n{trace:#?}"
            );
            assert!(!m.done_sent, "the worker said Done twice\n{trace:#?}");
            m.done_sent = true;
        }
        Frame::Hello { .. } => panic!("a second Hello\n{trace:#?}"),
        Frame::Welcome { .. } | Frame::Reject { .. } | Frame::Value { .. } => {
            panic!("the worker sent a master's frame: {frame:?}\n{trace:#?}")
        }
        _ => {}
    }
}
