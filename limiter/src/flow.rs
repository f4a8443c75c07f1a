//! The flow-rate meter: results per second over a recent, sliding window.
//!
//! The window is split into [`BUCKETS`] buckets of equal length; a result is
//! counted in the bucket of the time at which it was output. The rate is the
//! number of results in the last `BUCKETS` buckets (the current one included)
//! divided by the time they span, so it covers between `(BUCKETS - 1) / BUCKETS`
//! of the window and the whole window. Recording a result costs one
//! comparison and one increment while the current bucket is open.

use std::time::{Duration, Instant};

/// The number of buckets a window is split into.
pub(crate) const BUCKETS: usize = 8;

#[derive(Debug)]
pub(crate) struct FlowMeter {
    origin: Instant,
    window: Duration,
    bucket_ns: u64,
    counts: [u64; BUCKETS],
    /// The index of the current bucket, counted from `origin`.
    current: u64,
    /// When the current bucket ends.
    current_end: Instant,
    total: u64,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl FlowMeter {
    /// A meter starting at `origin`; `window` is longer than zero.
    pub(crate) fn new(origin: Instant, window: Duration) -> Self {
        let bucket_ns = (nanos(window) / BUCKETS as u64).max(1);
        FlowMeter {
            origin,
            window,
            bucket_ns,
            counts: [0; BUCKETS],
            current: 0,
            current_end: origin + Duration::from_nanos(bucket_ns),
            total: 0,
        }
    }

    pub(crate) fn window(&self) -> Duration {
        self.window
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Moves the current bucket to the one containing `now`, emptying the
    /// buckets that slid out of the window.
    #[inline]
    fn advance(&mut self, now: Instant) {
        if now < self.current_end {
            return;
        }
        let index = nanos(now.saturating_duration_since(self.origin)) / self.bucket_ns;
        if index <= self.current {
            return;
        }
        let gap = index - self.current;
        if gap >= BUCKETS as u64 {
            self.counts = [0; BUCKETS];
        } else {
            for j in 1..=gap {
                self.counts[((self.current + j) % BUCKETS as u64) as usize] = 0;
            }
        }
        self.current = index;
        self.current_end = self
            .origin
            .checked_add(Duration::from_nanos(
                self.bucket_ns.saturating_mul(index.saturating_add(1)),
            ))
            .unwrap_or(now);
    }

    /// Counts one result output at `now`.
    #[inline]
    pub(crate) fn record(&mut self, now: Instant) {
        self.advance(now);
        self.counts[(self.current % BUCKETS as u64) as usize] += 1;
        self.total += 1;
    }

    /// Results per second over the window ending at `now`.
    pub(crate) fn rate(&mut self, now: Instant) -> f64 {
        self.advance(now);
        let elapsed = nanos(now.saturating_duration_since(self.origin));
        let start = (self.current + 1).saturating_sub(BUCKETS as u64) * self.bucket_ns;
        let span = elapsed.saturating_sub(start);
        if span == 0 {
            return 0.0;
        }
        let results: u64 = self.counts.iter().sum();
        results as f64 * 1e9 / span as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn steady_rate_is_measured_exactly() {
        let t0 = Instant::now();
        let mut m = FlowMeter::new(t0, Duration::from_secs(1));
        // 100 results per second for 3 seconds, in the middle of each 10 ms.
        for i in 0..300u32 {
            m.record(t0 + 10 * MS * i + 5 * MS);
        }
        // Just before 3 s, the window is exactly [2 s, 3 s).
        let rate = m.rate(t0 + 3000 * MS - Duration::from_nanos(1));
        assert!((rate - 100.0).abs() < 1e-6, "rate {rate}");
        assert_eq!(m.total(), 300);
    }

    #[test]
    fn rate_over_a_partial_first_window_uses_the_elapsed_time() {
        let t0 = Instant::now();
        let mut m = FlowMeter::new(t0, Duration::from_secs(8));
        for _ in 0..5 {
            m.record(t0 + 500 * MS);
        }
        assert_eq!(m.rate(t0 + 500 * MS), 10.0);
        assert_eq!(m.rate(t0), 0.0);
    }

    #[test]
    fn old_results_slide_out_of_the_window() {
        let t0 = Instant::now();
        let mut m = FlowMeter::new(t0, Duration::from_secs(1));
        for _ in 0..1000 {
            m.record(t0 + MS);
        }
        assert!(m.rate(t0 + 500 * MS) > 1000.0);
        // One full window later, nothing remains; the total is kept.
        assert_eq!(m.rate(t0 + 1200 * MS), 0.0);
        assert_eq!(m.total(), 1000);
        // A long silence empties every bucket, even far in the future.
        m.record(t0 + 100_000 * MS);
        let rate = m.rate(t0 + 101_000 * MS - Duration::from_nanos(1));
        assert!((rate - 1.0).abs() < 1e-6, "rate {rate}");
    }

    #[test]
    fn a_tiny_window_still_works() {
        let t0 = Instant::now();
        let mut m = FlowMeter::new(t0, Duration::from_nanos(1));
        m.record(t0);
        m.record(t0 + Duration::from_nanos(3));
        assert!(m.rate(t0 + Duration::from_nanos(3)) > 0.0);
        assert_eq!(m.total(), 2);
    }
}
