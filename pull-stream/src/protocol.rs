//! The events of the pull-stream protocol (seed 000, Table 4.1).
//!
//! | request | meaning                      | answer  | meaning                 |
//! |---------|------------------------------|---------|-------------------------|
//! | ask     | ask for a value              | value   | here is the value `v`   |
//! | abort   | terminate the stream normally| done    | no more values          |
//! | fail    | terminate it with an error   | error   | an error occurred       |

use core::fmt;

/// A request made by a consumer to its upstream module: `ask`, `abort` or `fail`.
///
/// The poll-based [`Source`](crate::Source) trait encodes the three requests as
/// [`Source::poll_ask`](crate::Source::poll_ask) (ask) and
/// [`Source::terminate`](crate::Source::terminate) (abort or fail, see
/// [`Termination`]). This enum names them explicitly, for event traces and for
/// event-driven (sans-IO) module cores.
///
/// ```
/// use pando_pull_stream::{Request, Termination};
///
/// let ask: Request<&str> = Request::Ask;
/// let fail: Request<&str> = Termination::Fail("disk full").into();
/// assert!(ask.is_ask());
/// assert_eq!(fail, Request::Fail("disk full"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Request<E> {
    /// Ask for the next value.
    Ask,
    /// Terminate the stream normally.
    Abort,
    /// Terminate the stream abnormally, because of an error.
    Fail(E),
}

impl<E> Request<E> {
    /// Whether this is an ask (as opposed to a termination).
    ///
    /// ```
    /// use pando_pull_stream::Request;
    /// assert!(Request::<()>::Ask.is_ask());
    /// assert!(!Request::<()>::Abort.is_ask());
    /// ```
    pub fn is_ask(&self) -> bool {
        matches!(self, Request::Ask)
    }

    /// The name of the event in the seeds' notation: `ask`, `abort` or `fail`.
    ///
    /// ```
    /// use pando_pull_stream::Request;
    /// assert_eq!(Request::Fail(3).name(), "fail");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            Request::Ask => "ask",
            Request::Abort => "abort",
            Request::Fail(_) => "fail",
        }
    }
}

impl<E> From<Termination<E>> for Request<E> {
    fn from(t: Termination<E>) -> Self {
        match t {
            Termination::Abort => Request::Abort,
            Termination::Fail(e) => Request::Fail(e),
        }
    }
}

/// A request that terminates the upstream: `abort` (normal) or `fail` (with an error).
///
/// Passed to [`Source::terminate`](crate::Source::terminate). Once a module has
/// made such a request it makes no further request (invariant 1); the answer,
/// `done` or `error`, confirms that the upstream has stopped and released its
/// resources.
///
/// ```
/// use pando_pull_stream::Termination;
///
/// let t: Termination<String> = Termination::Fail("bad input".into());
/// assert!(t.is_fail());
/// assert_eq!(Termination::<String>::Abort.into_error(), None);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Termination<E> {
    /// Terminate normally.
    Abort,
    /// Terminate abnormally, with this error.
    Fail(E),
}

impl<E> Termination<E> {
    /// Whether this is a `fail`.
    ///
    /// ```
    /// use pando_pull_stream::Termination;
    /// assert!(!Termination::<()>::Abort.is_fail());
    /// ```
    pub fn is_fail(&self) -> bool {
        matches!(self, Termination::Fail(_))
    }

    /// The error of a `fail`, `None` for an `abort`.
    ///
    /// ```
    /// use pando_pull_stream::Termination;
    /// assert_eq!(Termination::Fail(7).into_error(), Some(7));
    /// ```
    pub fn into_error(self) -> Option<E> {
        match self {
            Termination::Abort => None,
            Termination::Fail(e) => Some(e),
        }
    }

    /// The answer a module gives to this request when it has nothing upstream
    /// left to terminate: `done` for an abort, the same error for a fail.
    ///
    /// This is what the seeds' sources do (`if (abort) return cb(abort)`).
    ///
    /// ```
    /// use pando_pull_stream::Termination;
    /// assert_eq!(Termination::<u8>::Abort.confirm(), Ok(()));
    /// assert_eq!(Termination::Fail(1u8).confirm(), Err(1));
    /// ```
    pub fn confirm(self) -> Result<(), E> {
        match self {
            Termination::Abort => Ok(()),
            Termination::Fail(e) => Err(e),
        }
    }

    /// Maps the error of a `fail`.
    ///
    /// ```
    /// use pando_pull_stream::Termination;
    /// assert_eq!(Termination::Fail(2).map_err(|e| e * 10), Termination::Fail(20));
    /// ```
    pub fn map_err<F, G: FnOnce(E) -> F>(self, g: G) -> Termination<F> {
        match self {
            Termination::Abort => Termination::Abort,
            Termination::Fail(e) => Termination::Fail(g(e)),
        }
    }
}

/// An answer given by a module to a request: `value`, `done` or `error`.
///
/// This is what [`Source::poll_ask`](crate::Source::poll_ask) returns when it
/// is ready.
///
/// ```
/// use pando_pull_stream::Answer;
///
/// let a: Answer<u32, String> = Answer::Value(4);
/// assert_eq!(a.map(|x| x * x), Answer::Value(16));
/// assert!(Answer::<u32, String>::Done.is_terminal());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Answer<T, E> {
    /// The next value of the stream.
    Value(T),
    /// The stream ended normally: there are no more values.
    Done,
    /// The stream ended with an error.
    Error(E),
}

impl<T, E> Answer<T, E> {
    /// Whether this answer ends the stream (`done` or `error`).
    ///
    /// ```
    /// use pando_pull_stream::Answer;
    /// assert!(!Answer::<u8, ()>::Value(1).is_terminal());
    /// assert!(Answer::<u8, ()>::Error(()).is_terminal());
    /// ```
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Answer::Value(_))
    }

    /// The name of the event in the seeds' notation: `value`, `done` or `error`.
    ///
    /// ```
    /// use pando_pull_stream::Answer;
    /// assert_eq!(Answer::<u8, ()>::Done.name(), "done");
    /// ```
    pub fn name(&self) -> &'static str {
        match self {
            Answer::Value(_) => "value",
            Answer::Done => "done",
            Answer::Error(_) => "error",
        }
    }

    /// Maps the value of a `value` answer.
    ///
    /// ```
    /// use pando_pull_stream::Answer;
    /// assert_eq!(Answer::<u8, ()>::Value(2).map(u32::from), Answer::Value(2u32));
    /// ```
    #[inline]
    pub fn map<U, F: FnOnce(T) -> U>(self, f: F) -> Answer<U, E> {
        match self {
            Answer::Value(v) => Answer::Value(f(v)),
            Answer::Done => Answer::Done,
            Answer::Error(e) => Answer::Error(e),
        }
    }

    /// Maps the error of an `error` answer.
    ///
    /// ```
    /// use pando_pull_stream::Answer;
    /// assert_eq!(Answer::<u8, u8>::Error(1).map_err(|e| e + 1), Answer::Error(2));
    /// ```
    #[inline]
    pub fn map_err<F, G: FnOnce(E) -> F>(self, g: G) -> Answer<T, F> {
        match self {
            Answer::Value(v) => Answer::Value(v),
            Answer::Done => Answer::Done,
            Answer::Error(e) => Answer::Error(g(e)),
        }
    }

    /// Converts into the `futures` convention: `Some(Ok(v))`, `None` for done,
    /// `Some(Err(e))` for an error.
    ///
    /// ```
    /// use pando_pull_stream::Answer;
    /// assert_eq!(Answer::<u8, ()>::Done.into_option(), None);
    /// assert_eq!(Answer::<u8, ()>::Value(1).into_option(), Some(Ok(1)));
    /// ```
    #[inline]
    pub fn into_option(self) -> Option<Result<T, E>> {
        match self {
            Answer::Value(v) => Some(Ok(v)),
            Answer::Done => None,
            Answer::Error(e) => Some(Err(e)),
        }
    }

    /// The answer that confirms a termination: `done` for `Ok(())`, `error` otherwise.
    ///
    /// ```
    /// use pando_pull_stream::Answer;
    /// assert_eq!(Answer::<u8, u8>::from_end(Err(3)), Answer::Error(3));
    /// ```
    #[inline]
    pub fn from_end(end: Result<(), E>) -> Self {
        match end {
            Ok(()) => Answer::Done,
            Err(e) => Answer::Error(e),
        }
    }
}

impl<T, E> From<Option<Result<T, E>>> for Answer<T, E> {
    #[inline]
    fn from(o: Option<Result<T, E>>) -> Self {
        match o {
            Some(Ok(v)) => Answer::Value(v),
            Some(Err(e)) => Answer::Error(e),
            None => Answer::Done,
        }
    }
}

impl<T: fmt::Debug, E: fmt::Debug> fmt::Display for Answer<T, E> {
    /// Formats the answer without its index, e.g. `value(4)`, `done`, `error("x")`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::Value(v) => write!(f, "value({v:?})"),
            Answer::Done => f.write_str("done"),
            Answer::Error(e) => write!(f, "error({e:?})"),
        }
    }
}
