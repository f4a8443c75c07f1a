//! A small seeded PRNG (SplitMix64), written out so that seeded tests and
//! executions replay identically whatever the versions of the dependencies,
//! and [`SeedGuard`], which prints a failing test's seed.

/// SplitMix64 (Steele, Lea and Flood, 2014): one `u64` of state, full period,
/// good enough statistics for choosing interleavings and test data.
///
/// ```
/// use pando_checker::rng::SplitMix64;
/// let mut a = SplitMix64::new(7);
/// let mut b = SplitMix64::new(7);
/// assert_eq!(a.next_u64(), b.next_u64()); // the same seed, the same sequence
/// assert!(a.below(10) < 10);
/// ```
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator seeded with `seed`.
    ///
    /// See [`SplitMix64`] for an example.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    ///
    /// See [`SplitMix64`] for an example.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`), by multiply-shift (Lemire).
    ///
    /// ```
    /// let mut r = pando_checker::rng::SplitMix64::new(1);
    /// assert!((0..100).all(|_| r.below(3) < 3));
    /// ```
    pub fn below(&mut self, n: usize) -> usize {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// Uniform in `lo..=hi`.
    ///
    /// ```
    /// let mut r = pando_checker::rng::SplitMix64::new(1);
    /// assert!((0..100).all(|_| (5..=9).contains(&r.range(5, 9))));
    /// ```
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// `true` with probability `percent / 100`.
    ///
    /// ```
    /// let mut r = pando_checker::rng::SplitMix64::new(1);
    /// assert!(!r.percent(0) && r.percent(100));
    /// ```
    pub fn percent(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// A uniformly chosen element of a non-empty slice.
    ///
    /// ```
    /// let mut r = pando_checker::rng::SplitMix64::new(1);
    /// assert!([3, 5].contains(&r.pick(&[3, 5])));
    /// ```
    pub fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len())]
    }
}

/// Prints `"{name} failed with seed {seed}"` if the thread panics while the
/// guard is alive: keep one in every seeded test so a failure names its seed.
///
/// ```
/// use pando_checker::rng::{SeedGuard, SplitMix64};
/// for seed in 0..10 {
///     let _guard = SeedGuard("my_property", seed);
///     let mut rng = SplitMix64::new(seed);
///     assert!(rng.below(6) < 6);
/// }
/// ```
#[derive(Debug)]
pub struct SeedGuard(pub &'static str, pub u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{} failed with seed {}", self.0, self.1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::SplitMix64;

    #[test]
    fn is_reproducible_and_spread() {
        let a: Vec<u64> = {
            let mut r = SplitMix64::new(42);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let mut r = SplitMix64::new(42);
        assert_eq!(a, (0..4).map(|_| r.next_u64()).collect::<Vec<_>>());
        let mut counts = [0u32; 4];
        for _ in 0..4000 {
            counts[r.below(4)] += 1;
        }
        assert!(counts.iter().all(|&c| (800..1200).contains(&c)), "{counts:?}");
    }
}
