//! The seed applications of Pando (seed 000, chapter 5), as reusable
//! functions and types: the `collatz` example (its master, and its workers
//! here or on another machine) parses and searches its ranges with
//! [`collatz::Interval`].
//!
//! * [`collatz`]: the search for the integer with the most Collatz steps in a
//!   range (seed 000, §5.1.1), on arbitrarily large integers.

pub mod collatz;

/// The README's examples, run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
