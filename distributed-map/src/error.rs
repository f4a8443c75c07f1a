//! The errors of the master's worker connections ([`WorkerError`]) and of
//! the worker's side ([`JoinError`]). The lender's own errors (on the map's
//! output) are [`LendError`](pando_lend_stream::LendError).

use thiserror::Error;

use crate::session::SessionError;
use crate::transport::TransportError;

/// Why a worker's connection ended abnormally, on the master's side. Its
/// values are lent to other workers in every case; the master keeps serving
/// the others.
///
/// ```
/// use pando_distributed_map::{WorkerError, session::SessionError};
/// let e = WorkerError { worker: "laptop (10.0.0.2:5000)".into(), reason: SessionError::Disconnected };
/// assert_eq!(e.to_string(), "worker laptop (10.0.0.2:5000) disconnected");
/// ```
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[error("worker {worker} {reason}")]
pub struct WorkerError {
    /// The worker: its name and address.
    pub worker: String,
    /// What it did.
    #[source]
    pub reason: SessionError,
}

/// Why a worker could not join, or stopped, on the worker's side.
///
/// ```
/// use pando_distributed_map::{JoinError, session::SessionError};
/// assert_eq!(JoinError::Master(SessionError::Disconnected).to_string(), "the master disconnected");
/// ```
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum JoinError {
    /// The master could not be reached, or the connection failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The master refused the worker (wrong token, other protocol version, full).
    #[error("the master refused this worker: {0}")]
    Rejected(String),
    /// The master broke the protocol, stopped with an error, or went silent.
    #[error("the master {0}")]
    Master(SessionError),
}
