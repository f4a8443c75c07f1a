use super::Serializer;
use crate::{Connect, Source};

/// The module form of [`Serializer`], for [`pull!`](crate::pull!): a through
/// that wraps its upstream in a serializer. See [`serialize`].
///
/// ```
/// use pando_pull_stream::{Answer, Connect, SerializerModule, count, serialize};
/// # futures::executor::block_on(async {
/// let module: SerializerModule = serialize();
/// let serializer = module.connect(count::<()>(1));
/// assert_eq!(serializer.ask().await, Answer::Value(1));
/// # });
/// ```
#[derive(Clone, Copy, Debug, Default)]
#[must_use = "modules do nothing until connected"]
pub struct SerializerModule;

/// A through that wraps its upstream in a [`Serializer`].
///
/// ```
/// use pando_pull_stream::{SourceExt, collect, count, pull, serialize};
///
/// # futures::executor::block_on(async {
/// let serializer = pull!(count::<()>(3), serialize());
/// let other_handle = serializer.clone();
/// assert_eq!(other_handle.ask().await, pando_pull_stream::Answer::Value(1));
/// assert_eq!(serializer.collect::<Vec<_>>().await, Ok(vec![2, 3]));
/// # });
/// ```
pub fn serialize() -> SerializerModule {
    SerializerModule
}

impl<S: Source> Connect<S> for SerializerModule {
    type Output = Serializer<S>;

    fn connect(self, source: S) -> Serializer<S> {
        Serializer::new(source)
    }
}
