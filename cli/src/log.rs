//! Logging: a `tracing-subscriber` writing to stderr.
//!
//! The level comes from `RUST_LOG` (for example `RUST_LOG=debug`, or
//! `RUST_LOG=pando_distributed_map=debug`); without it, pando's own crates
//! log at `info` (workers joining, finishing or dropped, with their name,
//! address and reason) and other crates at `warn`.

use std::io::{IsTerminal, Write};
use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

/// The filter without `RUST_LOG`.
pub(crate) const DEFAULT_FILTER: &str =
    "warn,pando=info,pando_cli=info,pando_distributed_map=info,pando_lend_stream=info";

/// The filter: `RUST_LOG` if set and valid, else [`DEFAULT_FILTER`].
fn filter() -> EnvFilter {
    match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::try_new(&spec).unwrap_or_else(|e| {
            eprintln!("pando: ignoring RUST_LOG={spec:?}: {e}");
            EnvFilter::new(DEFAULT_FILTER)
        }),
        _ => EnvFilter::new(DEFAULT_FILTER),
    }
}

/// The progress line on stderr, if any: log lines are written above it.
static PROGRESS: OnceLock<indicatif::ProgressBar> = OnceLock::new();

/// Writes log lines (and what local workers print) above the progress line.
pub(crate) fn set_progress(progress: indicatif::ProgressBar) {
    let _ = PROGRESS.set(progress);
}

/// Our stderr, writing above the progress line when there is one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Stderr;

impl Write for Stderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match PROGRESS.get() {
            Some(progress) => progress.suspend(|| std::io::stderr().write_all(buf).map(|()| buf.len())),
            None => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// Installs the subscriber (once; later calls do nothing).
pub(crate) fn init() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(|| Stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_filter_parses() {
        assert!(EnvFilter::try_new(DEFAULT_FILTER).is_ok());
    }
}
