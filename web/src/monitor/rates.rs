//! Each device's throughput as the monitor sees it: items done over the last
//! few seconds of its own snapshots (seed 000, §6.1.2, the second option:
//! the monitor's own time reference), which is smoother than a one-second
//! count, and adds up to the total.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

/// Items done per device id, over a sliding window of snapshots.
#[derive(Debug)]
pub(crate) struct Rates {
    window: Duration,
    /// Per device id: (when, items done then), oldest first; bounded by the
    /// snapshots in one window.
    history: HashMap<u64, VecDeque<(Instant, u64)>>,
}

impl Rates {
    pub(crate) fn new(window: Duration) -> Self {
        Rates {
            window,
            history: HashMap::new(),
        }
    }

    /// Records `(id, done)` for every device at `now` and returns each one's
    /// rate, in the same order: items done per second over the window, or
    /// `fallback` while a device has a single snapshot. Devices not in
    /// `devices` are forgotten.
    pub(crate) fn update(&mut self, now: Instant, devices: &[(u64, u64, f64)]) -> Vec<f64> {
        let mut rates = Vec::with_capacity(devices.len());
        let mut seen = HashMap::with_capacity(devices.len());
        for &(id, done, fallback) in devices {
            seen.insert(id, ());
            let samples = self.history.entry(id).or_default();
            samples.push_back((now, done));
            // Keep one snapshot at or before the window's start, to span it.
            while samples.len() > 2 && now.duration_since(samples[1].0) >= self.window {
                samples.pop_front();
            }
            let (first, last) = (samples[0], samples[samples.len() - 1]);
            let span = last.0.duration_since(first.0).as_secs_f64();
            rates.push(if span > 0.0 {
                last.1.saturating_sub(first.1) as f64 / span
            } else {
                fallback
            });
        }
        self.history.retain(|id, _| seen.contains_key(id));
        rates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_is_items_over_the_window_and_falls_back_at_first() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut rates = Rates::new(Duration::from_secs(2));
        assert_eq!(rates.update(at(0), &[(1, 0, 7.0)]), [7.0]);
        assert_eq!(rates.update(at(500), &[(1, 5, 7.0)]), [10.0]);
        assert_eq!(rates.update(at(1000), &[(1, 5, 7.0), (2, 100, 3.0)]), [5.0, 3.0]);
        // From 2.5 s on, the window starts at 0.5 s.
        assert_eq!(
            rates.update(at(2500), &[(1, 25, 7.0), (2, 110, 3.0)]),
            [10.0, (10.0 / 1.5)]
        );
        assert_eq!(
            rates.history[&1].len(),
            3,
            "one snapshot before the window, and those in it"
        );
        // A device that left is forgotten.
        rates.update(at(3000), &[(2, 110, 3.0)]);
        assert!(!rates.history.contains_key(&1));
    }
}
