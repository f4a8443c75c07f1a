//! The per-node logic of the scalable DistributedMap (seed 000,
//! Abstraction 5, Algorithms 20-21), as a deterministic policy: it reads a
//! node's Genet [`Event`]s and says what the node's StreamLender, its
//! local processing and its Limiters must do. The `tree` module (feature
//! `map`) applies these steps to real nodes, through the map's Throttles.
//!
//! - A node processes values locally while it has no child (it is a
//!   *processor*, a leaf).
//! - Its first child pauses local processing (it becomes a *coordinator*);
//!   each child gets a sub-stream of the node's lender through a Limiter of
//!   limit `batch_size × the leaves the child reports` (a new child counts
//!   1 until it reports).
//! - When its last child leaves, the node resumes local processing. The
//!   seeds test `id = Node.id and n = 0` (Algorithm 20, line 19; Algorithm
//!   21, line 20), which never holds: a childless node reports 1 leaf
//!   (Algorithm 18). We resume on the last [`Event::ChildDisconnected`].
//! - A child that leaves or fails is reclaimed: the lender lends its values
//!   again to the other sub-streams (or to local processing).
//! - A node that leaves its tree reclaims every child and stops.
//!
//! ```
//! use pando_genet::coordinator::{Coordinator, Step};
//! use pando_genet::{Event, NodeId};
//!
//! let mut c = Coordinator::new(4).unwrap();
//! assert_eq!(c.start(), vec![Step::ResumeLocal]); // the root starts as a processor
//! let child = NodeId(7);
//! assert_eq!(
//!     c.on_event(&Event::ChildConnected { id: child }),
//!     vec![Step::PauseLocal, Step::Lend { child, limit: 4 }]
//! );
//! assert_eq!(
//!     c.on_event(&Event::LeafNumber { id: child, n: 3 }),
//!     vec![Step::UpdateLimit { child, limit: 12 }]
//! );
//! assert_eq!(
//!     c.on_event(&Event::ChildDisconnected { id: child }),
//!     vec![Step::Reclaim { child }, Step::ResumeLocal]
//! );
//! ```

use std::collections::BTreeMap;

use thiserror::Error;

use crate::{Event, NodeId};

/// What the node's map machinery must do.
///
/// ```
/// use pando_genet::coordinator::Step;
/// assert_ne!(Step::PauseLocal, Step::ResumeLocal);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Start or resume processing values locally (a processor).
    ResumeLocal,
    /// Pause local processing (a coordinator).
    PauseLocal,
    /// Stop local processing for good: the node left its tree.
    StopLocal,
    /// Lend values to this child: a new sub-stream of the lender, through a
    /// Limiter with this limit, over the child's link.
    Lend {
        /// The child.
        child: NodeId,
        /// The Limiter's limit.
        limit: usize,
    },
    /// Change the limit of this child's Limiter.
    UpdateLimit {
        /// The child.
        child: NodeId,
        /// The new limit.
        limit: usize,
    },
    /// The child is gone: end its sub-stream, so that the lender lends its
    /// values again.
    Reclaim {
        /// The child.
        child: NodeId,
    },
}

/// A batch size of zero, which would lend nothing.
///
/// ```
/// use pando_genet::coordinator::{Coordinator, CoordinatorError};
/// assert_eq!(Coordinator::new(0).unwrap_err(), CoordinatorError::ZeroBatchSize);
/// ```
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CoordinatorError {
    /// `batch_size` is 0.
    #[error("batch_size must be at least 1")]
    ZeroBatchSize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Local {
    Stopped,
    Running,
    Paused,
}

/// The per-node policy of the scalable DistributedMap.
#[derive(Clone, Debug)]
pub struct Coordinator {
    batch_size: usize,
    children: BTreeMap<NodeId, usize>,
    local: Local,
}

impl Coordinator {
    /// A policy lending `batch_size` values per leaf.
    ///
    /// ```
    /// use pando_genet::coordinator::Coordinator;
    /// assert!(Coordinator::new(1).is_ok());
    /// ```
    pub fn new(batch_size: usize) -> Result<Self, CoordinatorError> {
        if batch_size == 0 {
            return Err(CoordinatorError::ZeroBatchSize);
        }
        Ok(Self {
            batch_size,
            children: BTreeMap::new(),
            local: Local::Stopped,
        })
    }

    /// Starts as a processor: the master does so at once (Algorithm 20,
    /// line 9); a volunteer on [`Event::ParentConnected`] (Algorithm 21).
    ///
    /// ```
    /// use pando_genet::coordinator::{Coordinator, Step};
    /// let mut c = Coordinator::new(1).unwrap();
    /// assert_eq!(c.start(), vec![Step::ResumeLocal]);
    /// assert_eq!(c.start(), vec![]);
    /// ```
    pub fn start(&mut self) -> Vec<Step> {
        if self.local == Local::Stopped && self.children.is_empty() {
            self.local = Local::Running;
            vec![Step::ResumeLocal]
        } else {
            Vec::new()
        }
    }

    /// Whether values are processed locally now.
    ///
    /// ```
    /// use pando_genet::coordinator::Coordinator;
    /// let mut c = Coordinator::new(1).unwrap();
    /// c.start();
    /// assert!(c.processing_locally());
    /// ```
    #[must_use]
    pub fn processing_locally(&self) -> bool {
        self.local == Local::Running
    }

    /// The children lent to, with their Limiters' limits.
    ///
    /// ```
    /// use pando_genet::coordinator::Coordinator;
    /// assert_eq!(Coordinator::new(1).unwrap().children().count(), 0);
    /// ```
    pub fn children(&self) -> impl Iterator<Item = (NodeId, usize)> + '_ {
        self.children.iter().map(|(&c, &l)| (c, l))
    }

    fn limit(&self, leaves: u64) -> usize {
        let leaves = usize::try_from(leaves.max(1)).unwrap_or(usize::MAX);
        self.batch_size.saturating_mul(leaves)
    }

    /// What to do on one of the node's Genet events.
    ///
    /// ```
    /// use pando_genet::coordinator::{Coordinator, Step};
    /// use pando_genet::{Event, NodeId};
    /// let mut c = Coordinator::new(2).unwrap();
    /// c.start();
    /// // A childless node reports 1 leaf for itself: nothing to do.
    /// assert_eq!(c.on_event(&Event::LeafNumber { id: NodeId(1), n: 1 }), vec![]);
    /// ```
    pub fn on_event(&mut self, event: &Event) -> Vec<Step> {
        let mut steps = Vec::new();
        match *event {
            Event::ParentConnected { .. } => steps = self.start(),
            Event::ChildConnected { id } => {
                if self.children.remove(&id).is_some() {
                    // Connected again without a disconnection in between:
                    // the old sub-stream is stale.
                    steps.push(Step::Reclaim { child: id });
                }
                if self.children.is_empty() && self.local == Local::Running {
                    self.local = Local::Paused;
                    steps.push(Step::PauseLocal);
                }
                let limit = self.limit(1);
                self.children.insert(id, limit);
                steps.push(Step::Lend { child: id, limit });
            }
            Event::LeafNumber { id, n } => {
                let limit = self.limit(n);
                if let Some(current) = self.children.get_mut(&id) {
                    if *current != limit {
                        *current = limit;
                        steps.push(Step::UpdateLimit { child: id, limit });
                    }
                }
            }
            Event::ChildDisconnected { id } => {
                if self.children.remove(&id).is_some() {
                    steps.push(Step::Reclaim { child: id });
                    if self.children.is_empty() && self.local == Local::Paused {
                        self.local = Local::Running;
                        steps.push(Step::ResumeLocal);
                    }
                }
            }
            Event::Left { .. } => {
                let children = std::mem::take(&mut self.children);
                steps.extend(children.into_keys().map(|child| Step::Reclaim { child }));
                if self.local != Local::Stopped {
                    self.local = Local::Stopped;
                    steps.push(Step::StopLocal);
                }
            }
            Event::Rejoining { .. } | Event::Error(_) => {}
        }
        steps
    }
}
