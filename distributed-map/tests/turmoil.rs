//! DistributedMap over turmoil's simulated network: the WebSocket and TCP
//! transports, unchanged, over simulated TCP, with faults injected on a
//! seeded schedule: a worker partitioned from the master mid-run, added
//! latency, a connection that hangs half-open, and a master that crashes and
//! restarts while its workers reconnect with backoff.
//!
//! Everything runs on turmoil's simulated clock (no real sleeps), one host
//! per process: a master and its workers. Each test checks that the output
//! is the input mapped, in order, exactly once.
//!
//! Seeded and replayable: each test prints its seed when it fails, and
//! `PANDO_TURMOIL_SEED=S cargo test -p pando-distributed-map --test turmoil`
//! runs every test with seed `S` (the seed drives turmoil's latencies, the
//! fault schedule and the workers' reconnection jitter). With
//! `PANDO_TURMOIL_LOG=1` each run prints what the master and workers logged.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pando_distributed_map::transport::tcp::{TcpConnector, TcpListener};
use pando_distributed_map::transport::ws::{WsConnector, WsListener};
use pando_distributed_map::transport::{Connector, Dialer, StreamListener};
use pando_distributed_map::{DistributedMap, JoinError, MapConfig, MapStats, Reconnect, Worker, join_url};
use pando_pull_stream::{collect, count, pull};
use turmoil::Sim;

/// The frame limit.
const MAX: usize = 1 << 20;
/// turmoil's step, in milliseconds: each host runs this long per step.
const TICK_MS: u64 = 10;
/// The master's port.
const PORT: u16 = 9000;
/// The master's join token: the same after a restart, so that workers
/// reconnect.
const TOKEN: &str = "turmoil-token";

/// turmoil's TCP listener, as the transports' network.
struct SimListener(turmoil::net::TcpListener);

#[async_trait]
impl StreamListener for SimListener {
    type Stream = turmoil::net::TcpStream;

    async fn accept(&mut self) -> std::io::Result<(turmoil::net::TcpStream, String)> {
        let (stream, peer) = self.0.accept().await?;
        Ok((stream, peer.to_string()))
    }

    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.local_addr()
    }
}

/// turmoil's TCP connections, as the transports' network.
#[derive(Clone, Copy, Debug)]
struct SimDialer;

#[async_trait]
impl Dialer for SimDialer {
    type Stream = turmoil::net::TcpStream;

    async fn dial(&self, addr: &str) -> std::io::Result<turmoil::net::TcpStream> {
        turmoil::net::TcpStream::connect(addr).await
    }
}

/// The seed: `PANDO_TURMOIL_SEED`, or the test's own default.
fn seed_or(default: u64) -> u64 {
    match std::env::var("PANDO_TURMOIL_SEED") {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|e| panic!("PANDO_TURMOIL_SEED={s:?} is not a seed (a u64): {e}")),
        Err(_) => default,
    }
}

/// Prints the seed and how to replay it if the test panics.
struct SeedGuard {
    test: &'static str,
    seed: u64,
}

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{} failed with seed {}; replay: PANDO_TURMOIL_SEED={} cargo test -p pando-distributed-map --test turmoil {}",
                self.test, self.seed, self.seed, self.test
            );
        }
    }
}

/// A number in `lo..hi` drawn from `seed` for the fault schedule (the
/// workers' jitter and turmoil's latencies draw from the seed on their own).
fn pick(seed: u64, salt: u64, lo: u64, hi: u64) -> u64 {
    fastrand::Rng::with_seed(seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15)).u64(lo..hi)
}

/// Which transport the run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Net {
    Ws,
    Tcp,
}

/// A run: the master maps `x ↦ x²` over `1..=n` with `workers` workers, each
/// taking `compute` (simulated) per value.
#[derive(Clone, Debug)]
struct Plan {
    test: &'static str,
    seed: u64,
    n: u64,
    workers: usize,
    net: Net,
    compute: Duration,
    config: MapConfig,
    /// The workers' reconnection policy (`None`: off).
    reconnect: Option<Reconnect>,
    /// turmoil's message latency: at least, at most.
    latency: Option<(Duration, Duration)>,
    /// How long (simulated) the whole run may take.
    limit: Duration,
    /// turmoil's step: each host runs this long (simulated) per step.
    tick: Duration,
}

impl Plan {
    fn new(test: &'static str, seed: u64) -> Self {
        Plan {
            test,
            seed,
            n: 600,
            workers: 3,
            net: Net::Ws,
            compute: Duration::from_millis(10),
            config: MapConfig {
                batch_size: std::num::NonZeroUsize::new(4).expect("nonzero"),
                heartbeat: Duration::from_millis(100),
                heartbeat_timeout: Duration::from_millis(600),
                token: TOKEN.into(),
                ..MapConfig::default()
            },
            reconnect: Some(
                Reconnect::default()
                    .delays(Duration::from_millis(50), Duration::from_secs(1))
                    .max_attempts(Some(40))
                    .max_duration(Some(Duration::from_secs(30))),
            ),
            latency: None,
            limit: Duration::from_secs(120),
            tick: Duration::from_millis(TICK_MS),
        }
    }
}

/// What a run left: the output, the master's statistics, and what each
/// worker computed and how it ended.
#[derive(Debug, Default)]
struct Record {
    /// The last master's output.
    output: Option<Result<Vec<u64>, String>>,
    /// The last master's statistics, once its output is complete.
    stats: Option<MapStats>,
    /// How many times a master started.
    masters: u32,
    /// Each computation: the worker and the value.
    computed: Vec<(String, u64)>,
    /// How each worker ended.
    outcomes: BTreeMap<String, Result<(), Ended>>,
    /// The simulated time the run took.
    elapsed: Duration,
    /// What the master and the workers logged.
    log: String,
}

/// How a worker ended with an error: the error, and whether it was the loss
/// of the master ([`JoinError::is_lost_master`]).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ended {
    error: String,
    lost_master: bool,
}

type Shared = Arc<Mutex<Record>>;

fn worker_name(i: usize) -> String {
    format!("w{i}")
}

/// The master's host: serves on port [`PORT`], maps, records, then stays up
/// (its workers are told it is done).
fn add_master(sim: &mut Sim<'_>, plan: &Plan, record: &Shared) {
    let plan = plan.clone();
    let record = record.clone();
    sim.host("master", move || {
        let plan = plan.clone();
        let record = record.clone();
        async move {
            record.lock().unwrap().masters += 1;
            let socket = turmoil::net::TcpListener::bind(("0.0.0.0", PORT)).await?;
            let map = DistributedMap::<u64, u64, ()>::new(plan.config.clone());
            match plan.net {
                Net::Ws => map.serve(WsListener::from_listener(SimListener(socket), MAX)?),
                Net::Tcp => map.serve(TcpListener::from_listener(SimListener(socket), MAX)?),
            };
            let output = pull!(count(plan.n), map.clone(), collect::<Vec<_>>()).await;
            {
                let mut record = record.lock().unwrap();
                record.output = Some(output.map_err(|e| format!("{e:?}")));
                record.stats = Some(map.stats());
            }
            std::future::pending::<()>().await;
            Ok(())
        }
    });
}

/// The workers' hosts: each joins with the plan's reconnection policy and
/// squares what it gets, recording each computation and how it ended.
fn add_workers(sim: &mut Sim<'_>, plan: &Plan, record: &Shared) {
    for i in 0..plan.workers {
        let plan = plan.clone();
        let record = record.clone();
        let name = worker_name(i);
        sim.host(worker_name(i), move || {
            let plan = plan.clone();
            let record = record.clone();
            let name = name.clone();
            async move {
                let mut worker = Worker::new(name.clone())
                    .max_frame(MAX)
                    .handshake_timeout(Duration::from_secs(2));
                if let Some(policy) = &plan.reconnect {
                    worker = worker.reconnect(policy.clone().seed(plan.seed.wrapping_add(i as u64)));
                }
                let scheme = match plan.net {
                    Net::Ws => format!("ws://master:{PORT}/"),
                    Net::Tcp => format!("tcp://master:{PORT}"),
                };
                let url = join_url(&scheme, TOKEN);
                let f = |x: u64| {
                    record.lock().unwrap().computed.push((name.clone(), x));
                    let compute = plan.compute;
                    async move {
                        tokio::time::sleep(compute).await;
                        Ok::<_, String>(x * x)
                    }
                };
                let ended = match plan.net {
                    Net::Ws => run(&worker, &WsConnector::with_dialer(SimDialer, MAX), &url, f).await,
                    Net::Tcp => run(&worker, &TcpConnector::with_dialer(SimDialer, MAX), &url, f).await,
                };
                record.lock().unwrap().outcomes.insert(name, ended);
                Ok(())
            }
        });
    }
}

async fn run<C, F, Fut>(worker: &Worker, connector: &C, url: &str, f: F) -> Result<(), Ended>
where
    C: Connector,
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<u64, String>>,
{
    worker
        .run_with(connector, url, f)
        .await
        .map(|_| ())
        .map_err(|e: JoinError| Ended {
            error: e.to_string(),
            lost_master: e.is_lost_master(),
        })
}

/// A log sink for the run: what the master and the workers log, kept to
/// check what they said (and shown when a test fails).
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Runs `plan`, calling `faults` before each step of the simulation with
/// the simulated time elapsed, until the master's output is complete and
/// every worker has ended (or the plan's time limit, which fails the test).
/// turmoil runs every host on this thread, so one subscriber sees all logs.
fn simulate(plan: &Plan, faults: impl FnMut(&mut Sim<'_>, Duration)) -> Record {
    simulate_with(plan, faults, false)
}

/// Runs `plan` as [`simulate`] does, but only until every worker has ended.
fn simulate_until_workers_end(plan: &Plan, faults: impl FnMut(&mut Sim<'_>, Duration)) -> Record {
    simulate_with(plan, faults, true)
}

fn simulate_with(plan: &Plan, faults: impl FnMut(&mut Sim<'_>, Duration), until_workers_end: bool) -> Record {
    let log = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let log = log.clone();
            move || log.clone()
        })
        .with_ansi(false)
        .without_time()
        .with_max_level(tracing::Level::INFO)
        .finish();
    let record = tracing::subscriber::with_default(subscriber, || {
        simulate_logged(plan, faults, &log, until_workers_end)
    });
    let record = Record {
        log: log.text(),
        ..record
    };
    if std::env::var_os("PANDO_TURMOIL_LOG").is_some() {
        eprintln!(
            "{} (seed {}): {:?} simulated, {} computations, {} master(s)\n{}",
            plan.test,
            plan.seed,
            record.elapsed,
            record.computed.len(),
            record.masters,
            record.log
        );
    }
    record
}

fn simulate_logged(
    plan: &Plan,
    mut faults: impl FnMut(&mut Sim<'_>, Duration),
    log: &LogBuffer,
    until_workers_end: bool,
) -> Record {
    let mut builder = turmoil::Builder::new();
    builder
        .rng_seed(plan.seed)
        .simulation_duration(plan.limit)
        .tick_duration(plan.tick);
    if let Some((min, max)) = plan.latency {
        builder.min_message_latency(min).max_message_latency(max);
    }
    let mut sim = builder.build();
    let record = Shared::default();
    add_master(&mut sim, plan, &record);
    add_workers(&mut sim, plan, &record);
    loop {
        let elapsed = sim.elapsed();
        faults(&mut sim, elapsed);
        if let Err(e) = sim.step() {
            let record = record.lock().unwrap();
            let text = log.text();
            let tail: Vec<&str> = text.lines().rev().take(40).collect();
            panic!(
                "{}: the simulation failed after {:?}: {e}; output: {}, workers ended: {:?}; the log's last lines:\n{}",
                plan.test,
                sim.elapsed(),
                record.output.as_ref().map_or("none yet".into(), |o| match o {
                    Ok(v) => format!("{} values", v.len()),
                    Err(e) => e.clone(),
                }),
                record.outcomes,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        let record = record.lock().unwrap();
        if (until_workers_end || record.output.is_some()) && record.outcomes.len() == plan.workers {
            break;
        }
    }
    let mut record = std::mem::take(&mut *record.lock().unwrap());
    record.elapsed = sim.elapsed();
    record
}

/// 1², 2², …, n².
fn squares(n: u64) -> Vec<u64> {
    (1..=n).map(|x| x * x).collect()
}

/// The output is the input squared, in order, each exactly once.
fn assert_exact(plan: &Plan, record: &Record) {
    let output = record
        .output
        .as_ref()
        .expect("no output")
        .as_ref()
        .unwrap_or_else(|e| panic!("the map failed: {e}"));
    assert_eq!(output.len() as u64, plan.n, "lost or duplicated values");
    assert!(
        output == &squares(plan.n),
        "the output is not the input squared, in order"
    );
    let stats = record.stats.as_ref().expect("no statistics");
    assert_eq!(stats.lender.output, plan.n);
    assert_eq!(stats.lender.read, plan.n);
}

/// Each value computed by a worker: how many times in all.
fn computations(record: &Record) -> BTreeMap<u64, usize> {
    let mut times = BTreeMap::new();
    for (_, x) in &record.computed {
        *times.entry(*x).or_default() += 1;
    }
    times
}

/// Every worker ended with the master's `Done`.
fn assert_all_done(record: &Record) {
    for (name, outcome) in &record.outcomes {
        assert_eq!(outcome, &Ok(()), "worker {name}");
    }
}

#[test]
fn a_fault_free_run_over_simulated_websocket_and_tcp() {
    for net in [Net::Ws, Net::Tcp] {
        let mut plan = Plan::new("a_fault_free_run_over_simulated_websocket_and_tcp", seed_or(1));
        let _guard = SeedGuard {
            test: plan.test,
            seed: plan.seed,
        };
        plan.net = net;
        let record = simulate(&plan, |_, _| {});
        assert_exact(&plan, &record);
        assert_all_done(&record);
        // No fault: no value was computed twice.
        assert!(computations(&record).values().all(|&t| t == 1), "{net:?}");
        assert_eq!(record.stats.as_ref().unwrap().lender.relent, 0, "{net:?}");
    }
}

#[test]
fn a_worker_partitioned_mid_run_has_its_values_lent_again_and_rejoins() {
    let mut plan = Plan::new(
        "a_worker_partitioned_mid_run_has_its_values_lent_again_and_rejoins",
        seed_or(2),
    );
    let _guard = SeedGuard {
        test: plan.test,
        seed: plan.seed,
    };
    plan.n = 1500;
    let start = Duration::from_millis(pick(plan.seed, 1, 500, 1500));
    let end = start + Duration::from_millis(pick(plan.seed, 2, 1000, 2000));
    let (mut cut, mut healed) = (false, false);
    let record = simulate(&plan, |sim, now| {
        if !cut && now >= start {
            sim.partition("master", "w1");
            cut = true;
        }
        if !healed && now >= end {
            sim.repair("master", "w1");
            healed = true;
        }
    });
    assert!(
        healed,
        "the run ended before the partition healed ({:?})",
        record.elapsed
    );
    assert_exact(&plan, &record);
    assert_all_done(&record);
    let stats = record.stats.as_ref().unwrap();
    // The values w1 held when it was cut off (queued, computing, or computed
    // with their results lost) were lent again; each came out once.
    assert!(
        stats.lender.relent > 0,
        "nothing was lent again: {:?}",
        stats.lender
    );
    assert!(
        record.log.contains("worker w1") && record.log.contains("its values are lent again"),
        "{}",
        record.log
    );
    // w1 came back after the partition, on a connection of its own.
    assert!(
        stats.workers.iter().any(|w| w.name == "w1" && w.reconnects > 0),
        "{:?}",
        stats.workers
    );
    assert!(record.log.contains("before attempt"), "{}", record.log);
}

#[test]
fn added_latency_slows_the_run_but_loses_no_worker() {
    let mut plan = Plan::new("added_latency_slows_the_run_but_loses_no_worker", seed_or(3));
    let _guard = SeedGuard {
        test: plan.test,
        seed: plan.seed,
    };
    let fast = simulate(&plan, |_, _| {});
    // Up to 150 ms each way: a round trip well within the heartbeat timeout.
    plan.latency = Some((Duration::from_millis(50), Duration::from_millis(150)));
    let record = simulate(&plan, |_, _| {});
    assert_exact(&plan, &record);
    assert_all_done(&record);
    // Latency is not taken for a failure: no worker dropped, nothing lent
    // again, each value computed once, each worker on one connection.
    let stats = record.stats.as_ref().unwrap();
    assert_eq!(stats.lender.relent, 0, "{}", record.log);
    assert!(computations(&record).values().all(|&t| t == 1));
    assert!(
        stats.workers.iter().all(|w| w.reconnects == 0),
        "{:?}",
        stats.workers
    );
    assert!(!record.log.contains("dropped"), "{}", record.log);
    assert!(
        record.elapsed > fast.elapsed,
        "with latency {:?}, without {:?}",
        record.elapsed,
        fast.elapsed
    );
}

#[test]
fn a_connection_that_hangs_half_open_is_found_by_heartbeat() {
    let mut plan = Plan::new(
        "a_connection_that_hangs_half_open_is_found_by_heartbeat",
        seed_or(4),
    );
    let _guard = SeedGuard {
        test: plan.test,
        seed: plan.seed,
    };
    plan.n = 1500;
    // Over the TCP transport (the other fault tests run over WebSocket).
    plan.net = Net::Tcp;
    // The link to w1 stalls: nothing is delivered either way, and nothing
    // says so (no reset, no close), until it is released.
    let start = Duration::from_millis(pick(plan.seed, 3, 500, 1500));
    let end = start + Duration::from_millis(pick(plan.seed, 4, 1500, 2500));
    let (mut held, mut released) = (false, false);
    let record = simulate(&plan, |sim, now| {
        if !held && now >= start {
            sim.hold("master", "w1");
            held = true;
        }
        if !released && now >= end {
            sim.release("master", "w1");
            released = true;
        }
    });
    assert!(
        released,
        "the run ended before the link was released ({:?})",
        record.elapsed
    );
    assert_exact(&plan, &record);
    assert_all_done(&record);
    // Both ends found the silence by heartbeat: the master dropped w1 and
    // lent its values again; w1 gave up on the connection and reconnected.
    assert!(
        record.log.contains("worker w1")
            && record
                .log
                .contains("(heartbeat timeout); its values are lent again"),
        "{}",
        record.log
    );
    assert!(record.stats.as_ref().unwrap().lender.relent > 0);
    assert!(record.log.contains("lost the master"), "{}", record.log);
}

#[test]
fn a_master_that_restarts_gets_its_workers_back_and_completes() {
    let plan = Plan::new(
        "a_master_that_restarts_gets_its_workers_back_and_completes",
        seed_or(5),
    );
    let _guard = SeedGuard {
        test: plan.test,
        seed: plan.seed,
    };
    let crash = Duration::from_millis(pick(plan.seed, 5, 500, 1200));
    let restart = crash + Duration::from_millis(pick(plan.seed, 6, 500, 3000));
    let (mut crashed, mut restarted) = (false, false);
    let record = simulate(&plan, |sim, now| {
        if !crashed && now >= crash {
            sim.crash("master");
            crashed = true;
        }
        if !restarted && now >= restart {
            sim.bounce("master");
            restarted = true;
        }
    });
    assert!(
        restarted,
        "the run ended before the master restarted ({:?})",
        record.elapsed
    );
    // Without a journal, the restarted master started its input over, and
    // its output is complete.
    assert_eq!(record.masters, 2);
    assert_exact(&plan, &record);
    assert_all_done(&record);
    // Every worker lost the master, waited with backoff, and came back.
    for i in 0..plan.workers {
        let name = worker_name(i);
        assert!(
            record
                .stats
                .as_ref()
                .unwrap()
                .workers
                .iter()
                .any(|w| w.name == name),
            "{name} did not rejoin"
        );
    }
    assert!(record.log.contains("lost the master"), "{}", record.log);
    assert!(record.log.contains("before attempt"), "{}", record.log);
}

#[test]
fn without_reconnect_a_worker_that_loses_its_master_stops() {
    let mut plan = Plan::new(
        "without_reconnect_a_worker_that_loses_its_master_stops",
        seed_or(6),
    );
    let _guard = SeedGuard {
        test: plan.test,
        seed: plan.seed,
    };
    plan.reconnect = None;
    plan.workers = 2;
    let crash = Duration::from_millis(pick(plan.seed, 7, 300, 800));
    let mut crashed = false;
    let record = simulate_until_workers_end(&plan, |sim, now| {
        if !crashed && now >= crash {
            sim.crash("master");
            crashed = true;
        }
    });
    // Each worker stopped at the loss, with the error that says so.
    assert_eq!(record.outcomes.len(), plan.workers);
    for (name, outcome) in &record.outcomes {
        let e = outcome.as_ref().expect_err(name);
        assert!(e.lost_master, "{name}: {e:?}");
    }
    assert!(!record.log.contains("before attempt"), "{}", record.log);
    assert!(record.output.is_none());
}

#[test]
fn a_seed_replays_the_same_run() {
    let mut plan = Plan::new("a_seed_replays_the_same_run", seed_or(7));
    let _guard = SeedGuard {
        test: plan.test,
        seed: plan.seed,
    };
    plan.latency = Some((Duration::from_millis(1), Duration::from_millis(40)));
    let cut = Duration::from_millis(pick(plan.seed, 8, 200, 500));
    // w1's process is killed (no close, no reset: the master finds it by
    // heartbeat), then starts again 300 ms later.
    let run = || {
        let (mut killed, mut restarted) = (false, false);
        simulate(&plan, |sim, now| {
            if !killed && now >= cut {
                sim.crash("w1");
                killed = true;
            }
            if killed && !restarted && now >= cut + Duration::from_millis(300) {
                sim.bounce("w1");
                restarted = true;
            }
        })
    };
    let (first, second) = (run(), run());
    assert_exact(&plan, &first);
    assert_all_done(&first);
    // The same seed gives the same run: the same computations by the same
    // workers in the same order, the same simulated time, the same log.
    assert_eq!(first.elapsed, second.elapsed);
    assert_eq!(first.computed, second.computed);
    assert_eq!(first.log, second.log);
}
