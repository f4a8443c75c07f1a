//! [`Throttle`]: at most one log line per period for one kind of event, with
//! a count of the events it did not log.

use std::time::Duration;

// Tokio's clock: the tests may pause it.
use tokio::time::Instant;

/// Decides which of a flood of events get a log line: the first, then at
/// most one per `period`, each saying how many were left unlogged since the
/// line before.
#[derive(Debug)]
pub(crate) struct Throttle {
    period: Duration,
    last: Option<Instant>,
    unlogged: u64,
}

impl Throttle {
    pub(crate) fn new(period: Duration) -> Self {
        Throttle {
            period,
            last: None,
            unlogged: 0,
        }
    }

    /// Counts one event at `now`: `Some(n)` if it gets a line (`n` events
    /// before it were not logged), `None` if it is not logged.
    pub(crate) fn event(&mut self, now: Instant) -> Option<u64> {
        match self.last {
            Some(last) if now.duration_since(last) < self.period => {
                self.unlogged += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.unlogged))
            }
        }
    }
}

/// `" (and N more since the last such line)"`, or nothing.
pub(crate) fn and_more(unlogged: u64) -> String {
    if unlogged == 0 {
        String::new()
    } else {
        format!(" (and {unlogged} more since the last such line)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_period_with_the_count_of_the_others() {
        let t0 = Instant::now();
        let mut throttle = Throttle::new(Duration::from_secs(1));
        assert_eq!(throttle.event(t0), Some(0));
        for ms in [1, 500, 999] {
            assert_eq!(throttle.event(t0 + Duration::from_millis(ms)), None);
        }
        assert_eq!(throttle.event(t0 + Duration::from_millis(1000)), Some(3));
        assert_eq!(throttle.event(t0 + Duration::from_millis(1001)), None);
        assert_eq!(throttle.event(t0 + Duration::from_secs(5)), Some(1));
        assert_eq!(and_more(0), "");
        assert_eq!(and_more(2), " (and 2 more since the last such line)");
    }
}
