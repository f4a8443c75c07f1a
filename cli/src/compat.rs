//! A shim for the parts of the library API that are still being written on
//! `main` (value timeouts, connection limits, the poisoned value's last
//! failure, the join URL helpers). Each function here is replaced by the
//! library's own as it lands; then this module goes.

use std::time::Duration;

use pando_distributed_map::{MapConfig, Session, join_url};
use pando_lend_stream::LendError;

/// Sets the limits the library will have on `config`.
pub(crate) fn set_limits(
    config: &mut MapConfig,
    value_timeout: Option<Duration>,
    slow_value_warning: Option<Duration>,
    max_pending: usize,
    max_workers: usize,
) {
    config.value_timeout = value_timeout;
    if slow_value_warning.is_some() {
        config.slow_value_warning = slow_value_warning;
    }
    config.max_pending = max_pending;
    config.max_workers = max_workers;
}

/// The master's value timeout, as the worker learnt it in `Welcome`.
pub(crate) fn value_timeout(session: &Session) -> Option<Duration> {
    session.value_timeout()
}

/// The number of local workers by default.
pub(crate) fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The join URLs for this machine and for others.
pub(crate) fn local_and_public_urls(listener_url: &str, token: &str, host: &str) -> (String, String) {
    (
        join_url(&listener_url.replace("0.0.0.0", "127.0.0.1"), token),
        join_url(&listener_url.replace("0.0.0.0", host), token),
    )
}

/// The one-line message for a run's error.
pub(crate) fn describe<E: std::fmt::Display>(e: &LendError<E>) -> String {
    match e {
        LendError::Poisoned { id, failures } => format!(
            "input line {} failed {failures} times (more than --max-retries); stopping",
            id + 1
        ),
        other => other.to_string(),
    }
}
