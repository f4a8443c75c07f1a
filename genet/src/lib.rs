//! Genet (placeholder front page, completed below).

mod config;
mod error;
pub mod fast;
pub mod id;
mod message;
mod node;
pub mod scenario;
pub mod sim;

pub use config::{
    Backoff, Config, ConfigError, DEFAULT_CANDIDATE_TIMEOUT, DEFAULT_CHILDREN_LIMIT, DEFAULT_MAX_STORED,
    DEFAULT_REPORTING_INTERVAL,
};
pub use error::{GenetError, RequestError};
pub use id::{NodeId, child_index};
pub use message::{From, Link, Message, Signal, To};
pub use node::{Action, Event, LeftReason, Node, SlotView, State};
