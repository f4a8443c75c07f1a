//! The chaos example (`cli/examples/chaos`), short: two runs of 10^4 values
//! with a fixed seed, against the `pando` binary of this build. What it
//! asserts is the example's verdict (every result exactly once, in order),
//! never a timing: the faults' schedule is seeded, and the runs wait on
//! events with deadlines.
//!
//! The long version: `nice cargo run --release -p pando-cli --example chaos -- --runs 50`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const PANDO: &str = env!("CARGO_BIN_EXE_pando");

/// The seed of the short version.
const SEED: u64 = 1300;

/// Waits for `child`'s output, at most `limit`; past it, SIGINT (the
/// example then kills its processes), and SIGKILL 20 s later.
fn output_within(child: Child, limit: Duration, what: &str) -> Output {
    let pid = Pid::from_raw(i32::try_from(child.id()).expect("a pid"));
    let (tx, rx) = mpsc::channel();
    let waiter = thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(limit) {
        Ok(output) => output,
        Err(_) => {
            let _ = kill(pid, Signal::SIGINT);
            if rx.recv_timeout(Duration::from_secs(20)).is_err() {
                let _ = kill(pid, Signal::SIGKILL);
            }
            panic!("waited {} s for {what}; it was stopped", limit.as_secs());
        }
    };
    waiter.join().expect("the waiting thread");
    output.unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// The chaos example of this build's profile, built (a no-op when up to date:
/// `cargo test` builds the examples) into the target directory of `pando`.
fn chaos_example() -> PathBuf {
    let profile_dir = Path::new(PANDO).parent().expect("pando's directory");
    let target_dir = profile_dir.parent().expect("the target directory");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(name) => name,
        None => panic!("no profile in {}", profile_dir.display()),
    };
    let build = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "-p",
            "pando-cli",
            "--example",
            "chaos",
            "--profile",
            profile,
        ])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo");
    let built = output_within(
        build,
        Duration::from_secs(1800),
        "cargo to build the chaos example",
    );
    assert!(
        built.status.success(),
        "building the chaos example failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    profile_dir.join("examples").join("chaos")
}

#[test]
fn two_chaos_runs_lose_duplicate_and_reorder_nothing() {
    let chaos = chaos_example();
    let child = Command::new(&chaos)
        .args([
            "--runs",
            "2",
            "--values",
            "10000",
            "--seed",
            &SEED.to_string(),
            "--pando",
            PANDO,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", chaos.display()));
    let out = output_within(child, Duration::from_secs(900), "two chaos runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!("{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    let last = stdout.lines().last().unwrap_or_default();
    // "2 runs, K faults injected, 0 lost, 0 duplicated, 0 out of order"
    let faults: u64 = last
        .strip_prefix("2 runs, ")
        .and_then(|rest| rest.split_once(" faults injected, 0 lost, 0 duplicated, 0 out of order"))
        .filter(|(_, after)| after.is_empty())
        .and_then(|(k, _)| k.parse().ok())
        .unwrap_or_else(|| panic!("seed {SEED}: unexpected last line {last:?}:\n{report}"));
    assert!(faults > 0, "seed {SEED}: no fault was injected:\n{report}");
    assert!(out.status.success(), "seed {SEED}: {}:\n{report}", out.status);
}
