//! The [`Source`] trait: the upstream end of the pull-stream protocol.

use core::ops::DerefMut;
use core::pin::Pin;
use core::task::{Context, Poll};

use crate::{Answer, Termination};

/// A module that answers requests: the upstream end of the pull-stream protocol.
///
/// The three requests of the protocol map onto three methods:
///
/// | request        | method                                   | answer                          |
/// |----------------|------------------------------------------|---------------------------------|
/// | `ask⟨i⟩`        | [`poll_ask`](Source::poll_ask)           | `Ready(Answer::Value / Done / Error)` |
/// | `abort⟨i⟩`      | [`terminate`](Source::terminate)`(Abort)` then [`poll_terminated`](Source::poll_terminated) | `Ready(Ok(()))` (done) or `Ready(Err(e))` |
/// | `fail⟨i, err⟩`  | [`terminate`](Source::terminate)`(Fail(err))` then [`poll_terminated`](Source::poll_terminated) | `Ready(Err(e))` (error) or `Ready(Ok(()))` |
///
/// # The contract (seed 000, §4.1.2)
///
/// A consumer of a `Source`:
///
/// * starts request `ask⟨i⟩` with the first call to `poll_ask` after answer
///   `i - 1`; calling again while it returns `Pending` continues the *same*
///   request. `Ready` is the answer. A second ask can therefore never be made
///   before the previous answer (invariants 3, 4 and 5 hold by construction:
///   `&mut` admits one outstanding request, answered once, in order);
/// * makes no request after an answer `done` or `error`, and none after it
///   terminated the stream (invariant 1): `poll_ask` and `terminate` are not
///   called after `Done`/`Error`, and `terminate` is called at most once;
/// * may call `terminate` while an ask is pending (the one exception of
///   invariant 4). The pending ask is then *abandoned*: the answer to the
///   termination answers it too, and any value it would have produced is never
///   delivered;
/// * after `terminate`, polls `poll_terminated` until it is ready; its answer
///   confirms that everything upstream has stopped and released its resources.
///
/// A `Source` in turn answers every request eventually (invariant 2), and
/// propagates termination (invariant 6): a module that wraps another terminates
/// it when it is itself terminated, and ends when it ends.
///
/// Dropping a source releases its resources without confirmation; use
/// [`SourceExt::abort`](crate::SourceExt::abort) when the confirmation matters.
///
/// Module implementations that break these rules are caught at run time by the
/// probes of the `pando-checker` crate.
///
/// # Implementing a source
///
/// ```
/// use core::pin::Pin;
/// use core::task::{Context, Poll};
/// use pando_pull_stream::{Answer, Source, SourceExt, Termination, collect, pull};
///
/// /// Counts down from `n` to 1.
/// struct Countdown { n: u32, termination: Option<Termination<()>> }
///
/// impl Source for Countdown {
///     type Item = u32;
///     type Error = ();
///     fn poll_ask(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Answer<u32, ()>> {
///         if self.n == 0 { return Poll::Ready(Answer::Done) }
///         self.n -= 1;
///         Poll::Ready(Answer::Value(self.n + 1))
///     }
///     fn terminate(mut self: Pin<&mut Self>, request: Termination<()>) {
///         self.termination = Some(request);
///     }
///     fn poll_terminated(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ()>> {
///         Poll::Ready(self.termination.take().expect("terminate first").confirm())
///     }
/// }
///
/// # futures::executor::block_on(async {
/// let got = pull!(Countdown { n: 3, termination: None }, collect::<Vec<_>>()).await;
/// assert_eq!(got, Ok(vec![3, 2, 1]));
/// # });
/// ```
#[must_use = "sources do nothing unless asked"]
pub trait Source {
    /// The type of the values.
    type Item;
    /// The type of the errors carried by `fail` requests and `error` answers.
    type Error;

    /// `ask`: polls for the answer to the current ask request.
    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<Self::Item, Self::Error>>;

    /// `abort` or `fail`: requests the termination of this source.
    ///
    /// Called at most once, never after an answer `done` or `error`; may be
    /// called while an ask is pending, which abandons that ask.
    fn terminate(self: Pin<&mut Self>, request: Termination<Self::Error>);

    /// Polls for the answer to the termination request: `Ok(())` is `done`,
    /// `Err(e)` is `error`.
    ///
    /// Only called after [`terminate`](Source::terminate).
    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>>;
}

impl<S: Source + Unpin + ?Sized> Source for &mut S {
    type Item = S::Item;
    type Error = S::Error;

    #[inline]
    fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>> {
        S::poll_ask(Pin::new(&mut **self), cx)
    }

    #[inline]
    fn terminate(mut self: Pin<&mut Self>, request: Termination<S::Error>) {
        S::terminate(Pin::new(&mut **self), request)
    }

    #[inline]
    fn poll_terminated(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        S::poll_terminated(Pin::new(&mut **self), cx)
    }
}

impl<S: Source + Unpin + ?Sized> Source for Box<S> {
    type Item = S::Item;
    type Error = S::Error;

    #[inline]
    fn poll_ask(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, S::Error>> {
        S::poll_ask(Pin::new(&mut **self), cx)
    }

    #[inline]
    fn terminate(mut self: Pin<&mut Self>, request: Termination<S::Error>) {
        S::terminate(Pin::new(&mut **self), request)
    }

    #[inline]
    fn poll_terminated(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        S::poll_terminated(Pin::new(&mut **self), cx)
    }
}

impl<P> Source for Pin<P>
where
    P: DerefMut + Unpin,
    P::Target: Source,
{
    type Item = <P::Target as Source>::Item;
    type Error = <P::Target as Source>::Error;

    #[inline]
    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<Self::Item, Self::Error>> {
        self.get_mut().as_mut().poll_ask(cx)
    }

    #[inline]
    fn terminate(self: Pin<&mut Self>, request: Termination<Self::Error>) {
        self.get_mut().as_mut().terminate(request)
    }

    #[inline]
    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().as_mut().poll_terminated(cx)
    }
}

/// A type-erased, boxed source, as returned by [`SourceExt::boxed`](crate::SourceExt::boxed).
pub type BoxSource<'a, T, E> = Pin<Box<dyn Source<Item = T, Error = E> + Send + 'a>>;
