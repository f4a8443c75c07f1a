//! [`LimitedSink`]: the sink half of a limited duplex.

use std::fmt;
use std::sync::Arc;

use pando_pull_stream::{Connect, Source};

use crate::state::Shared;
use crate::{LimitHandle, LimitedInput};

/// The sink half of a limited duplex, made by
/// [`Limit::into_duplex`](crate::Limit::into_duplex).
///
/// Connecting it to a source connects the wrapped sink half to a
/// [`LimitedInput`] on that source: the sink half may then ask for a value
/// only while fewer than `limit` values are in process.
///
/// ```
/// use pando_limiter::limit;
/// use pando_pull_stream::{Connect, SourceExt, Answer, count, duplex_pair};
///
/// # futures::executor::block_on(async {
/// let (near, far) = duplex_pair::<u64, u64, ()>(16);
/// let limited = limit(near, 3)?.into_duplex();
/// // Drive the sink half alone: it stops at 3 values in process.
/// let mut sending = Box::pin(limited.sink.connect(count(100)));
/// assert!(futures::poll!(sending.as_mut()).is_pending());
/// assert_eq!(far.source.len(), 3);
/// assert_eq!(limited.source.handle().in_process(), 3);
/// # Ok::<(), pando_limiter::LimitError>(())
/// # }).unwrap();
/// ```
#[must_use = "modules do nothing until connected"]
pub struct LimitedSink<Si> {
    sink: Si,
    shared: Arc<Shared>,
}

impl<Si> LimitedSink<Si> {
    pub(crate) fn new(sink: Si, shared: Arc<Shared>) -> Self {
        LimitedSink { sink, shared }
    }

    /// A handle on the limit shared by both halves.
    ///
    /// ```
    /// use pando_limiter::limit;
    /// use pando_pull_stream::duplex_pair;
    ///
    /// let (near, _far) = duplex_pair::<u8, u8, ()>(1);
    /// let limited = limit(near, 2).unwrap().into_duplex();
    /// limited.sink.handle().update_limit(5).unwrap();
    /// assert_eq!(limited.source.handle().limit(), 5);
    /// ```
    pub fn handle(&self) -> LimitHandle {
        LimitHandle::new(self.shared.clone())
    }
}

impl<S, Si> Connect<S> for LimitedSink<Si>
where
    S: Source,
    Si: Connect<LimitedInput<S>>,
{
    type Output = Si::Output;

    fn connect(self, upstream: S) -> Si::Output {
        self.sink.connect(LimitedInput::new(upstream, self.shared))
    }
}

impl<Si> fmt::Debug for LimitedSink<Si> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LimitedSink")
            .field("state", &self.shared)
            .finish_non_exhaustive()
    }
}
