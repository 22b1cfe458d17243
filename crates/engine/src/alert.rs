//! Alerts and audit entries the engine raises; both are journaled and alerts are also
//! broadcast to subscribers (UI, notifications).

use crate::intent::Purpose;
use serde::{Deserialize, Serialize};
use tradeguard_model::{GroupId, Timestamp};

/// Alert severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Severity {
    /// For the record.
    Info,
    /// Needs attention.
    Warning,
    /// Money at risk now.
    Critical,
}

/// An alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// When.
    pub ts: Timestamp,
    /// How bad.
    pub severity: Severity,
    /// Stable code (e.g. `stop.cancel_rejected`).
    pub code: String,
    /// What happened and why, for a person.
    pub message: String,
    /// Group concerned.
    pub group: Option<GroupId>,
    /// Stop-loss concerned.
    pub stop: Option<u64>,
}

/// One audit-log entry: a decision and its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When.
    pub ts: Timestamp,
    /// Decision (`accepted`, `refused`, `hedge`, `recovered`, ...).
    pub decision: String,
    /// Stable code of the reason.
    pub code: String,
    /// Reason text.
    pub reason: String,
    /// Purpose of the order concerned.
    pub purpose: Option<Purpose>,
    /// Group concerned.
    pub group: Option<GroupId>,
}
