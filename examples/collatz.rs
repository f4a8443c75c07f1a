//! Collatz (seed 000, §5.1.1) as a pull-stream pipeline on this machine.
//!
//! `cargo run --release --example collatz [-- COUNT [START [LEN]]]`
//!
//! Reads COUNT consecutive ranges of LEN integers from START (by default 16
//! ranges of 175 integers from 3 572 582 862 843 521 162 235, the seeds'
//! setting), finds the integer with the most steps in each range, and prints
//! one line per range, in order: `START LEN ARGMAX STEPS`.

use std::process::ExitCode;
use std::time::Instant;

use num_bigint::BigUint;
use pando_examples::collatz::{Interval, SEED_RANGE, SEED_START};
use pando_pull_stream::{async_map, for_each, pull, values};

fn arg<T: std::str::FromStr>(args: &[String], i: usize, default: T, name: &str) -> Result<T, String> {
    match args.get(i) {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| format!("collatz: {name} must be a positive integer, got {s:?}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed = (|| {
        Ok::<_, String>((
            arg(&args, 0, 16u64, "COUNT")?,
            arg(
                &args,
                1,
                SEED_START.parse::<BigUint>().expect("constant"),
                "START",
            )?,
            arg(&args, 2, SEED_RANGE, "LEN")?,
        ))
    })();
    let (count, start, len) = match parsed {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let began = Instant::now();
    let ranges = values::<_, std::convert::Infallible>(Interval::consecutive(start, len, count));
    let pipeline = pull!(
        ranges,
        async_map(|interval: Interval| async move { Ok(interval.largest()) }),
        for_each(|largest| println!("{largest}")),
    );
    match futures::executor::block_on(pipeline) {
        Ok(()) => {
            eprintln!(
                "collatz: {count} ranges of {len} integers in {:.2?}",
                began.elapsed()
            );
            ExitCode::SUCCESS
        }
        Err(never) => match never {},
    }
}
