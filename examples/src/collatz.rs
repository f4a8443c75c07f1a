//! Collatz (seed 000, §5.1.1 and Figure B.1): each input is a range of
//! integers, each result the integer of that range with the most steps to
//! reach 1, and its number of steps.
//!
//! The seeds' version used a big-number library to test integers at least as
//! large as 3 572 582 862 843 521 162 235; so does this one. Steps are
//! computed on `u128` while the trajectory fits, and on [`BigUint`] beyond.

use core::fmt;
use core::str::FromStr;

use num_bigint::BigUint;
use num_traits::{One, ToPrimitive, Zero};

/// The starting point used by the seeds' experiments: the integer with the
/// most steps known in July 2019.
pub const SEED_START: &str = "3572582862843521162235";

/// The number of integers per range in the seeds' experiments (about one
/// second of work on a 2011 laptop in JavaScript).
pub const SEED_RANGE: u64 = 175;

/// A range of integers to search: `start`, `start + 1`, …, `start + len - 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interval {
    /// The first integer of the range.
    pub start: BigUint,
    /// How many integers the range holds.
    pub len: u64,
}

/// The result for one [`Interval`]: the integer with the most steps (the
/// smallest such integer on ties), and that number of steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Largest {
    /// The range searched.
    pub interval: Interval,
    /// The integer of the range with the most steps.
    pub argmax: BigUint,
    /// Its number of steps.
    pub steps: u64,
}

/// A line that is not a valid interval.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    /// The line does not have the two fields `START LEN`.
    #[error("expected `START LEN`, got {0:?}")]
    Fields(String),
    /// A field is not a positive integer.
    #[error("{field} is not a positive integer: {value:?}")]
    Number {
        /// Which field: `START` or `LEN`.
        field: &'static str,
        /// The text found.
        value: String,
    },
}

/// The number of Collatz steps from `n` down to 1 (0 for `n <= 1`).
///
/// ```
/// use num_bigint::BigUint;
/// use pando_examples::collatz::steps;
/// assert_eq!(steps(&BigUint::from(27u32)), 111);
/// assert_eq!(steps(&BigUint::from(1u32)), 0);
/// ```
pub fn steps(n: &BigUint) -> u64 {
    let mut count = 0;
    let mut big;
    let mut small = match n.to_u128() {
        Some(v) => v,
        None => {
            big = n.clone();
            return count + steps_big(&mut big);
        }
    };
    while small > 1 {
        if small % 2 == 0 {
            small /= 2;
        } else {
            match small.checked_mul(3).and_then(|v| v.checked_add(1)) {
                Some(v) => small = v,
                None => {
                    big = BigUint::from(small);
                    return count + steps_big(&mut big);
                }
            }
        }
        count += 1;
    }
    count
}

fn steps_big(n: &mut BigUint) -> u64 {
    let mut count = 0;
    let one = BigUint::one();
    while *n > one {
        if n.bits() < 124 {
            // Back to machine integers: 3n + 1 fits in a u128 for a while.
            return count + steps(n);
        }
        if n.bit(0) {
            *n = &*n * 3u32 + 1u32;
        } else {
            *n >>= 1;
        }
        count += 1;
    }
    count
}

impl Interval {
    /// The range of `len` integers from `start`.
    ///
    /// ```
    /// use pando_examples::collatz::Interval;
    /// let i = Interval::new(10u32.into(), 5);
    /// assert_eq!(i.to_string(), "10 5");
    /// ```
    pub fn new(start: BigUint, len: u64) -> Self {
        Interval { start, len }
    }

    /// The `count` consecutive ranges of `len` integers from `start`.
    ///
    /// ```
    /// use pando_examples::collatz::Interval;
    /// let v: Vec<String> = Interval::consecutive(1u32.into(), 10, 3).map(|i| i.to_string()).collect();
    /// assert_eq!(v, ["1 10", "11 10", "21 10"]);
    /// ```
    pub fn consecutive(start: BigUint, len: u64, count: u64) -> impl Iterator<Item = Interval> {
        (0..count).map(move |k| Interval::new(&start + BigUint::from(k) * len, len))
    }

    /// Searches the range (the seeds' Pando function).
    ///
    /// ```
    /// use pando_examples::collatz::Interval;
    /// let best = Interval::new(1u32.into(), 30).largest();
    /// assert_eq!((best.argmax, best.steps), (27u32.into(), 111));
    /// ```
    pub fn largest(&self) -> Largest {
        let mut argmax = self.start.clone();
        let mut best = 0;
        for k in 0..self.len {
            let n = &self.start + k;
            let s = steps(&n);
            if s > best {
                best = s;
                argmax = n;
            }
        }
        Largest {
            interval: self.clone(),
            argmax,
            steps: best,
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.start, self.len)
    }
}

impl FromStr for Interval {
    type Err = ParseError;

    /// Parses `START LEN`.
    fn from_str(line: &str) -> Result<Self, ParseError> {
        let mut fields = line.split_whitespace();
        let (Some(start), Some(len), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(ParseError::Fields(line.to_string()));
        };
        let start: BigUint = start
            .parse()
            .ok()
            .filter(|s: &BigUint| !s.is_zero())
            .ok_or_else(|| ParseError::Number {
                field: "START",
                value: start.to_string(),
            })?;
        let len: u64 = len
            .parse()
            .ok()
            .filter(|l| *l > 0)
            .ok_or_else(|| ParseError::Number {
                field: "LEN",
                value: len.to_string(),
            })?;
        Ok(Interval { start, len })
    }
}

impl fmt::Display for Largest {
    /// `START LEN ARGMAX STEPS`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.interval, self.argmax, self.steps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_record_has_its_published_number_of_steps() {
        // Cross-checked with an independent arbitrary-precision implementation
        // (Python's integers): 2830 steps.
        let n: BigUint = SEED_START.parse().unwrap();
        assert_eq!(steps(&n), 2830);
    }

    #[test]
    fn u128_overflow_falls_back_to_big_integers() {
        let n = BigUint::from(u128::MAX) - 2u32; // odd: 3n + 1 overflows u128
        let mut big = n.clone();
        // 1661 steps, cross-checked with Python's integers.
        assert_eq!(steps(&n), 1661);
        assert_eq!(steps_big(&mut big), 1661);
    }

    #[test]
    fn parse_errors_name_the_field() {
        assert_eq!(
            "0 5".parse::<Interval>(),
            Err(ParseError::Number {
                field: "START",
                value: "0".into()
            })
        );
        assert_eq!("12".parse::<Interval>(), Err(ParseError::Fields("12".into())));
        assert_eq!(
            "1 x".parse::<Interval>().unwrap_err().to_string(),
            "LEN is not a positive integer: \"x\""
        );
    }
}
