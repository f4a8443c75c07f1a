//! [`Lent`]: a value or a result with the id that matches them.

/// A value lent to a sub-stream, or the result that comes back for it, with
/// the id that matches the two (the position of the value in the input,
/// from 0).
///
/// Sub-streams receive `Lent<T>` and must return one `Lent<R>` with the same
/// id per value. Transports carry the id along; [`Lent::map`] keeps it.
///
/// ```
/// use pando_lend_stream::Lent;
/// let v = Lent::new(7, 3u32);
/// assert_eq!(v.map(|x| x * x), Lent::new(7, 9u32));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Lent<T> {
    /// The position of the value in the lender's input, from 0.
    pub id: u64,
    /// The value (or result).
    pub value: T,
}

impl<T> Lent<T> {
    /// Pairs an id and a value.
    ///
    /// ```
    /// use pando_lend_stream::Lent;
    /// assert_eq!(Lent::new(1, "a").id, 1);
    /// ```
    pub fn new(id: u64, value: T) -> Self {
        Lent { id, value }
    }

    /// Applies `f` to the value, keeping the id: a result for this value.
    ///
    /// ```
    /// use pando_lend_stream::Lent;
    /// assert_eq!(Lent::new(2, "ab").map(str::len), Lent::new(2, 2));
    /// ```
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Lent<U> {
        Lent {
            id: self.id,
            value: f(self.value),
        }
    }

    /// Applies a fallible `f` to the value, keeping the id.
    ///
    /// ```
    /// use pando_lend_stream::Lent;
    /// let r: Result<Lent<u8>, _> = Lent::new(0, "300").try_map(str::parse::<u8>);
    /// assert!(r.is_err());
    /// ```
    pub fn try_map<U, E>(self, f: impl FnOnce(T) -> Result<U, E>) -> Result<Lent<U>, E> {
        Ok(Lent {
            id: self.id,
            value: f(self.value)?,
        })
    }
}
