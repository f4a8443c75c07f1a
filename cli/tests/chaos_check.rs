//! The chaos example's own logic, without processes: its plans are a pure
//! function of the seed, its retry cap covers the faults, and its check of
//! the output counts losses, duplicates and disorder as documented.

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/chaos/check.rs"]
mod check;
#[allow(dead_code, unreachable_pub)]
#[path = "../examples/chaos/plan.rs"]
mod plan;

use check::{Tally, tally};
use plan::{Kind, Plan, Role, index_of, mapped};

#[test]
fn a_clean_output() {
    assert!(tally(3, &[Some(0), Some(1), Some(2)]).clean());
    assert!(tally(0, &[]).clean());
}

#[test]
fn losses_duplicates_disorder_and_wrong_lines_are_counted() {
    let t = |out: &[Option<usize>]| tally(4, out);
    assert_eq!(
        t(&[Some(0), Some(2), Some(3)]),
        Tally {
            lost: 1,
            ..Tally::default()
        }
    );
    assert_eq!(
        t(&[Some(0), Some(1), Some(1), Some(2), Some(3), Some(3)]),
        Tally {
            duplicated: 2,
            ..Tally::default()
        }
    );
    assert_eq!(
        t(&[Some(1), Some(0), Some(3), Some(2)]),
        Tally {
            out_of_order: 2,
            ..Tally::default()
        }
    );
    // A duplicate is not also out of order; a wrong line loses its value.
    assert_eq!(
        t(&[Some(0), Some(1), None, Some(3), Some(0)]),
        Tally {
            lost: 1,
            duplicated: 1,
            wrong: 1,
            ..Tally::default()
        }
    );
    // Nothing written: everything lost.
    assert_eq!(
        t(&[]),
        Tally {
            lost: 4,
            ..Tally::default()
        }
    );
}

#[test]
fn results_map_back_to_their_input() {
    let offset = (1 << 31) - 5;
    for i in 0..10 {
        assert_eq!(index_of(mapped(offset + i as u64), offset, 10), Some(i));
    }
    assert_eq!(index_of(mapped(offset + 10), offset, 10), None);
    assert_eq!(index_of(mapped(offset - 1), offset, 10), None);
    assert_eq!(index_of(mapped(offset) + 1, offset, 10), None);
}

#[test]
fn a_plan_is_a_function_of_its_seed() {
    for seed in 0..200 {
        let (a, b) = (Plan::new(seed, 100_000), Plan::new(seed, 100_000));
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "seed {seed}");
        assert!((4..=8).contains(&a.workers), "seed {seed}");
        assert_eq!(a.roles.len(), a.workers);
        assert_eq!(
            a.roles.iter().filter(|r| **r == Role::Slow).count(),
            1,
            "seed {seed}"
        );
        assert_eq!(
            a.roles.iter().filter(|r| **r == Role::TimesOut).count(),
            1,
            "seed {seed}"
        );
        assert!(!a.late.is_empty() && a.late.len() < a.workers, "seed {seed}");
        assert!(a.events.windows(2).all(|w| w[0].at <= w[1].at), "seed {seed}");
        assert!(
            a.events
                .iter()
                .all(|e| e.at >= 1 && e.at < a.values && e.slot < a.workers)
        );
        assert!((1..=3).contains(&a.hangs), "seed {seed}");
        // One failure per fault, and the margin: faults alone never poison.
        assert_eq!(
            a.max_retries() as usize,
            a.events.len() + a.hangs + plan::RETRY_MARGIN as usize,
            "seed {seed}"
        );
    }
    // Seeds differ in their plans (the kinds of fault, at least somewhere).
    let kinds = |seed| {
        Plan::new(seed, 1000)
            .events
            .iter()
            .map(|e| std::mem::discriminant(&e.kind))
            .collect::<Vec<_>>()
    };
    assert!((1..20).any(|s| kinds(s) != kinds(0)));
    assert!((0..50).any(|s| {
        Plan::new(s, 1000)
            .events
            .iter()
            .any(|e| matches!(e.kind, Kind::Stop(_)))
    }));
}
