//! One run: a `pando` master fed the input on stdin, worker processes
//! behind proxies, the plan's faults fired as the results come, and the
//! output checked.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep_until, timeout_at};

use crate::check::{Tally, tally};
use crate::plan::{self, Kind, Plan, Role};
use crate::procs::{Group, kill_filters};
use crate::proxy::Proxy;

/// What every run shares.
#[derive(Clone, Debug)]
pub(crate) struct Setup {
    /// The `pando` binary.
    pub(crate) pando: PathBuf,
    /// This program (the filter).
    pub(crate) me: PathBuf,
    /// A normal worker's cost per value, in microseconds.
    pub(crate) work_us: u64,
    /// The longest wait for the next result.
    pub(crate) stall: Duration,
    /// The longest run.
    pub(crate) run_timeout: Duration,
}

/// The faults a run injected, by kind.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Faults {
    pub(crate) kill: u64,
    pub(crate) stop: u64,
    pub(crate) cut: u64,
    pub(crate) late: u64,
    pub(crate) slow: u64,
    pub(crate) timeout: u64,
}

impl Faults {
    /// All of them.
    pub(crate) fn total(&self) -> u64 {
        self.kill + self.stop + self.cut + self.late + self.slow + self.timeout
    }

    /// Adds `other` to `self`.
    pub(crate) fn add(&mut self, other: Faults) {
        self.kill += other.kill;
        self.stop += other.stop;
        self.cut += other.cut;
        self.late += other.late;
        self.slow += other.slow;
        self.timeout += other.timeout;
    }
}

impl std::fmt::Display for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} kill, {} stop, {} cut, {} late, {} slow, {} timeout",
            self.kill, self.stop, self.cut, self.late, self.slow, self.timeout
        )
    }
}

/// What a run found.
#[derive(Debug)]
pub(crate) struct Report {
    /// The output's check.
    pub(crate) tally: Tally,
    /// The faults injected.
    pub(crate) faults: Faults,
    /// Results written by the master.
    pub(crate) results: usize,
    /// How long the run took.
    pub(crate) elapsed: Duration,
    /// What went wrong besides the output (the master failed, a deadline passed): the run fails.
    pub(crate) problems: Vec<String>,
    /// What is worth knowing but is no failure (a worker that exited without a fault, …).
    pub(crate) notes: Vec<String>,
    /// Workers the master dropped, and of those, by its heartbeat timeout.
    pub(crate) drops: (u64, u64),
    /// The master's last lines on stderr.
    pub(crate) master_stderr: Vec<String>,
}

impl Report {
    /// Whether the run passed.
    pub(crate) fn passed(&self) -> bool {
        self.tally.clean() && self.problems.is_empty()
    }
}

/// A worker process and its proxy.
struct Live {
    group: Group,
    proxy: Proxy,
    generation: u32,
    /// When a stopped worker is continued.
    stopped_until: Option<Instant>,
    /// Whether a fault hit it (so its exit is expected).
    faulted: bool,
}

/// A worker slot: the workers that fill it one after another.
struct Slot {
    role: Role,
    generation: u32,
    live: Option<Live>,
}

/// The master's join URL and address, as it printed them.
struct Master {
    url: String,
    addr: SocketAddr,
}

/// The join URL in a line of the master's stderr, if there is one.
fn join_url(line: &str) -> Option<Master> {
    let url = line
        .split(|c: char| c.is_whitespace() || c == '\'')
        .find(|w| w.starts_with("ws://") || w.starts_with("tcp://"))?;
    let rest = &url[url.find("://")? + 3..];
    let host_port = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    Some(Master {
        url: url.to_string(),
        addr: host_port.parse().ok()?,
    })
}

/// Progress of the master's output: results so far, and whether it ended.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    results: usize,
    ended: bool,
}

type WorkerExit = ((usize, u32), ExitStatus);

/// The state of a run in progress.
struct Runner<'a> {
    setup: &'a Setup,
    plan: &'a Plan,
    dir: PathBuf,
    master: Master,
    slots: Vec<Slot>,
    exits: mpsc::UnboundedSender<WorkerExit>,
    faults: Faults,
    notes: Vec<String>,
}

impl Runner<'_> {
    /// Starts the next worker of `slot`.
    async fn start(&mut self, slot: usize) -> Result<(), String> {
        let proxy = Proxy::start(self.master.addr)
            .await
            .map_err(|e| format!("cannot start a proxy: {e}"))?;
        let s = &mut self.slots[slot];
        let generation = s.generation;
        s.generation += 1;
        let name = format!("w{slot}.{generation}");
        let url = self.master.url.replacen(
            &self.master.addr.to_string(),
            &format!("127.0.0.1:{}", proxy.port),
            1,
        );
        let mut cmd = Command::new(&self.setup.pando);
        cmd.arg("work")
            .arg(&url)
            .arg("--lines")
            .arg("--name")
            .arg(&name)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        let filter = |cmd: &mut Command, work_us: u64| {
            cmd.arg("--")
                .arg(&self.setup.me)
                .arg("filter")
                .arg("--run-dir")
                .arg(&self.dir)
                .arg("--work-us")
                .arg(work_us.to_string());
        };
        match s.role {
            Role::Normal => {
                cmd.arg("--accept");
            }
            Role::Slow => filter(&mut cmd, self.setup.work_us.max(1) * 10),
            Role::TimesOut => {
                cmd.arg("--timeout")
                    .arg(format!("{}ms", plan::VALUE_TIMEOUT.as_millis()));
                filter(&mut cmd, self.setup.work_us);
                cmd.arg("--hang-after")
                    .arg(self.plan.hang_after.to_string())
                    .arg("--hangs")
                    .arg(self.plan.hangs.to_string());
            }
        }
        let spawned = Group::spawn(name.clone(), cmd, self.exits.clone(), (slot, generation))
            .map_err(|e| format!("cannot start worker {name}: {e}"))?;
        if s.role == Role::Slow && generation == 0 {
            self.faults.slow += 1;
        }
        s.live = Some(Live {
            group: spawned.group,
            proxy,
            generation,
            stopped_until: None,
            faulted: false,
        });
        Ok(())
    }

    /// Fires `kind` at the first running worker from `slot` on.
    fn fire(&mut self, kind: Kind, slot: usize) {
        let n = self.slots.len();
        for k in 0..n {
            let Some(live) = self.slots[(slot + k) % n].live.as_mut() else {
                continue;
            };
            if live.stopped_until.is_some() || live.group.exited() {
                continue;
            }
            let hit = match kind {
                Kind::Kill => live.group.signal(Signal::SIGKILL),
                Kind::Stop(d) => {
                    let stopped = live.group.signal(Signal::SIGSTOP);
                    if stopped {
                        live.stopped_until = Some(Instant::now() + d);
                    }
                    stopped
                }
                Kind::Cut => live.proxy.cut() > 0,
            };
            if hit {
                live.faulted = true;
                match kind {
                    Kind::Kill => self.faults.kill += 1,
                    Kind::Stop(_) => self.faults.stop += 1,
                    Kind::Cut => self.faults.cut += 1,
                }
                return;
            }
        }
    }

    /// Continues the stopped workers whose time has come; the next such time.
    fn continue_due(&mut self, now: Instant) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        for live in self.slots.iter_mut().filter_map(|s| s.live.as_mut()) {
            match live.stopped_until {
                Some(t) if t <= now => {
                    live.group.signal(Signal::SIGCONT);
                    live.stopped_until = None;
                }
                Some(t) => next = Some(next.map_or(t, |n| n.min(t))),
                None => {}
            }
        }
        next
    }
}

/// Runs `plan`.
pub(crate) async fn run(setup: &Setup, plan: &Plan) -> Result<Report, String> {
    let started = Instant::now();
    let deadline = started + setup.run_timeout;
    let dir = tempfile::Builder::new()
        .prefix("pando-chaos-")
        .tempdir()
        .map_err(|e| format!("cannot make the run's directory: {e}"))?;
    let result = run_in(setup, plan, dir.path().to_path_buf(), started, deadline).await;
    // Whatever happened: no filter outlives the run.
    let left = tokio::task::block_in_place(|| kill_filters(dir.path(), Duration::from_secs(5)));
    result.map(|mut report| {
        if left > 0 {
            report.notes.push(format!(
                "{left} filter(s) still ran 5 s after the run ended (killed)"
            ));
        }
        report
    })
}

async fn run_in(
    setup: &Setup,
    plan: &Plan,
    dir: PathBuf,
    started: Instant,
    deadline: Instant,
) -> Result<Report, String> {
    // The master.
    let mut cmd = Command::new(&setup.pando);
    cmd.args([
        "--local",
        "0",
        "--bind",
        "127.0.0.1",
        "--port",
        "0",
        "--skip-failed",
        "--lines",
    ])
    .arg("--token")
    .arg(format!("chaos-{}", plan.seed))
    .arg("--heartbeat")
    .arg(plan::HEARTBEAT.as_millis().to_string())
    .arg("--max-retries")
    .arg(plan.max_retries().to_string())
    .arg("--batch-size")
    .arg(plan.batch.to_string())
    .stdin(Stdio::piped())
    .stdout(Stdio::piped());
    if plan.tcp {
        cmd.arg("--tcp");
    }
    cmd.arg("--")
        .arg(&setup.me)
        .arg("filter")
        .arg("--run-dir")
        .arg(&dir)
        .arg("--work-us")
        .arg(setup.work_us.to_string());
    let (master_exits, mut master_exit) = mpsc::unbounded_channel::<((), ExitStatus)>();
    let spawned = Group::spawn("master".to_string(), cmd, master_exits, ())
        .map_err(|e| format!("cannot start the master {}: {e}", setup.pando.display()))?;
    let master = spawned.group;
    let master_stderr = master.stderr.clone();

    // Its input…
    let mut stdin = spawned.stdin.expect("piped");
    let input: Vec<u64> = (0..plan.values).map(|i| plan.input(i)).collect();
    tokio::spawn(async move {
        let mut w = tokio::io::BufWriter::new(&mut stdin);
        for x in input {
            if w.write_all(format!("{x}\n").as_bytes()).await.is_err() {
                return;
            }
        }
        let _ = w.flush().await;
        // `stdin` is dropped: the input ends.
    });

    // …and its output, each line mapped back to its input's index.
    let output = Arc::new(Mutex::new(Vec::<Option<usize>>::with_capacity(plan.values)));
    let (progress_tx, mut progress) = watch::channel(Progress::default());
    {
        let output = output.clone();
        let stdout = spawned.stdout.expect("piped");
        let (offset, values) = (plan.offset, plan.values);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            let mut results = 0;
            while let Ok(Some(line)) = lines.next_line().await {
                let index = line
                    .parse::<u64>()
                    .ok()
                    .and_then(|y| plan::index_of(y, offset, values));
                output.lock().unwrap_or_else(|p| p.into_inner()).push(index);
                results += 1;
                progress_tx.send_replace(Progress {
                    results,
                    ended: false,
                });
            }
            progress_tx.send_replace(Progress { results, ended: true });
        });
    }

    // The join URL on its stderr.
    let url_deadline = (Instant::now() + Duration::from_secs(60)).min(deadline);
    let found = loop {
        if let Some(m) = master_stderr.lines().iter().find_map(|l| join_url(l)) {
            break m;
        }
        tokio::select! {
            r = timeout_at(url_deadline, master_stderr.changed()) => if r.is_err() {
                return Err(format!(
                    "waited 60 s for the master's join URL on its stderr; it wrote: {:?}",
                    master_stderr.lines()
                ));
            },
            Some((_, status)) = master_exit.recv() => return Err(format!(
                "the master exited ({status}) before printing its join URL; it wrote: {:?}",
                master_stderr.lines()
            )),
        }
    };

    let (exits, mut worker_exits) = mpsc::unbounded_channel::<WorkerExit>();
    let mut r = Runner {
        setup,
        plan,
        dir,
        master: found,
        slots: plan
            .roles
            .iter()
            .map(|&role| Slot {
                role,
                generation: 0,
                live: None,
            })
            .collect(),
        exits,
        faults: Faults::default(),
        notes: Vec::new(),
    };
    let mut late: Vec<(usize, usize)> = plan.late.clone();
    for slot in 0..plan.workers {
        if late.iter().all(|&(s, _)| s != slot) {
            r.start(slot).await?;
        }
    }

    // The run: faults as the results come, workers replaced as they exit.
    let mut problems = Vec::new();
    let mut master_status: Option<ExitStatus> = None;
    let mut next_event = 0;
    let mut seen = 0;
    let mut last_result = Instant::now();
    loop {
        let now = Instant::now();
        let next_continue = r.continue_due(now);
        let stall_at = last_result + setup.stall;
        let wake = [Some(stall_at), Some(deadline), next_continue]
            .into_iter()
            .flatten()
            .min()
            .expect("some");
        tokio::select! {
            changed = progress.changed() => {
                let p = *progress.borrow_and_update();
                if p.results > seen {
                    seen = p.results;
                    last_result = Instant::now();
                }
                while next_event < plan.events.len() && plan.events[next_event].at <= seen && !p.ended {
                    let e = plan.events[next_event];
                    r.fire(e.kind, e.slot);
                    next_event += 1;
                }
                let due: Vec<usize> = late.iter().filter(|&&(_, at)| at <= seen).map(|&(s, _)| s).collect();
                if !p.ended {
                    for slot in due {
                        late.retain(|&(s, _)| s != slot);
                        r.faults.late += 1;
                        r.start(slot).await?;
                    }
                }
                if p.ended || changed.is_err() {
                    break;
                }
            }
            Some(((slot, generation), status)) = worker_exits.recv() => {
                let s = &mut r.slots[slot];
                if s.live.as_ref().is_some_and(|l| l.generation == generation) {
                    let live = s.live.take().expect("checked");
                    if status.success() || seen >= plan.values {
                        // The master told it the run is done, or it has
                        // every result and no longer listens: not replaced
                        // (a new worker would be refused at once).
                        continue;
                    }
                    if !live.faulted {
                        live.group.stderr.wait_end(Duration::from_secs(2)).await;
                        r.notes.push(format!(
                            "worker {} ({:?}) exited ({status}) with no fault; its last line: {:?}",
                            live.group.name,
                            s.role,
                            live.group.stderr.lines().last()
                        ));
                    }
                    drop(live);
                    r.start(slot).await?;
                }
            }
            Some((_, status)) = master_exit.recv() => {
                master_status = Some(status);
            }
            () = sleep_until(wake) => {
                let now = Instant::now();
                if now >= deadline {
                    problems.push(format!(
                        "the run's deadline ({} s) passed with {seen} of {} results",
                        setup.run_timeout.as_secs(), plan.values
                    ));
                    break;
                }
                if now >= stall_at {
                    problems.push(format!(
                        "waited {} s for the master's next result, with {seen} of {} results",
                        setup.stall.as_secs(), plan.values
                    ));
                    break;
                }
            }
        }
    }

    // The end: the master exits, stopped workers go on, every worker ends.
    for live in r.slots.iter_mut().filter_map(|s| s.live.as_mut()) {
        if live.stopped_until.take().is_some() {
            live.group.signal(Signal::SIGCONT);
        }
    }
    if problems.is_empty() {
        let exit_deadline = Instant::now() + plan::HEARTBEAT_TIMEOUT + Duration::from_secs(30);
        if master_status.is_none() {
            match timeout_at(exit_deadline, master_exit.recv()).await {
                Ok(Some((_, status))) => master_status = Some(status),
                _ => problems.push("waited 32 s for the master to exit after its last result".to_string()),
            }
        }
        // Workers end on the master's Done (or a closed connection).
        let workers_deadline = Instant::now() + Duration::from_secs(15);
        while r.slots.iter().any(|s| s.live.is_some()) {
            match timeout_at(workers_deadline, worker_exits.recv()).await {
                Ok(Some(((slot, generation), _))) => {
                    let s = &mut r.slots[slot];
                    if s.live.as_ref().is_some_and(|l| l.generation == generation) {
                        s.live = None;
                    }
                }
                _ => {
                    let left: Vec<&str> = r
                        .slots
                        .iter()
                        .filter_map(|s| s.live.as_ref().map(|l| l.group.name.as_str()))
                        .collect();
                    r.notes.push(format!(
                        "workers still running 15 s after the master ended (killed): {left:?}"
                    ));
                    break;
                }
            }
        }
    }
    match master_status {
        Some(s) if s.success() => {}
        Some(s) => problems.push(format!("the master failed: {s}")),
        None if problems.is_empty() => problems.push("the master did not exit".to_string()),
        None => {}
    }
    r.faults.timeout = crate::filter::hung(&r.dir) as u64;
    let faults = r.faults;
    let notes = std::mem::take(&mut r.notes);
    // Every process is killed here (the workers, their proxies, the master).
    drop(r);
    drop(master);
    let output = std::mem::take(&mut *output.lock().unwrap_or_else(|p| p.into_inner()));
    Ok(Report {
        tally: tally(plan.values, &output),
        faults,
        results: output.len(),
        elapsed: started.elapsed(),
        problems,
        notes,
        drops: master_stderr.drops(),
        master_stderr: master_stderr.lines(),
    })
}
