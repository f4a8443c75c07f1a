//! Node identifiers, the routing function, and the seeded generator that
//! draws identifiers.
//!
//! The seeds give every node a random identifier (seed 000, Algorithm 16,
//! lines 5964-5967: `id ← random()`, drawn again on every `becomeRoot` and
//! `join`). The JavaScript original used 6 decimal digits of a 31-bit hash;
//! we use a full `u64`, so that two joiners practically never share one.

use serde::{Deserialize, Serialize};

/// A node's identifier: a random `u64`, drawn anew by every
/// [`Node::become_root`](crate::Node::become_root) and
/// [`Node::join`](crate::Node::join).
///
/// ```
/// use pando_genet::NodeId;
/// let id = NodeId(42);
/// assert_eq!(id.to_string(), "000000000000002a");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NodeId(pub u64);

impl std::fmt::Display for NodeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The 64-bit finalizer of SplitMix64 (Steele, Lea and Flood, 2014): a
/// bijective mixer whose every output bit depends on every input bit. It is
/// the "good hash function" that seed 000 asks of the routing (lines
/// 5762-5764), and it is fixed here, not left to `std`'s unspecified
/// hasher, so that a seed replays the same trees on every Rust version.
///
/// ```
/// use pando_genet::id::mix64;
/// assert_eq!(mix64(0), 0);
/// assert_ne!(mix64(1), mix64(2));
/// ```
#[must_use]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Genet's routing function (seed 000, lines 5738-5744):
/// `childIndex = hash(originId XOR nodeId) mod ChildrenLimit`, 0-based.
///
/// A full node delegates every join request of `origin` to the child in this
/// slot, so all the messages of one joiner follow the same path.
///
/// ```
/// use pando_genet::{NodeId, child_index};
/// let at = child_index(NodeId(7), NodeId(4), 10);
/// assert!(at < 10);
/// assert_eq!(at, child_index(NodeId(7), NodeId(4), 10)); // deterministic
/// ```
///
/// # Panics
/// If `children_limit` is 0 (a [`Config`](crate::Config) never allows it).
#[must_use]
pub fn child_index(node: NodeId, origin: NodeId, children_limit: usize) -> usize {
    // The remainder is below `children_limit`, so it fits in a usize.
    (mix64(origin.0 ^ node.0) % children_limit as u64) as usize
}

/// The SplitMix64 generator: the nodes draw their identifiers (and the
/// jitter of their re-join backoff) from it, and the simulator draws its
/// choices from it, so that one seed replays a whole run.
///
/// ```
/// use pando_genet::id::SplitMix64;
/// let mut a = SplitMix64::new(7);
/// let mut b = SplitMix64::new(7);
/// assert_eq!(a.next_u64(), b.next_u64());
/// assert!(a.below(10) < 10);
/// ```
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    ///
    /// ```
    /// let _ = pando_genet::id::SplitMix64::new(0);
    /// ```
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The next 64 random bits.
    ///
    /// ```
    /// let mut g = pando_genet::id::SplitMix64::new(1);
    /// assert_ne!(g.next_u64(), g.next_u64());
    /// ```
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.state)
    }

    /// A number in `0..n` (`n > 0`), by Lemire's multiply-shift (the bias is
    /// below `n / 2^64`).
    ///
    /// ```
    /// let mut g = pando_genet::id::SplitMix64::new(1);
    /// assert!(g.below(3) < 3);
    /// ```
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `[0, 1)`.
    ///
    /// ```
    /// let mut g = pando_genet::id::SplitMix64::new(1);
    /// let x = g.unit();
    /// assert!((0.0..1.0).contains(&x));
    /// ```
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Shuffles `items` in place (Fisher-Yates).
    ///
    /// ```
    /// let mut g = pando_genet::id::SplitMix64::new(1);
    /// let mut v = vec![1, 2, 3, 4];
    /// g.shuffle(&mut v);
    /// v.sort();
    /// assert_eq!(v, [1, 2, 3, 4]);
    /// ```
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

/// The identifier a node seeded with `seed` takes for its `k`-th
/// `become_root` or `join` (0-based): the `k+1`-th output of
/// [`SplitMix64::new(seed)`](SplitMix64::new). The fast tree builder uses
/// it to give its nodes the identifiers the simulated cores take.
///
/// ```
/// use pando_genet::id::{SplitMix64, nth_id};
/// let mut g = SplitMix64::new(9);
/// g.next_u64();
/// assert_eq!(nth_id(9, 1).0, g.next_u64());
/// ```
#[must_use]
pub fn nth_id(seed: u64, k: u64) -> NodeId {
    NodeId(mix64(
        seed.wrapping_add(k.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
    ))
}
