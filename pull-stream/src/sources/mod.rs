//! Standard sources: [`values`], [`count`], [`infinite`], [`empty`] and [`error`].

mod count;
mod empty;
mod error;
mod infinite;
mod values;

pub use count::{Count, count};
pub use empty::{Empty, empty};
pub use error::{Error, error};
pub use infinite::{Infinite, infinite};
pub use values::{Values, values};

use crate::Termination;
use core::task::Poll;

/// The answer to a termination request by a source with nothing upstream.
#[inline]
fn confirm<E>(termination: &mut Option<Termination<E>>) -> Poll<Result<(), E>> {
    Poll::Ready(termination.take().map_or(Ok(()), Termination::confirm))
}
