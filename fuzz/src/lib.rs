//! # pando-fuzz
//!
//! Coverage-guided fuzzing ([cargo-fuzz](https://github.com/rust-fuzz/cargo-fuzz)
//! and [`arbitrary`]) of the parts of Pando that take input from others or
//! order events: the frame codec ([`frame`]), the two session cores of the
//! wire protocol ([`master`], [`worker`]), the StreamLender's core
//! ([`lender`]) and Genet's node core ([`genet`]). Each module is one
//! target: a `check(data)` that turns the fuzzer's bytes into inputs and
//! panics, naming the property, when one is violated.
//!
//! The targets in `fuzz_targets/` only call these functions, and
//! `tests/corpus.rs` calls them on every file of the committed corpora in
//! `corpus/`, so that `cargo test` replays what the fuzzer found without
//! cargo-fuzz or libFuzzer (the `libfuzzer` feature, off by default, builds
//! the targets). See `fuzz/README.md` for the commands.
//!
//! ```
//! for (name, check) in pando_fuzz::TARGETS {
//!     check(b"any bytes at all");
//!     println!("{name}: ok");
//! }
//! ```

#![forbid(unsafe_code)]

pub mod frame;
pub mod genet;
pub mod lender;
pub mod master;
mod serde_arb;
pub mod worker;

pub use serde_arb::arbitrary_serde;

/// A target's `check` function: it runs the target on one input, and
/// panics, naming the property, if one is violated.
///
/// ```
/// let check: pando_fuzz::Check = pando_fuzz::frame::check;
/// check(&[8]); // a Heartbeat
/// ```
pub type Check = fn(&[u8]);

/// Every target: its name (the name of its `fuzz_targets/` file and of its
/// corpus directory) and its `check` function.
///
/// See the [crate documentation](crate) for an example.
pub const TARGETS: [(&str, Check); 5] = [
    ("frame", frame::check),
    ("master_session", master::check),
    ("worker_session", worker::check),
    ("lender_core", lender::check),
    ("genet_node", genet::check),
];
