//! Test support: a seeded PRNG, the test error type, and `Workers`, a
//! through that processes up to `c` tagged values at once with random
//! delays (tokio time, paused in tests), random failures and duplicates.

#![allow(dead_code, unreachable_pub)]

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use pando_pull_stream::closing::Closing;
use pando_pull_stream::{Answer, Connect, Source, Termination};
use pando_stubborn::{StubbornError, Tag, Tagged};
use tokio::time::Sleep;

/// The seeded PRNG and the seed-printing guard are the checker's.
pub use pando_checker::rng::{SeedGuard, SplitMix64};

/// The error type of the test pipelines.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum TestError {
    #[error("upstream: {0}")]
    Upstream(String),
    #[error("consumer: {0}")]
    Consumer(String),
    #[error("through: {0}")]
    Through(String),
    #[error(transparent)]
    Stubborn(#[from] StubbornError),
}

/// The function the workers compute.
pub fn f(x: u64) -> u64 {
    3 * x + 1
}

/// What the workers did.
#[derive(Debug, Default)]
pub struct WorkersLog {
    /// The tags received, in order.
    pub received: Vec<Tag>,
    /// Results returned as failures (`None`).
    pub failures: u64,
    /// Duplicate results returned.
    pub duplicates: u64,
    /// The most jobs in process at once.
    pub peak: usize,
}

/// `c` workers: each value takes 1..=`max_delay_ms` ms; a result fails
/// (`None`) with probability `fail_percent`; a result is sent twice (a
/// duplicate, later) with probability `dup_percent`. Results come out in
/// completion order.
#[derive(Clone, Debug)]
pub struct WorkersModule {
    pub c: usize,
    pub fail_percent: u64,
    pub dup_percent: u64,
    pub max_delay_ms: u64,
    pub seed: u64,
    pub log: Arc<Mutex<WorkersLog>>,
}

impl WorkersModule {
    pub fn new(c: usize, fail_percent: u64, seed: u64) -> Self {
        WorkersModule {
            c,
            fail_percent,
            dup_percent: 0,
            max_delay_ms: 20,
            seed,
            log: Arc::default(),
        }
    }
}

struct Job {
    sleep: Pin<Box<Sleep>>,
    result: Tagged<Option<u64>>,
}

pub struct Workers<S: Source> {
    input: Pin<Box<S>>,
    jobs: Vec<Job>,
    m: WorkersModule,
    rng: SplitMix64,
    end: Option<Result<(), S::Error>>,
    closing: Closing<S::Error>,
}

impl<S: Source> Unpin for Workers<S> {}

impl<S: Source<Item = Tagged<u64>>> Connect<S> for WorkersModule {
    type Output = Workers<S>;
    fn connect(self, input: S) -> Workers<S> {
        Workers {
            input: Box::pin(input),
            jobs: Vec::new(),
            rng: SplitMix64::new(self.seed),
            m: self,
            end: None,
            closing: Closing::Open,
        }
    }
}

impl<S: Source<Item = Tagged<u64>>> Source for Workers<S> {
    type Item = Tagged<Option<u64>>;
    type Error = S::Error;

    fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<Self::Item, S::Error>> {
        let this = &mut *self;
        while this.jobs.len() < this.m.c && this.closing.is_open() {
            match this.input.as_mut().poll_ask(cx) {
                Poll::Pending => break,
                Poll::Ready(Answer::Value(t)) => {
                    let fail = this.rng.percent(this.m.fail_percent);
                    let delay = this.rng.range(1, this.m.max_delay_ms);
                    let mut log = this.m.log.lock().unwrap();
                    log.received.push(t.tag);
                    if fail {
                        log.failures += 1;
                    }
                    this.jobs.push(Job {
                        sleep: Box::pin(tokio::time::sleep(Duration::from_millis(delay))),
                        result: t.map(|x| (!fail).then(|| f(x))),
                    });
                    log.peak = log.peak.max(this.jobs.len());
                }
                Poll::Ready(end) => {
                    this.closing.ended();
                    this.end = Some(match end {
                        Answer::Error(e) => Err(e),
                        _ => Ok(()),
                    });
                }
            }
        }
        for i in 0..this.jobs.len() {
            if this.jobs[i].sleep.as_mut().poll(cx).is_ready() {
                let job = this.jobs.remove(i);
                if this.rng.percent(this.m.dup_percent) {
                    this.m.log.lock().unwrap().duplicates += 1;
                    let delay = this.rng.range(1, this.m.max_delay_ms);
                    this.jobs.push(Job {
                        sleep: Box::pin(tokio::time::sleep(Duration::from_millis(delay))),
                        result: job.result,
                    });
                }
                return Poll::Ready(Answer::Value(job.result));
            }
        }
        if this.jobs.is_empty() {
            if let Some(end) = this.end.take() {
                return Poll::Ready(Answer::from_end(end));
            }
        }
        Poll::Pending
    }

    fn terminate(mut self: Pin<&mut Self>, request: Termination<S::Error>) {
        let this = &mut *self;
        this.jobs.clear();
        this.closing.terminate(this.input.as_mut(), request);
    }

    fn poll_terminated(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        let this = &mut *self;
        this.closing.poll_terminated(this.input.as_mut(), cx)
    }
}
