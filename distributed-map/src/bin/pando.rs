//! `pando`: the Unix interface of seed 000 §3.1, for any program.
//!
//! ```text
//! pando [OPTIONS] -- COMMAND [ARGS…]     master: inputs on stdin (one per line), results on stdout, in order
//! pando work URL [--accept | -- COMMAND [ARGS…]]   a worker, from any machine
//! ```
//!
//! Each input is processed by running COMMAND with the input on its stdin;
//! its stdout is the result. With `--lines`, COMMAND runs once per worker as
//! a filter: one input line in, one result line out. A non-zero exit or a
//! crash counts as a failure of that value (retried up to `--max-retries`).

use std::io::{BufRead, Write};
use std::num::NonZeroUsize;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use pando_distributed_map::transport::{Listener, tcp, ws};
use pando_distributed_map::{DistributedMap, MapConfig, PoisonPolicy, Worker, join_url};
use pando_pull_stream::{for_each, pull};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

#[derive(Parser, Debug)]
#[command(
    name = "pando",
    version,
    about = "Map a command over lines of input with the devices that join."
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
    Work(WorkArgs),
}

#[derive(Args, Debug)]
struct MasterArgs {
    /// Read inputs from FILE instead of stdin.
    #[arg(long, value_name = "FILE")]
    input: Option<std::path::PathBuf>,
    /// Local worker processes to start (default: the number of cores).
    #[arg(long, value_name = "N")]
    local: Option<usize>,
    /// The most values a worker holds at once.
    #[arg(long, default_value_t = NonZeroUsize::new(2).unwrap(), value_name = "N")]
    batch_size: NonZeroUsize,
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
    /// Heartbeat interval in milliseconds (a worker silent for 10 intervals is dropped).
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    heartbeat: u64,
    /// How many times a value may fail before pando stops with an error naming it.
    #[arg(long, default_value_t = 5, value_name = "N")]
    max_retries: u32,
    /// Skip values that fail more than --max-retries times instead of stopping.
    #[arg(long)]
    skip_failed: bool,
    /// Output results as they arrive instead of in input order.
    #[arg(long)]
    unordered: bool,
    /// Print worker statistics to stderr every second.
    #[arg(long)]
    monitor: bool,
    /// Run COMMAND once per worker as a line filter instead of once per input.
    #[arg(long)]
    lines: bool,
    /// Use plain TCP instead of WebSocket.
    #[arg(long)]
    tcp: bool,
    /// The command to run on each input.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

#[derive(Args, Debug)]
struct WorkArgs {
    /// The join URL the master printed.
    url: String,
    /// Run the master's command without asking.
    #[arg(long)]
    accept: bool,
    /// Run COMMAND once per worker as a line filter (must match the master's --lines).
    #[arg(long)]
    lines: bool,
    /// Run this command instead of the master's.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start: {e}")),
    };
    match cli.work {
        Some(Sub::Work(args)) => runtime.block_on(work(args)),
        None => runtime.block_on(master(cli.master)),
    }
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("pando: {message}");
    ExitCode::FAILURE
}

/// Whether `program` can be run: a path to a file, or a name found on PATH.
fn find_program(program: &str) -> bool {
    if program.contains('/') {
        return std::path::Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

async fn master(args: MasterArgs) -> ExitCode {
    let program = &args.command[0];
    if !find_program(program) {
        return fail(format!("command not found: {program}"));
    }
    let mut config = MapConfig {
        batch_size: args.batch_size,
        heartbeat: Duration::from_millis(args.heartbeat.max(1)),
        heartbeat_timeout: Duration::from_millis(args.heartbeat.max(1) * 10),
        max_retries: Some(args.max_retries),
        poison: if args.skip_failed {
            PoisonPolicy::Skip
        } else {
            PoisonPolicy::Fail
        },
        ordered: !args.unordered,
        command: args.command.clone(),
        ..MapConfig::default()
    };
    if let Some(token) = &args.token {
        config.token = token.clone();
    }
    let map = DistributedMap::<String, String, std::sync::Arc<std::io::Error>>::new(config);
    let addr = format!("{}:{}", args.bind, args.port);
    let listener_url = if args.tcp {
        match tcp::TcpListener::bind(&addr, map.config().max_frame).await {
            Ok(l) => {
                let url = l.url();
                map.serve(l);
                url
            }
            Err(e) => return fail(e),
        }
    } else {
        match ws::WsListener::bind(&addr, map.config().max_frame).await {
            Ok(l) => {
                let url = l.url();
                map.serve(l);
                url
            }
            Err(e) => return fail(e),
        }
    };
    let local_url = join_url(&listener_url.replace("0.0.0.0", "127.0.0.1"), &map.config().token);
    let public_url = join_url(&listener_url.replace("0.0.0.0", &hostname()), &map.config().token);
    eprintln!("pando: other machines join with: pando work '{public_url}'");

    let local = args
        .local
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut children = Vec::new();
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => return fail(format!("cannot find my own executable: {e}")),
    };
    let start_local = {
        let exe = exe.clone();
        let lines = args.lines;
        move |children: &mut Vec<Child>| {
            for _ in 0..local {
                let mut cmd = Command::new(&exe);
                cmd.arg("work").arg(&local_url).arg("--accept");
                if lines {
                    cmd.arg("--lines");
                }
                cmd.stdin(Stdio::null()).kill_on_drop(true);
                match cmd.spawn() {
                    Ok(child) => children.push(child),
                    Err(e) => eprintln!("pando: cannot start a local worker: {e}"),
                }
            }
        }
    };
    if args.start_idle {
        let map = map.clone();
        tokio::spawn(async move {
            map.remote_worker_joined().await;
            let mut started = Vec::new();
            start_local(&mut started);
            // Keep the children alive (and killed on exit) with this task.
            std::future::pending::<()>().await;
        });
    } else {
        start_local(&mut children);
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

    type Lines =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<String, std::sync::Arc<std::io::Error>>> + Send>>;
    let lines: Lines = match &args.input {
        Some(path) => match tokio::fs::File::open(path).await {
            Ok(file) => Box::pin(tokio_stream_lines(BufReader::new(file))),
            Err(e) => return fail(format!("cannot read {}: {e}", path.display())),
        },
        None => Box::pin(tokio_stream_lines(BufReader::new(tokio::io::stdin()))),
    };
    // A progress line on stderr when it is a terminal (and --monitor is off).
    let progress = indicatif::ProgressBar::new_spinner().with_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} results, {per_sec} {msg}")
            .expect("template"),
    );
    if args.monitor || !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        progress.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    } else {
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
    let stdout = std::io::stdout();
    let shown = progress.clone();
    let result = pull!(
        pando_pull_stream::from_try_stream(lines),
        map.clone(),
        for_each(move |line: String| {
            let mut out = stdout.lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
            shown.inc(1);
        }),
    )
    .await;
    progress.finish_and_clear();
    if result.is_ok() {
        // Let the workers hear that we are done before we exit.
        map.finish(map.config().heartbeat_timeout).await;
    }
    drop(children);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(pando_lend_stream::LendError::Poisoned { id, failures, .. }) => fail(format!(
            "input line {} failed {failures} times (more than --max-retries); stopping",
            id + 1
        )),
        Err(e) => fail(e),
    }
}

/// The lines of `reader`; a read error (as a shareable error) ends the stream.
fn tokio_stream_lines<R: tokio::io::AsyncBufRead + Unpin + Send + 'static>(
    reader: R,
) -> impl futures::Stream<Item = Result<String, std::sync::Arc<std::io::Error>>> + Send {
    futures::stream::unfold(reader.lines(), |mut lines| async move {
        match lines.next_line().await {
            Ok(Some(line)) => Some((Ok(line), lines)),
            Ok(None) => None,
            Err(e) => Some((Err(std::sync::Arc::new(e)), lines)),
        }
    })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_or_else(|_| "localhost".to_string(), |h| h.trim().to_string())
}

async fn work(args: WorkArgs) -> ExitCode {
    let session = match Worker::new(hostname()).connect(&args.url).await {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot join {}: {e}", args.url)),
    };
    let command = if !args.command.is_empty() {
        args.command.clone()
    } else {
        let theirs = session.command().to_vec();
        if theirs.is_empty() {
            return fail("the master did not say which command to run; name one after --");
        }
        if !args.accept && !confirm(&theirs) {
            return fail("declined to run the master's command");
        }
        theirs
    };
    if !find_program(&command[0]) {
        return fail(format!("command not found: {}", command[0]));
    }
    let result = if args.lines {
        let filter = std::sync::Arc::new(tokio::sync::Mutex::new(None::<Filter>));
        session
            .run(move |line: String| {
                let filter = filter.clone();
                let command = command.clone();
                async move { run_filter(&filter, &command, &line).await }
            })
            .await
    } else {
        session
            .run(move |line: String| {
                let command = command.clone();
                async move { run_once(&command, &line).await }
            })
            .await
    };
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// Asks the volunteer on the terminal whether to run the master's command.
fn confirm(command: &[String]) -> bool {
    eprint!("pando: the master asks this machine to run {command:?} on each value. Run it? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok() && matches!(answer.trim(), "y" | "Y" | "yes")
}

/// Starts COMMAND with piped stdin and stdout (stderr goes to ours), killed
/// if dropped.
fn spawn(command: &[String]) -> Result<Child, String> {
    Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", command[0]))
}

/// Runs COMMAND with `line` on its stdin; its stdout (without the last newline) is the result.
async fn run_once(command: &[String], line: &str) -> Result<String, String> {
    let mut child = spawn(command)?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = format!("{line}\n");
    let writing = async move {
        // A command that does not read its input is not an error.
        let _ = stdin.write_all(input.as_bytes()).await;
    };
    let mut stdout = child.stdout.take().expect("piped");
    let mut output = String::new();
    let reading = stdout.read_to_string(&mut output);
    let ((), read) = tokio::join!(writing, reading);
    read.map_err(|e| format!("reading the output of {}: {e}", command[0]))?;
    let status = child.wait().await.map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("{} exited with {status}", command[0]));
    }
    if output.ends_with('\n') {
        output.pop();
    }
    Ok(output)
}

/// A long-running COMMAND used as a line filter.
struct Filter {
    child: Child,
    stdin: ChildStdin,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
}

async fn run_filter(
    filter: &tokio::sync::Mutex<Option<Filter>>,
    command: &[String],
    line: &str,
) -> Result<String, String> {
    let mut slot = filter.lock().await;
    if slot.is_none() {
        let mut child = spawn(command)?;
        let stdin = child.stdin.take().expect("piped");
        let stdout = BufReader::new(child.stdout.take().expect("piped")).lines();
        *slot = Some(Filter { child, stdin, stdout });
    }
    let f = slot.as_mut().expect("started above");
    let answer = async {
        f.stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        f.stdin.flush().await.map_err(|e| e.to_string())?;
        match f.stdout.next_line().await.map_err(|e| e.to_string())? {
            Some(result) => Ok(result),
            None => Err(format!("{} ended without answering", command[0])),
        }
    }
    .await;
    if answer.is_err() {
        // The filter crashed or closed: it is restarted for the next value.
        if let Some(mut dead) = slot.take() {
            let _ = dead.child.start_kill();
        }
    }
    answer
}
