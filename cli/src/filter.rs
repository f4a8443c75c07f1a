//! Pipelined line filters (`pando --lines`): N long-running COMMANDs, each
//! with its own stream of lines.
//!
//! A line goes to the filter with the fewest lines in flight. Each filter
//! has a writer task and a reader task, so that writing never waits for an
//! answer and reading never waits for a write (a filter blocked on a full
//! output pipe cannot block its input, and the other way round):
//!
//! * the writer takes the lines in the order they were given, writes them
//!   into a buffer, and flushes it whenever it would otherwise wait for the
//!   next line, so a line never sits in the buffer while its answer is
//!   awaited;
//! * the reader reads one answer line per line, in order, and hands each to
//!   the oldest line still waiting.
//!
//! No lock is held across a write or a read: the only lock, around a
//! filter's queue of waiting lines, is taken to push a line (and queue its
//! bytes for the writer, in the same order) or to pop one.
//!
//! A filter that ends, breaks the line contract, or does not answer its
//! oldest line within `--timeout`, is killed (with its process group). The
//! oldest line, the one it was answering (a filter answers each line, in
//! order, without waiting for more input), fails with the reason. The other
//! lines inside it did nothing wrong: they are written again to a fresh
//! filter, so a filter's death is charged to one line only, as the blame
//! rule of the lender charges a value only for its own failures.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_util::codec::{AnyDelimiterCodecError, FramedRead};

use crate::lines;
use crate::runner::{FILTER_ADVICE, Group, Spec};

/// How long a line filter may stay silent, without `--timeout`, before the worker warns.
const STALL_WARNING: Duration = Duration::from_secs(10);

/// The size of the buffer in front of a filter's input.
const WRITE_BUFFER: usize = 64 * 1024;

/// N line filters, started when a line first needs one and started again
/// after one dies. Dropping the pool kills them.
#[derive(Debug)]
pub(crate) struct Filters {
    spec: Arc<Spec>,
    slots: Vec<Mutex<Option<Filter>>>,
}

/// What a waiting line gets.
#[derive(Debug)]
enum Answer {
    /// The filter's answer line (without its line end).
    Line(Vec<u8>),
    /// The filter failed on this line.
    Failed(String),
    /// The filter failed on an earlier line: write this one to a fresh filter.
    Again,
}

/// A line written (or about to be written) to a filter, waiting for its answer.
#[derive(Debug)]
struct Waiting {
    answer: oneshot::Sender<Answer>,
    since: Instant,
}

/// The lines inside one filter, oldest first.
#[derive(Debug, Default)]
struct Queue {
    waiting: VecDeque<Waiting>,
    /// The filter is dead: nothing more is pushed.
    dead: bool,
    /// Why writing to the filter failed, if it did.
    write_error: Option<String>,
}

/// A filter's queue, shared by its handle and its two tasks.
#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the reader when writing failed.
    broken: Notify,
}

type SharedQueue = Arc<Shared>;

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Queue> {
    shared.queue.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One running filter: its queue, its writer's channel and its two tasks
/// (aborted when it is dropped, which kills the process group).
#[derive(Debug)]
struct Filter {
    queue: SharedQueue,
    lines: mpsc::UnboundedSender<Bytes>,
    tasks: [AbortHandle; 2],
}

impl Drop for Filter {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Filters {
    /// A pool of `n` filters (at least one) running `spec`'s command.
    pub(crate) fn new(spec: Arc<Spec>, n: usize) -> Self {
        Filters {
            spec,
            slots: (0..n.max(1)).map(|_| Mutex::new(None)).collect(),
        }
    }

    /// Runs `line` through a filter: its answer, or why it failed.
    pub(crate) async fn run(&self, mut line: Vec<u8>) -> Result<Vec<u8>, String> {
        line.push(b'\n');
        let line = Bytes::from(line);
        loop {
            let answer = self.submit(line.clone())?;
            match answer.await {
                Ok(Answer::Line(answer)) => return Ok(answer),
                Ok(Answer::Failed(reason)) => return Err(reason),
                // The filter died on an earlier line (or was dropped with
                // the pool): this line goes to a fresh one.
                Ok(Answer::Again) | Err(_) => {}
            }
        }
    }

    /// Gives `line` to the filter with the fewest lines in flight (starting
    /// it if needed); the receiver of its answer.
    fn submit(&self, line: Bytes) -> Result<oneshot::Receiver<Answer>, String> {
        let slot = self
            .slots
            .iter()
            .min_by_key(|slot| {
                let slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
                slot.as_ref().map_or(0, |f| {
                    let q = lock(&f.queue);
                    if q.dead { 0 } else { q.waiting.len() }
                })
            })
            .expect("at least one slot");
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(filter) = slot.as_ref() {
                let mut q = lock(&filter.queue);
                if !q.dead {
                    let (tx, rx) = oneshot::channel();
                    q.waiting.push_back(Waiting {
                        answer: tx,
                        since: Instant::now(),
                    });
                    // Under the queue's lock: the writer gets the lines in
                    // the order they wait. Unbounded, but never longer than
                    // the lines in flight (the master's batch size).
                    if filter.lines.send(line.clone()).is_ok() {
                        return Ok(rx);
                    }
                    // The writer is gone: this filter is dying.
                    q.waiting.pop_back();
                    q.dead = true;
                }
            }
            *slot = Some(start(self.spec.clone())?);
        }
    }
}

/// Starts a filter and its writer and reader tasks.
fn start(spec: Arc<Spec>) -> Result<Filter, String> {
    let (group, stdin, stdout) = spec.spawn()?;
    let queue = SharedQueue::default();
    let (lines, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_lines(rx, stdin, queue.clone(), spec.clone()));
    let reader = tokio::spawn(read_answers(stdout, group, queue.clone(), spec));
    Ok(Filter {
        queue,
        lines,
        tasks: [writer.abort_handle(), reader.abort_handle()],
    })
}

/// Writes the lines to the filter, flushing whenever the next line is not
/// there yet. A write error is handed to the reader, which kills the filter.
async fn write_lines(
    mut rx: mpsc::UnboundedReceiver<Bytes>,
    stdin: ChildStdin,
    queue: SharedQueue,
    spec: Arc<Spec>,
) {
    let mut input = BufWriter::with_capacity(WRITE_BUFFER, stdin);
    let error = loop {
        let line = match rx.try_recv() {
            Ok(line) => line,
            Err(mpsc::error::TryRecvError::Empty) => {
                if let Err(e) = input.flush().await {
                    break e;
                }
                match rx.recv().await {
                    Some(line) => line,
                    None => return,
                }
            }
            Err(mpsc::error::TryRecvError::Disconnected) => return,
        };
        if let Err(e) = input.write_all(&line).await {
            break e;
        }
    };
    lock(&queue).write_error = Some(format!("writing to {}: {error}", spec.name()));
    queue.broken.notify_one();
}

/// Reads the filter's answers and hands each to the oldest waiting line;
/// when the filter ends, breaks the contract or times out, kills it, fails
/// the oldest line with the reason and sends the others to a fresh filter.
async fn read_answers(stdout: ChildStdout, group: Group, queue: SharedQueue, spec: Arc<Spec>) {
    let mut answers = FramedRead::new(stdout, lines::WholeLines::new(spec.limit));
    // Checks the oldest line's deadline (or the stall warning) now and then:
    // the timer is reset when it fires, not for every line.
    let period = spec.timeout.unwrap_or(STALL_WARNING);
    let check = tokio::time::sleep(period);
    tokio::pin!(check);
    let mut warned_about: Option<Instant> = None;
    let reason = loop {
        tokio::select! {
            answer = answers.next() => match answer {
                Some(Ok(answer)) => {
                    let mut answer: Vec<u8> = answer.into();
                    lines::strip_line_end(&mut answer);
                    let oldest = {
                        let mut q = lock(&queue);
                        let oldest = q.waiting.pop_front();
                        // The next line's clock starts now: the filter
                        // starts on it once it has answered this one.
                        if let Some(next) = q.waiting.front_mut() {
                            next.since = next.since.max(Instant::now());
                        }
                        oldest
                    };
                    match oldest {
                        // A line whose caller gave up (its value was
                        // cancelled): the answer is dropped.
                        Some(waiting) => drop(waiting.answer.send(Answer::Line(answer))),
                        None => break Some(format!(
                            "{} wrote a line it was not asked for; {FILTER_ADVICE}, one answer line per input line",
                            spec.name()
                        )),
                    }
                }
                Some(Err(AnyDelimiterCodecError::MaxChunkLengthExceeded)) => break Some(spec.too_long()),
                Some(Err(e)) => break Some(format!(
                    "reading the output of {}: {}",
                    spec.name(),
                    lines::io_error(e)
                )),
                None => {
                    let q = lock(&queue);
                    break Some(q.write_error.clone().unwrap_or_else(|| {
                        format!("{} ended without answering", spec.name())
                    }));
                }
            },
            () = queue.broken.notified() => {
                break lock(&queue).write_error.clone();
            }
            () = &mut check => {
                let now = Instant::now();
                let oldest = lock(&queue).waiting.front().map(|w| w.since);
                let next = match (oldest, spec.timeout) {
                    (Some(since), Some(t)) if now >= since + t => break Some(format!(
                        "{} did not answer within {} (--timeout) and was restarted: {FILTER_ADVICE}",
                        spec.name(),
                        humantime::format_duration(t)
                    )),
                    (Some(since), Some(t)) => since + t,
                    (Some(since), None) if now >= since + STALL_WARNING => {
                        if warned_about != Some(since) {
                            warned_about = Some(since);
                            tracing::warn!(
                                "{} has not answered a line for {}; {FILTER_ADVICE}; --timeout restarts a stuck filter",
                                spec.name(),
                                humantime::format_duration(STALL_WARNING)
                            );
                        }
                        now + STALL_WARNING
                    }
                    (Some(since), None) => since + STALL_WARNING,
                    (None, _) => now + period,
                };
                check.as_mut().reset(next);
            }
        }
    };
    // Kill it first: nothing more is read from it.
    drop(answers);
    drop(group);
    let waiting = {
        let mut q = lock(&queue);
        q.dead = true;
        std::mem::take(&mut q.waiting)
    };
    let mut waiting = waiting.into_iter();
    if let (Some(oldest), Some(reason)) = (waiting.next(), reason) {
        let _ = oldest.answer.send(Answer::Failed(reason));
    }
    for line in waiting {
        let _ = line.answer.send(Answer::Again);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;

    const LIMIT: usize = 1 << 20;

    fn filters(script: &str, n: usize, timeout: Option<Duration>) -> Arc<Filters> {
        let command = vec!["sh".to_string(), "-c".to_string(), script.to_string()];
        Arc::new(Filters::new(
            Arc::new(Spec::new(command, timeout, LIMIT).unwrap()),
            n,
        ))
    }

    /// Runs `lines` at once (as a worker with that many values in flight does).
    async fn run_all(f: &Arc<Filters>, lines: &[&str]) -> Vec<Result<String, String>> {
        let runs = lines.iter().map(|line| {
            let f = f.clone();
            let line = line.as_bytes().to_vec();
            async move { f.run(line).await.map(|a| String::from_utf8(a).unwrap()) }
        });
        futures::future::join_all(runs).await
    }

    #[tokio::test]
    async fn many_lines_in_flight_are_answered_in_order() {
        let f = filters("while read x; do echo \"<$x>\"; done", 1, None);
        let lines: Vec<String> = (0..500).map(|i| i.to_string()).collect();
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        let got = run_all(&f, &refs).await;
        let want: Vec<Result<String, String>> = lines.iter().map(|l| Ok(format!("<{l}>"))).collect();
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn lines_are_spread_over_the_filters() {
        // Each filter answers with its own pid: two filters, two pids.
        let f = filters("while read x; do echo $$; done", 2, None);
        let lines = ["a"; 64];
        let got = run_all(&f, &lines).await;
        let pids: std::collections::BTreeSet<String> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(pids.len(), 2, "{pids:?}");
    }

    #[tokio::test]
    async fn a_filter_that_dies_fails_the_line_it_was_answering_and_redoes_the_others() {
        // Dies on "die" the first time it sees it (a marker file remembers).
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("died");
        let script = format!(
            "while read x; do if [ \"$x\" = die ] && [ ! -e {0} ]; then touch {0}; exit 3; fi; echo \"<$x>\"; done",
            marker.display()
        );
        let f = filters(&script, 1, None);
        let got = run_all(&f, &["a", "b", "die", "c", "d", "e"]).await;
        assert_eq!(
            got,
            vec![
                Ok("<a>".into()),
                Ok("<b>".into()),
                Err("sh ended without answering".into()),
                Ok("<c>".into()),
                Ok("<d>".into()),
                Ok("<e>".into()),
            ]
        );
        // The value that failed is answered by a fresh filter when it comes back.
        assert_eq!(f.run(b"die".to_vec()).await, Ok(b"<die>".to_vec()));
    }

    #[tokio::test]
    async fn a_stuck_filter_times_out_on_its_oldest_line_only() {
        // Hangs on "hang" (the first time); answers the rest.
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("hung");
        let script = format!(
            "while read x; do if [ \"$x\" = hang ] && [ ! -e {0} ]; then touch {0}; sleep 1000; fi; echo \"<$x>\"; done",
            marker.display()
        );
        // A deadline long enough for a loaded machine to start `sh` and
        // answer "a" (a line's clock includes its filter's start).
        let f = filters(&script, 1, Some(Duration::from_secs(5)));
        let got = run_all(&f, &["a", "hang", "b", "c"]).await;
        assert_eq!(got[0], Ok("<a>".into()));
        let e = got[1].as_ref().unwrap_err();
        assert!(
            e.starts_with("sh did not answer within 5s (--timeout) and was restarted"),
            "{e}"
        );
        assert_eq!(got[2..], [Ok("<b>".into()), Ok("<c>".into())]);
    }

    #[tokio::test]
    async fn an_unasked_line_kills_the_filter_and_the_next_line_gets_a_fresh_one() {
        // Answers each line twice, in one write: the reader (on this
        // single-threaded runtime) sees the second answer before "b" is
        // given, with nobody waiting for it, and kills the filter.
        let f = filters(
            "while read x; do printf '%s\\n%s\\n' \"$x\" \"$x\"; done",
            1,
            None,
        );
        assert_eq!(f.run(b"a".to_vec()).await, Ok(b"a".to_vec()));
        assert_eq!(f.run(b"b".to_vec()).await, Ok(b"b".to_vec()));
    }

    #[tokio::test]
    async fn a_filter_that_closes_its_input_fails_its_oldest_line_with_the_write_error() {
        // The first filter marks that it ran, closes its stdin, says so on a
        // FIFO, and lives on without answering; the next one is `cat`. The
        // marker is made before stdin is closed: a write can fail (and the
        // filter be killed, with its group) only after the marker exists,
        // so the second filter is always `cat`.
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("started");
        let fifo = dir.path().join("closed");
        mkfifo(&fifo);
        // Read-write, so neither opening it nor a filter killed before it
        // writes to it ever blocks the test or reads as an end.
        let closed = tokio::net::unix::pipe::OpenOptions::new()
            .read_write(true)
            .open_receiver(&fifo)
            .unwrap();
        let script = format!(
            "if [ -e {0} ]; then exec cat; fi; touch {0}; exec 0<&-; echo closed > {1}; sleep 1000",
            marker.display(),
            fifo.display()
        );
        let f = filters(&script, 1, None);
        let mut first = tokio::spawn({
            let f = f.clone();
            async move { f.run(b"a".to_vec()).await }
        });
        // Either the filter has closed its input (and said so), or writing
        // "a" already found it closed and the filter was killed: "a" failed.
        let mut closed = tokio::io::BufReader::new(closed);
        let mut line = String::new();
        let failed = tokio::time::timeout(Duration::from_secs(20), async {
            tokio::select! {
                first = &mut first => Some(first.unwrap()),
                read = closed.read_line(&mut line) => {
                    read.unwrap();
                    None
                }
            }
        })
        .await
        .expect("the filter neither closed its input nor failed within 20s");
        // Writing "b" (if not "a") finds the pipe closed; "b" is answered by `cat`.
        assert_eq!(f.run(b"b".to_vec()).await, Ok(b"b".to_vec()));
        let e = match failed {
            Some(first) => first,
            None => first.await.unwrap(),
        }
        .unwrap_err();
        assert!(e.starts_with("writing to sh: Broken pipe"), "{e}");
    }

    fn mkfifo(path: &std::path::Path) {
        let status = std::process::Command::new("mkfifo").arg(path).status().unwrap();
        assert!(status.success(), "mkfifo {}: {status}", path.display());
    }

    #[tokio::test]
    async fn dropping_the_pool_kills_the_filters() {
        let f = filters("while read x; do echo $$; done", 1, None);
        let pid: i32 = String::from_utf8(f.run(b"a".to_vec()).await.unwrap())
            .unwrap()
            .parse()
            .unwrap();
        drop(f);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok() && !zombie(pid) {
            assert!(std::time::Instant::now() < deadline, "filter {pid} still runs");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn zombie(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
    }
}
