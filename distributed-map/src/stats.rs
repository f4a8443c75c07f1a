//! Monitoring: per-worker statistics and totals (seed 000, §6.1).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use pando_lend_stream::LenderState;
use pando_limiter::LimitHandle;

/// The live counters of one worker connection.
#[derive(Debug)]
pub(crate) struct WorkerStats {
    pub(crate) name: String,
    pub(crate) peer: String,
    pub(crate) since: Instant,
    sent: AtomicU64,
    results: AtomicU64,
    failures: AtomicU64,
    connected: AtomicBool,
    pub(crate) limit: OnceLock<LimitHandle>,
    /// With replicas: its answers that lost a vote (counted by the lender).
    pub(crate) disagreements: Arc<AtomicU64>,
}

impl WorkerStats {
    pub(crate) fn new(name: String, peer: String) -> Self {
        WorkerStats {
            name,
            peer,
            since: Instant::now(),
            sent: AtomicU64::new(0),
            results: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            connected: AtomicBool::new(true),
            limit: OnceLock::new(),
            disagreements: Arc::default(),
        }
    }

    pub(crate) fn sent(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn result(&self) {
        self.results.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn disconnected(&self) {
        self.connected.store(false, Ordering::Relaxed);
    }
}

/// A snapshot of one worker's statistics.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct WorkerReport {
    /// The name the worker gave in its `Hello`.
    pub name: String,
    /// Its address.
    pub peer: String,
    /// How long it has been (or was) connected.
    pub connected_for: Duration,
    /// Whether it is still connected.
    pub connected: bool,
    /// Values sent to it.
    pub sent: u64,
    /// Results it returned.
    pub done: u64,
    /// Values it reported as failed.
    pub failed: u64,
    /// Values it holds now (sent, no result yet).
    pub in_flight: u64,
    /// Results per second over the recent window (the Limiter's flow rate).
    pub items_per_sec: f64,
    /// How many earlier connections had the same name (reconnections; among
    /// the last 256 workers that left).
    pub reconnects: u64,
    /// With replicas ([`MapConfig::replicas`](crate::MapConfig::replicas)):
    /// its results that lost a vote (others agreed on a different one).
    pub disagreements: u64,
}

/// A snapshot of a DistributedMap: every worker, and the lender's counters.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MapStats {
    /// One report per worker connection, in order of connection: those
    /// connected, and the last 256 that left.
    pub workers: Vec<WorkerReport>,
    /// The lender's counters (values read, lent, in flight, re-lent, output…).
    pub lender: LenderState,
}

impl MapStats {
    /// Workers connected now.
    ///
    /// ```
    /// use pando_distributed_map::MapStats;
    /// # fn f(stats: MapStats) {
    /// println!("{} workers", stats.connected());
    /// # }
    /// ```
    pub fn connected(&self) -> usize {
        self.workers.iter().filter(|w| w.connected).count()
    }

    /// Results per second over all connected workers.
    ///
    /// See [`MapStats::connected`].
    pub fn items_per_sec(&self) -> f64 {
        self.workers
            .iter()
            .filter(|w| w.connected)
            .map(|w| w.items_per_sec)
            .sum()
    }
}

impl std::fmt::Display for MapStats {
    /// The periodic monitoring report: one line of totals, one line per connected worker.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let l = &self.lender;
        writeln!(
            f,
            "pando: {} workers, {:.1} items/s, read {}, output {}, in flight {}, re-lent {}, skipped {}",
            self.connected(),
            self.items_per_sec(),
            l.read,
            l.output,
            l.in_flight,
            l.relent,
            l.skipped
        )?;
        if l.replicas > 1 {
            write!(
                f,
                "  replicas {}: {} result(s) outvoted",
                l.replicas, l.disagreements
            )?;
            if l.sub_streams_open < u64::from(l.replicas) {
                write!(
                    f,
                    "; waiting for workers: {} connected, {} needed",
                    l.sub_streams_open, l.replicas
                )?;
            }
            if l.replicas_waiting > 0 {
                write!(
                    f,
                    "; {} replica(s) wait for a worker that has not computed their value",
                    l.replicas_waiting
                )?;
            }
            writeln!(f)?;
        }
        for w in self.workers.iter().filter(|w| w.connected) {
            writeln!(
                f,
                "  {} ({}): {} done, {:.1} items/s, {} in flight, {} failed, connected {:.0?}{}",
                w.name,
                w.peer,
                w.done,
                w.items_per_sec,
                w.in_flight,
                w.failed,
                w.connected_for,
                if w.reconnects > 0 {
                    format!(", {} reconnects", w.reconnects)
                } else {
                    String::new()
                }
            )?;
            if w.disagreements > 0 {
                writeln!(f, "    {} result(s) outvoted", w.disagreements)?;
            }
        }
        Ok(())
    }
}

/// How many workers that left are kept in the reports.
const KEPT_DISCONNECTED: usize = 256;

/// The workers connected to a master, and the last ones that left.
#[derive(Clone, Debug, Default)]
pub(crate) struct Registry {
    workers: Arc<Mutex<Vec<Arc<WorkerStats>>>>,
}

impl Registry {
    pub(crate) fn add(&self, stats: Arc<WorkerStats>) {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        // Workers that left are kept for the reports, the most recent ones
        // only: memory follows the workers connected, not every join ever.
        let gone = workers
            .iter()
            .filter(|w| !w.connected.load(Ordering::Relaxed))
            .count();
        if gone >= KEPT_DISCONNECTED {
            if let Some(oldest) = workers.iter().position(|w| !w.connected.load(Ordering::Relaxed)) {
                workers.remove(oldest);
            }
        }
        workers.push(stats);
    }

    pub(crate) fn reports(&self) -> Vec<WorkerReport> {
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        workers
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let (in_flight, items_per_sec) = w
                    .limit
                    .get()
                    .map_or((0, 0.0), |h| (h.in_process() as u64, h.flow_rate()));
                WorkerReport {
                    name: w.name.clone(),
                    peer: w.peer.clone(),
                    connected_for: w.since.elapsed(),
                    connected: w.connected.load(Ordering::Relaxed),
                    sent: w.sent.load(Ordering::Relaxed),
                    done: w.results.load(Ordering::Relaxed),
                    failed: w.failures.load(Ordering::Relaxed),
                    in_flight,
                    items_per_sec,
                    reconnects: workers[..i].iter().filter(|o| o.name == w.name).count() as u64,
                    disagreements: w.disagreements.load(Ordering::Relaxed),
                }
            })
            .collect()
    }
}
