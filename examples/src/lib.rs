//! The seed applications of Pando (seed 000, chapter 5), as reusable
//! functions, so that the examples, the tests and the `pando` workers share
//! one implementation.
//!
//! * [`collatz`]: the search for the integer with the most Collatz steps in a
//!   range (seed 000, §5.1.1), on arbitrarily large integers.

#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]

pub mod collatz;

/// The README's examples, run as doc-tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
