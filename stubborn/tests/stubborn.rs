//! Stubborn processing, with the protocol checker on the upstream (`Input`),
//! on both sides of the through (`ThroughInput`, `ThroughOutput`) and on the
//! output (`Output`). Time is tokio's paused clock: the random delays of the
//! workers and testers are deterministic.

mod support;

use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use pando_checker::Checker;
use pando_pull_stream::{
    Answer, Source, SourceExt, async_map, collect, compose, duplex_pair, filter, for_each, from_try_stream,
    map, pull, serialize, take, values,
};
use pando_stubborn::{DEFAULT_MAX_ATTEMPTS, StubbornError, Tag, Tagged, Verdict, stubborn};
use support::{SeedGuard, SplitMix64, TestError, WorkersModule, f};

type E = TestError;

fn trace(checker: &Checker) -> Vec<String> {
    checker.trace().iter().map(ToString::to_string).collect()
}

/// Values `0..n`, then `error` if any (else `done`).
fn upto(n: u64, error: Option<&str>) -> impl Source<Item = u64, Error = E> + Send + use<> {
    let items = (0..n)
        .map(Ok)
        .chain(error.map(|e| Err(TestError::Upstream(e.to_string()))));
    from_try_stream(futures::stream::iter(items))
}

/// A running test.
type Test = std::pin::Pin<Box<dyn Future<Output = Verdict<u64, u64>> + Send>>;

/// A tester that waits 0..=`max_delay_ms` ms (seeded), then accepts a
/// successful result and resubmits the input of a failed one. It records
/// how many tests run at once.
fn tester(
    seed: u64,
    max_delay_ms: u64,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
) -> impl FnMut(u64, Option<u64>) -> Test {
    let mut rng = SplitMix64::new(seed ^ 0x5EED);
    move |input, result| {
        let delay = rng.range(0, max_delay_ms);
        let running = running.clone();
        let peak = peak.clone();
        Box::pin(async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(delay)).await;
            running.fetch_sub(1, Ordering::SeqCst);
            match result {
                Some(r) => Verdict::Accept(r),
                None => Verdict::Resubmit(input),
            }
        })
    }
}

fn simple_tester() -> impl FnMut(u64, Option<u64>) -> Test {
    tester(0, 3, Arc::default(), Arc::default())
}

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn nzu(n: usize) -> NonZeroUsize {
    NonZeroUsize::new(n).unwrap()
}

#[tokio::test(start_paused = true)]
async fn fifty_percent_failures_over_1000_values_come_out_in_order() {
    for (seed, c) in [1usize, 2, 4, 10, 20].into_iter().enumerate() {
        let seed = seed as u64;
        let _guard = SeedGuard("fifty_percent_failures_over_1000_values_come_out_in_order", seed);
        let checker = Checker::panicking();
        let workers = WorkersModule::new(c, 50, seed);
        let log = workers.log.clone();
        let module = stubborn(
            compose!(
                checker.probe("ThroughInput"),
                workers,
                checker.probe("ThroughOutput")
            ),
            tester(seed, 5, Arc::default(), Arc::default()),
        )
        .max_attempts(nz(64))
        .tester_concurrency(nzu(c));
        let stats = module.handle();
        let got = pull!(
            upto(1000, None),
            checker.probe("Input"),
            module,
            checker.probe("Output"),
            collect::<Vec<_>>(),
        )
        .await;
        assert_eq!(got, Ok((0..1000).map(f).collect::<Vec<_>>()), "concurrency {c}");
        let log = log.lock().unwrap();
        let stats = stats.stats();
        assert_eq!(log.peak, c, "the workers ran {c} values at once");
        assert!(
            log.failures > 700,
            "about half of ~2000 submissions fail: {}",
            log.failures
        );
        assert_eq!(stats.resubmissions, log.failures);
        assert_eq!(stats.submissions, 1000 + log.failures);
        assert_eq!(stats.submissions, log.received.len() as u64);
        assert_eq!(
            (stats.read, stats.accepted, stats.output, stats.stale),
            (1000, 1000, 1000, 0)
        );
        checker.assert_ok();
    }
}

#[tokio::test(start_paused = true)]
async fn unordered_mode_outputs_results_as_they_are_accepted() {
    let checker = Checker::panicking();
    let module = stubborn(
        compose!(
            checker.probe("ThroughInput"),
            WorkersModule::new(8, 50, 3),
            checker.probe("ThroughOutput")
        ),
        simple_tester(),
    )
    .unordered()
    .max_attempts(nz(64))
    .tester_concurrency(nzu(4));
    let got = pull!(
        upto(300, None),
        checker.probe("Input"),
        module,
        checker.probe("Output"),
        collect::<Vec<_>>(),
    )
    .await
    .unwrap();
    let expected: Vec<u64> = (0..300).map(f).collect();
    assert_ne!(
        got, expected,
        "with 8 workers and failures, acceptance order differs from input order"
    );
    let mut sorted = got.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected);
    checker.assert_ok();
}

#[tokio::test(start_paused = true)]
async fn the_retry_cap_ends_the_stream_with_a_typed_error_after_the_values_before() {
    for (cap, expected_attempts) in [(Some(3), 3), (None, DEFAULT_MAX_ATTEMPTS)] {
        let checker = Checker::panicking();
        // Value 7 never passes; the others pass at once.
        let through = map(|t: Tagged<u64>| t.map(|x| (x != 7).then(|| f(x))));
        let mut module = stubborn(
            compose!(
                checker.probe("ThroughInput"),
                through,
                checker.probe("ThroughOutput")
            ),
            simple_tester(),
        );
        if let Some(cap) = cap {
            module = module.max_attempts(nz(cap));
        }
        let stats = module.handle();
        let mut seen = Vec::new();
        let end = pull!(
            upto(u64::MAX, None),
            checker.probe("Input"),
            module,
            checker.probe("Output"),
            for_each(|x| seen.push(x)),
        )
        .await;
        assert_eq!(
            end,
            Err(TestError::Stubborn(StubbornError::RetriesExhausted {
                position: 7,
                attempts: expected_attempts
            }))
        );
        assert_eq!(seen, (0..7).map(f).collect::<Vec<_>>());
        assert_eq!(stats.stats().resubmissions, u64::from(expected_attempts) - 1);
        // The (infinite) upstream was aborted, and nothing read beyond need.
        assert!(trace(&checker).iter().any(|e| e.starts_with("Input:abort")));
        assert_eq!(stats.stats().read, 8, "values 0..=7, and no more once 7 failed");
        checker.assert_ok();
    }
}

#[tokio::test(start_paused = true)]
async fn in_unordered_mode_an_exhausted_value_ends_the_stream_at_once() {
    let checker = Checker::panicking();
    let through = map(|t: Tagged<u64>| t.map(|x| (x != 0).then(|| f(x))));
    let module = stubborn(
        compose!(
            checker.probe("ThroughInput"),
            through,
            checker.probe("ThroughOutput")
        ),
        simple_tester(),
    )
    .unordered()
    .max_attempts(nz(2));
    let got = pull!(
        upto(u64::MAX, None),
        checker.probe("Input"),
        module,
        checker.probe("Output"),
        collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(
        got,
        Err(TestError::Stubborn(StubbornError::RetriesExhausted {
            position: 0,
            attempts: 2
        }))
    );
    checker.assert_ok();
}

#[tokio::test(start_paused = true)]
async fn unlimited_attempts_is_an_explicit_opt_in() {
    // Value 2 passes only at its 40th attempt.
    let through = || map(|t: Tagged<u64>| t.map(|x| (x != 2 || t.tag.attempt >= 40).then(|| f(x))));
    let capped = stubborn(through(), simple_tester());
    let got = pull!(upto(5, None), capped, collect::<Vec<_>>()).await;
    assert_eq!(
        got,
        Err(TestError::Stubborn(StubbornError::RetriesExhausted {
            position: 2,
            attempts: DEFAULT_MAX_ATTEMPTS
        }))
    );

    let checker = Checker::panicking();
    let unlimited = stubborn(through(), simple_tester()).unlimited_attempts();
    let stats = unlimited.handle();
    let got = pull!(
        upto(5, None),
        checker.probe("Input"),
        unlimited,
        checker.probe("Output"),
        collect::<Vec<_>>()
    )
    .await;
    assert_eq!(got, Ok((0..5).map(f).collect::<Vec<_>>()));
    assert_eq!(stats.stats().resubmissions, 39);
    checker.assert_ok();
}

#[tokio::test(start_paused = true)]
async fn an_upstream_error_comes_out_after_the_results_before_it() {
    for c in [1, 4] {
        let checker = Checker::panicking();
        let module = stubborn(
            compose!(
                checker.probe("ThroughInput"),
                WorkersModule::new(c, 50, 11),
                checker.probe("ThroughOutput")
            ),
            simple_tester(),
        )
        .max_attempts(nz(64));
        let mut seen = Vec::new();
        let end = pull!(
            upto(40, Some("disk unreadable")),
            checker.probe("Input"),
            module,
            checker.probe("Output"),
            for_each(|x| seen.push(x)),
        )
        .await;
        assert_eq!(end, Err(TestError::Upstream("disk unreadable".into())));
        assert_eq!(seen, (0..40).map(f).collect::<Vec<_>>());
        checker.assert_ok();
    }
}

#[tokio::test(start_paused = true)]
async fn downstream_terminates_while_resubmissions_are_pending() {
    for fail in [false, true] {
        let checker = Checker::panicking();
        // Value 0 never passes: the first ask cannot be answered.
        let through = map(|t: Tagged<u64>| t.map(|x| (x != 0).then(|| f(x))));
        let module = stubborn(
            compose!(
                checker.probe("ThroughInput"),
                through,
                checker.probe("ThroughOutput")
            ),
            tester(5, 10, Arc::default(), Arc::default()),
        )
        .unlimited_attempts();
        let stats = module.handle();
        let mut output = pull!(
            upto(u64::MAX, None),
            checker.probe("Input"),
            module,
            checker.probe("Output")
        );
        let asked = tokio::time::timeout(Duration::from_secs(1), output.ask()).await;
        assert!(asked.is_err(), "the ask is still pending");
        assert!(stats.stats().resubmissions > 10);
        let end = if fail {
            output.fail(TestError::Consumer("enough".into())).await
        } else {
            output.abort().await
        };
        if fail {
            assert_eq!(end, Err(TestError::Consumer("enough".into())));
        } else {
            assert_eq!(end, Ok(()));
        }
        let trace = trace(&checker);
        let upstream_end = if fail { "Input:fail" } else { "Input:abort" };
        assert!(trace.iter().any(|e| e.starts_with(upstream_end)), "{trace:#?}");
        checker.assert_ok();
    }
}

#[tokio::test(start_paused = true)]
async fn stale_and_duplicate_results_are_dropped_and_counted() {
    for seed in 0..5 {
        let _guard = SeedGuard("stale_and_duplicate_results_are_dropped_and_counted", seed);
        let checker = Checker::panicking();
        let mut workers = WorkersModule::new(6, 30, seed);
        workers.dup_percent = 25;
        let log = workers.log.clone();
        let module = stubborn(
            compose!(
                checker.probe("ThroughInput"),
                workers,
                checker.probe("ThroughOutput")
            ),
            simple_tester(),
        )
        .max_attempts(nz(64))
        .tester_concurrency(nzu(3));
        let stats = module.handle();
        let got = pull!(
            upto(200, None),
            checker.probe("Input"),
            module,
            checker.probe("Output"),
            collect::<Vec<_>>(),
        )
        .await;
        assert_eq!(got, Ok((0..200).map(f).collect::<Vec<_>>()));
        let duplicates = log.lock().unwrap().duplicates;
        assert!(duplicates > 20, "duplicates {duplicates}");
        // Every duplicate arrives after its original was taken: all are stale.
        assert_eq!(stats.stats().stale, duplicates);
        assert_eq!(stats.stats().output, 200);
        checker.assert_ok();
    }
}

#[tokio::test(start_paused = true)]
async fn resubmissions_go_first_and_upstream_is_read_lazily() {
    let checker = Checker::panicking();
    // The through passes the tag along so that the tester can reject chosen attempts.
    let through = map(|t: Tagged<u64>| Tagged {
        tag: t.tag,
        value: (t.tag, t.value),
    });
    let rejected = [
        Tag {
            position: 1,
            attempt: 1,
        },
        Tag {
            position: 1,
            attempt: 2,
        },
        Tag {
            position: 3,
            attempt: 1,
        },
    ];
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tester = {
        let seen = seen.clone();
        move |input: u64, (tag, value): (Tag, u64)| {
            seen.lock().unwrap().push(tag);
            let verdict = if rejected.contains(&tag) {
                Verdict::Resubmit(input)
            } else {
                Verdict::Accept(f(value))
            };
            async move { verdict }
        }
    };
    let module = stubborn(
        compose!(
            checker.probe("ThroughInput"),
            through,
            checker.probe("ThroughOutput")
        ),
        tester,
    );
    let stats = module.handle();
    let mut output = pull!(
        upto(u64::MAX, None),
        checker.probe("Input"),
        module,
        checker.probe("Output")
    );
    for k in 0..5u64 {
        assert_eq!(output.ask().await, Answer::Value(f(k)));
        // One upstream value per output: upstream is read only on demand.
        assert_eq!(stats.stats().read, k + 1);
    }
    assert_eq!(output.abort().await, Ok(()));
    let tag = |position, attempt| Tag { position, attempt };
    assert_eq!(
        *seen.lock().unwrap(),
        [
            tag(0, 1),
            tag(1, 1),
            tag(1, 2),
            tag(1, 3),
            tag(2, 1),
            tag(3, 1),
            tag(3, 2),
            tag(4, 1)
        ]
    );
    checker.assert_ok();
}

#[tokio::test(start_paused = true)]
async fn concurrent_asks_with_the_through_in_another_task() {
    let checker = Checker::panicking();
    // The through is a connection to workers that run in another task: the
    // through's input is asked from that task while the output is asked here.
    let (near, far) = duplex_pair::<Tagged<u64>, Tagged<Option<u64>>, E>(8);
    let workers = WorkersModule::new(4, 50, 21);
    let remote = tokio::spawn(pull!(far.source, checker.probe("Far"), workers, far.sink));
    let module = stubborn(near, simple_tester()).max_attempts(nz(64));
    // Three consumers share the output through a Serializer.
    let output = pull!(
        upto(300, None),
        checker.probe("Input"),
        module,
        checker.probe("Output"),
        serialize()
    );
    let consumer = |output: pando_pull_stream::Serializer<_>| async move {
        let mut got = Vec::new();
        loop {
            match output.ask().await {
                Answer::Value(v) => got.push(v),
                Answer::Done => return Ok(got),
                Answer::Error(e) => return Err(e),
            }
        }
    };
    let (a, b, c) = tokio::join!(
        consumer(output.clone()),
        consumer(output.clone()),
        consumer(output)
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    for got in [&a, &b, &c] {
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "each consumer gets increasing values"
        );
    }
    let mut all: Vec<u64> = a.iter().chain(&b).chain(&c).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..300).map(f).collect::<Vec<_>>());
    assert!(!a.is_empty() && !b.is_empty() && !c.is_empty());
    assert_eq!(remote.await.unwrap(), Ok(()));
    checker.assert_ok();
}

#[tokio::test(start_paused = true)]
async fn the_tester_concurrency_is_configurable() {
    for k in [1, 3, 8] {
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let checker = Checker::panicking();
        let module = stubborn(
            compose!(
                checker.probe("ThroughInput"),
                WorkersModule::new(8, 20, 5),
                checker.probe("ThroughOutput")
            ),
            tester(9, 30, running.clone(), peak.clone()),
        )
        .max_attempts(nz(64))
        .tester_concurrency(nzu(k));
        let got = pull!(
            upto(100, None),
            checker.probe("Input"),
            module,
            checker.probe("Output"),
            collect::<Vec<_>>()
        )
        .await;
        assert_eq!(got, Ok((0..100).map(f).collect::<Vec<_>>()));
        assert_eq!(
            peak.load(Ordering::SeqCst),
            k,
            "at most {k} tests at once, and {k} used"
        );
        checker.assert_ok();
    }
}

#[tokio::test(start_paused = true)]
async fn an_error_of_the_through_is_passed_on() {
    let checker = Checker::panicking();
    let through = async_map(|t: Tagged<u64>| async move {
        if t.value == 5 {
            Err(TestError::Through("worker crashed".into()))
        } else {
            Ok(t.map(|x| Some(f(x))))
        }
    });
    let got = pull!(
        upto(u64::MAX, None),
        checker.probe("Input"),
        stubborn(
            compose!(
                checker.probe("ThroughInput"),
                through,
                checker.probe("ThroughOutput")
            ),
            simple_tester()
        ),
        checker.probe("Output"),
        collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(got, Err(TestError::Through("worker crashed".into())));
    checker.assert_ok();
}

#[tokio::test(start_paused = true)]
async fn a_through_that_ends_early() {
    // A through that ends the stream itself (`take`) after every value it
    // took was accepted: a normal end.
    let checker = Checker::panicking();
    let through = compose!(take(3), map(|t: Tagged<u64>| t.map(|x| Some(f(x)))));
    let got = pull!(
        upto(u64::MAX, None),
        checker.probe("Input"),
        stubborn(
            compose!(
                checker.probe("ThroughInput"),
                through,
                checker.probe("ThroughOutput")
            ),
            simple_tester()
        ),
        checker.probe("Output"),
        collect::<Vec<_>>(),
    )
    .await;
    assert_eq!(got, Ok(vec![f(0), f(1), f(2)]));
    checker.assert_ok();

    // A through that loses a value and then ends: the loss is reported.
    let checker = Checker::panicking();
    let lossy = compose!(
        filter(|t: &Tagged<u64>| t.tag.position != 1),
        take(2),
        map(|t: Tagged<u64>| t.map(|x| Some(f(x)))),
    );
    let mut seen = Vec::new();
    let end = pull!(
        values([10u64, 11, 12, 13]),
        checker.probe("Input"),
        stubborn(
            compose!(
                checker.probe("ThroughInput"),
                lossy,
                checker.probe("ThroughOutput")
            ),
            simple_tester()
        ),
        checker.probe("Output"),
        for_each(|x| seen.push(x)),
    )
    .await;
    assert_eq!(
        end,
        Err(TestError::Stubborn(StubbornError::ThroughEnded { unresolved: 1 }))
    );
    assert_eq!(seen, [f(10)]);
    checker.assert_ok();
}
