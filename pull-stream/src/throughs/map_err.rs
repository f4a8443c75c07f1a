use core::fmt;
use core::pin::Pin;
use core::task::{Context, Poll, ready};

use pin_project_lite::pin_project;

use crate::{Answer, Connect, Source, Termination};

/// The `map_err` through module. See [`map_err`](fn@map_err).
#[derive(Clone, Copy)]
#[must_use = "modules do nothing until connected"]
pub struct MapErr<F, G> {
    into: F,
    from: G,
}

/// A through that changes the error type: `into` maps errors flowing
/// downstream (`error` answers), `from` maps errors flowing upstream (`fail`
/// requests).
///
/// This is how streams with different error types are joined.
///
/// ```
/// use pando_pull_stream::{collect, error, map_err, pull};
///
/// # futures::executor::block_on(async {
/// let got = pull!(
///     error::<u8, _>(404u16),
///     map_err(|code: u16| format!("HTTP {code}"), |_: String| 500u16),
///     collect::<Vec<u8>>(),
/// );
/// assert_eq!(got.await, Err("HTTP 404".to_string()));
/// # });
/// ```
pub fn map_err<F, G>(into: F, from: G) -> MapErr<F, G> {
    MapErr { into, from }
}

impl<S: Source, E, F, G> Connect<S> for MapErr<F, G>
where
    F: FnMut(S::Error) -> E,
    G: FnMut(E) -> S::Error,
{
    type Output = MapErrSource<S, F, G>;

    fn connect(self, upstream: S) -> Self::Output {
        MapErrSource {
            upstream,
            into: self.into,
            from: self.from,
        }
    }
}

pin_project! {
    /// The source made by connecting [`map_err`](fn@map_err) to an upstream source.
    #[must_use = "sources do nothing unless asked"]
    pub struct MapErrSource<S, F, G> {
        #[pin]
        upstream: S,
        into: F,
        from: G,
    }
}

impl<S: Source, E, F, G> Source for MapErrSource<S, F, G>
where
    F: FnMut(S::Error) -> E,
    G: FnMut(E) -> S::Error,
{
    type Item = S::Item;
    type Error = E;

    #[inline]
    fn poll_ask(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Answer<S::Item, E>> {
        let this = self.project();
        Poll::Ready(ready!(this.upstream.poll_ask(cx)).map_err(this.into))
    }

    fn terminate(self: Pin<&mut Self>, request: Termination<E>) {
        let this = self.project();
        this.upstream.terminate(request.map_err(this.from))
    }

    fn poll_terminated(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        let this = self.project();
        Poll::Ready(ready!(this.upstream.poll_terminated(cx)).map_err(this.into))
    }
}

impl<F, G> fmt::Debug for MapErr<F, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapErr").finish_non_exhaustive()
    }
}

impl<S: fmt::Debug, F, G> fmt::Debug for MapErrSource<S, F, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapErrSource")
            .field("upstream", &self.upstream)
            .finish_non_exhaustive()
    }
}
