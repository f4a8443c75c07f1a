//! `pando`: the Unix interface of seed 000 §3.1, for any program.
//!
//! ```text
//! pando [OPTIONS] -- COMMAND [ARGS…]     master: inputs on stdin (one per line), results on stdout, in order
//! pando work URL [--accept | -- COMMAND [ARGS…]]   a worker, from any machine
//! ```
//!
//! Each input is processed by running COMMAND with the input on its stdin;
//! its stdout is the result. With `--lines`, COMMAND runs as line filters,
//! `--jobs` per worker: one input line in, one result line out, many lines
//! in flight. With `--pipe`, each value is a block of input lines, COMMAND
//! runs once per block and its whole output is the block's result. A
//! non-zero exit, a crash or a timeout counts as a failure of that value
//! (retried up to `--max-retries`).
//!
//! Modules: [`runner`] runs COMMAND, [`filter`] runs the pipelined line
//! filters, [`lines`] reads byte lines, [`blocks`] cuts them into blocks,
//! [`supervise`] keeps the local worker processes running, [`log`] sets up
//! logging.

mod blocks;
mod filter;
mod lines;
mod log;
mod relay;
mod runner;
mod supervise;
mod tree;

use std::io::{BufRead, Write};
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use futures::{Stream, StreamExt};
use pando_distributed_map::codec::Line;
use pando_distributed_map::frame::DEFAULT_MAX_FRAME;
use pando_distributed_map::session::RESULT_OVERHEAD;
use pando_distributed_map::transport::{Listener, tcp};
use pando_distributed_map::{
    Backoff, CommandMode, ConfigError, DistributedMap, MapConfig, PoisonPolicy, Reconnect, Session, Worker,
    default_workers, join, split_join_url,
};
use pando_lend_stream::LendError;
use pando_pull_stream::{Answer, Source, pull};
use tokio::sync::mpsc;

use crate::runner::{Mode, Runner};
use crate::supervise::{LocalWorkers, Progress};

/// What `--help` says about lines, in both modes.
const LINES_HELP: &str = "\
Lines: an input line is everything up to a newline, without it; a carriage return \
before the newline is removed too (CRLF input gives the same values as LF input). \
Lines are bytes: they need not be UTF-8. A result is COMMAND's stdout without its last \
newline (and a carriage return before it); with --lines, the filter's answer line, \
stripped the same way. Results are written one per line. With --pipe, a block is the input's \
bytes as they are (carriage returns kept, and a last line without a newline stays so), and \
each block's output is written as it is.

Modes: per value (the default) runs COMMAND once per input line: best when each value is \
real work (seconds), or for programs that take one input. --lines keeps COMMAND running \
as a line filter and streams lines through it: best for many small values and a program \
that can answer each line at once (awk, sed, python). --pipe runs COMMAND once per block \
of lines (1 MiB by default, like GNU parallel --pipe): best for many small values and a \
program that reads all its input (sort, wc, awk without -W interactive). Workers follow \
the master's mode: `pando work` needs no flag for it.

Logging: to stderr; the level comes from RUST_LOG (default: info for pando's own events, \
such as workers joining, finishing or being dropped with the reason).";

#[derive(Parser, Debug)]
#[command(
    name = "pando",
    version,
    about = "Map a command over lines of input with the devices that join.",
    after_help = LINES_HELP
)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
struct Cli {
    #[command(subcommand)]
    work: Option<Sub>,
    #[command(flatten)]
    master: MasterArgs,
}

#[derive(Subcommand, Debug)]
enum Sub {
    /// Join a master as a worker.
    #[command(after_help = LINES_HELP)]
    Work(WorkArgs),
    /// Run Genet's bootstrap/relay server: nodes register the root (with the secret) and join the tree through it.
    Relay(relay::RelayArgs),
}

#[derive(Args, Debug)]
struct MasterArgs {
    /// Read inputs from FILE instead of stdin.
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Local worker processes to start (default: the number of cores; 0: none).
    #[arg(long, value_name = "N")]
    local: Option<usize>,
    /// The most values a worker holds at once, which bounds what it runs at once whatever its --jobs [default: 2; with --lines 256: the lines in flight in a worker's filters].
    #[arg(long, value_name = "N")]
    batch_size: Option<NonZeroUsize>,
    /// Start local workers only once a remote worker has joined.
    #[arg(long)]
    start_idle: bool,
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0", value_name = "ADDR")]
    bind: String,
    /// The port to listen on (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The join token (default: a fresh random token).
    #[arg(long)]
    token: Option<String>,
    /// Heartbeat interval: milliseconds, or a duration such as 2s (a worker silent for 10 intervals is dropped; at most 1 day).
    #[arg(long, default_value = "1000", value_name = "MS|DURATION", value_parser = parse_heartbeat)]
    heartbeat: Duration,
    /// Fail a value whose COMMAND runs longer than DURATION (30s, 500ms, 2m; a bare number is seconds); off by default. With --lines, a filter that takes longer than DURATION to answer a line (counted from its answer to the line before, or from the line's arrival if later) fails that line and is restarted; with --pipe, DURATION is per block.
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// Warn about a value held longer than DURATION without --timeout (default 60s).
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    slow_warning: Option<Duration>,
    /// How many times a value may fail before pando stops with an error naming it.
    #[arg(long, default_value_t = 5, value_name = "N")]
    max_retries: u32,
    /// Skip values that fail more than --max-retries times instead of stopping (with --pipe, a failed block is skipped whole: none of its lines has output; the last line on stderr names the first skipped block and its input lines).
    #[arg(long)]
    skip_failed: bool,
    /// The most connections still in their handshake; more are closed at once. Over WebSocket, the connections whose HTTP request has not arrived whole are capped at N too, and dropped at the handshake deadline.
    #[arg(long, default_value_t = NonZeroUsize::new(256).unwrap(), value_name = "N")]
    max_pending: NonZeroUsize,
    /// The most connected workers; more are turned away (the master is full).
    #[arg(long, default_value_t = NonZeroUsize::new(4096).unwrap(), value_name = "N")]
    max_workers: NonZeroUsize,
    /// Majority voting: compute each value on K different workers and accept a result once more than half of them are byte-equal (a value without a majority goes to workers that have not computed it, up to --max-retries). Values wait while fewer than K workers are connected. Defends against independent faulty or lying volunteers, not one person with K connections (docs/SECURITY.md).
    #[arg(long, default_value_t = 1, value_name = "K")]
    replicas: u32,
    /// Output results as they arrive instead of in input order.
    #[arg(long)]
    unordered: bool,
    /// Print worker statistics to stderr every second.
    #[arg(long)]
    monitor: bool,
    /// Run COMMAND as line filters (--jobs per worker) instead of once per input: each must answer each line with one line, in order, without waiting for more input; many lines are in flight in each. A filter that dies or times out fails the line it was answering; the other lines in it go to a fresh filter, uncharged. Answers are matched to lines by order alone: a filter that writes two lines for one, or none, shifts the later answers.
    #[arg(long, conflicts_with = "pipe")]
    lines: bool,
    /// Run COMMAND once per block of input lines (see --block, --block-lines), with the block, as it is, on its stdin; its whole stdout, as it is, is the block's output.
    #[arg(long)]
    pipe: bool,
    /// With --pipe: the most bytes in a block (1M = 1 MiB, 64k = 64 KiB, or bytes) [default: 1M unless --block-lines is given]. A line is never split: a line longer than SIZE is a block of its own.
    #[arg(long, value_name = "SIZE", requires = "pipe", value_parser = parse_block)]
    block: Option<NonZeroUsize>,
    /// With --pipe: the most lines in a block (with --block too, whichever limit comes first).
    #[arg(long, value_name = "N", requires = "pipe")]
    block_lines: Option<NonZeroUsize>,
    /// Use plain TCP instead of WebSocket.
    #[arg(long)]
    tcp: bool,
    /// Browser volunteers apply the JavaScript function of FILE: it exports it as `module.exports['/pando/1.0.0'] = function (x, cb) {…}` or `export default function (x) {…}` (a value or a Promise); x is the input line as a string (bytes that are not UTF-8 become U+FFFD), and String(result) is the output line. The files beside FILE are served too, so it may import them. Volunteers open the printed http:// URL. With --js, COMMAND is optional (native workers run it), --local is 0 unless COMMAND is given, and --batch-size defaults to 16 (a tab runs several values at once, one per Web Worker).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["tcp", "lines", "pipe"])]
    js: Option<PathBuf>,
    /// The address volunteers and workers reach this master at, when it is not one of this machine's (behind a proxy or NAT), such as `https://example.org/pando/`: printed instead of this machine's addresses.
    #[arg(long, value_name = "URL")]
    public_url: Option<url::Url>,
    /// Make this master the root of a Genet fat tree of workers, each with at most L children: it prints a tree URL, and each `pando work` given it joins the tree; a worker started with --listen takes children and relays values to them (it stops computing while it has children). Workers joining with the plain URL, browsers and --local workers still work directly for the master and take no child slot.
    #[arg(long, value_name = "L", conflicts_with = "js")]
    children_limit: Option<NonZeroUsize>,
    /// With --children-limit: the port of the tree's relay, on --bind (0: any free port).
    #[arg(long, default_value_t = 0, value_name = "PORT", requires = "children_limit")]
    relay_port: u16,
    /// The command to run on each input.
    #[arg(last = true, required_unless_present = "js", value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Args, Debug)]
struct WorkArgs {
    /// The join URL the master printed. Without its `?token=…`, the token is read from the environment variable PANDO_TOKEN, which other users of this machine cannot read (`ps` shows a command line to everyone).
    url: String,
    /// Run the master's command without asking.
    #[arg(long)]
    accept: bool,
    /// How many values to run at once; with --lines, how many line filters [default: the number of cores]. The master's --batch-size bounds it.
    #[arg(long, value_name = "N")]
    jobs: Option<NonZeroUsize>,
    /// Not needed any more: the worker runs COMMAND the way the master says (per value, --lines or --pipe). Still accepted; an error if the master does not run --lines.
    #[arg(long)]
    lines: bool,
    /// This worker's name, shown in the master's logs and statistics (default: the host name).
    #[arg(long)]
    name: Option<String>,
    /// Kill COMMAND and fail the value after DURATION (default: the master's --timeout; the shorter of both applies).
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// Reconnect when the master cannot be reached or goes away (a master restarted with the same --token starts its input over), waiting longer each time (250 ms doubling up to 30 s, with jitter), and give up after DURATION without a master [default: 10m]. Off by default: the worker stops when its master does. A restarted master must ask for the command and mode this worker agreed to, or the worker stops.
    #[arg(long, value_name = "DURATION", num_args = 0..=1, require_equals = true, default_missing_value = "10m", value_parser = parse_timeout)]
    reconnect: Option<Duration>,
    /// With --reconnect: also give up after N failed attempts in a row.
    #[arg(long, value_name = "N", requires = "reconnect")]
    reconnect_attempts: Option<NonZeroU32>,
    /// With a tree URL (from a master with --children-limit): take children at ADDR, an address they can reach (such as 192.168.1.5:0 or, on one machine, 127.0.0.1:0), and relay values to them. Without it, this worker joins as a leaf.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// With a tree URL and --listen: the most children this worker takes.
    #[arg(long, default_value_t = NonZeroUsize::new(pando_genet::DEFAULT_CHILDREN_LIMIT).unwrap(), value_name = "L")]
    children_limit: NonZeroUsize,
    /// With a tree URL: values lent to each child per leaf below it (its Limiter's limit is N × the leaves it reports).
    #[arg(long, default_value_t = NonZeroUsize::new(2).unwrap(), value_name = "N")]
    batch_size: NonZeroUsize,
    /// Run this command instead of the master's.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// The longest heartbeat: ten of them (the heartbeat timeout) must fit any clock.
const MAX_HEARTBEAT: Duration = Duration::from_secs(24 * 3600);
/// The longest timeout (a year).
const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// `--heartbeat`: milliseconds (the old form) or a duration.
fn parse_heartbeat(s: &str) -> Result<Duration, String> {
    let d = if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
        s.parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|e| e.to_string())?
    } else {
        humantime::parse_duration(s).map_err(|e| e.to_string())?
    };
    if d < Duration::from_millis(1) || d > MAX_HEARTBEAT {
        return Err("a heartbeat must be between 1 ms and 1 day".to_string());
    }
    Ok(d)
}

/// The largest block: what fits in a frame with its header.
const MAX_BLOCK: usize = DEFAULT_MAX_FRAME - RESULT_OVERHEAD - 8;

/// The default block size, as GNU parallel's.
const DEFAULT_BLOCK: usize = 1 << 20;

/// The default batch size with `--lines`: lines in flight per worker.
const LINES_BATCH: usize = 256;

/// The default batch size with `--js`: values in flight per worker (a
/// browser tab runs one per Web Worker).
const JS_BATCH: usize = 16;

/// The environment variable that gives `pando work` its join token.
pub(crate) const TOKEN_VARIABLE: &str = "PANDO_TOKEN";

/// `--block`: a size in bytes, with an optional binary unit (`64k`, `1M`, `1MiB`).
fn parse_block(s: &str) -> Result<NonZeroUsize, String> {
    let size = parse_size::Config::new()
        .with_binary()
        .parse_size(s)
        .map_err(|e| format!("{e} (a size such as 64k, 1M or 1048576)"))?;
    match usize::try_from(size).ok().and_then(NonZeroUsize::new) {
        Some(size) if size.get() <= MAX_BLOCK => Ok(size),
        _ => Err(format!(
            "a block must be between 1 byte and {MAX_BLOCK} bytes (the largest frame less its header)"
        )),
    }
}

/// `--timeout`: a duration (`30s`, `500ms`, `2m`); a bare number is seconds.
fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = if s.bytes().all(|b| b.is_ascii_digit()) && !s.is_empty() {
        s.parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|e| e.to_string())?
    } else {
        humantime::parse_duration(s).map_err(|e| e.to_string())?
    };
    if d.is_zero() || d > MAX_TIMEOUT {
        return Err("a timeout must be more than 0 and at most a year".to_string());
    }
    Ok(d)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    log::init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pando: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = match cli.work {
        Some(Sub::Work(args)) => runtime.block_on(work(args)),
        Some(Sub::Relay(args)) => runtime.block_on(relay::relay(args)),
        None => runtime.block_on(master(cli.master)),
    };
    // Tasks still running (a worker's COMMAND, a forwarding task, a
    // connection) are dropped now, which kills what they started.
    runtime.shutdown_timeout(Duration::from_secs(1));
    // The error line comes last, after every log line of those tasks.
    if let Some(message) = FINAL_MESSAGE.lock().unwrap_or_else(|p| p.into_inner()).take() {
        eprintln!("pando: {message}");
    }
    code
}

/// The one-line error (or note) printed when pando ends.
static FINAL_MESSAGE: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Ends with `message` as the last line on stderr, and a failure exit code.
fn fail(message: impl std::fmt::Display) -> ExitCode {
    say_last(message);
    ExitCode::FAILURE
}

/// Prints `message` as pando's last line on stderr (once the runtime has stopped).
fn say_last(message: impl std::fmt::Display) {
    *FINAL_MESSAGE.lock().unwrap_or_else(|p| p.into_inner()) = Some(message.to_string());
}

/// Resolves on SIGINT or SIGTERM, with the exit code that reports it.
async fn shutdown_signal() -> ExitCode {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    let mut int = match signal(SignalKind::interrupt()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => ExitCode::from(128 + 15),
        _ = int.recv() => ExitCode::from(128 + 2),
    }
}

type Values = Pin<Box<dyn Stream<Item = Result<Vec<u8>, Arc<std::io::Error>>> + Send>>;

/// Locks a std mutex, whatever a panic left in it.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// With `--pipe`: the first line and line count of the blocks read lately
/// (as many as the lender may hold unresolved, and as many again), to name
/// a failed block by its input lines; and the first block skipped.
#[derive(Debug)]
struct BlockIndex {
    /// The id of the first block kept.
    first: u64,
    ranges: std::collections::VecDeque<(u64, u64)>,
    cap: usize,
    first_skipped: Option<String>,
}

impl BlockIndex {
    fn new(read_ahead: usize) -> Self {
        BlockIndex {
            first: 0,
            ranges: std::collections::VecDeque::new(),
            cap: read_ahead.saturating_mul(2).saturating_add(16),
            first_skipped: None,
        }
    }

    fn record(&mut self, first_line: u64, lines: u64) {
        self.ranges.push_back((first_line, lines));
        if self.ranges.len() > self.cap {
            self.ranges.pop_front();
            self.first += 1;
        }
    }

    /// "block N (input lines A-B)", or "block N" if it is no longer known.
    fn describe(&self, id: u64) -> String {
        let range = id
            .checked_sub(self.first)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.ranges.get(i));
        match range {
            Some(&(first, 1)) => format!("block {} (input line {first})", id + 1),
            Some(&(first, n)) => format!("block {} (input lines {first}-{})", id + 1, first + n - 1),
            None => format!("block {}", id + 1),
        }
    }
}

async fn master(args: MasterArgs) -> ExitCode {
    if let Some(program) = args.command.first() {
        if let Err(e) = runner::find_program(program) {
            return fail(e);
        }
    }
    let mode = if args.lines {
        Mode::Lines
    } else if args.pipe {
        Mode::Pipe
    } else {
        Mode::PerValue
    };
    let batch_size = args.batch_size.unwrap_or(if mode == Mode::Lines {
        NonZeroUsize::new(LINES_BATCH).expect("nonzero")
    } else if args.js.is_some() {
        NonZeroUsize::new(JS_BATCH).expect("nonzero")
    } else {
        NonZeroUsize::new(2).expect("nonzero")
    });
    let mut config = MapConfig {
        batch_size,
        heartbeat: args.heartbeat,
        heartbeat_timeout: args.heartbeat.saturating_mul(10),
        max_retries: Some(args.max_retries),
        poison: if args.skip_failed {
            PoisonPolicy::Skip
        } else {
            PoisonPolicy::Fail
        },
        ordered: !args.unordered,
        command: args.command.clone(),
        ..MapConfig::default()
    }
    // Workers learn the mode from the Welcome.
    .command_mode(match mode {
        Mode::PerValue => CommandMode::PerValue,
        Mode::Lines => CommandMode::Lines,
        Mode::Pipe => CommandMode::Pipe,
    });
    config.value_timeout = args.timeout;
    if args.slow_warning.is_some() {
        config.slow_value_warning = args.slow_warning;
    }
    config.max_pending = args.max_pending.get();
    config.max_workers = args.max_workers.get();
    config.replicas = args.replicas;
    if args.token.as_deref() == Some("") {
        return fail("the join token must not be empty (--token)");
    }
    if let Some(token) = &args.token {
        config.token = token.clone();
    }
    let map = match Map::try_new(config) {
        Ok(map) => map,
        Err(e @ (ConfigError::Replicas(_) | ConfigError::ReplicasOverWorkers { .. })) => {
            return fail(format!("--replicas: {e}"));
        }
        Err(e) => return fail(e),
    };
    let addr = format!("{}:{}", args.bind, args.port);
    let listener_url = if args.tcp {
        match tcp::TcpListener::bind(&addr, map.config().max_frame).await {
            Ok(l) => serve(&map, l),
            Err(e) => return fail(e),
        }
    } else {
        match serve_web(&map, &addr, args.js.as_deref()).await {
            Ok(url) => url,
            Err(e) => return fail(e),
        }
    };
    let (local_url, public_url) = join::local_and_public_urls(&listener_url, &map.config().token);
    // Local workers get the token in their environment, not on their
    // command line, where `ps` would show it to every user.
    let (local_url, token) = split_join_url(&local_url);
    let public_url = match &args.public_url {
        Some(url) => join::join_url(&websocket_url(url), &token),
        None => public_url,
    };
    // The tree's root (kept until the end of the run), started before
    // anything is printed: a relay port in use fails the run first.
    let tree = match args.children_limit {
        None => None,
        Some(limit) => {
            let host = tree_host(&listener_url);
            match tree::start_root(&map, &args.bind, args.relay_port, &host, limit).await {
                Ok((root, url)) => Some((root, url, host, limit)),
                Err(e) => return fail(e),
            }
        }
    };
    eprintln!("pando: other machines join with: pando work '{public_url}'");
    let _tree = tree.map(|(root, url, host, limit)| {
        eprintln!(
            "pando: tree nodes join with: pando work '{url}' (add --listen {}:0 to take up to {limit} children)",
            if host.contains(':') { format!("[{host}]") } else { host }
        );
        root
    });
    if args.js.is_some() {
        eprintln!("pando: volunteers open in a browser:");
        let urls = volunteer_urls(&listener_url, args.public_url.as_ref(), &token);
        for url in &urls {
            eprintln!("pando:   {url}");
        }
        // For phones: the first address another device can reach, as a QR
        // code, on a terminal only.
        let reachable = urls
            .iter()
            .find(|u| args.public_url.is_some() || !u.starts_with("http://127."));
        if let (Some(url), true) = (reachable, std::io::IsTerminal::is_terminal(&std::io::stderr())) {
            if let Ok(code) = qrcode::QrCode::new(url.as_bytes()) {
                use qrcode::render::unicode::Dense1x2;
                let art = code
                    .render::<Dense1x2>()
                    .dark_color(Dense1x2::Light)
                    .light_color(Dense1x2::Dark)
                    .quiet_zone(true)
                    .build();
                eprintln!("{art}");
            }
        }
    }
    if !args.tcp {
        // The monitoring page, at the first address volunteers would use.
        let first = volunteer_urls(&listener_url, args.public_url.as_ref(), &token)
            .into_iter()
            .next();
        if let Some(url) = first.and_then(|u| url::Url::parse(&u).ok()) {
            let mut monitor = url.clone();
            monitor.set_path(&format!("{}monitor", url.path()));
            eprintln!("pando: watch the run at {monitor}");
        }
    }
    if args.js.is_some() && args.command.is_empty() && args.local.is_none() {
        eprintln!(
            "pando: no local workers (--js without COMMAND): waiting for browsers and `pando work` to join"
        );
    } else if args.local == Some(0) {
        eprintln!("pando: no local workers (--local 0): waiting for workers to join");
    } else if args.start_idle {
        eprintln!("pando: local workers start when a remote worker joins (--start-idle)");
    }

    let input: Pin<Box<dyn tokio::io::AsyncRead + Send>> = match &args.input {
        Some(path) => match tokio::fs::File::open(path).await {
            Ok(file) => Box::pin(file),
            Err(e) => return fail(format!("cannot read {}: {e}", path.display())),
        },
        None => Box::pin(tokio::io::stdin()),
    };
    // With --pipe, where each block's lines are, to name a failed block.
    let index = Arc::new(std::sync::Mutex::new(BlockIndex::new(
        map.config()
            .read_ahead
            .map_or(usize::MAX, |n| usize::try_from(n.get()).unwrap_or(usize::MAX)),
    )));
    let values: Values = if mode == Mode::Pipe {
        let limits = blocks::Limits {
            bytes: args.block.unwrap_or(if args.block_lines.is_some() {
                NonZeroUsize::new(MAX_BLOCK).expect("nonzero")
            } else {
                NonZeroUsize::new(DEFAULT_BLOCK).expect("nonzero")
            }),
            lines: args.block_lines,
            max_line: MAX_BLOCK,
        };
        let index = index.clone();
        Box::pin(blocks::blocks(input, limits).map(move |block| {
            block.map(|block| {
                lock(&index).record(block.first_line, block.lines);
                block.bytes
            })
        }))
    } else {
        Box::pin(lines::byte_lines(input, MAX_BLOCK))
    };
    let values = values.map(|value| value.map(Line));

    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return fail(format!("cannot find my own executable: {e}")),
    };
    // With --js and no COMMAND, browsers do the work: no local workers.
    let n = args.local.unwrap_or_else(|| {
        if args.js.is_some() && args.command.is_empty() {
            0
        } else {
            default_workers()
        }
    });
    let (fatal_tx, mut fatal) = mpsc::unbounded_channel::<String>();
    let start_local = {
        let map = map.clone();
        let timeout = args.timeout;
        move || {
            let progress = move |name: &str| {
                map.stats()
                    .workers
                    .iter()
                    .filter(|w| w.name == name)
                    .fold(Progress::default(), |p, w| Progress {
                        taken: p.taken + w.sent,
                        done: p.done + w.done,
                    })
            };
            supervise::start(
                n,
                move |i| {
                    let mut cmd = tokio::process::Command::new(&exe);
                    // One value (or one filter) at a time: there is a
                    // local worker per core already.
                    cmd.arg("work")
                        .arg(&local_url)
                        .env(TOKEN_VARIABLE, &token)
                        .arg("--accept")
                        .arg("--jobs")
                        .arg("1")
                        .arg("--name")
                        .arg(local_name(i));
                    if let Some(t) = timeout {
                        cmd.arg("--timeout")
                            .arg(humantime::format_duration(t).to_string());
                    }
                    cmd
                },
                local_name,
                progress,
                supervise::Policy::default(),
                fatal_tx,
            )
        }
    };
    // The local workers, once started (a std mutex: never held across an
    // await, so aborting the start-idle task cannot lose started workers).
    let local = Arc::new(std::sync::Mutex::new(LocalWorkers::none()));
    let mut idle_start = None;
    if n > 0 {
        if args.start_idle {
            let map = map.clone();
            let local = local.clone();
            idle_start = Some(tokio::spawn(async move {
                map.remote_worker_joined().await;
                *local.lock().unwrap_or_else(|p| p.into_inner()) = start_local();
            }));
        } else {
            *local.lock().unwrap_or_else(|p| p.into_inner()) = start_local();
        }
    }

    let replicas = map.config().replicas;
    if replicas > 1 {
        if n < replicas as usize {
            eprintln!(
                "pando: --replicas {replicas}: each value waits until {replicas} workers are connected ({n} local)"
            );
        }
        tokio::spawn(replicas_waits(map.clone()));
    }

    if args.monitor {
        let map = map.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                eprint!("{}", map.stats());
            }
        });
    }

    // A progress line on stderr when it is a terminal (and --monitor is off).
    let progress = indicatif::ProgressBar::new_spinner().with_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} results, {per_sec} {msg}")
            .expect("template"),
    );
    if args.monitor || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    } else {
        log::set_progress(progress.clone());
        let map = map.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                progress.set_message(format!("({} workers)", map.stats().connected()));
                progress.tick();
            }
        });
    }
    enum End {
        Done(Result<(), pando_lend_stream::LendError<Arc<std::io::Error>>>),
        Fatal(String),
        Signal(ExitCode),
    }
    let results = pull!(
        pando_pull_stream::from_try_stream(values),
        map.clone(),
        pando_pull_stream::map(|line: Line| line.0)
    );
    let skipped = (mode == Mode::Pipe).then(|| {
        let map = map.clone();
        let index = index.clone();
        move || {
            let mut index = lock(&index);
            if index.first_skipped.is_none() {
                if let Some(id) = map.lender().state().first_skipped {
                    index.first_skipped = Some(index.describe(id));
                }
            }
        }
    });
    let pipeline = write_results(results, mode == Mode::Pipe, progress.clone(), skipped);
    let end = tokio::select! {
        result = pipeline => match result {
            Ok(result) => End::Done(result),
            // A result that cannot be written stops the run: it would be lost.
            Err(e) => End::Fatal(format!("cannot write the results to stdout: {e}")),
        },
        Some(reason) = fatal.recv() => End::Fatal(reason),
        code = shutdown_signal() => End::Signal(code),
    };
    progress.finish_and_clear();
    if let End::Done(Ok(())) = end {
        // Let the workers hear that we are done before we exit.
        tokio::select! {
            () = map.finish(map.config().heartbeat_timeout) => {}
            _ = shutdown_signal() => {}
        }
    }
    // Whatever happened, the local workers are stopped (SIGTERM, then SIGKILL).
    if let Some(task) = idle_start {
        task.abort();
        let _ = task.await;
    }
    let workers = std::mem::replace(
        &mut *local.lock().unwrap_or_else(|p| p.into_inner()),
        LocalWorkers::none(),
    );
    workers.stop().await;
    let skipped = map.stats().lender;
    match end {
        End::Done(Ok(())) if skipped.skipped > 0 && mode == Mode::Pipe => {
            let index = lock(&index);
            let first = index
                .first_skipped
                .clone()
                .unwrap_or_else(|| index.describe(skipped.first_skipped.unwrap_or(0)));
            say_last(format!(
                "skipped {} block(s) that failed more than --max-retries times (--skip-failed): none of their lines has output; the first: {first}",
                skipped.skipped,
            ));
            ExitCode::SUCCESS
        }
        End::Done(Ok(())) if skipped.skipped > 0 => {
            // --skip-failed: the run succeeded, but lines are missing from the output.
            say_last(format!(
                "skipped {} input line(s) that failed more than --max-retries times (--skip-failed); the first: line {}",
                skipped.skipped,
                skipped.first_skipped.map_or(0, |id| id + 1)
            ));
            ExitCode::SUCCESS
        }
        End::Done(Ok(())) => ExitCode::SUCCESS,
        End::Done(Err(e)) if mode == Mode::Pipe => fail(describe_block(&e, &lock(&index))),
        End::Done(Err(e)) => fail(describe(&e)),
        End::Fatal(reason) => fail(reason),
        End::Signal(code) => {
            say_last("stopped by a signal; local workers stopped");
            code
        }
    }
}

/// With replicas, says what values wait for (fewer workers than replicas,
/// or values without a majority waiting for a worker that has not computed
/// them): when it changes, and again every 30 s while it lasts.
async fn replicas_waits(map: Map) {
    let mut said: Option<(String, tokio::time::Instant)> = None;
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let stats = map.stats();
        let l = &stats.lender;
        let wait = if let Some(w) = stats.replicas {
            Some(format!(
                "--replicas {}: values wait for workers: {} connected, {} needed",
                w.wanted, w.connected, w.wanted
            ))
        } else if l.replicas_waiting > 0 {
            Some(format!(
                "--replicas {}: {} value(s) without a majority wait for a worker that has not computed them",
                l.replicas, l.replicas_waiting
            ))
        } else {
            None
        };
        let now = tokio::time::Instant::now();
        match (&wait, &said) {
            (Some(w), Some((s, at))) if w == s && now - *at < Duration::from_secs(30) => {}
            (Some(w), _) => {
                tracing::warn!("{w}");
                said = Some((w.clone(), now));
            }
            (None, _) => said = None,
        }
    }
}

/// The one-line message for a run's error.
fn describe<E: std::fmt::Display>(e: &LendError<E>) -> String {
    describe_poisoned(e, |id| format!("input line {}", id + 1))
}

/// The one-line message for a `--pipe` run's error.
fn describe_block<E: std::fmt::Display>(e: &LendError<E>, index: &BlockIndex) -> String {
    describe_poisoned(e, |id| index.describe(id))
}

/// A run's error, the poisoned value named by `name`.
fn describe_poisoned<E: std::fmt::Display>(e: &LendError<E>, name: impl Fn(u64) -> String) -> String {
    match e {
        LendError::Poisoned { id, failures, reason } => format!(
            "{} failed {failures} time{} (more than --max-retries); last failure: {reason}",
            name(*id),
            if *failures == 1 { "" } else { "s" }
        ),
        other => other.to_string(),
    }
}

/// Writes the results to stdout, each followed by a newline (as they are
/// with `--pipe`), through a buffer flushed whenever the next result is
/// not there yet. `pending` (with `--pipe`) is called then too. The run's
/// end, or the write error that stopped it.
async fn write_results<S>(
    results: S,
    pipe: bool,
    shown: indicatif::ProgressBar,
    mut pending: Option<impl FnMut()>,
) -> Result<Result<(), S::Error>, std::io::Error>
where
    S: Source<Item = Vec<u8>>,
{
    let mut results = std::pin::pin!(results);
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    let mut written = 0;
    std::future::poll_fn(|cx| {
        loop {
            match results.as_mut().poll_ask(cx) {
                std::task::Poll::Ready(Answer::Value(result)) => {
                    out.write_all(&result)?;
                    if !pipe {
                        out.write_all(b"\n")?;
                    }
                    written += 1;
                    if let Some(pending) = pending.as_mut() {
                        pending();
                    }
                }
                std::task::Poll::Ready(end) => {
                    out.flush()?;
                    shown.inc(written);
                    if let Some(pending) = pending.as_mut() {
                        pending();
                    }
                    return std::task::Poll::Ready(Ok(match end {
                        Answer::Error(e) => Err(e),
                        _ => Ok(()),
                    }));
                }
                std::task::Poll::Pending => {
                    out.flush()?;
                    shown.inc(std::mem::take(&mut written));
                    if let Some(pending) = pending.as_mut() {
                        pending();
                    }
                    return std::task::Poll::Pending;
                }
            }
        }
    })
    .await
}

/// The name of local worker `i`.
fn local_name(i: usize) -> String {
    format!("local-{i}")
}

/// The master's map: lines in, lines out (bytes to native workers, strings to browsers).
type Map = DistributedMap<Line, Line, Arc<std::io::Error>>;

/// Accepts workers from `listener`; its URL.
fn serve<L: Listener>(map: &Map, listener: L) -> String {
    let url = listener.url();
    map.serve(listener);
    url
}

/// Serves the master's port over HTTP (pando-web): the native workers'
/// WebSocket, and with `--js` the volunteer page and its function file;
/// the native workers' URL.
async fn serve_web(map: &Map, addr: &str, js: Option<&std::path::Path>) -> Result<String, String> {
    let tcp = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = tcp
        .local_addr()
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let url = format!("ws://{local}/");
    let mut site = pando_web::Site::new(&map.config().token, map.config().max_frame);
    if let Some(js) = js {
        site = site.function(js).map_err(|e| format!("--js: {e}"))?;
    }
    let (router, listener) = site.build(&url);
    let stats = map.clone();
    let router = router.merge(pando_web::monitor::router(
        move || stats.stats(),
        map.config().token.clone(),
    ));
    map.serve(listener);
    // Connections whose request header has not arrived count against
    // --max-pending too (a budget of their own), for the handshake deadline.
    let http = pando_web::ServeConfig::default()
        .max_pending(map.config().max_pending)
        .header_timeout(map.config().heartbeat_timeout);
    tokio::spawn(async move {
        if let Err(e) = pando_web::serve_with(tcp, router, http).await {
            tracing::error!("the HTTP server stopped: {e}");
        }
    });
    Ok(url)
}

/// The native workers' URL for a `--public-url` (http becomes ws, https wss).
fn websocket_url(public: &url::Url) -> String {
    let mut url = public.clone();
    let scheme = if public.scheme() == "https" { "wss" } else { "ws" };
    if url.set_scheme(scheme).is_err() {
        return public.to_string();
    }
    url.set_query(None);
    url.to_string()
}

/// The volunteer page's URLs: `--public-url` alone if given; else this
/// machine's, one per address of each interface that is up (IPv4 first),
/// the local one first.
fn volunteer_urls(listener_url: &str, public: Option<&url::Url>, token: &str) -> Vec<String> {
    let with_token = |base: &str| join::join_url(base, token);
    if let Some(public) = public {
        let mut url = public.clone();
        url.set_query(None);
        return vec![with_token(url.as_str())];
    }
    let Ok(listener) = url::Url::parse(listener_url) else {
        return Vec::new();
    };
    let port = listener.port().unwrap_or(80);
    let bound = listener.host_str().and_then(|h| {
        h.trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .ok()
    });
    let mut hosts: Vec<std::net::IpAddr> = Vec::new();
    match bound {
        Some(ip) if !ip.is_unspecified() => hosts.push(ip),
        _ => {
            hosts.push(std::net::Ipv4Addr::LOCALHOST.into());
            hosts.extend(interface_addresses());
        }
    }
    hosts
        .into_iter()
        .map(|ip| match ip {
            std::net::IpAddr::V4(ip) => with_token(&format!("http://{ip}:{port}/")),
            std::net::IpAddr::V6(ip) => with_token(&format!("http://[{ip}]:{port}/")),
        })
        .collect()
}

/// Where the tree's root takes children: the address the master is bound
/// to, or else this machine's first interface address (127.0.0.1 if none).
fn tree_host(listener_url: &str) -> String {
    let bound = url::Url::parse(listener_url).ok().and_then(|u| {
        u.host_str().and_then(|h| {
            h.trim_matches(|c| c == '[' || c == ']')
                .parse::<std::net::IpAddr>()
                .ok()
        })
    });
    match bound {
        Some(ip) if !ip.is_unspecified() => ip.to_string(),
        _ => interface_addresses()
            .into_iter()
            .find(std::net::IpAddr::is_ipv4)
            .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into())
            .to_string(),
    }
}

/// The addresses of this machine's interfaces that are up, without the
/// loopback and link-local ones, IPv4 first.
fn interface_addresses() -> Vec<std::net::IpAddr> {
    use nix::net::if_::InterfaceFlags;
    let Ok(addresses) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut found: Vec<std::net::IpAddr> = addresses
        .filter(|a| a.flags.contains(InterfaceFlags::IFF_UP))
        .filter_map(|a| {
            let address = a.address?;
            if let Some(v4) = address.as_sockaddr_in() {
                Some(std::net::IpAddr::V4(v4.ip()))
            } else {
                address.as_sockaddr_in6().map(|v6| std::net::IpAddr::V6(v6.ip()))
            }
        })
        .filter(|ip| match ip {
            std::net::IpAddr::V4(ip) => !ip.is_loopback() && !ip.is_link_local() && !ip.is_unspecified(),
            std::net::IpAddr::V6(ip) => {
                !ip.is_loopback() && !ip.is_unspecified() && (ip.segments()[0] & 0xffc0) != 0xfe80
            }
        })
        .collect();
    found.sort_by_key(|ip| (ip.is_ipv6(), *ip));
    found.dedup();
    found
}

/// `http://` as `ws://` and `https://` as `wss://` (a volunteer page's URL
/// names the master's port too); other URLs as they are.
fn websocket_scheme(url: &str) -> String {
    if let Some(rest) = url.strip_prefix("http://") {
        format!("ws://{rest}")
    } else if let Some(rest) = url.strip_prefix("https://") {
        format!("wss://{rest}")
    } else {
        url.to_string()
    }
}

/// The join URL with its token: from the URL, or else from `PANDO_TOKEN`.
fn url_with_token(url: &str) -> String {
    let (base, token) = split_join_url(url);
    if !token.is_empty() {
        return url.to_string();
    }
    match std::env::var(TOKEN_VARIABLE) {
        Ok(token) if !token.is_empty() => join::join_url(&base, &token),
        _ => url.to_string(),
    }
}

/// The mode the master asks its command to be run in, as the runner's.
fn runner_mode(session: &Session) -> Result<Mode, String> {
    match session.command_mode() {
        CommandMode::PerValue => Ok(Mode::PerValue),
        CommandMode::Lines => Ok(Mode::Lines),
        CommandMode::Pipe => Ok(Mode::Pipe),
        other => Err(format!(
            "the master runs its command in a mode this pando does not know ({other:?})"
        )),
    }
}

/// The policy of `pando work --reconnect`.
fn reconnect_policy(args: &WorkArgs) -> Option<Reconnect> {
    args.reconnect.map(|within| {
        Reconnect::default()
            .max_duration(Some(within))
            .max_attempts(args.reconnect_attempts.map(NonZeroU32::get))
    })
}

async fn work(args: WorkArgs) -> ExitCode {
    let name = args.name.clone().unwrap_or_else(join::hostname);
    let jobs = args.jobs.map_or_else(default_workers, NonZeroUsize::get);
    // Rejoins make one attempt each: the loop below retries them with the
    // backoff of the whole run (the worker's own would start its count over
    // and log the same attempt twice).
    let once = Worker::new(name.clone());
    let mut worker = once.clone();
    let policy = reconnect_policy(&args);
    if let Some(policy) = &policy {
        worker = worker.reconnect(policy.clone());
    }
    // Error messages name the URL without its token (nor one from the environment).
    // The volunteer page's http(s):// URL works too: it is the same port.
    let given = websocket_scheme(&args.url);
    let url = url_with_token(&given);
    let shown = split_join_url(&given).0;
    if tree::is_tree_url(&url) {
        return tree::work(&args, &url, &shown, name, jobs).await;
    }
    if args.listen.is_some() {
        return fail(format!(
            "--listen takes children in a tree, and {shown} is not a tree's URL (a master started with --children-limit prints one, ending in {})",
            tree::TREE_PATH
        ));
    }
    // With --reconnect, this retries (with backoff, and log lines) until a
    // master answers or the policy gives up.
    let session = tokio::select! {
        session = worker.connect(&url) => session,
        code = shutdown_signal() => return code,
    };
    let session = match session {
        Ok(s) => s,
        // The error may quote the URL: never with its token.
        Err(e) => {
            return fail(format!(
                "cannot join {shown}: {}",
                e.to_string().replace(&url, &shown)
            ));
        }
    };
    // The master says how to run COMMAND.
    let mode = match runner_mode(&session) {
        Ok(mode) => mode,
        Err(e) => return fail(e),
    };
    if args.lines && mode != Mode::Lines {
        return fail(format!(
            "--lines: the master does not run its command as a line filter but {}; drop --lines (workers follow the master's mode)",
            mode.describe()
        ));
    }
    let command = if !args.command.is_empty() {
        args.command.clone()
    } else {
        let theirs = session.command().to_vec();
        if theirs.is_empty() {
            return fail("the master did not say which command to run; name one after --");
        }
        if !args.accept && !confirm(&theirs, mode) {
            return fail("declined to run the master's command");
        }
        theirs
    };
    // What this worker agreed to: a master that comes back after a loss
    // must ask for the same, or the worker stops.
    let agreed = session.command().to_vec();
    // The master's timeout is applied by the library too, a little later
    // (it gives a function that keeps its own deadline a grace period), so
    // the failure's reason is the runner's: it says what was killed, and for
    // a line filter why it may have stalled.
    let timeout = match (session.value_timeout(), args.timeout) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    // The largest result that fits a frame, with room for the frame's header.
    let limit = DEFAULT_MAX_FRAME - RESULT_OVERHEAD;
    let runner = match Runner::new(command, mode, jobs, timeout, limit) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    // Line filters take every line the master lends (its --batch-size
    // bounds them), spread over `jobs` filters; otherwise `jobs` values
    // run at once.
    // A line filter takes every line lent and keeps each line's deadline
    // itself, from when the filter starts on it (when it is the oldest line
    // in its filter), not from when it arrived.
    let prepare = |session: Session| {
        if mode == Mode::Lines {
            session.jobs(usize::MAX).own_deadlines()
        } else {
            session.jobs(jobs)
        }
    };
    let mut session = prepare(session);
    let mut backoff = policy.as_ref().map(Backoff::new);
    loop {
        let started = tokio::time::Instant::now();
        // On a signal the session's future is dropped, and with it every
        // COMMAND's process group.
        let result = tokio::select! {
            result = session.run(|value: Vec<u8>| runner.run(value)) => result,
            code = shutdown_signal() => return code,
        };
        let e = match result {
            Ok(_) => return ExitCode::SUCCESS,
            Err(e) => e,
        };
        let (Some(policy), Some(backoff)) = (&policy, &mut backoff) else {
            return fail(e);
        };
        if !e.is_lost_master() {
            return fail(e);
        }
        tracing::warn!("lost the master at {shown} ({e}); reconnecting");
        // A session that did not last counts as a failed attempt (a master
        // that drops its workers at once is not hammered); one that lasted
        // starts the count over.
        if started.elapsed() >= policy.max_delay {
            backoff.reset();
        } else {
            let go_on = tokio::select! {
                go_on = backoff.wait(&shown, &e) => go_on,
                code = shutdown_signal() => return code,
            };
            if !go_on {
                return fail(format!("gave up on the master at {shown}: {e}"));
            }
        }
        let next = loop {
            let next = tokio::select! {
                next = once.connect(&url) => next,
                code = shutdown_signal() => return code,
            };
            match next {
                Err(e) if e.is_lost_master() => {
                    let go_on = tokio::select! {
                        go_on = backoff.wait(&shown, &e) => go_on,
                        code = shutdown_signal() => return code,
                    };
                    if !go_on {
                        return fail(format!("gave up on the master at {shown}: {e}"));
                    }
                }
                next => break next,
            }
        };
        let next = match next {
            Ok(s) => s,
            Err(e) => return fail(format!("cannot rejoin {shown}: {e}")),
        };
        // A master that changed what it asks is told why the worker leaves.
        let changed = match runner_mode(&next) {
            Ok(m) if m != mode => Some(format!(
                "running its command {} instead of {}",
                m.describe(),
                mode.describe()
            )),
            Ok(_) if args.command.is_empty() && next.command() != agreed.as_slice() => Some(format!(
                "asking to run {:?}, not {agreed:?} as agreed",
                next.command()
            )),
            Ok(_) => None,
            Err(e) => return fail(e),
        };
        if let Some(why) = changed {
            let reason = format!("the volunteer refuses: the master came back {why}");
            // The master's heartbeat bounds the goodbye; this is a backstop.
            let _ = tokio::time::timeout(Duration::from_secs(10), next.stop(reason)).await;
            return fail(format!("the master at {shown} came back {why}; stopping"));
        }
        tracing::info!("rejoined the master at {shown}");
        session = prepare(next);
    }
}

/// Asks the volunteer on the terminal whether to run the master's command.
fn confirm(command: &[String], mode: Mode) -> bool {
    let how = match mode {
        Mode::PerValue => "on each value",
        Mode::Lines => "as a line filter on each line",
        Mode::Pipe => "on each block of lines",
    };
    eprint!("pando: the master asks this machine to run {command:?} {how}. Run it? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok() && matches!(answer.trim(), "y" | "Y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn a_volunteer_page_url_joins_over_websocket() {
        assert_eq!(websocket_scheme("http://h:1/?token=t"), "ws://h:1/?token=t");
        assert_eq!(websocket_scheme("https://h/p/?token=t"), "wss://h/p/?token=t");
        assert_eq!(websocket_scheme("ws://h:1/"), "ws://h:1/");
    }

    #[test]
    fn the_cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn heartbeat_takes_milliseconds_or_a_duration_and_rejects_what_would_overflow() {
        assert_eq!(parse_heartbeat("250"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_heartbeat("2s"), Ok(Duration::from_secs(2)));
        assert!(parse_heartbeat("0").is_err());
        assert!(parse_heartbeat(&u64::MAX.to_string()).is_err());
        assert!(parse_heartbeat(&(u64::MAX - 1).to_string()).is_err());
        assert!(parse_heartbeat("18446744073709551616").is_err());
        assert!(parse_heartbeat("1000000000days").is_err());
    }

    #[test]
    fn timeout_takes_durations() {
        assert_eq!(parse_timeout("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_timeout("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_timeout("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_timeout("7"), Ok(Duration::from_secs(7)));
        assert!(parse_timeout("0s").is_err());
        assert!(parse_timeout("soon").is_err());
    }

    #[test]
    fn reconnect_is_off_by_default_and_takes_an_optional_duration_after_an_equals_sign() {
        let parse = |args: &[&str]| match Cli::try_parse_from(args).map(|cli| cli.work) {
            Ok(Some(Sub::Work(args))) => Ok((args.url.clone(), reconnect_policy(&args))),
            Ok(_) => panic!("not pando work: {args:?}"),
            Err(e) => Err(e.to_string()),
        };
        let (url, policy) = parse(&["pando", "work", "ws://m/"]).unwrap();
        assert_eq!((url.as_str(), policy), ("ws://m/", None));
        // Without a value it does not take the URL as its duration.
        let (url, policy) = parse(&["pando", "work", "--reconnect", "ws://m/"]).unwrap();
        let policy = policy.unwrap();
        assert_eq!(url, "ws://m/");
        assert_eq!(policy.max_duration, Some(Duration::from_secs(600)));
        assert_eq!(policy.max_attempts, None);
        let (_, policy) = parse(&[
            "pando",
            "work",
            "--reconnect=90s",
            "--reconnect-attempts",
            "5",
            "ws://m/",
        ])
        .unwrap();
        let policy = policy.unwrap();
        assert_eq!(policy.max_duration, Some(Duration::from_secs(90)));
        assert_eq!(policy.max_attempts, Some(5));
        assert!(parse(&["pando", "work", "--reconnect-attempts", "5", "ws://m/"]).is_err());
        assert!(parse(&["pando", "work", "--reconnect=0s", "ws://m/"]).is_err());
        assert!(parse(&["pando", "work", "--reconnect=soon", "ws://m/"]).is_err());
    }

    #[test]
    fn impossible_values_are_clap_errors() {
        for args in [
            &["pando", "--batch-size", "0", "--", "cat"][..],
            &["pando", "--max-workers", "0", "--", "cat"],
            &["pando", "--max-pending", "0", "--", "cat"],
            &["pando", "--heartbeat", "18446744073709551615", "--", "cat"],
            &["pando", "--timeout", "0", "--", "cat"],
        ] {
            assert!(Cli::try_parse_from(args).is_err(), "{args:?}");
        }
        assert!(Cli::try_parse_from(["pando", "--max-retries", "4294967295", "--", "cat"]).is_ok());
    }
}
