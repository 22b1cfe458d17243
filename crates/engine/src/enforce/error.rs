//! [`EnforceError`]: what can stop a guard task or its start-up, with stable codes.

use crate::assignment::AssignmentError;
use crate::enforce::flatten::FlattenError;
use crate::error::{ExecError, JournalError};
use tradeguard_model::BrokerError;

/// Failures of the enforcement runtime. A task returning one of these is restarted by the
/// supervisor (with back-off and an alert); [`crate::enforce::Guard::start`] returns them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnforceError {
    /// The execution coordinator failed or stopped.
    #[error("coordinator: {0}")]
    Exec(#[from] ExecError),
    /// A broker call failed.
    #[error("broker: {0}")]
    Broker(#[from] BrokerError),
    /// The journal failed.
    #[error("journal: {0}")]
    Journal(#[from] JournalError),
    /// The assignment guard failed to start or stopped.
    #[error("assignment guard: {0}")]
    Assignment(#[from] AssignmentError),
    /// The broker event stream ended.
    #[error("broker event stream ended")]
    StreamEnded,
    /// A flatten preview or confirmation was refused.
    #[error("flatten: {0}")]
    Flatten(#[from] FlattenError),
    /// An entry preview or placement was refused.
    #[error("entry: {0}")]
    Entry(#[from] crate::entry::EntryError),
    /// The configuration is unusable.
    #[error("bad enforcement config: {field}: {reason}")]
    Config {
        /// Field name.
        field: &'static str,
        /// Why.
        reason: String,
    },
}

impl EnforceError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Exec(e) => e.code(),
            Self::Broker(e) => e.code(),
            Self::Journal(e) => e.code(),
            Self::Assignment(e) => e.code(),
            Self::StreamEnded => "enforce.stream_ended",
            Self::Config { .. } => "enforce.config",
            Self::Flatten(e) => e.code(),
            Self::Entry(e) => e.code(),
        }
    }
}
