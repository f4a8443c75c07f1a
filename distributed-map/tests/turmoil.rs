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
//! fault schedule and the workers' reconnection jitter).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use pando_distributed_map::transport::tcp::{TcpConnector, TcpListener};
use pando_distributed_map::transport::ws::{WsConnector, WsListener};
use pando_distributed_map::transport::{Connector, Dialer, StreamListener};
use pando_distributed_map::{DistributedMap, MapConfig, MapStats, Reconnect, Worker, join_url};
use pando_pull_stream::{collect, count, pull};
use turmoil::Sim;

/// The frame limit.
const MAX: usize = 1 << 20;
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
    /// How long (simulated) the whole run may take.
    limit: Duration,
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
            limit: Duration::from_secs(120),
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
    outcomes: BTreeMap<String, Result<(), String>>,
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

async fn run<C, F, Fut>(worker: &Worker, connector: &C, url: &str, f: F) -> Result<(), String>
where
    C: Connector,
    F: FnMut(u64) -> Fut,
    Fut: std::future::Future<Output = Result<u64, String>>,
{
    worker
        .run_with(connector, url, f)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Runs `plan`, calling `faults` before each step of the simulation with
/// the simulated time elapsed, until the master's output is complete and
/// every worker has ended (or the plan's time limit, which fails the test).
fn simulate(plan: &Plan, mut faults: impl FnMut(&mut Sim<'_>, Duration)) -> Record {
    let mut sim = turmoil::Builder::new()
        .rng_seed(plan.seed)
        .simulation_duration(plan.limit)
        .build();
    let record = Shared::default();
    add_master(&mut sim, plan, &record);
    add_workers(&mut sim, plan, &record);
    loop {
        let elapsed = sim.elapsed();
        faults(&mut sim, elapsed);
        if let Err(e) = sim.step() {
            let record = record.lock().unwrap();
            panic!(
                "{}: the simulation failed after {:?}: {e}; output: {}, workers ended: {:?}",
                plan.test,
                sim.elapsed(),
                record.output.as_ref().map_or("none yet".into(), |o| match o {
                    Ok(v) => format!("{} values", v.len()),
                    Err(e) => e.clone(),
                }),
                record.outcomes
            );
        }
        let record = record.lock().unwrap();
        if record.output.is_some() && record.outcomes.len() == plan.workers {
            break;
        }
    }
    Arc::try_unwrap(record)
        .map(|m| m.into_inner().unwrap())
        .unwrap_or_else(|shared| std::mem::take(&mut *shared.lock().unwrap()))
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
