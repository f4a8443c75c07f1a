//! A run's seeded plan: how many workers, which transport, who is slow,
//! who times out, who joins late, and the faults, each at a point of the
//! run's progress (a count of results).
//!
//! The plan is a pure function of the seed (ChaCha8, portable across
//! platforms and versions of `rand_chacha`). What it cannot fix is how the
//! processes interleave with it: which values a killed worker held, for
//! example. So a seed replays the schedule, not the exact run.

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The master's heartbeat; a worker silent for ten of them is dropped.
pub(crate) const HEARTBEAT: Duration = Duration::from_millis(200);

/// The heartbeat timeout that follows from [`HEARTBEAT`] (`pando` uses ten intervals).
pub(crate) const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(2000);

/// The timeout worker's `--timeout`: far above a value's cost, so only a hang reaches it.
pub(crate) const VALUE_TIMEOUT: Duration = Duration::from_secs(1);

/// Failures a value may have on top of those the faults can cause: room
/// for a worker dropped because the shared machine starved it of CPU for a
/// whole heartbeat timeout. It never has to absorb a fault.
pub(crate) const RETRY_MARGIN: u32 = 2;

/// What a worker slot runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// The master's COMMAND (`--accept`), at the base cost per value.
    Normal,
    /// Its own COMMAND, ten times the base cost per value.
    Slow,
    /// Its own COMMAND, which hangs (see [`Plan::hangs`]), and `--timeout`.
    TimesOut,
}

/// A fault of the schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// SIGKILL the worker.
    Kill,
    /// SIGSTOP the worker, and SIGCONT it after this long (the master's
    /// heartbeat timeout finds it when that is longer).
    Stop(Duration),
    /// Close the worker's connection (both ends, in the proxy).
    Cut,
}

/// A fault at a point of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Event {
    /// It fires once the master has written this many results.
    pub(crate) at: usize,
    /// What it does.
    pub(crate) kind: Kind,
    /// The slot it aims at (the next running worker from there, if that one is not).
    pub(crate) slot: usize,
}

/// The plan of one run.
#[derive(Clone, Debug)]
pub(crate) struct Plan {
    /// The run's seed.
    pub(crate) seed: u64,
    /// How many values.
    pub(crate) values: usize,
    /// The first value (the input is `offset`, `offset + 1`, …).
    pub(crate) offset: u64,
    /// Worker slots.
    pub(crate) workers: usize,
    /// Plain TCP rather than WebSocket.
    pub(crate) tcp: bool,
    /// The master's `--batch-size`.
    pub(crate) batch: usize,
    /// Each slot's role.
    pub(crate) roles: Vec<Role>,
    /// Slots whose first worker starts only after this many results.
    pub(crate) late: Vec<(usize, usize)>,
    /// The faults, by `at`.
    pub(crate) events: Vec<Event>,
    /// How many times, in the whole run, the timeout worker's COMMAND hangs.
    pub(crate) hangs: usize,
    /// A filter of the timeout worker hangs on the value after this many answers.
    pub(crate) hang_after: u64,
}

impl Plan {
    /// The plan of the run with `seed`, over `values` values.
    pub(crate) fn new(seed: u64, values: usize) -> Plan {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let workers = rng.random_range(4..=8usize);
        let tcp = rng.random_bool(0.5);
        let batch = [1, 2, 2, 4, 8][rng.random_range(0..5usize)];
        let offset = rng.random_range(0..1u64 << 31);
        let mut roles = vec![Role::Normal; workers];
        let slow = rng.random_range(0..workers);
        let mut timeout = rng.random_range(0..workers - 1);
        if timeout >= slow {
            timeout += 1;
        }
        roles[slow] = Role::Slow;
        roles[timeout] = Role::TimesOut;
        let point = |rng: &mut ChaCha8Rng, from: f64, to: f64| {
            // Never at 0: the first fault waits for the first result.
            ((values as f64 * rng.random_range(from..to)) as usize).max(1)
        };
        // One or two late joiners, never all of the slots.
        let mut late = Vec::new();
        for _ in 0..rng.random_range(1..=2usize) {
            let slot = rng.random_range(0..workers);
            if late.iter().all(|&(s, _)| s != slot) {
                late.push((slot, point(&mut rng, 0.05, 0.5)));
            }
        }
        let mut events: Vec<Event> = (0..rng.random_range(3..=8usize))
            .map(|_| {
                let at = point(&mut rng, 0.02, 0.9);
                let kind = match rng.random_range(0..3u8) {
                    0 => Kind::Kill,
                    1 => Kind::Stop(HEARTBEAT_TIMEOUT.mul_f64(rng.random_range(0.25..2.5))),
                    _ => Kind::Cut,
                };
                Event {
                    at,
                    kind,
                    slot: rng.random_range(0..workers),
                }
            })
            .collect();
        events.sort_by_key(|e| e.at);
        let hangs = rng.random_range(1..=3usize);
        let hang_after = rng.random_range(20..(values as u64 / 20).max(21));
        Plan {
            seed,
            values,
            offset,
            workers,
            tcp,
            batch,
            roles,
            late,
            events,
            hangs,
            hang_after,
        }
    }

    /// The master's `--max-retries`: a value fails at most once per fault
    /// (a killed, cut or dropped connection fails each value it held once;
    /// a hang fails the one value it hangs on), so with one failure allowed
    /// per fault, plus [`RETRY_MARGIN`], faults alone never poison a value.
    pub(crate) fn max_retries(&self) -> u32 {
        u32::try_from(self.events.len() + self.hangs).unwrap_or(u32::MAX) + RETRY_MARGIN
    }

    /// The input value at `index`.
    pub(crate) fn input(&self, index: usize) -> u64 {
        self.offset + index as u64
    }

    /// One line describing the plan.
    pub(crate) fn describe(&self) -> String {
        let count = |f: fn(&Kind) -> bool| self.events.iter().filter(|e| f(&e.kind)).count();
        format!(
            "{} workers over {}, batch {}, {} late, {} kill, {} stop, {} cut, up to {} timeout(s), --max-retries {}",
            self.workers,
            if self.tcp { "TCP" } else { "WebSocket" },
            self.batch,
            self.late.len(),
            count(|k| matches!(k, Kind::Kill)),
            count(|k| matches!(k, Kind::Stop(_))),
            count(|k| matches!(k, Kind::Cut)),
            self.hangs,
            self.max_retries()
        )
    }
}

/// The mapped value: what the filter answers for `x`.
pub(crate) fn mapped(x: u64) -> u64 {
    x * x
}

/// The index of the input whose mapped value is `y`, if `y` is one of the
/// `values` mapped values starting at `offset`.
pub(crate) fn index_of(y: u64, offset: u64, values: usize) -> Option<usize> {
    let x = y.isqrt();
    if x * x != y || x < offset {
        return None;
    }
    usize::try_from(x - offset).ok().filter(|&i| i < values)
}
