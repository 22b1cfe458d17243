//! [`AssignmentError`]: typed failures of the assignment guard, each with a stable code.

use crate::error::{ExecError, JournalError};
use tradeguard_model::BrokerError;

/// Assignment guard failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentError {
    /// The journal could not be read or written.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The broker call (positions snapshot) failed.
    #[error("broker: {0}")]
    Broker(#[from] BrokerError),
    /// The execution coordinator refused or failed.
    #[error("coordinator: {0}")]
    Exec(#[from] ExecError),
    /// The guard task is not running.
    #[error("the assignment guard is not running")]
    Stopped,
}

impl AssignmentError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Journal(e) => e.code(),
            Self::Broker(e) => e.code(),
            Self::Exec(e) => e.code(),
            Self::Stopped => "assignment.stopped",
        }
    }
}
