//! [`Tag`] and [`Tagged`]: what the through under test receives and returns.

use std::fmt;

/// The identity of one submission of a value to the through: the value's
/// position in the input stream and the attempt number.
///
/// The first value read from upstream has position 0; its first submission
/// is attempt 1, its first resubmission attempt 2, and so on. A result
/// carrying a tag that is not the value's current submission (a *stale*
/// result, or a duplicate) is dropped and counted.
///
/// ```
/// use pando_stubborn::Tag;
///
/// let tag = Tag { position: 4, attempt: 2 };
/// assert_eq!(tag.to_string(), "#4 (attempt 2)");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Tag {
    /// The position of the value in the input stream, from 0.
    pub position: u64,
    /// The attempt number, from 1.
    pub attempt: u32,
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} (attempt {})", self.position, self.attempt)
    }
}

/// A value with the [`Tag`] of its submission.
///
/// The through wrapped by [`stubborn`](crate::stubborn) receives
/// `Tagged<I>` and must output, for each, one `Tagged<R>` with the same tag
/// (in any order); [`Tagged::map`] keeps the tag.
///
/// ```
/// use pando_stubborn::{Tag, Tagged};
///
/// let submission = Tagged { tag: Tag { position: 0, attempt: 1 }, value: 21 };
/// let result = submission.map(|x| x * 2);
/// assert_eq!(result.value, 42);
/// assert_eq!(result.tag, Tag { position: 0, attempt: 1 });
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Tagged<T> {
    /// The submission this value belongs to.
    pub tag: Tag,
    /// The value.
    pub value: T,
}

impl<T> Tagged<T> {
    /// Applies `f` to the value, keeping the tag.
    ///
    /// ```
    /// use pando_stubborn::{Tag, Tagged};
    /// let t = Tagged { tag: Tag { position: 1, attempt: 1 }, value: "7" };
    /// assert_eq!(t.map(|s| s.parse::<u8>()).value, Ok(7));
    /// ```
    pub fn map<U, F: FnOnce(T) -> U>(self, f: F) -> Tagged<U> {
        Tagged {
            tag: self.tag,
            value: f(self.value),
        }
    }
}
