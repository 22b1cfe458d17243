//! [`FlattenError`]: why a flatten / forced-unwind preview or confirmation was refused, with
//! stable codes (`flatten.*`). Carried inside [`crate::enforce::EnforceError::Flatten`].

use tradeguard_model::{StrategyId, Timestamp};

/// A refused preview, confirmation or progress query.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlattenError {
    /// No preview with this id was ever issued by this guard (or it was forgotten long ago).
    #[error("unknown preview id {id}: ask for a new preview")]
    UnknownPreview {
        /// The id given.
        id: String,
    },
    /// The preview is older than its time to live.
    #[error("preview {id} expired at {expired_at}: ask for a new preview")]
    ExpiredPreview {
        /// The id given.
        id: String,
        /// When it expired (clock time).
        expired_at: Timestamp,
    },
    /// The preview was already confirmed (or refused as stale): ids are single-use.
    #[error("preview {id} was already used: ask for a new preview")]
    AlreadyUsed {
        /// The id given.
        id: String,
    },
    /// The positions (or the guard's state) changed since the preview: the orders would differ
    /// from the ones shown. Nothing was sent.
    #[error("preview {id} is stale, nothing was sent: {detail}")]
    StalePreview {
        /// The id given.
        id: String,
        /// What changed, for a person.
        detail: String,
    },
    /// The preview lists no order: there is nothing to send.
    #[error("nothing to flatten: {detail}")]
    NothingToFlatten {
        /// Why (no position, every position already being closed, ...).
        detail: String,
    },
    /// The strategy is not in the guard's strategy book.
    #[error("unknown strategy {0}")]
    UnknownStrategy(StrategyId),
    /// No ticket with this id.
    #[error("unknown flatten ticket {0}")]
    UnknownTicket(String),
}

impl FlattenError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::UnknownPreview { .. } => "flatten.unknown_preview",
            Self::ExpiredPreview { .. } => "flatten.expired_preview",
            Self::AlreadyUsed { .. } => "flatten.already_used",
            Self::StalePreview { .. } => "flatten.stale_preview",
            Self::NothingToFlatten { .. } => "flatten.nothing_to_flatten",
            Self::UnknownStrategy(_) => "flatten.unknown_strategy",
            Self::UnknownTicket(_) => "flatten.unknown_ticket",
        }
    }
}
