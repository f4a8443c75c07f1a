//! Monitoring: per-worker statistics and totals (seed 000, §6.1).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use pando_lend_stream::LenderState;
use pando_limiter::LimitHandle;

/// The live counters of one worker connection.
#[derive(Debug)]
pub(crate) struct WorkerStats {
    pub(crate) name: String,
    pub(crate) peer: String,
    pub(crate) since: Instant,
    /// `since` on the wall clock, for the monitoring page.
    connected_at: SystemTime,
    /// Set by the [`Registry`] the worker is added to (0 until then).
    id: AtomicU64,
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
            connected_at: SystemTime::now(),
            id: AtomicU64::new(0),
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
    /// A short id, unique among this map's connections (1 for the first
    /// worker to join, then 2, 3…): names alone may repeat.
    pub id: u64,
    /// The name the worker gave in its `Hello`.
    pub name: String,
    /// Its address.
    pub peer: String,
    /// When it connected (its handshake done), on the wall clock.
    pub connected_at: SystemTime,
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
    /// With replicas ([`MapConfig::replicas`](crate::MapConfig::replicas)
    /// above 1) while fewer workers than replicas are connected: how many a
    /// value needs and how many there are (values wait). `None` otherwise.
    pub replicas: Option<ReplicaWait>,
}

/// Replicas waiting for workers: each value needs `wanted` workers, and
/// fewer are connected (see [`MapStats::replicas`]).
///
/// ```
/// use pando_distributed_map::ReplicaWait;
/// let wait = ReplicaWait::new(3, 1);
/// assert_eq!((wait.wanted, wait.connected), (3, 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReplicaWait {
    /// The replicas each value needs (workers on different connections).
    pub wanted: usize,
    /// The workers connected now.
    pub connected: usize,
}

impl ReplicaWait {
    /// `wanted` replicas per value, `connected` workers now.
    ///
    /// See [`ReplicaWait`].
    pub fn new(wanted: usize, connected: usize) -> Self {
        ReplicaWait { wanted, connected }
    }
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
    /// The last id given (ids start at 1).
    last_id: Arc<AtomicU64>,
}

impl Registry {
    pub(crate) fn add(&self, stats: Arc<WorkerStats>) {
        stats.id.store(
            self.last_id.fetch_add(1, Ordering::Relaxed) + 1,
            Ordering::Relaxed,
        );
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
        // Earlier connections with each name, counted as we go: linear in
        // the workers kept (the monitoring page asks often, with hundreds).
        let mut earlier: HashMap<&str, u64> = HashMap::new();
        workers
            .iter()
            .map(|w| {
                let seen = earlier.entry(w.name.as_str()).or_insert(0);
                let reconnects = *seen;
                *seen += 1;
                let (in_flight, items_per_sec) = w
                    .limit
                    .get()
                    .map_or((0, 0.0), |h| (h.in_process() as u64, h.flow_rate()));
                WorkerReport {
                    id: w.id.load(Ordering::Relaxed),
                    name: w.name.clone(),
                    peer: w.peer.clone(),
                    connected_at: w.connected_at,
                    connected_for: w.since.elapsed(),
                    connected: w.connected.load(Ordering::Relaxed),
                    sent: w.sent.load(Ordering::Relaxed),
                    done: w.results.load(Ordering::Relaxed),
                    failed: w.failures.load(Ordering::Relaxed),
                    in_flight,
                    items_per_sec,
                    reconnects,
                    disagreements: w.disagreements.load(Ordering::Relaxed),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_reconnects_count_earlier_names() {
        let registry = Registry::default();
        for name in ["a", "b", "a", "a"] {
            registry.add(Arc::new(WorkerStats::new(name.to_string(), "peer".to_string())));
        }
        let reports = registry.reports();
        let ids: Vec<u64> = reports.iter().map(|r| r.id).collect();
        assert_eq!(ids, [1, 2, 3, 4]);
        let reconnects: Vec<u64> = reports.iter().map(|r| r.reconnects).collect();
        assert_eq!(reconnects, [0, 0, 1, 2]);
        assert!(reports.iter().all(|r| r.connected_at <= SystemTime::now()));
    }

    #[test]
    fn ids_go_on_past_the_workers_forgotten() {
        let registry = Registry::default();
        for i in 0..KEPT_DISCONNECTED + 10 {
            let stats = Arc::new(WorkerStats::new(format!("w{i}"), "peer".to_string()));
            registry.add(stats.clone());
            stats.disconnected();
        }
        let reports = registry.reports();
        assert!(
            reports.len() <= KEPT_DISCONNECTED + 1,
            "{} reports kept",
            reports.len()
        );
        let last = reports.last().expect("the last worker is kept");
        assert_eq!(last.id, (KEPT_DISCONNECTED + 10) as u64);
        assert!(
            reports.windows(2).all(|w| w[0].id < w[1].id),
            "ids in order of connection"
        );
    }
}
