//! [`Verdict`]: what the tester says about a result.

/// The tester's decision on a result: output it, or send a value through the
/// through again.
///
/// ```
/// use pando_stubborn::Verdict;
///
/// fn judge(input: u64, result: Option<u64>) -> Verdict<u64, u64> {
///     match result {
///         Some(r) => Verdict::Accept(r),
///         None => Verdict::Resubmit(input), // try the same value again
///     }
/// }
/// assert_eq!(judge(3, Some(9)), Verdict::Accept(9));
/// assert_eq!(judge(3, None), Verdict::Resubmit(3));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Verdict<O, I> {
    /// The result is good: output this value, at the input's position.
    Accept(O),
    /// The result is not good: submit this value (the same input or a new
    /// one) through the through again, before any new upstream value.
    Resubmit(I),
}
