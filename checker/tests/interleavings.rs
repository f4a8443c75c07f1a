//! The seeded interleaving harness on the real StreamLender: a fixed block
//! of 19 400 executions over varied parameters (6 000 of them with every
//! extended fault in every execution, retry caps under both policies and
//! small read-ahead bounds, 1 800 with 2 to 4 replicas and lying
//! sub-streams, and 4 000 of the whole model as the runner varies it), replay from the seed, and failure reports on deliberately
//! broken modules (the harness is generic over [`SubStreamModule`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use pando_checker::{
    Campaign, Config, Faults, HarnessInput, OutputError, Poison, Property, Scenario, Settings, SinkOutcome,
    SubStreamModule, TestError, TestResults, run,
};
use pando_lend_stream::{LendError, StreamLender};
use pando_pull_stream::{Answer, Source, Termination};

type Lender = StreamLender<u64, u64, TestError>;

fn block(campaign: Campaign) -> u64 {
    let summary = campaign.run::<Lender>(&|failed| eprintln!("{failed}"));
    assert!(
        summary.is_ok(),
        "{summary}: first failure:\n{}",
        summary.failed[0]
    );
    summary.executions
}

/// The original tester's model: no read-ahead bound, no retry cap, no
/// extended fault, one replica.
fn original(mut c: Campaign) -> Campaign {
    c.replicas = Some(1);
    c.read_ahead = Some(None);
    c.max_retries = Some(None);
    c.faults = Some(Faults::NONE);
    c
}

#[test]
fn a_fixed_block_of_19400_executions_over_varied_parameters() {
    let jobs = Campaign::new(0, 0).on_every_core().jobs;
    let mut total = 0;
    // Everything varied from the seeds, in the original model.
    let mut c = original(Campaign::new(2_000, 0x5EED_0000));
    c.jobs = jobs;
    total += block(c);
    // Every scenario, ordered and unordered.
    for (k, scenario) in Scenario::ALL.into_iter().enumerate() {
        for ordered in [true, false] {
            let mut c = original(Campaign::new(
                500,
                0x5EED_1000 + 10_000 * k as u64 + u64::from(ordered),
            ));
            c.scenario = Some(scenario);
            c.ordered = Some(ordered);
            c.jobs = jobs;
            total += block(c);
        }
    }
    // More values and more sub-streams than the default ranges.
    let mut c = original(Campaign::new(800, 0x5EED_2000));
    c.count = Some(16);
    c.parallelism = Some(4);
    c.max_sub_streams = Some(10);
    c.jobs = jobs;
    total += block(c);
    // One sub-stream at a time, many of them, and no values at all.
    let mut c = original(Campaign::new(400, 0x5EED_3000));
    c.parallelism = Some(1);
    c.max_sub_streams = Some(6);
    c.jobs = jobs;
    total += block(c);
    let mut c = original(Campaign::new(400, 0x5EED_4000));
    c.count = Some(0);
    c.jobs = jobs;
    total += block(c);
    // The extended model: every fault in every execution (rejections,
    // reclaims, close, cut-off, stalled asks, the input's panic, early ends
    // of the output, settled()), with retry caps under both policies and
    // small read-ahead bounds, ordered and unordered.
    let caps = [
        (Some(0), Poison::Fail),
        (Some(1), Poison::Fail),
        (Some(0), Poison::Skip),
        (Some(2), Poison::Skip),
        (None, Poison::Fail),
    ];
    for (k, bound) in [None, Some(1), Some(2)].into_iter().enumerate() {
        for ordered in [true, false] {
            for (j, (retries, poison)) in caps.into_iter().enumerate() {
                let mut c = Campaign::new(
                    200,
                    0x5EED_5000 + 10_000 * k as u64 + 100 * j as u64 + u64::from(ordered),
                );
                c.read_ahead = Some(bound);
                c.max_retries = Some(retries);
                c.poison = Some(poison);
                c.faults = Some(Faults::ALL);
                c.ordered = Some(ordered);
                c.jobs = jobs;
                total += block(c);
            }
        }
    }
    // Majority voting: 2 to 4 replicas, every fault in every execution
    // (lies included: sub-streams that are not correct answer wrong
    // results), retry caps under both policies, ordered and unordered.
    for k in 2..=4 {
        for (j, (retries, poison)) in [
            (Some(1), Poison::Fail),
            (Some(2), Poison::Skip),
            (None, Poison::Fail),
        ]
        .into_iter()
        .enumerate()
        {
            let mut c = Campaign::new(200, 0x5EED_8000 + 10_000 * u64::from(k) + 100 * j as u64);
            c.replicas = Some(k);
            c.max_retries = Some(retries);
            c.poison = Some(poison);
            c.faults = Some(Faults::ALL);
            c.jobs = jobs;
            total += block(c);
        }
    }
    // The whole model, as the runner varies it: every fault in one
    // execution out of two, bounds, retry caps and policies, replicas.
    let mut c = Campaign::new(4_000, 0x5EED_6000);
    c.jobs = jobs;
    c.step_bound = Some(20_000);
    total += block(c);
    assert_eq!(total, 19_400);
}

/// A longer run of the whole model (every fault, bound, retry cap and
/// policy varied, as the runner does): it passes, but takes too long for a
/// debug build. `cargo test -p pando-checker --release -- --ignored`
#[test]
#[ignore = "long: 200 000 executions, run it in release mode"]
fn the_whole_model_with_every_fault() {
    let mut c = Campaign::new(200_000, 0x5EED_7000).on_every_core();
    c.step_bound = Some(20_000);
    block(c);
}

#[test]
fn an_execution_replays_identically_from_its_seed() {
    for seed in [1, 2, 3, 1907, 0xDEAD_BEEF] {
        // With every fault: the replay holds whether the execution passes or not.
        let config = Config::varied(seed).faults(Faults::ALL).trace(true);
        let (a, b) = (run::<Lender>(&config), run::<Lender>(&config));
        assert_eq!(a.failure, b.failure);
        assert_eq!(a.trace, b.trace);
        assert_eq!(a.steps, b.steps);
    }
}

#[test]
fn the_step_bound_is_reported_as_no_progress_with_seed_and_trace() {
    let e = run::<Lender>(&Config::new(77).count(8).step_bound(5));
    let failure = e.failure.as_ref().expect("the bound is too small to finish");
    assert_eq!(failure.property, Property::Progress);
    assert!(failure.message.contains("step bound"), "{failure}");
    let report = e.to_string();
    assert!(report.contains("seed 77"), "{report}");
    assert!(report.contains("--seed 77 --runs 1"), "{report}");
    assert!(report.contains("trace ("), "{report}");
}

/// The output of a StreamLender that loses its first result: a module that
/// breaks the fault-tolerance / exactly-once properties.
struct LosesFirst<S> {
    inner: S,
    skipped: bool,
}

impl<S: Source<Item = u64> + Unpin> Source for LosesFirst<S> {
    type Item = u64;
    type Error = S::Error;
    fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<u64, S::Error>> {
        loop {
            let answer = std::task::ready!(Pin::new(&mut self.inner).poll_ask(cx));
            if matches!(answer, Answer::Value(_)) && !self.skipped {
                self.skipped = true;
                continue;
            }
            return Poll::Ready(answer);
        }
    }
    fn terminate(mut self: Pin<&mut Self>, request: Termination<S::Error>) {
        Pin::new(&mut self.inner).terminate(request)
    }
    fn poll_terminated(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        Pin::new(&mut self.inner).poll_terminated(cx)
    }
}

/// A broken module with sub-streams, built on the lender.
struct Broken(Lender);

impl SubStreamModule for Broken {
    type Output = LosesFirst<<Lender as SubStreamModule>::Output>;
    type OutputError = LendError<TestError>;
    type Lent = <Lender as SubStreamModule>::Lent;
    type Result = <Lender as SubStreamModule>::Result;
    type SubSource = <Lender as SubStreamModule>::SubSource;
    type Ask = <Lender as SubStreamModule>::Ask;
    type SinkFuture = <Lender as SubStreamModule>::SinkFuture;
    type SinkError = <Lender as SubStreamModule>::SinkError;
    type CloseFuture = <Lender as SubStreamModule>::CloseFuture;
    type Settled = <Lender as SubStreamModule>::Settled;

    fn create(settings: &Settings) -> Self {
        Broken(<Lender as SubStreamModule>::create(settings))
    }
    fn connect(&mut self, input: HarnessInput) -> Self::Output {
        LosesFirst {
            inner: self.0.connect(input),
            skipped: false,
        }
    }
    fn lend_stream(&mut self, results: TestResults<Self::Result>) -> (Self::SubSource, Self::SinkFuture) {
        SubStreamModule::lend_stream(&mut self.0, results)
    }
    fn ask(source: &Self::SubSource) -> Self::Ask {
        Lender::ask(source)
    }
    fn reject(source: &Self::SubSource, id: u64) -> bool {
        <Lender as SubStreamModule>::reject(source, id)
    }
    const CAN_RECLAIM: bool = true;
    fn reclaim(source: &Self::SubSource, id: u64) -> bool {
        <Lender as SubStreamModule>::reclaim(source, id)
    }
    fn close(&self) -> Self::CloseFuture {
        SubStreamModule::close(&self.0)
    }
    fn cut_off(&self) {
        SubStreamModule::cut_off(&self.0)
    }
    fn settled(&self) -> Self::Settled {
        SubStreamModule::settled(&self.0)
    }
    fn lent(item: &Self::Lent) -> (u64, u64) {
        Lender::lent(item)
    }
    fn result(id: u64, result: u64) -> Self::Result {
        Lender::result(id, result)
    }
    fn output_failure() -> Self::OutputError {
        Lender::output_failure()
    }
    fn output_error(error: &Self::OutputError) -> OutputError {
        Lender::output_error(error)
    }
    fn sink_outcome(outcome: &Result<(), Self::SinkError>) -> SinkOutcome {
        Lender::sink_outcome(outcome)
    }
}

#[test]
fn a_broken_module_fails_with_its_seed_property_and_trace_and_replays() {
    let config = Config::new(5).count(4).scenario(Scenario::Done);
    let e = run::<Broken>(&config);
    let failure = e.failure.clone().expect("the first result is lost");
    // Ordered: the first output is the result of value 2, not value 1.
    assert_eq!(failure.property, Property::Ordered, "{e}");
    let again = run::<Broken>(&config);
    assert_eq!(again.failure, e.failure);
    assert_eq!(again.trace, e.trace);
    let trace = e.trace.expect("failures keep their trace");
    assert!(trace.contains("Output:value⟨1, 7⟩"), "{trace}"); // work(2) = 7
    // Unordered, the loss shows as a missing result (fault tolerance).
    let e = run::<Broken>(&config.clone().ordered(false));
    assert_eq!(e.failure.expect("lost").property, Property::FaultTolerant);
    // The campaign counts and keeps failures.
    let mut campaign = original(Campaign::new(50, 1));
    campaign.count = Some(3);
    campaign.scenario = Some(Scenario::Done);
    let summary = campaign.run::<Broken>(&|_| {});
    assert_eq!(summary.to_string(), "50 executions, 50 failures");
    assert_eq!(summary.failed.len(), 10);
}
